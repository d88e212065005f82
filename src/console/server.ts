/**
 * The web console, mounted by the worker's HTTP listener under /console
 * (worker/http.ts): routes, access (access.ts), security headers, and the
 * data each page reads for the served database it shows. Pages are plain
 * server-rendered HTML; console.js adds charts and the Jobs page's live rows.
 */
import type http from "node:http";
import type { ParsedCronItem } from "graphile-worker";
import type pg from "pg";
import { isLoopbackHost, type Config } from "../config.js";
import type { JobStatus } from "../db/schema.js";
import { UserError, errorMessage } from "../errors.js";
import type { JobEvent } from "../history/queries.js";
import type { Logger } from "../log.js";
import { redactText } from "../redact.js";
import { planRetention } from "../retention/policy.js";
import { CSRF_FIELD, cookieValue, csrfCookieHeader, csrfProblem, decideAccess, maskEmails, newCsrfToken, type AccessConfig, type Viewer } from "./access.js";
import { retryJob } from "../history/retry.js";
import { enqueueBackup, enqueueTestRestore, type ActionTasks } from "./actions.js";
import { assets } from "./assets.js";
import { backupCalendar } from "./calendar.js";
import { nextRun } from "./cron.js";
import { escapeHtml } from "./html.js";
import { JOB_STATUSES, PAGE_SIZE, historyTasks, jobsPage, parseCursor, type JobsFilter } from "./jobs-query.js";
import { LiveFeed, refuseStream, serveEvents, type LiveEvent } from "./live.js";
import type { PageContext } from "./layout.js";
import { backupsHtml, type RetentionView } from "./page-backups.js";
import { exportsHtml } from "./page-exports.js";
import { jobsPageHtml } from "./page-jobs.js";
import { overviewHtml } from "./page-overview.js";
import * as Q from "./queries.js";
import { readOnly } from "./read.js";

/** One served database as the console sees it. */
export interface ConsoleDatabase {
  name: string;
  url: string;
  /** Its running instance's pool; undefined while it is down (`problem` says why). */
  pool?: pg.Pool;
  problem?: string;
  config: Config;
  /** Its crontab, for the next runs. */
  cron: ParsedCronItem[];
  /** The databases it backs up. */
  backupTargets: string[];
}

export interface ConsoleSource {
  databases(): ConsoleDatabase[];
  access: AccessConfig;
  /** The listener's address: without a password it must be loopback. */
  host: string;
  tasks: ActionTasks;
  logger: Logger;
}

