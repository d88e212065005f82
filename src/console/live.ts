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
import { eventsSince, type JobEvent } from "../history/queries.js";
import { streamEvents } from "../history/watch.js";
import type { Logger } from "../log.js";

const HEARTBEAT_MS = 15_000;
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

type Listener = (message: { event: JobEvent } | { state: "reconnecting" | "live" }) => void;

/** One database's stream, started with its first subscriber, kept until close(). */
export class LiveFeed {
  private listeners = new Set<Listener>();
  private started: Promise<{ close(): Promise<void> }> | undefined;
  readonly db: Db;

  constructor(private readonly options: { database: string; url: string; pool: pg.Pool; logger: Logger }) {
    this.db = createDb(options.pool);
  }

  private start(): Promise<unknown> {
    this.started ??= streamEvents({
      url: named(this.options.url),
      db: this.db,
      logger: this.options.logger,
      database: this.options.database,
      onEvent: (event) => this.listeners.forEach((l) => l({ event })),
      onLost: () => this.listeners.forEach((l) => l({ state: "reconnecting" })),
      onReconnected: () => this.listeners.forEach((l) => l({ state: "live" })),
    }).catch((error) => {
      this.started = undefined;
      throw error;
    });
    return this.started;
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

  async close(): Promise<void> {
    this.listeners.clear();
    const s = await this.started?.catch(() => undefined);
    this.started = undefined;
    await s?.close();
  }
}

/**
 * Serves one browser's event stream until it goes. `present` shapes each
 * event for this viewer (masked addresses). Events since Last-Event-ID, if
 * the browser sends one, come first.
 */
export async function serveEvents(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  feed: LiveFeed,
  present: (event: JobEvent) => unknown,
  logger: Logger,
): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
  res.write("retry: 1000\n\n");
  const send = (event: JobEvent) => res.write(`id: ${Number(event.seq)}\ndata: ${JSON.stringify(present(event))}\n\n`);
  let unsubscribe: (() => void) | undefined;
  const timer = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
  timer.unref();
  const end = () => {
    clearInterval(timer);
    unsubscribe?.();
  };
  // The response's close, not the request's: a request without a body may close once read, while the stream goes on.
  res.on("close", end);
  try {
    unsubscribe = await feed.subscribe((message) => {
      if ("event" in message) send(message.event);
      else res.write(`event: state\ndata: ${JSON.stringify(message.state)}\n\n`);
    });
    if (res.destroyed) return end();
    res.write(`event: state\ndata: "live"\n\n`);
    const last = Number(req.headers["last-event-id"]);
    if (Number.isSafeInteger(last) && last > 0) {
      for (const event of await eventsSince(feed.db, last)) if (event.seq > last) send(event);
    }
  } catch (error) {
    logger.warn({ err: errorMessage(error) }, "console: the live feed could not start");
    res.write(`event: state\ndata: "reconnecting"\n\n`);
    end();
    res.end();
  }
}
