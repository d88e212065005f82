/**
 * What of a job's payload goes into history: secrets removed (by key name and
 * passwords inside URLs), long strings and arrays cut, depth and total size
 * bounded. Pure.
 */
import { REDACTED, isSecretKey, redactText } from "../redact.js";

const MAX_STRING = 200;
const MAX_ARRAY = 20;
const MAX_DEPTH = 4;
const MAX_JSON = 4000;

function summarize(value: unknown, depth: number): unknown {
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "string") {
    const clean = redactText(value);
    return clean.length > MAX_STRING ? `${clean.slice(0, MAX_STRING)}… (${clean.length} chars)` : clean;
  }
  if (typeof value === "bigint") return value.toString();
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[array of ${value.length}]` : "{…}";
  if (Array.isArray(value)) {
    const head = value.slice(0, MAX_ARRAY).map((v) => summarize(v, depth + 1));
    if (value.length > MAX_ARRAY) head.push(`… (+${value.length - MAX_ARRAY} more)`);
    return head;
  }
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      out[key] = isSecretKey(key) ? REDACTED : summarize(v, depth + 1);
    }
    return out;
  }
  return `[${typeof value}]`;
}

/** The payload as a JSON object safe to store and show. */
export function summarizePayload(payload: unknown): Record<string, unknown> {
  const summary = summarize(payload, 0);
  const wrapped: Record<string, unknown> =
    summary !== null && typeof summary === "object" && !Array.isArray(summary)
      ? (summary as Record<string, unknown>)
      : { value: summary };
  const json = JSON.stringify(wrapped);
  if (json.length <= MAX_JSON) return wrapped;
  return { truncated: true, bytes: json.length, keys: Object.keys(wrapped).slice(0, 50) };
}

const MAX_ERROR = 10_000;

/** An error's message (and its causes') as history text, secrets removed. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let i = 0; current !== undefined && current !== null && i < 5; i++) {
    parts.push(current instanceof Error ? current.message || current.name : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  const text = redactText(parts.filter(Boolean).join(": caused by: ") || "unknown error");
  return text.length > MAX_ERROR ? `${text.slice(0, MAX_ERROR)}… (cut)` : text;
}
