/** The Overview page: workers, queue, jobs per task (charts), failures and alerts, the next run of each cron task, backups at a glance. */
import { html, jsonScript } from "./html.js";
import { actionForm, bytes, layout, link, longText, shown, status, time, type PageContext } from "./layout.js";
import type { AlertRow, BackupStatusRow, FailedJob, QueueRow, RecentFailure, WorkerRow } from "./queries.js";

export interface OverviewData {
  workers: WorkerRow[];
  deadAfterSeconds: number;
  queue: QueueRow[];
  hourly: { t: number; task: string; n: number }[];
  daily: { t: number; task: string; n: number }[];
  failedJobs: FailedJob[];
  recentFailures: RecentFailure[];
  alerts: AlertRow[];
  cron: { identifier: string; task: string; next: Date | undefined }[];
  backups: BackupStatusRow[];
}

/** Counts as uPlot's columns: x (bucket starts), then one series per task. */
export function chartColumns(rows: { t: number; task: string; n: number }[], start: number, end: number, step: number) {
  const tasks = [...new Set(rows.map((r) => r.task))].sort();
  const x: number[] = [];
  for (let t = Math.floor(start / step) * step; t <= end; t += step) x.push(t);
  const index = new Map(x.map((t, i) => [t, i]));
  const series = tasks.map(() => x.map(() => 0));
  for (const r of rows) {
    const i = index.get(r.t);
    if (i !== undefined) series[tasks.indexOf(r.task)]![i] = r.n;
  }
  return { tasks, x, series };
}

