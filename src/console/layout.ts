/** The page frame (navigation, database picker, who is looking) and small formatters shared by the pages. */
import { CSRF_FIELD, maskEmails, type Viewer } from "./access.js";
import { html, type SafeHtml } from "./html.js";

export type PageName = "overview" | "jobs" | "backups" | "exports";

export interface PageContext {
  viewer: Viewer;
  /** The served databases, and the one shown. */
  databases: string[];
  database: string;
  csrf: string;
  /** A fixed message after an action (never text from the request). */
  notice?: string;
}

const NAV: [PageName, string, string][] = [
  ["overview", "Overview", "/console/"],
  ["jobs", "Jobs", "/console/jobs"],
  ["backups", "Backups", "/console/backups"],
  ["exports", "Exports", "/console/exports"],
];

export function link(path: string, params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export function layout(page: PageName, title: string, ctx: PageContext, body: SafeHtml): string {
  const picker =
    ctx.databases.length > 1
      ? html`<form class="picker" method="get" action="${NAV.find((n) => n[0] === page)![2]}">
          <label
            >Database
            <select name="db" data-autosubmit>
              ${ctx.databases.map((d) => html`<option value="${d}" ${d === ctx.database ? html`selected` : ""}>${d}</option>`)}
            </select></label
          ><noscript><button>Show</button></noscript>
        </form>`
      : html`<span class="picker">Database <b>${ctx.database}</b></span>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · ${ctx.database} · pmt-worker</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/console/static/uplot.min.css" />
        <link rel="stylesheet" href="/console/static/console.css" />
        <script src="/console/static/uplot.min.js" defer></script>
        <script src="/console/static/console.js" defer></script>
      </head>
      <body data-page="${page}">
        <header>
          <b class="brand">pmt-worker</b>
          <nav>
            ${NAV.map(([name, label, path]) => html`<a href="${link(path, { db: ctx.database })}" ${name === page ? html`aria-current="page"` : ""}>${label}</a>`)}
          </nav>
          ${picker}
          <span class="viewer">${ctx.viewer.authenticated ? "signed in" : "loopback, no password: addresses masked"}</span>
        </header>
        <main>
          ${ctx.notice ? html`<p class="notice" role="status">${ctx.notice}</p>` : ""}
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html> `.text;
}

/** A POST form with the CSRF token: one button, hidden fields. */
export function actionForm(ctx: PageContext, action: string, fields: Record<string, string | number>, label: string, className = "action"): SafeHtml {
  return html`<form method="post" action="/console/actions/${action}" class="${className}">
    <input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrf}" />
    <input type="hidden" name="db" value="${ctx.database}" />
    ${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}" />`)}
    <button type="submit">${label}</button>
  </form>`;
}

/** Text as this viewer may see it: addresses masked unless signed in. */
export function shown(ctx: PageContext, text: string | null | undefined): string {
  if (!text) return "";
  return ctx.viewer.authenticated ? text : maskEmails(text);
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

/** A timestamp as UTC "2026-12-01 13:09:19", in a <time> element. */
export function time(at: string | Date | null | undefined): SafeHtml {
  if (!at) return html``;
  const d = at instanceof Date ? at : new Date(at.includes("T") || at.endsWith("Z") ? at : at.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"));
  if (Number.isNaN(d.getTime())) return html`${String(at)}`;
  const iso = d.toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")}</time>`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

export function status(s: string): SafeHtml {
  return html`<span class="status status-${s}">${s}</span>`;
}

/** A long text cut to its first line, the whole in a <details>. */
export function longText(text: string): SafeHtml {
  if (!text) return html``;
  const first = text.split("\n")[0]!;
  if (first.length <= 120 && first === text) return html`<span class="text">${text}</span>`;
  return html`<details>
    <summary>${first.slice(0, 120)}${first.length > 120 || first !== text ? "…" : ""}</summary>
    <pre>${text}</pre>
  </details>`;
}
