import type { Command } from "commander";
import { stdoutColours, type Colours } from "../colour.js";
import { humanAge, humanBytes, humanDuration, humanWhen, isoSeconds } from "../human.js";
import type { Status } from "../status/status.js";
import { firstLine, jsonRow, section, statusColour, table } from "./format.js";

function render(s: Status, offsite: boolean, c: Colours, now = new Date()): string {
  const out: string[] = [];
  const heading = (text: string) => c.bold(text);
  out.push(
    s.workers.length
      ? `${heading(`Workers (${s.workers.length} alive):`)}\n` +
          table(
            ["id", "host", "pid", "slots", "heartbeat"],
            s.workers.map((w) => [w.id, w.hostname, String(w.pid), String(w.concurrency), humanAge(w.since_heartbeat_s)]),
            c,
          )
      : `${heading("Workers:")} none running\n`,
  );
  out.push(
    s.queue.length
      ? `${heading("Queue:")}\n` +
          table(
            ["task", "ready", "scheduled", "running", "failed for good"],
            s.queue.map((r) => [r.task, String(r.ready), String(r.scheduled), String(r.running), r.failed ? c.red(String(r.failed)) : "0"]),
            c,
          ) +
          (s.queue.some((r) => r.failed) ? "  (pmt-worker jobs retry <job> runs one that failed for good again)\n" : "")
      : `${heading("Queue:")} empty\n`,
  );
  out.push(
    s.last_24h.length
      ? `${heading("Last 24 hours:")}\n` +
          table(
            ["task", "succeeded", "failed", "abandoned", "running"],
            s.last_24h.map((r) => [
              r.task,
              String(r.succeeded),
              r.failed ? c.red(String(r.failed)) : "0",
              r.abandoned ? c.yellow(String(r.abandoned)) : "0",
              String(r.running),
            ]),
            c,
          )
      : `${heading("Last 24 hours:")} no jobs\n`,
  );
  if (s.schedule.length) {
    out.push(
      `${heading("Next runs (crontab, UTC):")}\n` +
        table(
          ["entry", "cron", "next run", "in", "last run"],
          s.schedule.map((e) => [
            e.identifier,
            e.match,
            e.next_run ? isoSeconds(e.next_run) : "never",
            e.next_run ? humanWhen(e.next_run, now) : "",
            e.last_run ? `${humanWhen(e.last_run.started_at, now)}, ${statusColour(e.last_run.status, c)}` : "never",
          ]),
          c,
        ),
    );
  }
  out.push(
    s.backups.length
      ? `${heading("Backups:")}\n` +
          table(
            ["database", "last success", "kept", "size", "failed 7d", "offsite copies", "offsite size", "offsite lag"],
            s.backups.map((b) => [
              b.database,
              b.last_success_age_s === null ? c.red("never") : humanAge(b.last_success_age_s),
              String(b.kept),
              humanBytes(b.kept_bytes),
              b.failed_7d ? c.red(String(b.failed_7d)) : "0",
              offsite ? String(b.offsite_copies ?? 0) : "off",
              offsite ? humanBytes(b.offsite_bytes ?? 0) : "-",
              offsite ? (b.offsite_lag_s === null ? "none" : humanDuration(b.offsite_lag_s)) : "-",
            ]),
            c,
          ) +
          `Total: ${s.totals.backups} backups, ${humanBytes(s.totals.backup_bytes)}` +
          (offsite ? `; offsite ${s.totals.offsite_copies} copies, ${humanBytes(s.totals.offsite_bytes)}\n` : "\n")
      : `${heading("Backups:")} none yet\n`,
  );
  if (s.test_restores.length) {
    out.push(
      `${heading("Test restores (latest):")}\n` +
        table(
          ["database", "backup", "tested", "result"],
          s.test_restores.map((t) => [
            t.database,
            String(t.backup_id),
            isoSeconds(t.tested_at),
            t.ok ? statusColour("ok", c) : `${c.red("FAILED")}: ${firstLine(t.error, 100)}`,
          ]),
          c,
        ),
    );
  }
  out.push(
    s.exports_pending.length
      ? `${heading("Exports pending:")}\n` +
          table(
            ["status", "count", "oldest"],
            s.exports_pending.map((e) => [e.status, String(e.count), humanAge((now.getTime() - new Date(e.oldest).getTime()) / 1000)]),
            c,
          )
      : `${heading("Exports pending:")} none\n`,
  );
  const unconfirmed = s.exports_unconfirmed[0];
  if (unconfirmed?.count) {
    out.push(
      c.yellow(`Exports with delivery unconfirmed (7 days): ${unconfirmed.count}, newest request ${unconfirmed.newest_id}; `) +
        "the mail server may or may not have them and they are not sent again: see error in pmt_jobs.export_request\n",
    );
  }
  return out.join("\n");
}

/** The status as JSON gives it: seconds, bytes, ISO 8601 times. */
function jsonOf(s: Status): Record<string, unknown> {
  return {
    ...s,
    schedule: s.schedule.map(jsonRow),
    backups: s.backups.map(jsonRow),
    test_restores: s.test_restores.map(jsonRow),
    exports_pending: s.exports_pending.map(jsonRow),
  };
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description(
      "one screen: workers alive, queue, last 24 hours of jobs, next run of each cron entry, backups with their totals and offsite state, pending exports; one section per served database",
    )
    .option("--database <name>", "only this served database (default: all)")
    .option(
      "--json",
      "as JSON: ages in seconds (*_s), sizes in bytes (*_bytes), times in ISO 8601 (with several databases: an array of them, each with its database)",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ pmt-worker status
  $ pmt-worker status --database bmgf
  $ pmt-worker status --json | jq '.backups[] | {database, last_success_age_s}'
  $ NO_COLOR=1 pmt-worker status        without colours on a terminal`,
    )
    .action(async (opts: { database?: string; json?: boolean }) => {
      const [{ withDatabases }, { collectStatus }, { scheduleOf }, { backupTargets }] = await Promise.all([
        import("./context.js"),
        import("../status/status.js"),
        import("../status/schedule.js"),
        import("../backups/target.js"),
      ]);
      const c = stdoutColours();
      let several = false;
      const all = await withDatabases({ database: opts.database }, async ({ pool, config, database, several: many, url, embedded }) => {
        several = many;
        const status = await collectStatus(pool, scheduleOf(config, backupTargets(url, config.backup), embedded));
        // Text as each database answers; JSON once, as one document.
        if (!opts.json) {
          const text = render(status, Boolean(config.offsite.url), c);
          process.stdout.write(many ? section(database, text, c) : text);
        }
        return { database, ...jsonOf(status) };
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