export function overviewHtml(ctx: PageContext, d: OverviewData, now: Date): string {
  const nowS = Math.floor(now.getTime() / 1000);
  const alive = d.workers.filter((w) => w.since_heartbeat_s <= d.deadAfterSeconds);
  const body = html` <section class="cards">
      <div class="card">
        <span class="big" id="workers-alive">${alive.length}</span> workers
        alive${d.workers.length > alive.length ? html` (${d.workers.length - alive.length} silent)` : ""}
      </div>
      <div class="card">
        <span class="big" id="queue-ready">${d.queue.reduce((s, q) => s + q.ready, 0)}</span> jobs ready, ${d.queue.reduce((s, q) => s + q.running, 0)} running,
        ${d.queue.reduce((s, q) => s + q.scheduled, 0)} scheduled
      </div>
      <div class="card"><span class="big ${d.failedJobs.length ? "bad" : ""}">${d.failedJobs.length}</span> jobs failed for good</div>
      <div class="card"><span class="big ${d.alerts.length ? "bad" : ""}">${d.alerts.length}</span> alerts</div>
    </section>

    <section>
      <h2>Jobs per task</h2>
      <div class="charts">
        <figure>
          <figcaption>Last 24 hours, per hour</figcaption>
          <div class="chart" data-chart="chart-hourly"></div>
        </figure>
        <figure>
          <figcaption>Last 30 days, per day</figcaption>
          <div class="chart" data-chart="chart-daily"></div>
        </figure>
      </div>
      ${jsonScript("chart-hourly", chartColumns(d.hourly, nowS - 24 * 3600, nowS, 3600))}
      ${jsonScript("chart-daily", chartColumns(d.daily, nowS - 30 * 86400, nowS, 86400))}
    </section>

    <section>
      <h2>Workers</h2>
      <table class="grid" id="workers">
        <thead>
          <tr>
            <th>Id</th>
            <th>Host</th>
            <th>PID</th>
            <th>Version</th>
            <th>Concurrency</th>
            <th>Started</th>
            <th>Last heartbeat</th>
          </tr>
        </thead>
        <tbody>
          ${d.workers.map(
            (w) =>
              html`<tr class="${w.since_heartbeat_s > d.deadAfterSeconds ? "row-failed" : ""}">
                <td>${w.id}</td>
                <td>${w.hostname}</td>
                <td>${w.pid}</td>
                <td>${w.version}</td>
                <td>${w.concurrency}</td>
                <td>${time(w.started_at)}</td>
                <td>${w.since_heartbeat_s} s ago</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>

    <section>
      <h2>Queue</h2>
      ${
        d.queue.length
          ? html`<table class="grid" id="queue">
              <thead>
                <tr>
                  <th>Task</th>
                  <th>Ready</th>
                  <th>Running</th>
                  <th>Scheduled</th>
                  <th>Failed for good</th>
                </tr>
              </thead>
              <tbody>
                ${d.queue.map(
                  (q) =>
                    html`<tr>
                      <td><a href="${link("/console/jobs", { db: ctx.database, task: q.task })}">${q.task}</a></td>
                      <td>${q.ready}</td>
                      <td>${q.running}</td>
                      <td>${q.scheduled}</td>
                      <td>${q.failed}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="empty">The queue is empty.</p>`
      }
    </section>

    <section>
      <h2>Failed for good</h2>
      ${
        d.failedJobs.length
          ? html`<table class="grid" id="failed-jobs">
              <thead>
                <tr>
                  <th>Job</th>
                  <th>Task</th>
                  <th>Attempts</th>
                  <th>Last error</th>
                  <th>Since</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                ${d.failedJobs.map(
                  (j) =>
                    html`<tr>
                      <td>${j.id}</td>
                      <td>${j.task}</td>
                      <td>${j.attempts}/${j.max_attempts}</td>
                      <td class="error">${longText(shown(ctx, j.last_error))}</td>
                      <td>${time(j.updated_at)}</td>
                      <td>${actionForm(ctx, "retry", { job: j.id }, "Retry")}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="empty">None: every job either succeeded, runs, or will be retried.</p>`
      }
    </section>

    <section>
      <h2>Failures in the last 24 hours</h2>
      ${
        d.recentFailures.length
          ? html`<table class="grid">
              <thead>
                <tr>
                  <th>Started</th>
                  <th>Task</th>
                  <th>Job</th>
                  <th>Attempt</th>
                  <th>Status</th>
                  <th>Error</th>
                </tr>
              </thead>
              <tbody>
                ${d.recentFailures.map(
                  (f) =>
                    html`<tr>
                      <td>${time(f.started_at)}</td>
                      <td>${f.task}</td>
                      <td>${f.job_id}</td>
                      <td>${f.attempt}/${f.max_attempts}</td>
                      <td>${status(f.status)}</td>
                      <td class="error">${longText(shown(ctx, f.error))}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="empty">None.</p>`
      }
    </section>

    <section>
      <h2>Alerts</h2>
      ${
        d.alerts.length
          ? html`<table class="grid" id="alerts">
              <thead>
                <tr>
                  <th>Condition</th>
                  <th>Subject</th>
                  <th>First seen</th>
                  <th>Last seen</th>
                  <th>Times</th>
                  <th>Last mailed</th>
                </tr>
              </thead>
              <tbody>
                ${d.alerts.map(
                  (a) =>
                    html`<tr>
                      <td>${a.condition}</td>
                      <td>${shown(ctx, a.subject)}</td>
                      <td>${time(a.first_seen_at)}</td>
                      <td>${time(a.last_seen_at)}</td>
                      <td>${a.times_seen}</td>
                      <td>${time(a.last_sent_at)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="empty">None.</p>`
      }
    </section>

    <section>
      <h2>Next runs (UTC)</h2>
      <table class="grid" id="cron">
        <thead>
          <tr>
            <th>Cron item</th>
            <th>Task</th>
            <th>Next run</th>
          </tr>
        </thead>
        <tbody>
          ${d.cron.map(
            (c) =>
              html`<tr>
                <td>${c.identifier}</td>
                <td>${c.task}</td>
                <td>${c.next ? time(c.next) : "not within a year"}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>

    <section>
      <h2>Backups</h2>
      ${
        d.backups.length
          ? html`<table class="grid">
              <thead>
                <tr>
                  <th>Database</th>
                  <th>Last success</th>
                  <th>Size</th>
                  <th>Kept</th>
                  <th>Failed (7 days)</th>
                  <th>Offsite copies</th>
                  <th>Offsite lag</th>
                </tr>
              </thead>
              <tbody>
                ${d.backups.map(
                  (b) =>
                    html`<tr>
                      <td><a href="${link("/console/backups", { db: ctx.database, database: b.database })}">${b.database}</a></td>
                      <td>${time(b.last_success_at)} ${b.last_success_age ? html`(${b.last_success_age} ago)` : ""}</td>
                      <td>${bytes(b.last_success_bytes)}</td>
                      <td>${b.kept}</td>
                      <td class="${b.failed_7d ? "bad" : ""}">${b.failed_7d}</td>
                      <td>${b.offsite_copies ?? ""}</td>
                      <td>${b.offsite_lag ?? ""}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="empty">No backups yet.</p>`
      }
    </section>`;
  return layout("overview", "Overview", ctx, body);
}
