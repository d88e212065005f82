/**
 * The Backups page, per backed-up database of the served database's catalog:
 * a calendar of the last 12 months (each day's backups, tiers, failures,
 * test restores), size over time, what retention keeps and would prune, the
 * offsite copies and their lag, and the run-now actions.
 */
import type { Tier } from "../retention/policy.js";
import type { CalendarDay } from "./calendar.js";
import { html, jsonScript } from "./html.js";
import { actionForm, bytes, layout, link, longText, shown, status, time, type PageContext } from "./layout.js";
import type { BackupDay, BackupStatusRow, CopyRow } from "./queries.js";

export interface RetentionView {
  keep: { id: number; started_at: Date; file: string | null; bytes: number | null; tiers: (Tier | "final" | "offsite pending")[] }[];
  prune: { id: number; started_at: Date; file: string | null; bytes: number | null }[];
}

export interface BackupsData {
  /** The databases in this catalog or backed up by this instance; `database` is the one shown. */
  databases: string[];
  database: string;
  /** This instance backs `database` up: the run-now action applies. */
  canRun: boolean;
  /** This instance has databases to test-restore. */
  canTestRestore: boolean;
  status?: BackupStatusRow;
  calendar: CalendarDay[][];
  backups: BackupDay[];
  retention: RetentionView;
  copies: CopyRow[];
  offsiteConfigured: boolean;
  /** The size chart's time span, seconds since the epoch. */
  range: [number, number];
}

const STATE_TEXT: Record<string, string> = {
  ok: "backed up",
  failed: "failed",
  mixed: "a failure, then a backup",
  pruned: "pruned",
  none: "no backup",
  future: "",
};