export interface Console {
  /** Answers a request under /console (true), or leaves it (false). */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  close(): Promise<void>;
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

const MAX_FORM_BYTES = 8192;
/** The 30-day chart reads a month of history (a third of a million rows at 1M in 90 days): counted at most once a minute per database. */
const DAILY_COUNTS_TTL_MS = 60_000;
/**
 * Open live streams at once (each an open connection), in all and from one
 * client address (a reverse proxy counts as one client): more are answered
 * with an empty stream that asks the browser to come back in BUSY_RETRY_MS.
 */
const MAX_STREAMS = 100;
const MAX_STREAMS_PER_CLIENT = 20;
const BUSY_RETRY_MS = 30_000;
/** How soon a browser asks again for the stream of a database that has no running instance. */
const DOWN_RETRY_MS = 5_000;
/** How soon a stream of a replaced instance is ended (so its browser reconnects to the new one). */
const FEED_SWEEP_MS = 5_000;

const NOTICES: Record<string, (job: number) => string> = {
  retried: (job) => `Job ${job} will run again now: its next attempt appears below as it starts.`,
  backup: (job) => `Backup queued as job ${job}: it appears in the Jobs page as it runs, and here when it is done.`,
  "test-restore": (job) => `Test restore queued as job ${job}: its result appears here when it is done.`,
};

export function createConsole(source: ConsoleSource): Console {
  if (source.access.password === undefined && !isLoopbackHost(source.host)) {
    throw new UserError(`the web console would listen on ${source.host}, not a loopback address, without a password: set CONSOLE_PASSWORD or CONSOLE=off`);
  }
  const feeds = new Map<string, { pool: pg.Pool; feed: LiveFeed }>();
  const dailyCounts = new Map<string, { at: number; rows: Awaited<ReturnType<typeof Q.jobCounts>> }>();
  let streams = 0;
  const streamsOf = new Map<string, number>();
  /**
   * Feeds whose database went away or whose instance was replaced (a new
   * pool) are closed, which ends their streams: the browsers reconnect with
   * their last event id and are served by the instance now running. Checked
   * on each request and every few seconds while a feed is open.
   */
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = new Map(source.databases().map((d) => [d.name, d.pool]));
    for (const [name, known] of feeds) {
      if (now.get(name) === known.pool) continue;
      feeds.delete(name);
      void known.feed.close();
    }
    if (!feeds.size && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  const feedOf = (d: ConsoleDatabase & { pool: pg.Pool }) => {
    sweep();
    const known = feeds.get(d.name);
    if (known) return known.feed;
    const feed = new LiveFeed({ database: d.name, url: d.url, pool: d.pool, logger: source.logger });
    feeds.set(d.name, { pool: d.pool, feed });
    sweeper ??= setInterval(sweep, FEED_SWEEP_MS).unref();
    return feed;
  };

  const send = (res: http.ServerResponse, statusCode: number, body: string, headers: Record<string, string | string[]> = {}) => {
    res.writeHead(statusCode, { ...SECURITY_HEADERS, "cache-control": "no-store", "content-type": "text/html; charset=utf-8", ...headers }).end(body);
  };
  const errorPage = (res: http.ServerResponse, statusCode: number, message: string) =>
    send(
      res,
      statusCode,
      `<!doctype html><meta charset="utf-8"><title>pmt-worker console</title><link rel="stylesheet" href="/console/static/console.css"><main><h1>${statusCode}</h1><p>${escapeHtml(message)}</p><p><a href="/console/">Overview</a></p></main>`,
    );

  async function route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, viewer: Viewer, csrf: string, setCookie: string[]) {
    const path = url.pathname;
    if (feeds.size) sweep();
    const all = source.databases();
    const chosen = all.find((d) => d.name === url.searchParams.get("db")) ?? all[0];
    // A stream is never answered with an error status (EventSource would give up for good): while the database
    // is between two instances, or not served yet, the browser is asked to come back.
    if (path === "/console/jobs/events" && req.method === "GET" && !chosen?.pool) {
      return refuseStream(res, SECURITY_HEADERS, DOWN_RETRY_MS, "reconnecting");
    }
    if (!chosen) return errorPage(res, 503, "this worker serves no database yet");
    const headers: Record<string, string | string[]> = setCookie.length ? { "set-cookie": setCookie } : {};
    const ctxOf = (): PageContext => {
      const notice = url.searchParams.get("notice") ?? "";
      const job = Number(url.searchParams.get("job"));
      return {
        viewer,
        databases: all.map((d) => d.name),
        database: chosen.name,
        csrf,
        notice: NOTICES[notice] && Number.isSafeInteger(job) ? NOTICES[notice](job) : undefined,
      };
    };
    if (req.method === "POST") {
      if (!path.startsWith("/console/actions/")) return errorPage(res, 405, "only the actions take POST");
      return action(req, res, path.slice("/console/actions/".length), viewer, all);
    }
    if (req.method !== "GET" && req.method !== "HEAD") return errorPage(res, 405, "expected GET, or POST for an action");
    if (!chosen.pool) return errorPage(res, 503, `database ${chosen.name} is not reachable: ${chosen.problem ?? "its instance is not running"}`);
    const pool = chosen.pool;
    switch (path) {
      case "/console/": {
        const now = new Date();
        const data = await readOnly(pool, async (q) => ({
          workers: await Q.workers(q),
          queue: await Q.queueDepth(q),
          hourly: await Q.jobCounts(q, "hour"),
          daily: await cachedDaily(chosen.name, () => Q.jobCounts(q, "day")),
          failedJobs: await Q.failedJobs(q),
          recentFailures: await Q.recentFailures(q),
          alerts: await Q.alerts(q),
          backups: await Q.backupStatus(q),
        }));
        const cron = chosen.cron.map((c) => ({ identifier: c.identifier, task: c.task, next: nextRun(c, now) }));
        cron.sort((a, b) => (a.next?.getTime() ?? Infinity) - (b.next?.getTime() ?? Infinity));
        return send(res, 200, overviewHtml(ctxOf(), { ...data, cron, deadAfterSeconds: chosen.config.deadAfterSeconds }, now), headers);
      }
      case "/console/jobs": {
        const filter = jobsFilter(url);
        const { page, tasks } = await readOnly(pool, async (q) => ({ page: await jobsPage(q, filter), tasks: await historyTasks(q) }));
        return send(res, 200, jobsPageHtml(ctxOf(), filter, tasks, page), headers);
      }
      case "/console/jobs/events": {
        const client = req.socket.remoteAddress ?? "?";
        const mine = streamsOf.get(client) ?? 0;
        if (streams >= MAX_STREAMS || mine >= MAX_STREAMS_PER_CLIENT) return refuseStream(res, SECURITY_HEADERS, BUSY_RETRY_MS, "busy");
        streams++;
        streamsOf.set(client, mine + 1);
        res.on("close", () => {
          streams--;
          const left = (streamsOf.get(client) ?? 1) - 1;
          if (left > 0) streamsOf.set(client, left);
          else streamsOf.delete(client);
        });
        return serveEvents(req, res, feedOf({ ...chosen, pool }), { present: (e) => present(e, viewer), logger: source.logger, headers: SECURITY_HEADERS });
      }
      case "/console/backups":
        return send(res, 200, await backupsPage(ctxOf(), chosen, pool, url.searchParams.get("database")), headers);
      case "/console/exports": {
        const status = url.searchParams.get("status") || undefined;
        if (status && !(Q.EXPORT_STATUSES as readonly string[]).includes(status)) {
          throw new UserError(`status: ${JSON.stringify(status.slice(0, 60))} is not an export status: expected one of ${Q.EXPORT_STATUSES.join(", ")}`);
        }
        const beforeParam = url.searchParams.get("before") || undefined;
        if (beforeParam && !/^[1-9]\d{0,17}$/.test(beforeParam)) {
          throw new UserError(`before: ${JSON.stringify(beforeParam.slice(0, 60))} is not a request id: expected the number the page's links give`);
        }
        const filter = { status, beforeId: beforeParam ? Number(beforeParam) : undefined };
        const rows = await readOnly(pool, (q) => Q.exportRequests(q, { ...filter, limit: PAGE_SIZE + 1 }));
        return send(res, 200, exportsHtml(ctxOf(), filter, rows.slice(0, PAGE_SIZE), rows.length > PAGE_SIZE), headers);
      }
      default:
        return errorPage(res, 404, "no such console page");
    }
  }

  async function action(req: http.IncomingMessage, res: http.ServerResponse, name: string, viewer: Viewer, all: ConsoleDatabase[]) {
    let form: URLSearchParams;
    try {
      form = await readForm(req);
    } catch (error) {
      return errorPage(res, 400, errorMessage(error));
    }
    const problem = csrfProblem(req, form.get(CSRF_FIELD) ?? undefined);
    if (problem) return errorPage(res, 403, `refused: ${problem}`);
    const target = all.find((d) => d.name === form.get("db"));
    if (!target?.pool) return errorPage(res, 409, target ? `database ${target.name} is not reachable now` : "no such served database");
    const db = encodeURIComponent(target.name);
    try {
      if (name === "retry") {
        const job = Number(form.get("job"));
        if (!Number.isSafeInteger(job) || job <= 0) return errorPage(res, 400, "expected a job id");
        await retryJob(target.pool, job, viewer.who);
        source.logger.info({ database: target.name, job, by: viewer.who }, "console: job retried");
        return redirect(res, `/console/jobs?db=${db}&notice=retried&job=${job}`);
      }
      if (name === "backup") {
        const database = form.get("database") ?? "";
        if (!target.backupTargets.includes(database)) return errorPage(res, 409, `this worker instance does not back up ${JSON.stringify(database)}`);
        const job = await enqueueBackup(target.pool, source.tasks, database, viewer.who);
        source.logger.info({ database, job, by: viewer.who }, "console: backup queued");
        return redirect(res, `/console/backups?db=${db}&database=${encodeURIComponent(database)}&notice=backup&job=${job}`);
      }
      if (name === "test-restore") {
        if (!target.backupTargets.length) return errorPage(res, 409, "this worker instance backs up no database: nothing to test-restore");
        const job = await enqueueTestRestore(target.pool, source.tasks, viewer.who);
        source.logger.info({ database: target.name, job, by: viewer.who }, "console: test restore queued");
        return redirect(res, `/console/backups?db=${db}&notice=test-restore&job=${job}`);
      }
    } catch (error) {
      if (error instanceof UserError) return errorPage(res, 409, error.message);
      throw error;
    }
    return errorPage(res, 404, "no such action");
  }

  async function cachedDaily(database: string, read: () => ReturnType<typeof Q.jobCounts>) {
    const known = dailyCounts.get(database);
    if (known && Date.now() - known.at < DAILY_COUNTS_TTL_MS) return known.rows;
    const rows = await read();
    dailyCounts.set(database, { at: Date.now(), rows });
    return rows;
  }

  async function backupsPage(ctx: PageContext, d: ConsoleDatabase, pool: pg.Pool, asked: string | null): Promise<string> {
    const now = new Date();
    const config = d.config;
    const data = await readOnly(pool, async (q) => {
      const inCatalog = await Q.catalogDatabases(q);
      const databases = [...new Set([...d.backupTargets, ...inCatalog])];
      const database = databases.find((x) => x === asked) ?? databases[0] ?? d.name;
      const since = new Date(now.getTime() - 366 * 86_400_000);
      return {
        databases,
        database,
        status: (await Q.backupStatus(q)).find((s) => s.database === database),
        backups: await Q.backupsSince(q, database, since),
        candidates: await Q.retentionCandidates(q, database),
        copies: await Q.offsiteCopies(q, database),
      };
    });
    const regular = data.candidates.filter((c) => !c.final);
    const plan = planRetention(
      regular.map((c) => ({ id: c.id, at: c.started_at })),
      now,
      config.retention,
    );
    const held = (c: (typeof regular)[number]) => Boolean(config.offsite.url) && !c.offsite_done;
    const retention: RetentionView = {
      keep: [
        ...data.candidates.filter((c) => c.final).map((c) => ({ ...c, tiers: ["final" as const] })),
        ...regular.filter((c) => plan.keep.has(c.id)).map((c) => ({ ...c, tiers: plan.keep.get(c.id)! })),
        ...regular.filter((c) => !plan.keep.has(c.id) && held(c)).map((c) => ({ ...c, tiers: ["offsite pending" as const] })),
      ],
      prune: regular.filter((c) => !plan.keep.has(c.id) && !held(c)),
    };
    return backupsHtml(ctx, {
      ...data,
      canRun: d.backupTargets.includes(data.database),
      canTestRestore: d.backupTargets.length > 0,
      calendar: backupCalendar(data.backups, now, config.retention.timeZone),
      retention,
      offsiteConfigured: Boolean(config.offsite.url),
      range: [Math.floor(now.getTime() / 1000) - 366 * 86_400, Math.ceil(now.getTime() / 1000)],
    });
  }

  return {
    handle(req, res) {
      const url = new URL(req.url ?? "/", "http://console.invalid");
      if (url.pathname !== "/console" && !url.pathname.startsWith("/console/")) return false;
      const decision = decideAccess(req, source.access);
      if (!decision.ok) {
        res.writeHead(decision.status, { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8", ...decision.headers }).end(decision.body);
        return true;
      }
      if (url.pathname === "/console") {
        redirect(res, "/console/");
        return true;
      }
      if (url.pathname.startsWith("/console/static/")) {
        const asset = assets().get(url.pathname.slice("/console/static/".length));
        if (!asset) errorPage(res, 404, "no such file");
        else
          res
            .writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "public, max-age=3600" })
            .end(req.method === "HEAD" ? undefined : asset.body);
        return true;
      }
      let csrf = cookieValue(req.headers.cookie, "pmt_console_csrf");
      const setCookie: string[] = [];
      if (!csrf || !/^[A-Za-z0-9_-]{43}$/.test(csrf)) {
        csrf = newCsrfToken();
        setCookie.push(csrfCookieHeader(csrf));
      }
      route(req, res, url, decision.viewer, csrf, setCookie).catch((error) => {
        if (error instanceof UserError) {
          if (!res.headersSent) errorPage(res, 400, error.message);
          else res.end();
          return;
        }
        source.logger.error({ err: errorMessage(error), path: url.pathname }, "console: page failed");
        const message = redactText(errorMessage(error));
        if (!res.headersSent) errorPage(res, 500, `the page failed: ${decision.viewer.authenticated ? message : maskEmails(message)}`);
        else res.end();
      });
      return true;
    },
    async close() {
      clearInterval(sweeper);
      sweeper = undefined;
      await Promise.all([...feeds.values()].map((f) => f.feed.close()));
      feeds.clear();
    },
  };
}

function redirect(res: http.ServerResponse, location: string): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, "cache-control": "no-store" }).end();
}

