/**
 * The worker's history writes, group-committed: attempts starting or ending
 * while a write is in flight share the next statement. A job's own start is
 * still written before its body runs and its end before the job completes.
 */
import type pg from "pg";
import { Batcher } from "./batcher.js";
import { finishRuns, startRuns, type FinishRun, type StartRun } from "./runs.js";

export class HistoryWriter {
  private readonly starts: Batcher<StartRun, number>;
  private readonly finishes: Batcher<FinishRun, undefined>;

  constructor(pool: pg.Pool) {
    this.starts = new Batcher((runs) => startRuns(pool, runs));
    this.finishes = new Batcher(async (runs) => {
      await finishRuns(pool, runs);
      return runs.map(() => undefined);
    });
  }

  /** Inserts the attempt's `running` row; resolves with its id. */
  start(run: StartRun): Promise<number> {
    return this.starts.submit(run);
  }

  finish(run: FinishRun): Promise<void> {
    return this.finishes.submit(run);
  }
}
