/**
 * The Jobs page's live feed: one LISTEN pmt_jobs per served database
 * (history/watch.ts's streamEvents: db/listen.ts reconnecting while open, the
 * missed events re-read after a reconnect), fanned out to the browsers as
 * server-sent events. Each event's id is its seq, so a browser's EventSource
 * that reconnects sends Last-Event-ID and is given what it missed.
 */
import type http from "node:http";
import type pg from "pg";
import { createDb } from "../db/kysely.js";
import type { Db } from "../db/schema.js";
import { errorMessage } from "../errors.js";
import type { JobEvent } from "../history/queries.js";
import { streamEvents } from "../history/watch.js";
import type { Logger } from "../log.js";
import { readOnly } from "./read.js";

const HEARTBEAT_MS = 15_000;
/**
 * A browser that comes back with Last-Event-ID is given what changed since,
 * but at most this far back and this many rows (oldest first): the page it
 * reloads shows the rest. An id from long ago (or a forged "1") costs one
 * bounded read, not a scan of the history.
 */
export const REPLAY_WINDOW_S = 15 * 60;
export const REPLAY_MAX_ROWS = 1000;
/** The LISTEN connection's name in pg_stat_activity. */
export const LIVE_APPLICATION_NAME = "pmt-worker console live";

/** `url` with application_name set (a key=value connection string is left as it is). */
function named(url: string): string {
  try {
    const u = new URL(url);
    u.searchParams.set("application_name", LIVE_APPLICATION_NAME);
    return u.toString();
  } catch {
    return url;
  }
}

/** A live event with its attempt's payload summary (job_run.payload_summary, read by the console: NOTIFY carries none). */
export type LiveEvent = JobEvent & { payload_summary?: unknown };

type Listener = (message: { event: LiveEvent } | { state: "reconnecting" | "live" | "closed" }) => void;

/** One database's stream, started with its first subscriber, kept until close(). */
export class LiveFeed {
  private listeners = new Set<Listener>();
  private started: Promise<{ close(): Promise<void> }> | undefined;
  readonly db: Db;
  readonly pool: pg.Pool;

  constructor(private readonly options: { database: string; url: string; pool: pg.Pool; logger: Logger }) {
    this.db = createDb(options.pool);
    this.pool = options.pool;
  }