export function backupsHtml(ctx: PageContext, d: BackupsData): string {
  const sizes = d.backups.filter((b) => b.status !== "failed" && b.bytes !== null);
  const s = d.status;
  const body = html` ${d.databases.length > 1 ? html`<nav class="subnav">${d.databases.map((name) => html`<a href="${link("/console/backups", { db: ctx.database, database: name })}" ${name === d.database ? html`aria-current="page"` : ""}>${name}</a>`)}</nav>` : ""}
    <h2>${d.database}</h2>
    <section class="cards">
      <div class="card">Last success: ${s?.last_success_at ? html`${time(s.last_success_at)} (${s.last_success_age} ago)` : "never"}</div>
      <div class="card">
        Kept: ${s?.kept ?? 0}, failed in 7 days:
        <span class="${s?.failed_7d ? "bad" : ""}">${s?.failed_7d ?? 0}</span>${s?.corrupt ? html`, <span class="bad">${s.corrupt} corrupt</span>` : ""}
      </div>
      <div class="card">Offsite: ${d.offsiteConfigured ? html`${s?.offsite_copies ?? 0} copies, lag ${s?.offsite_lag ?? "none"}` : "no OFFSITE_URL"}</div>
      <div class="card actions">
        ${d.canRun ? actionForm(ctx, "backup", { database: d.database }, "Run a backup now") : html`<span>backed up by another worker instance</span>`}
        ${d.canTestRestore ? actionForm(ctx, "test-restore", {}, "Run a test restore now") : ""}
      </div>
    </section>
    ${s?.last_error ? html`<p class="bad">Last error: ${longText(shown(ctx, s.last_error))}</p>` : ""}

    <section>
      <h2>The last 12 months</h2>
      <div class="calendar" id="calendar" role="grid" aria-label="backups per day">
        ${d.calendar.map(
          (week) =>
            html`<div class="week" role="row">
              ${week.map(
                (day) =>
                  html`<span
                    role="gridcell"
                    class="day day-${day.state}${day.restoreOk === false ? " restore-failed" : day.restoreOk ? " restore-ok" : ""}${day.tiers.length ? ` tiers-${day.tiers.join("-")}` : ""}"
                    data-date="${day.date}"
                    title="${dayTitle(day)}"
                  ></span>`,
              )}
            </div>`,
        )}
      </div>
      <p class="legend">
        <span class="day day-ok"></span> backed up <span class="day day-failed"></span> failed <span class="day day-mixed"></span> failed, then backed up
        <span class="day day-pruned"></span> pruned <span class="day day-none"></span> none <span class="day day-ok tiers-daily"></span> kept (a tier)
        <span class="day day-ok restore-ok"></span> test restore passed <span class="day day-ok restore-failed"></span> test restore failed
      </p>
    </section>

    <section>
      <h2>Size</h2>
      <figure><div class="chart" data-chart="chart-size" data-kind="bytes"></div></figure>
      ${jsonScript("chart-size", { tasks: ["size"], x: sizes.map((b) => b.t), series: [sizes.map((b) => b.bytes)], range: d.range })}
    </section>

    <section>
      <h2>Retention</h2>
      <div class="two">
        <div>
          <h3>Keeps (${d.retention.keep.length})</h3>
          <table class="grid" id="keep">
            <thead>
              <tr>
                <th>Backup</th>
                <th>Started</th>
                <th>Size</th>
                <th>Kept by</th>
              </tr>
            </thead>
            <tbody>
              ${d.retention.keep.map(
                (k) =>
                  html`<tr>
                    <td>${k.id}</td>
                    <td>${time(k.started_at)}</td>
                    <td>${bytes(k.bytes)}</td>
                    <td>${k.tiers.join(", ")}</td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
        <div>
          <h3>Would prune now (${d.retention.prune.length})</h3>
          ${
            d.retention.prune.length
              ? html`<table class="grid" id="prune">
                  <thead>
                    <tr>
                      <th>Backup</th>
                      <th>Started</th>
                      <th>Size</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${d.retention.prune.map(
                      (p) =>
                        html`<tr>
                          <td>${p.id}</td>
                          <td>${time(p.started_at)}</td>
                          <td>${bytes(p.bytes)}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>`
              : html`<p class="empty">Nothing: every backup is kept by a tier.</p>`
          }
          <p class="hint">Retention runs after each successful backup; with an offsite store, a backup whose copy is not done is held until it is.</p>
        </div>
      </div>
    </section>

    <section>
      <h2>Offsite copies</h2>
      ${
        d.copies.length
          ? html`<table class="grid" id="copies">
              <thead>
                <tr>
                  <th>Backup</th>
                  <th>File</th>
                  <th>Store</th>
                  <th>Status</th>
                  <th>Size</th>
                  <th>Uploaded</th>
                  <th>Verified</th>
                  <th>Lag</th>
                  <th>Error</th>
                </tr>
              </thead>
              <tbody>
                ${d.copies.map(
                  (c) =>
                    html`<tr>
                      <td>${c.backup_id}</td>
                      <td>${c.file}</td>
                      <td>${c.target}</td>
                      <td>${status(c.status)}</td>
                      <td>${bytes(c.bytes)}</td>
                      <td>${time(c.uploaded_at)}</td>
                      <td>${time(c.verified_at)}</td>
                      <td>${c.lag}</td>
                      <td class="error">${longText(shown(ctx, c.error))}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="empty">${d.offsiteConfigured ? "No copies yet." : "No offsite store (OFFSITE_URL) is configured."}</p>`
      }
    </section>

    <section>
      <h2>Backups</h2>
      <table class="grid" id="backups">
        <thead>
          <tr>
            <th>Id</th>
            <th>Started</th>
            <th>Status</th>
            <th>Tiers</th>
            <th>Size</th>
            <th>File</th>
            <th>Test restore</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          ${[...d.backups]
            .reverse()
            .slice(0, 60)
            .map(
              (b) =>
                html`<tr>
                  <td>${b.id}</td>
                  <td>${time(b.started_at)}</td>
                  <td>${status(b.status)}</td>
                  <td>${b.tiers.join(", ")}${b.final ? " final" : ""}</td>
                  <td>${bytes(b.bytes)}</td>
                  <td>${b.file}</td>
                  <td>
                    ${b.restore_tested_at ? html`${b.restore_test_ok ? "passed" : html`<span class="bad">failed</span>`} ${time(b.restore_tested_at)}` : ""}
                  </td>
                  <td class="error">${longText(shown(ctx, b.error ?? b.restore_test_error))}</td>
                </tr>`,
            )}
        </tbody>
      </table>
    </section>`;
  return layout("backups", "Backups", ctx, body);
}

function dayTitle(day: CalendarDay): string {
  const parts = [`${day.date}: ${STATE_TEXT[day.state] ?? day.state}`];
  for (const b of day.backups) {
    parts.push(
      `#${b.id} ${b.status}${b.tiers.length ? ` (${b.tiers.join(", ")})` : ""}${b.bytes ? ` ${bytes(b.bytes)}` : ""}${b.restore_test_ok === true ? ", test restore passed" : b.restore_test_ok === false ? ", test restore FAILED" : ""}`,
    );
  }
  return parts.join("\n");
}
