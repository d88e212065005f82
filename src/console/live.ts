/**
 * The Jobs page's live feed: one LISTEN pmt_jobs per served database
 * (history/watch.ts's streamEvents: pg-listen reconnecting for ever, the
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

  private async deliver(): Promise<void> {
    // The rest of this tick's events join the batch.
    await new Promise((resolve) => setImmediate(resolve));
    const batch = this.waiting.splice(0);
    const summaries = await this.summaries(batch.map((e) => e.id));
    for (const event of batch) {
      const enriched: LiveEvent = summaries.has(event.id) ? { ...event, payload_summary: summaries.get(event.id) } : event;
      this.listeners.forEach((l) => l({ event: enriched }));
    }
  }

  private async summaries(ids: number[]): Promise<Map<number, unknown>> {
    if (!this.listeners.size) return new Map();
    try {
      const rows = await readOnly(this.pool, (q) =>
        q<{ id: number; payload_summary: unknown }>("select id::float8 as id, payload_summary from pmt_jobs.job_run where id = any($1::bigint[])", [ids]),
      );
      return new Map(rows.map((r) => [r.id, r.payload_summary]));
    } catch (error) {
      // The events still go out, without their summaries (the page shows them on reload).
      this.options.logger.warn({ err: errorMessage(error) }, "console: could not read the live events' payload summaries");
      return new Map();
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

/** The rows changed since `seq` (µs since the epoch), clamped to the replay window, oldest first, with their full errors. */
async function replay(pool: pg.Pool, seq: number): Promise<LiveEvent[]> {
  const rows = await readOnly(pool, (q) =>
    q<{ event: JobEvent; error: string | null; payload_summary: unknown }>(
      `select pmt_jobs.job_run_event(r, 'replay') as event, r.error, r.payload_summary
       from pmt_jobs.job_run r
       where r.updated_at >= greatest(to_timestamp($1::float8 / 1000000), now() - make_interval(secs => $2))
       order by r.updated_at
       limit $3`,
      [seq, REPLAY_WINDOW_S, REPLAY_MAX_ROWS],
    ),
  );
  return rows.map((r) => ({ ...r.event, error: r.error, payload_summary: r.payload_summary }));
}

/** The state line a stream sends: `live`, `reconnecting` (its LISTEN is being re-established), `busy` (refused for now). */
function stateLine(state: string): string {
  return `event: state\ndata: ${JSON.stringify(state)}\n\n`;
}

/**
 * Answers a stream that cannot be served now (too many open): a valid, empty
 * event stream that asks the browser to come back in `retryMs` (a 503 would
 * make EventSource give up for good).
 */
export function refuseStream(res: http.ServerResponse, headers: Record<string, string>, retryMs: number): void {
  res.writeHead(200, { ...headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store" });
  res.end(`retry: ${retryMs}\n\n${stateLine("busy")}`);
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
  res.write("retry: 1000\n\n");
  const send = (event: LiveEvent) => res.write(`id: ${Number(event.seq)}\ndata: ${JSON.stringify(options.present(event))}\n\n`);
  let unsubscribe: (() => void) | undefined;
  const timer = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
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
      } else res.write(stateLine(message.state));
    });
    if (res.destroyed) return end();
    res.write(stateLine("live"));
    const last = Number(req.headers["last-event-id"]);
    if (Number.isSafeInteger(last) && last > 0) {
      for (const event of await replay(feed.pool, last)) if (event.seq > last) send(event);
    }
  } catch (error) {
    options.logger.warn({ err: errorMessage(error) }, "console: the live feed could not start");
    if (!res.destroyed) res.write(stateLine("reconnecting"));
    end();
    res.end();
  } finally {
    const waiting = held ?? [];
    held = undefined;
    if (!res.writableEnded) waiting.forEach(send);
  }
}