  private start(): Promise<unknown> {
    this.started ??= streamEvents({
      url: named(this.options.url),
      db: this.db,
      logger: this.options.logger,
      database: this.options.database,
      onEvent: (event) => this.enqueue(event),
      onLost: () => this.listeners.forEach((l) => l({ state: "reconnecting" })),
      onReconnected: () => this.listeners.forEach((l) => l({ state: "live" })),
    }).catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  private waiting: JobEvent[] = [];
  private delivering: Promise<void> = Promise.resolve();

  /**
   * Events are passed on in order, in batches: the events that arrived while
   * the previous batch's payload summaries were read get theirs in one query.
   */
  private enqueue(event: JobEvent): void {
    this.waiting.push(event);
    if (this.waiting.length > 1) return;
    this.delivering = this.delivering
      .then(() => this.deliver())
      .catch((error) => {
        this.options.logger.warn({ err: errorMessage(error) }, "console: could not pass live events on");
      });
  }

  /**
   * One batch: each event is passed on as its row is now in job_run (its seq,
   * status, full error and payload summary), once per row. Any role may
   * NOTIFY pmt_jobs: an event whose row does not exist is dropped, and a forged
   * seq or status never reaches a page (it would freeze that row there, and
   * become the browser's Last-Event-ID). If the read fails, the events go out
   * as they came.
   */
  private async deliver(): Promise<void> {
    // The rest of this tick's events join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    const batch = this.waiting.splice(0);
    if (!this.listeners.size) return;
    const rows = await this.rowsOf([...new Set(batch.map((e) => e.id))]);
    const passed = new Set<number>();
    for (const event of batch) {
      let out: LiveEvent = event;
      if (rows) {
        const row = rows.get(event.id);
        if (!row || passed.has(event.id)) continue;
        passed.add(event.id);
        out = { ...row.event, op: event.op, error: row.error, payload_summary: row.payload_summary };
      }
      for (const listener of this.listeners) {
        try {
          listener({ event: out });
        } catch (error) {
          this.options.logger.warn({ err: errorMessage(error) }, "console: a live stream failed to take an event");
        }
      }
    }
  }

  private async rowsOf(ids: number[]): Promise<Map<number, { event: JobEvent; error: string | null; payload_summary: unknown }> | undefined> {
    try {
      const rows = await readOnly(this.pool, (q) =>
        q<{ id: number; event: JobEvent; error: string | null; payload_summary: unknown }>(
          "select r.id::float8 as id, pmt_jobs.job_run_event(r, 'update') as event, r.error, r.payload_summary from pmt_jobs.job_run r where r.id = any($1::bigint[])",
          [ids],
        ),
      );
      return new Map(rows.map((r) => [r.id, r]));
    } catch (error) {
      this.options.logger.warn({ err: errorMessage(error) }, "console: could not read the live events' rows; passing them on as they came");
      return undefined;
    }
  }

  async subscribe(listener: Listener): Promise<() => void> {
    this.listeners.add(listener);
    try {
      await this.start();
    } catch (error) {
      this.listeners.delete(listener);
      throw error;
    }
    return () => this.listeners.delete(listener);
  }

  /** Ends the stream; its subscribers are told ("closed"), so their browsers reconnect to the feed that replaces it. */
  async close(): Promise<void> {
    const listeners = [...this.listeners];
    this.listeners.clear();
    listeners.forEach((l) => l({ state: "closed" }));
    const s = await this.started?.catch(() => undefined);
    this.started = undefined;
    await s?.close();
  }
}

/**
 * The rows changed since `seq` (µs since the epoch), at most the replay
 * window and the newest REPLAY_MAX_ROWS of it (a newer state replaces an
 * older one), oldest first, with their full errors. `complete` is false when
 * something older than what is returned was left out: the page is stale.
 */
async function replay(pool: pg.Pool, seq: number): Promise<{ events: LiveEvent[]; complete: boolean }> {
  return readOnly(pool, async (q) => {
    const rows = await q<{ event: JobEvent; error: string | null; payload_summary: unknown }>(
      `select * from (
         select pmt_jobs.job_run_event(r, 'replay') as event, r.error, r.payload_summary, r.updated_at
         from pmt_jobs.job_run r
         where r.updated_at >= greatest(to_timestamp($1::float8 / 1000000), now() - make_interval(secs => $2))
         order by r.updated_at desc
         limit $3) newest
       order by updated_at`,
      [seq, REPLAY_WINDOW_S, REPLAY_MAX_ROWS],
    );
    const [window] = await q<{ inside: boolean }>("select to_timestamp($1::float8 / 1000000) >= now() - make_interval(secs => $2) as inside", [
      seq,
      REPLAY_WINDOW_S,
    ]);
    return {
      events: rows.map((r) => ({ ...r.event, error: r.error, payload_summary: r.payload_summary })),
      complete: Boolean(window?.inside) && rows.length < REPLAY_MAX_ROWS,
    };
  });
}

/**
 * The state line a stream sends: `live`, `reconnecting` (its LISTEN, or the
 * database, is being re-established), `busy` (refused for now), `stale` (what
 * the browser missed is more than a replay gives: the page reloads).
 */
function stateLine(state: string): string {
  return `event: state\ndata: ${JSON.stringify(state)}\n\n`;
}

/**
 * Answers a stream that cannot be served now (too many open, or the database
 * between two instances): a valid, empty event stream that asks the browser
 * to come back in `retryMs` (any error status would make EventSource give up
 * for good).
 */
export function refuseStream(res: http.ServerResponse, headers: Record<string, string>, retryMs: number, state: "busy" | "reconnecting"): void {
  res.writeHead(200, { ...headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" });
  res.end(`retry: ${retryMs}\n\n${stateLine(state)}`);
}

/**
 * Serves one browser's event stream until it goes. `present` shapes each
 * event for this viewer (masked addresses). Events since Last-Event-ID, if
 * the browser sends one (within the replay window), come first; live events
 * arriving meanwhile follow them. The stream ends when its feed closes (the
 * database's instance was replaced): the browser reconnects with its last id.
 */
export async function serveEvents(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  feed: LiveFeed,
  options: { present: (event: LiveEvent) => unknown; logger: Logger; headers: Record<string, string> },
): Promise<void> {
  res.writeHead(200, {
    ...options.headers,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  if (req.method === "HEAD") return void res.end();
  // Every write goes through here: the stream may have been ended (its feed closed) or lost while something was awaited.
  const write = (text: string) => {
    if (!res.writableEnded && !res.destroyed) res.write(text);
  };
  res.on("error", () => {});
  write("retry: 1000\n\n");
  const send = (event: LiveEvent) => write(`id: ${Number(event.seq)}\ndata: ${JSON.stringify(options.present(event))}\n\n`);
  let unsubscribe: (() => void) | undefined;
  const timer = setInterval(() => write(": keep-alive\n\n"), HEARTBEAT_MS);
  timer.unref();
  const end = () => {
    clearInterval(timer);
    unsubscribe?.();
  };
  // The response's close, not the request's: a request without a body may close once read, while the stream goes on.
  res.on("close", end);
  // Live events that arrive while the replay is read wait for it.
  let held: LiveEvent[] | undefined = [];
  try {
    unsubscribe = await feed.subscribe((message) => {
      if ("event" in message) {
        if (held) held.push(message.event);
        else send(message.event);
      } else if (message.state === "closed") {
        end();
        res.end();
      } else write(stateLine(message.state));
    });
    if (res.writableEnded || res.destroyed) return end();
    write(stateLine("live"));
    const last = Number(req.headers["last-event-id"]);
    if (Number.isSafeInteger(last) && last > 0) {
      const missed = await replay(feed.pool, last);
      for (const event of missed.events) if (event.seq > last) send(event);
      if (!missed.complete) write(stateLine("stale"));
    }
  } catch (error) {
    options.logger.warn({ err: errorMessage(error) }, "console: the live feed could not start");
    write(stateLine("reconnecting"));
    end();
    res.end();
  } finally {
    const waiting = held ?? [];
    held = undefined;
    waiting.forEach(send);
  }
}
