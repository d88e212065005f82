/**
 * The nightly offsite sync (OFFSITE_SYNC_CRON; `pmt-worker offsite sync` runs
 * the same procedure): every copy proven against the store's listing and the
 * missing ones uploaded (offsite/), remote retention (retention/), then the
 * objects the catalog does not know reported, never deleted.
 */
import { z } from "zod";
import { listFolder, serverFolder, storeOf, syncCopies, unknownObjects, type CopiesSynced, type OffsiteDeps } from "../offsite/copies.js";
import { applyRemoteRetention } from "../retention/remote.js";
import { duty } from "./context.js";

export interface SyncResult extends CopiesSynced {
  pruned: string[];
  unknownObjects: string[];
}

export async function syncOffsite(deps: OffsiteDeps, now = new Date()): Promise<SyncResult> {
  const store = storeOf(deps);
  // One LIST of this server's folder serves the proofs and the unknown objects (a second cost as much again).
  const listing = await listFolder(store, serverFolder(deps, store));
  const copies = await syncCopies(deps, store, listing);
  const pruned = await applyRemoteRetention(deps, store, now);
  const unknown = await unknownObjects(deps, store, { listing, pruned });
  if (copies.failed.length) deps.logger.error({ failed: copies.failed }, "offsite sync could not copy or verify some backups");
  return { ...copies, pruned, unknownObjects: unknown };
}

export const offsiteSyncDuty = duty({
  task: "pmt_jobs.offsite_sync",
  maintenance: true,
  // Cron-fired: no payload (anything given is ignored).
  payload: z.unknown(),
  cron: (config) =>
    config.offsite.url
      ? [
          {
            match: config.offsite.syncCron,
            identifier: "offsite_sync",
            options: { backfillPeriod: 6 * 3600 * 1000, maxAttempts: 3, queueName: "offsite", jobKey: "offsite_sync", jobKeyMode: "replace" },
          },
        ]
      : [],
  body: (ctx) => async () => {
    const result = await syncOffsite(ctx);
    if (result.failed.length) {
      throw new Error(`offsite sync: ${result.failed.map((f) => `backup ${f.backup}: ${f.error}`).join("; ")}`);
    }
  },
});
