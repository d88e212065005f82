import { describe, expect, it } from "vitest";
import { errorText, summarizePayload } from "../../src/history/summary.js";
import { redactText, redactUrl } from "../../src/redact.js";

describe("summarizePayload", () => {
  it("removes secrets by key and inside URLs", () => {
    const summary = summarizePayload({
      email: "a@example.org",
      password: "hunter2",
      smtp: { authToken: "t0k3n", host: "mail" },
      target: "postgres://backup:s3cret@db:5432/pmt",
    });
    expect(summary).toEqual({
      email: "a@example.org",
      password: "***",
      smtp: { authToken: "***", host: "mail" },
      target: "postgres://backup:***@db:5432/pmt",
    });
  });

  it("bounds strings, arrays, depth and total size", () => {
    const summary = summarizePayload({ long: "x".repeat(500), ids: Array.from({ length: 50 }, (_, i) => i), a: { b: { c: { d: { e: 1 } } } } });
    expect(summary.long).toMatch(/^x{200}… \(500 chars\)$/);
    expect(summary.ids).toHaveLength(21);
    expect((summary.ids as unknown[])[20]).toBe("… (+30 more)");
    expect(summary.a).toEqual({ b: { c: { d: "{…}" } } });
    const huge = summarizePayload(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, "v".repeat(100)])));
    expect(huge.truncated).toBe(true);
    expect(JSON.stringify(huge).length).toBeLessThan(4000);
  });

  it("wraps non-object payloads", () => {
    expect(summarizePayload(null)).toEqual({ value: null });
    expect(summarizePayload([1, 2])).toEqual({ value: [1, 2] });
  });
});

describe("errorText and redaction", () => {
  it("joins causes and removes passwords", () => {
    const error = new Error("connect to postgres://u:pw@h/db failed", { cause: new Error("password=abc rejected") });
    expect(errorText(error)).toBe("connect to postgres://u:***@h/db failed: caused by: password=*** rejected");
  });

  it("redacts URLs and libpq strings", () => {
    expect(redactUrl("postgres://u:p%40ss@h:5/db?sslpassword=x")).toBe("postgres://u:***@h:5/db?sslpassword=***");
    expect(redactText("host=h password=secret user=u")).toBe("host=h password=*** user=u");
  });
});
