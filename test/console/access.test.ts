/**
 * The console's safety rails without a browser: the HTML escaper, Basic
 * authentication and the CSRF check, masked addresses, the loopback rule
 * (config refuses a non-loopback console without a password, and so does
 * `pmt-worker start`), and the pure parts (next cron run, calendar, cursors).
 */
import type http from "node:http";
import { parseCronItems } from "graphile-worker";
import { describe, expect, it } from "vitest";
import { ConfigError, isLoopbackHost, loadConfig } from "../../src/config.js";
import { credentialsMatch, csrfProblem, decideAccess, hostName, maskEmails } from "../../src/console/access.js";
import { backupCalendar } from "../../src/console/calendar.js";
import { nextRun } from "../../src/console/cron.js";
import { escapeHtml, html, jsonScript, raw } from "../../src/console/html.js";
import { formatCursor, parseCursor } from "../../src/console/jobs-query.js";
import { UserError } from "../../src/errors.js";
import { createConsole, jobsFilter } from "../../src/console/server.js";
import { createLogger } from "../../src/log.js";
import { runCli } from "../harness/cli.js";

const NO_DOTENV = "/nonexistent/.env";

describe("html``", () => {
  it("escapes every interpolated value, in content and in attributes", () => {
    const hostile = `"><script>alert('x')</script>&amp;\``;
    const out = html`<p title="${hostile}">${hostile}</p>`.text;
    expect(out).toBe(
      '<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;&#96;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;&#96;</p>',
    );
    expect(out).not.toContain("<script>");
  });

  it("inserts nested fragments and raw() as they are, joins arrays, leaves null, undefined and false empty", () => {
    const items = ["<a>", "b"].map((s) => html`<li>${s}</li>`);
    // prettier-ignore
    const out = html`<ul>${items}</ul>${null}${undefined}${false}${raw("<hr>")}${0}`.text;
    expect(out).toBe("<ul><li>&lt;a&gt;</li><li>b</li></ul><hr>0");
    expect(escapeHtml("a&b")).toBe("a&amp;b");
  });

  it("JSON in a script block cannot close it", () => {
    const out = jsonScript("d", { s: "</script><script>alert(1)</script>", t: "\u2028" }).text;
    expect(out.match(/<\/script>/g)).toHaveLength(1);
    expect(JSON.parse(out.slice(out.indexOf(">") + 1, out.lastIndexOf("<")))).toEqual({ s: "</script><script>alert(1)</script>", t: "\u2028" });
  });
});

const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;
const request = (headers: Record<string, string>, remoteAddress = "127.0.0.1") => ({ headers, socket: { remoteAddress } }) as unknown as http.IncomingMessage;

