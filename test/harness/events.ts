/**
 * Tests wait on signals, not sleeps: a LISTEN pmt_jobs connection that
 * collects every job event and resolves waiters when one matches.
 */
import pg from "pg";
import { parseJobEvents, type JobEvent } from "../../src/history/queries.js";

export class JobEventLog {
  readonly events: JobEvent[] = [];
  readonly raw: string[] = [];
  private waiters: { pred: (e: JobEvent) => boolean; resolve: (e: JobEvent) => void }[] = [];

  private constructor(private readonly client: pg.Client) {}

  static async listen(url: string): Promise<JobEventLog> {
    const client = new pg.Client({ connectionString: url });
    client.on("error", () => {}); // a dropped test database ends the connection; waiters time out with a clear message
    await client.connect();
    const log = new JobEventLog(client);
    // The payload carries an error's class only; the full error is read from
    // job_run by id (as `watch` does), one event at a time to keep their order.
    let previous = Promise.resolve();
    client.on("notification", (msg) => {
      if (msg.channel !== "pmt_jobs" || !msg.payload) return;
      const payload = msg.payload;
      log.raw.push(payload);
      previous = previous.then(async () => {
        for (const event of parseJobEvents(payload)) {
          if (event.error_class) {
            const { rows } = await client.query("select error from pmt_jobs.job_run where id = $1", [event.id]).catch(() => ({ rows: [] }));
            event.error = rows[0]?.error ?? null;
          }
          log.events.push(event);
          log.waiters = log.waiters.filter((w) => {
            if (!w.pred(event)) return true;
            w.resolve(event);
            return false;
          });
        }
      });
    });
    await client.query("listen pmt_jobs");
    return log;
  }

  /** Resolves with the first event (past or future) that matches. */
  waitFor(pred: (e: JobEvent) => boolean, timeoutMs = 30_000, what = "a matching job event"): Promise<JobEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
