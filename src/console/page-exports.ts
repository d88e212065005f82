/** The Exports page: requests with their status, size, attachment or link, and the time from the request's commit to the mail. */
import { html } from "./html.js";
import { bytes, layout, link, longText, shown, status, time, type PageContext } from "./layout.js";
import { EXPORT_STATUSES, type ExportRow } from "./queries.js";

export function exportsHtml(ctx: PageContext, filter: { status?: string; beforeId?: number }, rows: ExportRow[], more: boolean): string {
  const body = html` <form class="filters" method="get" action="/console/exports">
      <input type="hidden" name="db" value="${ctx.database}" />
      <label
        >Status
        <select name="status">
          <option value="">all</option>
          ${EXPORT_STATUSES.map((s) => html`<option value="${s}" ${s === filter.status ? html`selected` : ""}>${s}</option>`)}
        </select></label
      >
      <button type="submit">Filter</button>
    </form>
    ${ctx.viewer.authenticated ? "" : html`<p class="hint">Recipients' addresses are masked: set CONSOLE_PASSWORD and sign in to see them.</p>`}
    <table class="grid" id="exports">
      <thead>
        <tr>
          <th>Request</th>
          <th>Requested</th>
          <th>By</th>
          <th>Format</th>
          <th>Recipient</th>
          <th>Status</th>
          <th>Rows</th>
          <th>Size</th>
          <th>Delivery</th>
          <th>Commit to mail</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (r) =>
            html`<tr data-request="${r.id}">
              <td>${r.id}</td>
              <td>${time(r.requested_at)}</td>
              <td>${shown(ctx, r.requested_by)}</td>
              <td>${r.format}</td>
              <td class="recipient">${shown(ctx, r.recipient)}</td>
              <td>${status(r.status)}</td>
              <td>${r.rows ?? ""}</td>
              <td>${bytes(r.bytes)}</td>
              <td>
                ${r.offsite_key ? html`link${r.link_expires_at ? html`, valid until ${time(r.link_expires_at)}` : ""}` : r.attachment ? html`attachment ${r.attachment}${r.compressed ? " (zipped)" : ""}` : ""}
              </td>
              <td>${r.commit_to_mail_s === null ? "" : `${r.commit_to_mail_s.toFixed(1)} s`}</td>
              <td class="error">${longText(shown(ctx, r.error))}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${rows.length ? "" : html`<p class="empty">No export requests.</p>`}
    <nav class="pages">
      ${filter.beforeId ? html`<a href="${link("/console/exports", { db: ctx.database, status: filter.status })}">← newest</a>` : ""}
      ${more && rows.length ? html`<a rel="next" href="${link("/console/exports", { db: ctx.database, status: filter.status, before: rows[rows.length - 1]!.id })}">older →</a>` : ""}
    </nav>`;
  return layout("exports", "Exports", ctx, body);
}
