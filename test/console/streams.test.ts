/**
 * The console's live streams and the edges of its pages, over HTTP against a
 * real database (no browser): the stream's headers, HEAD, the limits (a busy
 * answer the browser retries, never a 503 it gives up on), the bounded replay
 * after a reconnect, streams ended when the instance's pool is replaced, 400
 * for malformed filters, masked requesters, and a double-clicked "Run a
 * backup now" queueing one backup.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../harness/worker.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import { migrate } from "../../src/db/migrate.js";
import { CONSOLE_TASKS } from "../../src/worker/http.js";
import { createConsole, type Console, type ConsoleDatabase } from "../../src/console/server.js";
import { REPLAY_MAX_ROWS } from "../../src/console/live.js";
import { createLogger } from "../../src/log.js";
import { createTestDatabase, type TestDatabase } from "../harness/db.js";
import { until } from "../harness/wait.js";

let db: TestDatabase;
let consolePool: Pool | undefined;
let server: http.Server;
let con: Console;
let base: string;
const config = testConfig();

interface Stream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Everything received so far. */
  text(): string;
  /** The data events received so far (id and parsed data). */
  events(): { id: number; data: { id: number; status: string; seq: number; payload: string; op: string } }[];
  ended: Promise<void>;
  close(): void;
}

function open(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + path, { method, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      const ended = new Promise<void>((done) => res.on("close", done));
      resolve({
        status: res.statusCode!,
        headers: res.headers,
        text: () => body,
        events: () =>
          body
            .split("\n\n")
            .filter((block) => /^id: /m.test(block))
            .map((block) => ({ id: Number(/^id: (\d+)$/m.exec(block)![1]), data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) })),
        ended,
        close: () => req.destroy(),
      });
    });
    req.on("error", (error) => (error.message.includes("socket hang up") ? undefined : reject(error)));
    req.end();
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  await migrate(db.pool, createLogger("silent"));
  consolePool = createPool(db.url, { max: 4 });
  con = createConsole({
    host: "127.0.0.1",
    access: { user: "admin", password: undefined },
    tasks: CONSOLE_TASKS,
    logger: createLogger("silent"),
    databases: (): ConsoleDatabase[] => [{ name: db.name, url: db.url, pool: consolePool, config, cron: [], backupTargets: [db.name] }],
  });
  server = http.createServer((req, res) => {
    if (!con.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await con?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await consolePool?.end();
});

/** A history row written `ago` before now (its updated_at, hence its event's seq). */
async function historyRow(task: string, ago: string, payload: object = {}): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, worker_id, status, started_at, finished_at, updated_at, payload_summary)
     values (900000000 + floor(random() * 1e8)::bigint, $1, 1, 1, 'w', 'succeeded', now() - $2::interval, now() - $2::interval, now() - $2::interval, $3)
     returning id`,
    [task, ago, JSON.stringify(payload)],
  );
  return Number(rows[0]!.id);
}

describe("the live stream", () => {
  it("carries the security headers, and HEAD answers without opening a stream", async () => {
    const s = await open("/console/jobs/events");
    expect(s.status).toBe(200);
    expect(s.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(s.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(s.headers["x-content-type-options"]).toBe("nosniff");
    await until(async () => s.text().includes('data: "live"'), "the stream live");
    s.close();
    const head = await open("/console/jobs/events", {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    await head.ended;
    expect(head.text()).toBe("");
  });

  it("answers a client over its limit with an empty stream to retry later, and serves it again once one closes", async () => {
    const streams = await Promise.all(Array.from({ length: 20 }, () => open("/console/jobs/events")));
    await until(async () => streams.every((s) => s.text().includes('data: "live"')), "20 streams live");
    const over = await open("/console/jobs/events");
    // 200, not 503: EventSource gives up for good on an error status, and reconnects after `retry` when a stream ends.
    expect(over.status).toBe(200);
    expect(over.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    await over.ended;
    expect(over.text()).toBe('retry: 30000\n\nevent: state\ndata: "busy"\n\n');
    streams[0]!.close();
    await streams[0]!.ended;
    await until(async () => {
      const again = await open("/console/jobs/events");
      const live = await until(async () => again.text().includes('data: "live"') || again.text().includes('"busy"'), "an answer");
      again.close();
      return live && again.text().includes('data: "live"');
    }, "a stream served again");
    streams.forEach((s) => s.close());
  });

  it("replays after a reconnect only the replay window, bounded, and never an older event after a newer one", async () => {
    const old = await historyRow("replay.old", "2 hours");
    const recent = await historyRow("replay.recent", "1 minute");
    // A forged or ancient Last-Event-ID: one bounded read, the old row not in it.
    // (The rows' own NOTIFYs may reach the stream too, as live events after the replay: only the replay is looked at here.)
    const replayed = (s: Stream) => s.events().filter((e) => e.data.op === "replay");
    const s = await open("/console/jobs/events", { "last-event-id": "1" });
    await until(async () => replayed(s).some((e) => e.data.id === recent), "the recent row replayed");
    expect(replayed(s).map((e) => e.data.id)).not.toContain(old);
    // More was missed than the window holds: the page is told it is stale (and reloads itself).
    await until(async () => s.text().includes('data: "stale"'), "the stale state");
    expect(replayed(s).length).toBeLessThanOrEqual(REPLAY_MAX_ROWS);
    const seqs = replayed(s).map((e) => e.id);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    s.close();

    // From a recent id: only what changed after it.
    const since = replayed(s).find((e) => e.data.id === recent)!.id;
    const later = await historyRow("replay.later", "1 second");
    const t = await open("/console/jobs/events", { "last-event-id": String(since) });
    await until(async () => replayed(t).some((e) => e.data.id === later), "the later row replayed");
    expect(replayed(t).map((e) => e.data.id)).not.toContain(recent);
    expect(t.text()).not.toContain('data: "stale"');
    t.close();
  });

  it("passes on each event as its row is in job_run: a forged NOTIFY neither freezes a row nor moves the browser's last id", async () => {
    const s = await open("/console/jobs/events");
    await until(async () => s.text().includes('data: "live"'), "the stream live");
    const row = await historyRow("forged.target", "0 seconds");
    await until(async () => s.events().some((e) => e.data.id === row), "the row's own event");
    const real = s.events().find((e) => e.data.id === row)!;
    const forged = {
      op: "update",
      id: row,
      job_id: 1,
      task: "forged.target",
      attempt: 1,
      max_attempts: 1,
      queue: null,
      status: "failed",
      started_at: "2026-01-01T00:00:00Z",
      finished_at: null,
      duration_ms: null,
      error_class: null,
      worker_id: "w",
      seq: real.id + 10 ** 12,
    };
    await db.pool.query("select pg_notify('pmt_jobs', $1)", [JSON.stringify(forged)]);
    await db.pool.query("select pg_notify('pmt_jobs', $1)", [JSON.stringify({ ...forged, id: 987654321 })]);
    // A marker after both: once it is here, the forged events have been dealt with.
    const marker = await historyRow("forged.marker", "0 seconds");
    await until(async () => s.events().some((e) => e.data.id === marker), "the marker");
    const ofRow = s.events().filter((e) => e.data.id === row);
    expect(ofRow.map((e) => [e.id, e.data.status])).toEqual(ofRow.map(() => [real.id, "succeeded"]));
    expect(s.events().map((e) => e.data.id)).not.toContain(987654321);
    s.close();
  });

  it("asks the browser to come back, never an error status, while the database has no running instance", async () => {
    const running = consolePool;
    consolePool = undefined;
    try {
      const s = await open("/console/jobs/events");
      expect(s.status).toBe(200);
      await s.ended;
      expect(s.text()).toBe('retry: 5000\n\nevent: state\ndata: "reconnecting"\n\n');
      // The pages say why, as before.
      expect((await fetch(`${base}/console/jobs`)).status).toBe(503);
    } finally {
      consolePool = running;
    }
  });

  it("ends when the database's instance is replaced (a new pool), so the browser reconnects to the new one", async () => {
    const s = await open("/console/jobs/events");
    await until(async () => s.text().includes('data: "live"'), "the stream live");
    const previous = consolePool!;
    consolePool = createPool(db.url, { max: 4 });
    // The next request (or the sweep within seconds) finds the new pool.
    await fetch(`${base}/console/jobs`);
    await s.ended;
    await previous.end();
    const t = await open("/console/jobs/events");
    await until(async () => t.text().includes('data: "live"'), "a new stream on the new pool");
    const live = await historyRow("live.after.row", "0 seconds", { recipient: "ann@example.org", format: "csv" });
    await until(async () => t.events().some((e) => e.data.id === live), "an event on the new feed");
    // With its payload summary (read by the console: NOTIFY carries none), the address masked for this viewer.
    const event = t.events().find((e) => e.data.id === live)!;
    expect(event.data.payload).toBe('{"format":"csv","recipient":"a…@example.org"}');
    t.close();
  });
});

describe("the pages' edges", () => {
  it("answer a malformed filter or cursor with 400 naming it", async () => {
    for (const [query, message] of [
      ["before=2026-13-45T99:99:99Z~1", "before: "],
      ["after=nonsense", "after: "],
      ["status=everything", "status: "],
      ["from=2026-11-31T00:00", "from: "],
    ]) {
      const res = await fetch(`${base}/console/jobs?${query}`);
      expect(res.status, query).toBe(400);
      expect(await res.text()).toContain(message);
    }
    expect((await fetch(`${base}/console/exports?before=1e3`)).status).toBe(400);
    expect((await fetch(`${base}/console/exports?status=lost`)).status).toBe(400);
    expect((await fetch(`${base}/console/jobs?status=failed`)).status).toBe(200);
  });

  it("mask the requester's address on Exports for a viewer without a password", async () => {
    await db.pool.query(
      "insert into pmt_jobs.export_request (format, recipient, filters, instance, requested_by) values ('csv', 'ann@example.org', '{}', 'pmt', 'jane.doe@agency.example')",
    );
    const page = await (await fetch(`${base}/console/exports`)).text();
    expect(page).toContain("j…@agency.example");
    expect(page).not.toContain("jane.doe");
    expect(page).not.toContain("ann@example.org");
  });

  it("queue one backup and one test restore however often the buttons are clicked before the worker takes them", async () => {
    const form = async (action: string, fields: Record<string, string>) => {
      const page = await fetch(`${base}/console/backups`);
      const cookie = /pmt_console_csrf=([^;]+)/.exec(page.headers.get("set-cookie") ?? "")![1]!;
      return fetch(`${base}/console/actions/${action}`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie: `pmt_console_csrf=${cookie}` },
        body: new URLSearchParams({ csrf: cookie, db: db.name, ...fields }),
      });
    };
    const jobOf = (res: Response) => Number(new URL(res.headers.get("location")!, base).searchParams.get("job"));
    const clicks = await Promise.all([1, 2, 3].map(() => form("backup", { database: db.name })));
    for (const res of clicks) expect(res.status).toBe(303);
    expect(new Set(clicks.map(jobOf)).size).toBe(1);
    const restores = [await form("test-restore", {}), await form("test-restore", {})];
    expect(new Set(restores.map(jobOf)).size).toBe(1);
    // Each in its queue: after a running backup of that database, after a scheduled test restore (never beside them).
    const { rows } = await db.pool.query<{ task_identifier: string; queue_name: string; n: number }>(
      "select task_identifier, queue_name, count(*)::int as n from graphile_worker.jobs group by 1, 2 order by 1",
    );
    expect(rows).toEqual([
      { task_identifier: "pmt_jobs.backup", queue_name: `backup:${db.name}`, n: 1 },
      { task_identifier: "pmt_jobs.backup_test_restore", queue_name: "test-restore", n: 1 },
    ]);
  });
});