describe("access", () => {
  const access = { user: "admin", password: "a long enough password" };

  it("Basic credentials: only the user and password together", () => {
    expect(credentialsMatch(basic("admin:a long enough password"), access)).toBe(true);
    expect(credentialsMatch(basic("admin:a long enough passworD"), access)).toBe(false);
    expect(credentialsMatch(basic("root:a long enough password"), access)).toBe(false);
    expect(credentialsMatch(basic("admin:"), access)).toBe(false);
    expect(credentialsMatch("Bearer x", access)).toBe(false);
    expect(credentialsMatch(undefined, access)).toBe(false);
    expect(credentialsMatch(basic("admin:"), { user: "admin" })).toBe(false);
  });

  it("with a password: 401 and a Basic challenge without credentials; the user is named in the history", () => {
    const refused = decideAccess(request({ host: "127.0.0.1:9464" }), access);
    expect(refused).toMatchObject({ ok: false, status: 401, headers: { "www-authenticate": expect.stringMatching(/^Basic realm=/) } });
    const ok = decideAccess(request({ host: "pmt.example.org", authorization: basic("admin:a long enough password") }, "10.1.2.3"), access);
    expect(ok).toEqual({ ok: true, viewer: { authenticated: true, who: "console user admin from 10.1.2.3" } });
  });

  it("without a password: open to a loopback Host only (a DNS-rebinding page names its own)", () => {
    expect(decideAccess(request({ host: "127.0.0.1:9464" }), { user: "admin" })).toMatchObject({ ok: true, viewer: { authenticated: false } });
    expect(decideAccess(request({ host: "localhost:9464" }), { user: "admin" })).toMatchObject({ ok: true });
    expect(decideAccess(request({ host: "[::1]:9464" }), { user: "admin" })).toMatchObject({ ok: true });
    expect(decideAccess(request({ host: "evil.example:9464" }), { user: "admin" })).toMatchObject({ ok: false, status: 421 });
    expect(decideAccess(request({}), { user: "admin" })).toMatchObject({ ok: false, status: 421 });
    expect(hostName("[::1]:80")).toBe("::1");
  });

  it("without a password: refuses a connection from elsewhere or through a proxy, whatever its Host", () => {
    // nginx's default proxy_pass to 127.0.0.1 sends a loopback Host: the socket and the forwarding headers tell.
    expect(decideAccess(request({ host: "127.0.0.1:9464" }, "10.1.2.3"), { user: "admin" })).toMatchObject({ ok: false, status: 403 });
    for (const header of ["x-forwarded-for", "forwarded", "x-real-ip", "via", "x-forwarded-host"]) {
      expect(decideAccess(request({ host: "127.0.0.1:9464", [header]: "203.0.113.9" }), { user: "admin" }), header).toMatchObject({ ok: false, status: 403 });
    }
    expect(decideAccess(request({ host: "127.0.0.1:9464" }, "::ffff:127.0.0.1"), { user: "admin" })).toMatchObject({ ok: true });
  });

  it("CSRF: the cookie and the form's token must be equal; another site's request is refused", () => {
    const token = "t".repeat(43);
    const cookie = `other=1; pmt_console_csrf=${token}`;
    expect(csrfProblem(request({ cookie, host: "127.0.0.1:1" }), token)).toBeUndefined();
    expect(csrfProblem(request({ cookie, host: "127.0.0.1:1", origin: "http://127.0.0.1:1", "sec-fetch-site": "same-origin" }), token)).toBeUndefined();
    expect(csrfProblem(request({ host: "127.0.0.1:1" }), token)).toMatch(/no CSRF token/);
    expect(csrfProblem(request({ cookie, host: "127.0.0.1:1" }), undefined)).toMatch(/no CSRF token/);
    expect(csrfProblem(request({ cookie, host: "127.0.0.1:1" }), "u".repeat(43))).toMatch(/does not match/);
    expect(csrfProblem(request({ cookie, host: "127.0.0.1:1", origin: "http://evil.example" }), token)).toMatch(/Origin/);
    expect(csrfProblem(request({ cookie, host: "127.0.0.1:1", "sec-fetch-site": "cross-site" }), token)).toMatch(/cross-site/);
  });

  it("masks addresses: the organisation shows, the mailbox does not", () => {
    expect(maskEmails("mail to jane.doe+x@example.org and ann@b.example.co.uk refused")).toBe("mail to j…@example.org and a…@b.example.co.uk refused");
    expect(maskEmails("no address here")).toBe("no address here");
    // Cut short by the payload summary's 200 characters, or not ASCII: still masked.
    expect(maskEmails('{"to": "ann@x.org, bob.smith@exam… (312 chars)"}')).toBe('{"to": "a…@x.org, b…@exam… (312 chars)"}');
    expect(maskEmails("jane@bücher.de, jöhn@example.org")).toBe("j…@bücher.de, j…@example.org");
  });
});

