/**
 * HTML built by a tagged template that escapes every interpolated value:
 * html`<td>${value}</td>` is safe whatever `value` holds. Only another
 * html`` fragment (or raw(), for the few constant strings that need it) is
 * inserted as it is. Arrays are joined, null and undefined are empty.
 */
export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Text safe in an element's content and in a quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.text;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  if (value instanceof Date) return escapeHtml(value.toISOString());
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new SafeHtml(out);
}

/** A constant string inserted as it is: never pass data. */
export function raw(text: string): SafeHtml {
  return new SafeHtml(text);
}

/**
 * JSON for a <script type="application/json"> block: `<`, `>`, `&` and the
 * line separators escaped, so no value can close the block or start a comment.
 */
export function jsonScript(id: string, value: unknown): SafeHtml {
  const json = JSON.stringify(value ?? null).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return new SafeHtml(`<script type="application/json" id="${escapeHtml(id)}">${json}</script>`);
}