/** A live event as this viewer may see it: its payload summary as the JSON text the page shows, addresses masked unless signed in. */
function present(event: LiveEvent, viewer: Viewer): JobEvent & { payload: string } {
  const { payload_summary, ...rest } = event;
  const json = payload_summary === undefined || payload_summary === null ? "" : JSON.stringify(payload_summary);
  const payload = json === "{}" ? "" : json;
  if (viewer.authenticated) return { ...rest, payload };
  return {
    ...rest,
    error: rest.error && maskEmails(rest.error),
    error_class: rest.error_class && maskEmails(rest.error_class),
    payload: maskEmails(payload),
  };
}

/** "2026-12-01T13:00" (a datetime-local, UTC) or a full ISO time; a UserError (400) naming the parameter otherwise. */
function parseTime(value: string | null, name: string): Date | undefined {
  if (!value) return undefined;
  const day = /^(\d{4})-(\d\d)-(\d\d)T\d\d:\d\d/.exec(value);
  const d = day ? new Date(/Z|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`) : undefined;
  // Date rolls 2026-11-31 over to December: the day must exist in its month.
  const exists = day && new Date(Date.UTC(+day[1]!, +day[2]! - 1, +day[3]!)).getUTCDate() === +day[3]! && +day[2]! <= 12;
  if (!d || Number.isNaN(d.getTime()) || !exists || +day![1]! < 1) {
    throw new UserError(`${name}: ${JSON.stringify(value.slice(0, 60))} is not a time: expected YYYY-MM-DDTHH:MM (UTC) or an ISO 8601 time`);
  }
  return d;
}

export function jobsFilter(url: URL): JobsFilter {
  const status = url.searchParams.get("status") ?? "";
  if (status && !(JOB_STATUSES as readonly string[]).includes(status)) {
    throw new UserError(`status: ${JSON.stringify(status.slice(0, 60))} is not a job status: expected one of ${JOB_STATUSES.join(", ")}`);
  }
  return {
    task: url.searchParams.get("task")?.slice(0, 200) || undefined,
    status: status ? (status as JobStatus) : undefined,
    from: parseTime(url.searchParams.get("from"), "from"),
    to: parseTime(url.searchParams.get("to"), "to"),
    before: parseCursor(url.searchParams.get("before"), "before"),
    after: parseCursor(url.searchParams.get("after"), "after"),
  };
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers["content-type"] ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded")) throw new UserError("expected a form (application/x-www-form-urlencoded)");
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new UserError(`the form is larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
