/** The Jobs page: the history, filtered and keyset-paginated, with live rows (console.js adds them from the event stream). */
import { html } from "./html.js";
import { JOB_STATUSES, formatCursor, type JobRow, type JobsFilter, type JobsPage } from "./jobs-query.js";
import { actionForm, duration, layout, link, longText, shown, status, time, type PageContext } from "./layout.js";

/** The datetime-local value of a Date (UTC, to the minute). */
const local = (d: Date | undefined) => (d ? d.toISOString().slice(0, 16) : "");

export function jobsPageHtml(ctx: PageContext, filter: JobsFilter, tasks: string[], page: JobsPage): string {
  const params = { db: ctx.database, task: filter.task, status: filter.status, from: local(filter.from), to: local(filter.to) };
  const live = !filter.before && !filter.after;
  const body = html` <form class="filters" method="get" action="/console/jobs">
      <input type="hidden" name="db" value="${ctx.database}" />
      <label
        >Task
        <select name="task">
          <option value="">all</option>
          ${tasks.map((t) => html`<option value="${t}" ${t === filter.task ? html`selected` : ""}>${t}</option>`)}
        </select></label
      >
      <label
        >Status
        <select name="status">
          <option value="">all</option>
          ${JOB_STATUSES.map((s) => html`<option value="${s}" ${s === filter.status ? html`selected` : ""}>${s}</option>`)}
        </select></label
      >
      <label>From (UTC) <input type="datetime-local" name="from" value="${local(filter.from)}" /></label>
      <label>To (UTC) <input type="datetime-local" name="to" value="${local(filter.to)}" /></label>
      <button type="submit">Filter</button>
      <a href="${link("/console/jobs", { db: ctx.database })}">clear</a>
    </form>
    <p class="live-line">
      ${live ? html`Live: <span id="live-state" data-state="connecting">connecting…</span>` : html`Older page: new events update the rows shown; <a href="${link("/console/jobs", params)}">newest</a> shows them all.`}
    </p>
    <table
      id="jobs"
      class="grid"
      data-events="${link("/console/jobs/events", { db: ctx.database })}"
      data-insert="${live ? "yes" : "no"}"
      data-task="${filter.task ?? ""}"
      data-status="${filter.status ?? ""}"
      data-from="${filter.from?.toISOString() ?? ""}"
      data-to="${filter.to?.toISOString() ?? ""}"
      data-csrf="${ctx.csrf}"
      data-db="${ctx.database}"
      data-masked="${ctx.viewer.authenticated ? "no" : "yes"}"
    >
      <thead>
        <tr>
          <th>Started (UTC)</th>
          <th>Task</th>
          <th>Job</th>
          <th>Attempt</th>
          <th>Status</th>
          <th>Duration</th>
          <th>Worker</th>
          <th>Error</th>
          <th>Payload</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${page.rows.map((r) => jobRow(ctx, r))}
      </tbody>
    </table>
    ${page.rows.length ? "" : html`<p class="empty" id="jobs-empty">No attempts match.</p>`}
    <nav class="pages">
      ${page.newer ? html`<a rel="prev" href="${link("/console/jobs", { ...params, after: formatCursor(page.newer) })}">← newer</a>` : ""}
      ${page.older ? html`<a rel="next" href="${link("/console/jobs", { ...params, before: formatCursor(page.older) })}">older →</a>` : ""}
    </nav>`;
  return layout("jobs", "Jobs", ctx, body);
}

function jobRow(ctx: PageContext, r: JobRow) {
  const payload = JSON.stringify(r.payload_summary ?? {});
  return html`<tr data-run="${r.id}" data-seq="${r.seq}" class="row-${r.status}">
    <td>${time(r.started_at)}</td>
    <td>${r.task}</td>
    <td>${r.job_id}</td>
    <td>${r.attempt}/${r.max_attempts}</td>
    <td>${status(r.status)}</td>
    <td>${duration(r.duration_ms)}</td>
    <td class="worker">${r.worker_id}</td>
    <td class="error">${longText(shown(ctx, r.error))}</td>
    <td class="payload">${longText(shown(ctx, payload === "{}" ? "" : payload))}</td>
    <td>${r.status === "failed" && r.attempt >= r.max_attempts ? actionForm(ctx, "retry", { job: r.job_id }, "Retry") : ""}</td>
  </tr>`;
}
