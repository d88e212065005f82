/**
 * Colours for a terminal, and only for one: a stream that is a TTY, with
 * NO_COLOR unset (https://no-color.org) and TERM not "dumb". FORCE_COLOR
 * forces them on (FORCE_COLOR=0 or false: off) for a pipe into `less -R`.
 * No dependency: the handful of SGR codes below is all the CLI and the log
 * lines use.
 */

export interface Colours {
  enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

/** Whether to colour what goes to `stream`, by the conventions above. */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "") return !["0", "false"].includes(force.toLowerCase());
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  return stream.isTTY === true;
}

const sgr = (on: boolean, open: number, close: number) => (text: string) => (on && text ? `\x1b[${open}m${text}\x1b[${close}m` : text);

export function colours(enabled: boolean): Colours {
  return {
    enabled,
    bold: sgr(enabled, 1, 22),
    dim: sgr(enabled, 2, 22),
    red: sgr(enabled, 31, 39),
    green: sgr(enabled, 32, 39),
    yellow: sgr(enabled, 33, 39),
    cyan: sgr(enabled, 36, 39),
  };
}

/** Colours for stdout (the commands' output). */
export function stdoutColours(): Colours {
  return colours(colourEnabled(process.stdout));
}

// eslint-disable-next-line no-control-regex
const SGR = /\x1b\[[0-9;]*m/g;

/** `text` without colour codes: its width on the screen. */
export function visibleLength(text: string): number {
  return text.replace(SGR, "").length;
}

// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** Exactly the codes colours() writes. */
// eslint-disable-next-line no-control-regex
const OUR_SGR = /(\x1b\[(?:1|2|22|31|32|33|36|39)m)/;

/**
 * `text` safe to print on a terminal: control characters (an escape sequence
 * in a task name or an error could retitle the window, move the cursor or
 * hide a line), DEL, C1 and bidirectional controls written as \xHH or \uHHHH.
 * Newlines too: one value stays on its line. With `keepColours`, the colour
 * codes colours() writes pass, so a finished table cell can be cleaned.
 */
export function printable(text: string, keepColours = false): string {
  const clean = (part: string) =>
    part.replace(UNPRINTABLE, (ch) => {
      const code = ch.charCodeAt(0);
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
    });
  if (!keepColours) return clean(text);
  return text
    .split(OUR_SGR)
    .map((part, i) => (i % 2 === 1 ? part : clean(part)))
    .join("");
}
