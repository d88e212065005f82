import { describe, expect, it } from "vitest";
import { errorText, redactText, redactUrl } from "../../src/redact.js";

describe("redaction", () => {
  it("joins an error's causes and removes passwords", () => {
    const error = new Error("connect to postgres://u:pw@h/db failed", { cause: new Error("password=abc rejected") });
    expect(errorText(error)).toBe("connect to postgres://u:***@h/db failed: caused by: password=*** rejected");
    expect(errorText("plain")).toBe("plain");
    expect(errorText(new Error("x".repeat(20_000)))).toHaveLength(10_000 + "… (cut)".length);
  });

  it("redacts URLs and libpq strings", () => {
    expect(redactUrl("postgres://u:p%40ss@h:5/db?sslpassword=x")).toBe("postgres://u:***@h:5/db?sslpassword=***");
    expect(redactText("host=h password=secret user=u")).toBe("host=h password=*** user=u");
    expect(redactText("s3://key:secret@bucket/x and https://a:b@c")).toBe("s3://key:***@bucket/x and https://a:***@c");
  });
});

describe("the logger", () => {
  it("never writes a password, in messages, fields or errors", async () => {
    const { createLogger } = await import("../../src/log.js");
    const lines: string[] = [];
    const logger = createLogger("info", { write: (line: string) => lines.push(line) });
    logger.info("connecting to postgres://u:hunter2@h/db");
    logger.warn({ err: "failed: password=hunter2", nested: { url: "s3://k:hunter2@b" } }, "oops");
    logger.error({ err: new Error("postgres://u:hunter2@h/db refused") }, "boom");
    logger.info({ password: "hunter2", connectionString: "x" }, "fields");
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line).not.toContain("hunter2");
    expect(lines[2]).toContain("postgres://u:***@h/db refused");
  });
});
