import type { Command } from "commander";
import { UserError } from "../errors.js";
import { stdoutColours } from "../colour.js";
import { humanBytes } from "../human.js";
import { table } from "./format.js";

export function registerOffsite(program: Command): void {
  const offsite = program
    .command("offsite")
    .description("offsite copies of backups (OFFSITE_URL)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker offsite sync
  $ pmt-worker offsite list --database bmgf`,
    );
  offsite
    .command("sync")
    .description(
      "prove every copy against the store's listing (size, ETag), upload every backup without a proven copy (lost ones again), apply remote retention, report unknown objects",
    )
    .option("--database <name>", "only the copies of this served database's catalog (default: every served database's)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker offsite sync                  what the nightly OFFSITE_SYNC_CRON job does, now
  $ pmt-worker offsite sync --database bmgf`,
    )
    .action(async (opts: { database?: string }) => {
      const [{ loadConfig }, { withDatabases }] = await Promise.all([import("../config.js"), import("./context.js")]);
      if (!loadConfig().offsite.url) throw new UserError("OFFSITE_URL is not set: there is no offsite store to sync to");
      await withDatabases({ database: opts.database }, async ({ config, pool, logger, url, database, several }) => {
        const { syncOffsite } = await import("../jobs/offsite-sync.js");
        const r = await syncOffsite({ config, pool, logger, databaseUrl: url });
        // Several databases: each catalog's summary says whose it is.
        process.stdout.write(
          `${several ? `${database}: ` : ""}proven from the store's listing ${r.reverified.length}, lost or changed ${r.lost.length}, uploaded ${r.uploaded.length}, pruned ${r.pruned.length}, unknown objects ${r.unknownObjects.length}\n`,
        );
        for (const l of r.lost)
          process.stdout.write(`  lost from the store (marked failed, uploaded again if its local file is good): backup ${l.backup}: ${l.reason}\n`);
        for (const o of r.unknownObjects) process.stdout.write(`  not in the catalog (left alone): ${o}\n`);
        if (r.failed.length) throw new UserError(`offsite sync failed for ${r.failed.map((f) => `backup ${f.backup} (${f.error})`).join("; ")}`);
      });
    });
  offsite
    .command("list")
    .description("the backups in the store, from their manifests alone (no database needed)")
    .option("--database <name>", "only this database")
    .option("--json", "one JSON object per line (sizes in bytes)")
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker offsite list
  $ pmt-worker offsite list --database bmgf --json | jq -r .key
  (restore one with: pmt-worker backup restore --from-offsite <key> --into <new database>)`,
    )
    .action(async (opts: { database?: string; json?: boolean }) => {
      const { loadConfig } = await import("../config.js");
      const config = loadConfig();
      if (!config.offsite.url) throw new UserError("OFFSITE_URL is not set: there is no offsite store to list");
      const { listOffsite } = await import("../offsite/restore.js");
      const { openStore } = await import("../offsite/store.js");
      const entries = await listOffsite(openStore(config.offsite.url, config.offsite), opts.database);
      if (opts.json) {
        process.stdout.write(entries.map((e) => JSON.stringify(e) + "\n").join(""));
        return;
      }
      process.stdout.write(
        entries.length
          ? table(
              ["key", "database", "started", "format", "size", "tiers", "server", "encrypted to", "roles"],
              entries.map((e) => [
                e.key,
                e.database,
                e.started_at,
                e.format,
                humanBytes(e.bytes),
                (e.tiers ?? []).join(","),
                // The new server must be this major or newer.
                e.server_version,
                e.encryption ? e.encryption.recipients.map((r) => `${r.slice(0, 12)}...${r.slice(-6)}`).join(" ") : "-",
                e.globals ? String(e.globals.roles.length) : "-",
              ]),
              stdoutColours(),
            )
          : "no backups in the store\n",
      );
    });
}
