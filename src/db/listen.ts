/**
 * LISTEN on one channel for as long as it is open, whatever the server does:
 * a lost session (a restart, pg_terminate_backend, a network cut) is
 * reconnected with a growing pause, a session that stops answering (a
 * half-open TCP connection says nothing) is found by a check every few
 * seconds, and close() stops all of it, a reconnect in progress included.
 *
 * It replaces pg-listen 1.7 (unmaintained since 2020): its close() did not
 * stop a reconnect loop already running (a `watch` stopped during an outage
 * kept the process alive, and a console feed closed then came back as an
 * idle session for good), and a first connect that failed left a subscriber
 * reconnecting for ever with nobody holding it (one per browser retry).
 */
import type pg from "pg";
import { openClient } from "./pool.js";

export interface ListenOptions {
  config: pg.ClientConfig;
  channel: string;
  onNotification(payload: string): void;
  /** The session was lost (once per outage, with what ended it); reconnecting. */
  onLost(error: unknown): void;
  /** Listening again; notifications sent meanwhile were not received. */
  onReconnected(): void;
  /** First pause between attempts, doubled up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** How often the session is asked to answer; no answer within 15 s (or this, if longer) is a lost session. */
  checkEveryMs?: number;
}

export interface Subscription {
  close(): Promise<void>;
}

/** Resolves once listening; rejects (leaving nothing behind) if the first connection fails. */
export async function listen(options: ListenOptions): Promise<Subscription> {
  const { channel } = options;
  const retryMs = options.retryMs ?? 500;
  const maxRetryMs = options.maxRetryMs ?? 5000;
  const checkEveryMs = options.checkEveryMs ?? 5000;
  let closed = false;
  let client: pg.Client | undefined;
  let check: NodeJS.Timeout | undefined;
  let pause: { timer: NodeJS.Timeout; wake(): void } | undefined;
  /** A connection being opened by a reconnect: close() ends it (a host that drops packets would hold it for the connect timeout). */
  let opening: pg.Client | undefined;
  let reconnecting: Promise<void> | undefined;
  /** A caller's callback that throws must not stop the reconnecting (or leak a session). */
  const tell = (fn: () => void): void => {
    try {
      fn();
    } catch {
      // the caller's to report; listening goes on
    }
  };

  const connect = async (): Promise<pg.Client> => {
    const c = openClient(options.config);
    opening = c;
    try {
      await c.connect();
      await c.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
    } catch (error) {
      await c.end().catch(() => {});
      throw error;
    } finally {
      opening = undefined;
    }
    return c;
  };

  const lost = (c: pg.Client, error: unknown): void => {
    if (closed || c !== client) return; // an old session's last words, or ours to end
    client = undefined;
    clearInterval(check);
    c.removeAllListeners("notification");
    void c.end().catch(() => {});
    tell(() => options.onLost(error));
    reconnecting = reconnect();
  };

  const attach = (c: pg.Client): void => {
    client = c;
    c.on("notification", (message) => {
      if (message.channel === channel) tell(() => options.onNotification(message.payload ?? ""));
    });
    c.on("error", (error) => lost(c, error));
    c.on("end", () => lost(c, new Error("the notification session ended")));
    check = setInterval(() => {
      let answered = false;
      // Generous: a busy server answering late is not a lost session (a needless reconnect replays and logs).
      const answerMs = Math.max(15_000, checkEveryMs);
      const silent = setTimeout(() => answered || lost(c, new Error(`the notification session did not answer within ${answerMs} ms`)), answerMs);
      silent.unref();
      c.query("select 1").then(
        () => {
          answered = true;
          clearTimeout(silent);
        },
        (error: unknown) => {
          clearTimeout(silent);
          lost(c, error);
        },
      );
    }, checkEveryMs);
    // The open socket keeps a process alive while listening; the check must not on its own.
    check.unref();
  };

  const reconnect = async (): Promise<void> => {
    for (let attempt = 0; !closed; attempt++) {
      // This timer is not unref'd: a `watch` waiting for its server must stay up.
      await new Promise<void>((resolve) => {
        pause = { timer: setTimeout(resolve, Math.min(maxRetryMs, retryMs * 2 ** attempt)), wake: resolve };
      });
      pause = undefined;
      if (closed) return;
      let c: pg.Client;
      try {
        c = await connect();
      } catch {
        continue; // not back yet (or closed meanwhile): the next attempt after a longer pause
      }
      if (closed) {
        await c.end().catch(() => {});
        return;
      }
      attach(c);
      tell(() => options.onReconnected());
      return;
    }
  };

  attach(await connect());
  return {
    close: async () => {
      closed = true;
      clearInterval(check);
      if (pause) {
        clearTimeout(pause.timer);
        pause.wake();
      }
      const c = client;
      client = undefined;
      await Promise.all([c?.end().catch(() => {}), opening?.end().catch(() => {})]);
      await reconnecting;
    },
  };
}