describe("the loopback rule", () => {
  it("knows loopback addresses", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.org", "127.0.0.1.example.org", "localhost.example.org", "127.0.0.300"]) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it("refuses a console on another address without CONSOLE_PASSWORD, saying what to set", () => {
    const attempt = () => loadConfig({ HTTP_HOST: "0.0.0.0" }, NO_DOTENV);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/CONSOLE_PASSWORD: the web console \(\/console\) would listen on HTTP_HOST "0\.0\.0\.0".*set CONSOLE_PASSWORD.*or CONSOLE=off/);
    expect(loadConfig({ HTTP_HOST: "0.0.0.0", CONSOLE: "off" }, NO_DOTENV).console.enabled).toBe(false);
    expect(loadConfig({ HTTP_HOST: "0.0.0.0", CONSOLE_PASSWORD: "twelve chars!" }, NO_DOTENV).console).toEqual({
      enabled: true,
      user: "admin",
      password: "twelve chars!",
    });
    expect(loadConfig({}, NO_DOTENV).console).toEqual({ enabled: true, user: "admin", password: undefined });
  });

  it("never echoes a password it refuses", () => {
    let message = "";
    try {
      loadConfig({ CONSOLE_PASSWORD: "short-pw" }, NO_DOTENV);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/CONSOLE_PASSWORD: expected at least 12 characters/);
    expect(message).not.toContain("short-pw");
  });

  it("createConsole itself refuses a non-loopback listener without a password", () => {
    const make = (host: string, password?: string) =>
      createConsole({
        host,
        access: { user: "admin", password },
        tasks: { backup: "b", testRestore: "t", testRestoreQueue: "test-restore" },
        logger: createLogger("silent"),
        databases: () => [],
      });
    expect(() => make("0.0.0.0")).toThrow(/not a loopback address, without a password/);
    expect(() => make("0.0.0.0", "a long enough password")).not.toThrow();
    expect(() => make("127.0.0.1")).not.toThrow();
  });

  it("`pmt-worker start` refuses to start on 0.0.0.0 without CONSOLE_PASSWORD, in one clear line", async () => {
    const result = await runCli(["start"], {
      HTTP_HOST: "0.0.0.0",
      DATABASE_URL: "postgres://u:p@127.0.0.1:1/none",
      CONSOLE: undefined,
      CONSOLE_PASSWORD: undefined,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/CONSOLE_PASSWORD: the web console/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("pure parts", () => {
  it("next cron run, by graphile-worker's matcher (UTC)", () => {
    const [daily, quarter, sunday] = parseCronItems([
      { task: "t", identifier: "a", match: "0 3 * * *" },
      { task: "t", identifier: "b", match: "*/15 * * * *" },
      { task: "t", identifier: "c", match: "0 4 * * 0" },
    ]);
    const now = new Date("2026-12-01T13:07:30Z"); // a Tuesday
    expect(nextRun(daily!, now)?.toISOString()).toBe("2026-12-02T03:00:00.000Z");
    expect(nextRun(quarter!, now)?.toISOString()).toBe("2026-12-01T13:15:00.000Z");
    expect(nextRun(sunday!, now)?.toISOString()).toBe("2026-12-06T04:00:00.000Z");
    expect(nextRun({ match: () => false }, now)).toBeUndefined();
  });

  it("the calendar: weeks of seven days from a Monday, a year back, each day's outcome", () => {
    const now = new Date("2026-12-01T13:00:00Z");
    const b = (id: number, status: string, at: string, extra = {}) => ({
      id,
      status,
      tiers: [],
      started_at: at,
      restore_test_ok: null,
      error: null,
      bytes: 1,
      ...extra,
    });
    const weeks = backupCalendar(
      [
        b(1, "succeeded", "2026-11-30T00:00:05Z", { tiers: ["daily"], restore_test_ok: true }),
        b(2, "failed", "2026-11-29T00:00:05Z"),
        b(3, "failed", "2026-11-28T00:00:05Z"),
        b(4, "succeeded", "2026-11-28T01:00:05Z"),
        b(5, "pruned", "2026-06-01T00:00:05Z"),
      ],
      now,
    );
    expect(weeks.every((w) => w.length === 7)).toBe(true);
    expect(new Date(`${weeks[0]![0]!.date}T00:00:00Z`).getUTCDay()).toBe(1);
    const day = (date: string) => weeks.flat().find((d) => d.date === date)!;
    expect(day("2026-11-30")).toMatchObject({ state: "ok", tiers: ["daily"], restoreOk: true });
    expect(day("2026-11-29").state).toBe("failed");
    expect(day("2026-11-28").state).toBe("mixed");
    expect(day("2026-06-01").state).toBe("pruned");
    expect(day("2026-12-01").state).toBe("none");
    expect(day("2026-12-02").state).toBe("future");
    expect(weeks.flat().filter((d) => d.state !== "future").length).toBeGreaterThanOrEqual(365);
  });

  it("Jobs filters and cursors from the query string; a malformed one is a 400 naming it", () => {
    const cursor = { at: "2026-12-01T13:07:30.123456Z", id: 42 };
    expect(parseCursor(formatCursor(cursor))).toEqual(cursor);
    expect(parseCursor(null)).toBeUndefined();
    expect(() => parseCursor("2026-12-01'; drop table x;--~1", "before")).toThrow(
      /^before: "2026-12-01'; drop table x;--~1" is not a page cursor: expected <time>~<id>/,
    );
    // The right shape, not a time: PostgreSQL would have refused it with a 500.
    expect(() => parseCursor("2026-13-45T99:99:99Z~1", "after")).toThrow(UserError);
    expect(() => parseCursor("2026-02-30T10:00:00Z~1")).toThrow(UserError);
    const url = new URL(`http://x/console/jobs?task=pmt_jobs.backup&status=failed&from=2026-11-01T00:00&before=${encodeURIComponent(formatCursor(cursor))}`);
    expect(jobsFilter(url)).toEqual({
      task: "pmt_jobs.backup",
      status: "failed",
      from: new Date("2026-11-01T00:00:00Z"),
      to: undefined,
      before: cursor,
      after: undefined,
    });
    expect(() => jobsFilter(new URL("http://x/console/jobs?status=everything"))).toThrow(
      /^status: "everything" is not a job status: expected one of running, /,
    );
    expect(() => jobsFilter(new URL("http://x/console/jobs?to=bogus"))).toThrow(/^to: "bogus" is not a time: expected YYYY-MM-DDTHH:MM/);
    expect(() => jobsFilter(new URL("http://x/console/jobs?from=2026-11-31T00:00"))).toThrow(UserError);
  });
});
