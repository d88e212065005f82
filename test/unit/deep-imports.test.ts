/**
 * The parts of packages we load by a path inside them, for start-up (loading
 * graphile-worker's index costs every command its pg, its config loader and
 * the rest): each is proven to be the very thing the package itself uses, so
 * an upgrade that moves or changes it fails here, not in production.
 */
import { createRequire } from "node:module";
import { Logger, parseCronItem } from "graphile-worker";
import { createCronMatcher } from "graphile-worker/dist/cronMatcher.js";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createLogger, graphileLogger } from "../../src/log.js";

const require = createRequire(import.meta.url);

/** The error `fn` throws, or undefined. */
function thrown(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

describe("graphile-worker/dist/cronMatcher.js (config.ts's crontab check)", () => {
  it("is the module graphile-worker's parseCronItem uses", () => {
    require("graphile-worker");
    const loaded = require.cache[require.resolve("graphile-worker/dist/cronMatcher.js")];
    expect(loaded, "graphile-worker no longer loads dist/cronMatcher.js").toBeDefined();
    expect(loaded!.exports.createCronMatcher).toBe(createCronMatcher);
  });

  it("accepts, rejects and explains every expression as parseCronItem does", () => {
    const patterns = [
      "0 3 * * *",
      "*/15 * * * *",
      "30 3 * * 1-5",
      "0 0 1,15 * 7",
      "0 4 * * 0",
      "61 * * * *",
      "* 24 * * *",
      "0 0 0 * *",
      "0 0 * 13 *",
      "0 0 * * 8",
      "* * * *",
      "every day",
      "",
      "5-1 * * * *",
      "*/0 * * * *",
    ];
    // Sunday 2024-03-03 and Monday 2024-03-04 at a few times: the digests a matcher sees.
    const digests = [0, 3, 4, 15].flatMap((hour) =>
      [0, 15, 30].flatMap((min) => [3, 4].map((date) => ({ min, hour, date, month: 3, dow: date === 3 ? 0 : 1 }))),
    );
    for (const match of patterns) {
      const ours = thrown(() => createCronMatcher(match, "env"));
      const theirs = thrown(() => parseCronItem({ task: "check", match, identifier: "check" }, "env"));
      expect(ours, match).toBe(theirs);
      if (ours !== undefined) continue;
      const a = createCronMatcher(match, "env");
      const b = parseCronItem({ task: "check", match, identifier: "check" }, "env").match;
      for (const d of digests) expect(a(d), `${match} at ${JSON.stringify(d)}`).toBe(b(d));
    }
  });

  it("still gives config.ts graphile-worker's reason", () => {
    expect(() => loadConfig({ BACKUP_CRON: "61 * * * *" }, "/nonexistent/.env")).toThrow(
      /BACKUP_CRON: expected a crontab expression like "0 3 \* \* \*" \(Too large value '61' in minutes range in env: expected values in the range 0-59\.\)/,
    );
  });
});

describe("graphileLogger (log.ts requires graphile-worker when called)", () => {
  it("is an instance of the Logger graphile-worker exports", () => {
    expect(graphileLogger(createLogger("silent"))).toBeInstanceOf(Logger);
  });
});
