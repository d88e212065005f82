import type { Command } from "commander";
import type { Status } from "../status/status.js";
import { section, table } from "./format.js";

function render(s: Status, offsite: boolean): string {
  const out: string[] = [];
  out.push(
    s.workers.length
      ? `Workers (${s.workers.length} alive):\n` +
          table(
            ["id", "host", "pid", "slots", "heartbeat"],
            s.workers.map((w) => [w.id, w.hostname, String(w.pid), String(w.concurrency), `${w.since_heartbeat_s} s ago`]),
          )
      : "Workers: none running\n",
  );
  out.push(
    s.queue.length
      ? "Queue:\n" +
          table(
            ["task", "ready", "scheduled", "running", "failed for good"],
            s.queue.map((r) => [r.task, String(r.ready), String(r.scheduled), String(r.running), String(r.failed)]),
          )
      : "Queue: empty\n",
  );
  out.push(
    s.last_24h.length
      ? "Last 24 hours:\n" +
          table(
            ["task", "succeeded", "failed", "abandoned", "running"],
            s.last_24h.map((r) => [r.task, String(r.succeeded), String(r.failed), String(r.abandoned), String(r.running)]),
          )
      : "Last 24 hours: no jobs\n",
  );
  out.push(
    s.backups.length
      ? "Backups:\n" +
          table(
            ["database", "last success", "kept", "failed 7d", "offsite copies", "offsite lag"],
            s.backups.map((b) => [
              b.database,
              b.last_success_age ? `${b.last_success_age} ago` : "never",
              String(b.kept),
              String(b.failed_7d),
              offsite ? String(b.offsite_copies ?? 0) : "off",
              offsite ? (b.offsite_lag ?? "none") : "-",
            ]),
          )
      : "Backups: none yet\n",
  );
  if (s.test_restores.length) {
    out.push(
      "Test restores (latest):\n" +
        table(
          ["database", "backup", "tested", "result"],
          s.test_restores.map((t) => [
            t.database,
            String(t.backup_id),
            t.tested_at.toISOString().replace(/\.\d{3}Z$/, "Z"),
            t.ok ? "ok" : `FAILED: ${(t.error ?? "").split("\n")[0]!.slice(0, 100)}`,
          ]),
        ),
    );
  }
  out.push(
    s.exports_pending.length
      ? "Exports pending:\n" +
          table(
            ["status", "count", "oldest"],
            s.exports_pending.map((e) => [e.status, String(e.count), e.oldest]),
          )
      : "Exports pending: none\n",
  );
  const unconfirmed = s.exports_unconfirmed[0];
  if (unconfirmed?.count) {
    out.push(
      `Exports with delivery unconfirmed (7 days): ${unconfirmed.count}, newest request ${unconfirmed.newest_id}; ` +
        "the mail server may or may not have them and they are not sent again: see error in pmt_jobs.export_request\n",
    );
  }
  return out.join("\n");
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("one screen: workers alive, queue, last 24 hours of jobs, backups and offsite state, pending exports; one section per served database")
    .option("--database <name>", "only this served database (default: all)")
    .option("--json", "as JSON (with several databases: an array of them, each with its database)")
    .action(async (opts: { database?: string; json?: boolean }) => {
      const [{ withDatabases }, { collectStatus }] = await Promise.all([import("./context.js"), import("../status/status.js")]);
      let several = false;
      const all = await withDatabases({ database: opts.database }, async ({ pool, config, database, several: many }) => {
        several = many;
        const status = await collectStatus(pool);
        // Text as each database answers; JSON once, as one document.
        if (!opts.json) {
          const text = render(status, Boolean(config.offsite.url));
          process.stdout.write(many ? section(database, text) : text);
        }
        return { database, ...status };
      });
      if (!opts.json) return;
      // One database: the object as it always was; several (even if some could not be reached): an array.
      if (several || all.length !== 1) process.stdout.write(JSON.stringify(all) + "\n");
      else {
        const { database: _, ...status } = all[0]!;
        process.stdout.write(JSON.stringify(status) + "\n");
      }
    });
}
