/**
 * db/listen.ts against a real server: notifications arrive; a session ended
 * by the server is reconnected and said so; close() during an outage stops
 * the reconnecting for good; a first connection that fails leaves nothing
 * behind. (The database refusing connections plays the outage: ALTER
 * DATABASE ... ALLOW_CONNECTIONS false.)
 */
import { afterEach, describe, expect, it } from "vitest";
import { listen, type Subscription } from "../../src/db/listen.js";
import { clientConfig } from "../../src/db/pool.js";
import { adminQuery, createTestDatabase } from "../harness/db.js";
import { until } from "../harness/wait.js";

const db = await createTestDatabase();
const NAME = "pmt-worker listen test";
const config = () => clientConfig(db.url, { application_name: NAME });

async function sessions(): Promise<number[]> {
  const { rows } = await db.pool.query<{ pid: number }>("select pid from pg_stat_activity where application_name = $1 and datname = current_database()", [
    NAME,
  ]);
  return rows.map((r) => r.pid);
}

const refuse = (refused: boolean) => adminQuery(`alter database ${db.name} allow_connections ${!refused}`);

let open: Subscription | undefined;
afterEach(async () => {
  await refuse(false);
  await open?.close();
  open = undefined;
});

/** A subscription recording what it was told; `throwing`: each callback throws after recording. */
async function subscribe(throwing = false) {
  const seen = { payloads: [] as string[], lost: 0, reconnected: 0 };
  const then = (fn: () => void) => () => {
    fn();
    if (throwing) throw new Error("a caller's bug");
  };
  open = await listen({
    config: config(),
    channel: "pmt test",
    onNotification: (p) => then(() => seen.payloads.push(p))(),
    onLost: then(() => seen.lost++),
    onReconnected: then(() => seen.reconnected++),
    retryMs: 50,
    maxRetryMs: 200,
  });
  return seen;
}

describe("listen", () => {
  it("gives the channel's notifications, survives its session ended by the server, and listens again", async () => {
    const seen = await subscribe();
    await db.pool.query(`select pg_notify('pmt test', 'one'), pg_notify('other', 'not ours')`);
    await until(async () => seen.payloads.length === 1, "the first notification");
    expect(seen.payloads).toEqual(["one"]);

    const [pid] = await sessions();
    await db.pool.query("select pg_terminate_backend($1)", [pid]);
    await until(async () => seen.reconnected === 1, "the reconnect", 30_000);
    expect(seen.lost).toBe(1);
    expect(await sessions()).toHaveLength(1);
    await db.pool.query(`select pg_notify('pmt test', 'two')`);
    await until(async () => seen.payloads.length === 2, "a notification after the reconnect");
    expect(seen.payloads).toEqual(["one", "two"]);
  });

  it("callbacks that throw stop nothing: one session, each notification once, after a reconnect too", async () => {
    const seen = await subscribe(true);
    const [pid] = await sessions();
    await db.pool.query("select pg_terminate_backend($1)", [pid]);
    await until(async () => seen.reconnected === 1, "the reconnect", 30_000);
    await db.pool.query(`select pg_notify('pmt test', 'after')`);
    await until(async () => seen.payloads.length === 1, "the notification");
    // A second session (a reconnect loop that went on after the throw) would deliver it twice.
    await new Promise((r) => setTimeout(r, 500));
    expect(seen).toEqual({ payloads: ["after"], lost: 1, reconnected: 1 });
    expect(await sessions()).toHaveLength(1);
  });

  it("close() during an outage stops reconnecting: no session comes back when the server does", async () => {
    const seen = await subscribe();
    await refuse(true);
    // As the admin, on its own connection: the database refuses new sessions now, and the pool may have no idle one left.
    await adminQuery(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = '${NAME}'`);
    await until(async () => seen.lost === 1, "the loss");
    await open!.close();
    open = undefined;
    await refuse(false);
    // Several of the 50-200 ms pauses pass; a loop still running would have connected by now.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await sessions()).toEqual([]);
    expect(seen.reconnected).toBe(0);
  });

  it("a first connection that fails rejects and leaves no reconnecting subscriber behind", async () => {
    await refuse(true);
    await expect(subscribe()).rejects.toThrow(/not currently accepting connections/);
    await refuse(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await sessions()).toEqual([]);
  });
});
