/**
 * The crontab, built from configuration rather than a hand-edited file.
 * Each item has a stable identifier, so graphile-worker fires it once across
 * all workers and backfills a run missed while every worker was down.
 */
import { parseCronItems, type ParsedCronItem } from "graphile-worker";
import type { Config } from "../config.js";
import { TASK } from "./tasks.js";

export function buildCronItems(config: Config): ParsedCronItem[] {
  return parseCronItems([
    {
      task: TASK.historyPrune,
      match: config.historyPruneCron,
      identifier: "history_prune",
      options: { backfillPeriod: 24 * 3600 * 1000, maxAttempts: 3, jobKey: "history_prune", jobKeyMode: "replace" },
    },
  ]);
}
