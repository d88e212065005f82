/**
 * The live stream of one database's job events, from NOTIFY pmt_jobs through
 * db/listen.ts (which reconnects for as long as it is open). After every
 * reconnect the events missed while disconnected are re-read from job_run.
 * A NOTIFY payload carries an error's class only (any role may LISTEN); the
 * full error is read from job_run by id, as this session's role may. Each
 * event is given once, in the order it arrived.
 */
import { listen } from "../db/listen.js";
import { clientConfig } from "../db/pool.js";
import type { Db } from "../db/schema.js";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";
import { eventsSince, parseJobEvents, runError, type JobEvent } from "./queries.js";

/** Re-read from a little before the last event seen: commit order and updated_at order may differ slightly. */
const REPLAY_MARGIN_US = 5_000_000;
const SEEN_LIMIT = 20_000;

export interface EventStreamOptions {
  url: string;
  db: Db;
  logger: Logger;
  /** For log lines. */
  database: string;
  onEvent(event: JobEvent): void;
  /** The connection was lost (once per outage); it is being re-established. */
  onLost(): void;
  /** Connected again; the missed events follow. */
  onReconnected(): void;
}

/** Listening once it resolves; close() stops. */
export async function streamEvents(options: EventStreamOptions): Promise<{ close(): Promise<void> }> {
  const { db, logger, database } = options;
  const seen = new Set<string>();
  let lastSeq = Date.now() * 1000;
  let stopped = false;
  const emit = (event: JobEvent) => {
    if (stopped) return; // a replay or an error read still under way when closed
    const key = `${event.id}:${event.seq}:${event.status}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value!);
    lastSeq = Math.max(lastSeq, event.seq);
    options.onEvent(event);
  };

  const replay = async () => {
    for (let attempt = 0; !stopped; attempt++) {
      try {
        for (const event of await eventsSince(db, lastSeq - REPLAY_MARGIN_US)) emit(event);
        return;
      } catch (error) {
        if (attempt === 0) logger.warn({ database, err: errorMessage(error) }, "re-reading missed events failed; retrying");
        // unref'd: a closed stream's last retry must not keep `watch` alive after Ctrl-C.
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)).unref());
      }
    }
  };

  // One at a time, so events are given in the order they arrived while an error is read.
  let printing = Promise.resolve();
  const withError = async (event: JobEvent): Promise<JobEvent> => {
    if (!event.error_class) return event;
    const error = await runError(db, event.id).catch(() => null);
    return { ...event, error: error ?? event.error_class };
  };
  const subscription = await listen({
    config: clientConfig(options.url),
    channel: "pmt_jobs",
    onNotification: (payload) => {
      // Anyone may NOTIFY pmt_jobs: parseJobEvents keeps only well-formed events and never throws.
      for (const event of parseJobEvents(payload)) printing = printing.then(async () => emit(await withError(event)));
    },
    onLost: (error) => {
      logger.warn({ database, err: errorMessage(error) }, "notification connection lost; reconnecting");
      options.onLost();
    },
    onReconnected: () => {
      options.onReconnected();
      void replay();
    },
  });
  return {
    close: async () => {
      stopped = true;
      await subscription.close();
    },
  };
}
