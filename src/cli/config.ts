/**
 * `pmt-worker config`: the settings this worker would run with, each from
 * where it came (the environment, ./.env, or its default), secrets masked:
 * passwords in URLs, and anything in a secret variable that is not a plain
 * name or an age recipient. Invalid settings are listed too, then named on
 * stderr (exit 1), as start would refuse them.
 */
import type { Command } from "commander";
import { stdoutColours } from "../colour.js";
import { redactText, redactUrl, REDACTED } from "../redact.js";
import { firstLine, table } from "./format.js";

export interface Setting {
  name: string;
  /** As given (secrets masked), or the default; null when unset without a default. */
  value: string | null;
  source: "env" | ".env" | "default" | "unset";
}

/** A secret variable's value, item by item: URLs with their password masked, names and age recipients kept, anything else masked. */
/** Secrets with nothing around them to show: a password is masked whatever it looks like. */
const WHOLLY_SECRET: ReadonlySet<string> = new Set(["CONSOLE_PASSWORD"]);

function maskSecret(value: string): string {
  return value
    .split(/(\s*,\s*|\s+)/)
    .map((item, i) => {
      if (i % 2 === 1 || item === "") return item;
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(item)) return redactUrl(item);
      if (/^AGE-SECRET-KEY-/i.test(item)) return REDACTED;
      if (/^age1[0-9a-z]+$/.test(item) || /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(item)) return item;
      return REDACTED;
    })
    .join("");
}

export async function effectiveSettings(env: NodeJS.ProcessEnv = process.env, dotEnvFile = ".env"): Promise<Setting[]> {
  const { ENV, SECRET_VARS, readDotEnv } = await import("../config.js");
  const dotEnv = readDotEnv(dotEnvFile);
  return Object.entries(ENV).map(([name, spec]): Setting => {
    const fromEnv = env[name];
    const fromFile = dotEnv[name];
    // As loadConfig: the environment first, then .env; an empty value counts as unset.
    const [raw, source] =
      fromEnv !== undefined && fromEnv !== ""
        ? [fromEnv, "env" as const]
        : fromEnv === undefined && fromFile !== undefined && fromFile !== ""
          ? [fromFile, ".env" as const]
          : spec.default !== undefined
            ? [spec.default, "default" as const]
            : [null, "unset" as const];
    if (raw === null) return { name, value: null, source };
    return { name, value: WHOLLY_SECRET.has(name) ? REDACTED : SECRET_VARS.has(name) ? maskSecret(raw) : redactText(raw), source };
  });
}

export function registerConfig(program: Command): void {
  program
    .command("config")
    .description("the effective settings (environment, then ./.env, then defaults), where each came from, secrets masked; exit 1 if any is invalid")
    .option("--json", "one JSON array of {name, value, source} (value null when unset)")
    .option("--all", "also the variables that are unset and have no default")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker config
  $ pmt-worker config --all                    every variable, set or not
  $ pmt-worker config --json | jq -r '.[] | select(.source != "default") | .name'
  (pmt-worker start --help says what each variable means)`,
    )
    .action(async (opts: { json?: boolean; all?: boolean }) => {
      const settings = await effectiveSettings();
      if (opts.json) process.stdout.write(JSON.stringify(settings) + "\n");
      else {
        const c = stdoutColours();
        const shown = settings.filter((s) => opts.all || s.source !== "unset");
        process.stdout.write(
          table(
            ["variable", "value", "from"],
            shown.map((s) => [
              s.name,
              s.value === null ? c.dim("(unset)") : firstLine(s.value, 100),
              s.source === "default" || s.source === "unset" ? c.dim(s.source) : s.source,
            ]),
            c,
          ),
        );
        if (!opts.all) process.stdout.write(c.dim("(variables unset without a default are left out: --all shows them)\n"));
      }
      // As start would: a setting that does not validate is named, value not echoed for secrets.
      const { loadConfig } = await import("../config.js");
      loadConfig();
    });
}
