/**
 * An export's delivery (the export job's body, jobs/export.ts): render the
 * request's file into the spool (streamed), then mail it. Its state is in pmt_jobs.export_request, so a retry knows where the
 * last attempt stopped:
 *   sent / failed            -> nothing to do
 *   send_started_at, no sent -> an earlier attempt stopped inside the SMTP
 *                               transaction: it may have been delivered, so
 *                               it is not sent again (recorded as such)
 *   anything else            -> render and send
 * Exactly one mail: every change before the send is made only while this
 * attempt holds its job lock (requests.ts), and the send is claimed once, by
 * the attempt holding the lock. A worker that resumes after its job was
 * rescued (frozen past WORKER_DEAD_AFTER_SECONDS) finds its lock gone and
 * stops with FencedJobError, having sent nothing.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import type { Config } from "../config.js";
import { FencedJobError, PermanentJobError } from "../errors.js";
import type { Logger } from "../log.js";
import { classifySmtpError } from "../mail/classify.js";
import { exportMessage, linkMessage, tooLargeMessage } from "./messages.js";
import { untilDatabaseAnswers } from "../db/resilient.js";
import { shareFile } from "../offsite/share.js";
import { createS3Client, objectKey, parseOffsiteUrl } from "../offsite/target.js";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Mailer } from "../mail/transport.js";
import { renderCsv } from "./csv.js";
import { renderIati } from "./iati.js";
import {
  beginAttempt,
  claimSend,
  exportHead,
  getRequest,
  holdsJob,
  markFailed,
  markNoticeSent,
  markSent,
  markShared,
  markUnsent,
  type Attempt,
  type ExportRequest,
  type Rendered,
} from "./requests.js";
import { exportRows, type ExportRow } from "./rows.js";
import { gzipSpool, measureSpool, readSpool, spoolDir, writeSpool, type SpoolFile } from "./spool.js";
import { humanBytes } from "../human.js";

export interface ExportDeps {
  config: Config;
  pool: pg.Pool;
  logger: Logger;
  mailer: Mailer;
  /** The queue database's name: request ids are per database, and the spool is the process's. */
  database: string;
}

async function* counted(rows: AsyncIterable<ExportRow>, counter: { n: number }): AsyncGenerator<ExportRow> {
  for await (const row of rows) {
    counter.n++;
    yield row;
  }
}

function attachmentName(req: ExportRequest, now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, "");
  const instance = req.instance.replace(/[^A-Za-z0-9_-]/g, "_").toLowerCase();
  return `${instance}_${day}.${req.format === "csv" ? "csv" : "xml"}`;
}

/** The file is the attempt's own: a stale attempt still rendering never writes into the file its retry mails. */
async function render(
  deps: ExportDeps,
  req: ExportRequest,
  attempt: number,
  head: Awaited<ReturnType<typeof exportHead>>,
): Promise<{ file: SpoolFile; rows: number }> {
  const database = deps.database.replace(/[^A-Za-z0-9_-]/g, "_");
  const file = path.join(spoolDir(deps.config.pmtHome), `export-${database}-${req.id}-${attempt}.${req.format === "csv" ? "csv" : "xml"}`);
  const counter = { n: 0 };
  const rows = counted(exportRows(deps.pool, req.filters, { iati: req.format === "iati" }), counter);
  const chunks =
    req.format === "csv"
      ? renderCsv({ ...head, disclaimer: deps.config.exportDisclaimer }, rows, { formulaPrefix: deps.config.exportCsvFormulaPrefix })
      : renderIati(deps.config.iati, rows);
  const written = await writeSpool(file, chunks);
  return { file: written, rows: counter.n };
}

/** Delivers export request `id` in job attempt `attempt`; one S3 client for all the deliveries of `deps`. */
export function exportDelivery(deps: ExportDeps): (id: number, attempt: Attempt) => Promise<void> {
  const { pool, logger, config, mailer } = deps;
  let s3: S3Client | undefined;
  return async (id, attempt) => {
    const req = await getRequest(pool, id);
    if (!req) throw new PermanentJobError(`export request ${id} does not exist`);
    const state = await beginAttempt(pool, attempt, id);
    if (state === "finished") {
      logger.info({ requestId: id }, "export request already finished; nothing to do");
      return;
    }
    if (state === "started") {
      logger.warn({ requestId: id }, "delivery unconfirmed: an earlier attempt began the SMTP transaction; not sent again");
      return;
    }

    const head = req.spool_file ? undefined : await exportHead(pool, req.filters);
    const filtersText = head ? head.filters.replace(/ \| $/, "") : "as dropped";
    const { file: rendered, rows } = head ? await render(deps, req, attempt.attempt, head) : { file: await measureSpool(req.spool_file!), rows: null };
    if (rows === 0) {
      fs.rmSync(rendered.path, { force: true });
      await markFailed(pool, attempt, id, "the filters matched no activity when the export ran", { rows: 0 });
      throw new PermanentJobError(`export request ${id}: the filters matched no activity when the export ran`);
    }

    let file = rendered;
    let attachment = attachmentName(req, new Date());
    let compressed = false;
    if (file.bytes > config.exportMaxAttachmentBytes) {
      file = await gzipSpool(rendered);
      fs.rmSync(rendered.path, { force: true });
      attachment += ".gz";
      compressed = true;
    }
    const info: Rendered = { rows, bytes: file.bytes, sha256: file.sha256, attachment, compressed };

    /**
     * Claims the send (the point of no return), then one SMTP transaction.
     * Accepted: the request is sent. Connection lost after the final dot: sent,
     * delivery unconfirmed, never retried. Refused for good (5xx): failed, no
     * retry, spool file gone. Otherwise: the claim is given back and the job
     * retried. Returns the claiming job_run id, or null if another attempt had
     * begun sending (nothing sent here).
     */
    const send = async (message: Parameters<Mailer["send"]>[0]): Promise<number | null> => {
      // A claim whose reply was lost is claimed again by this attempt once the database answers, not left unsent.
      const claim = await untilDatabaseAnswers(() => claimSend(pool, attempt, id, info), logger, "claiming an export's send");
      if (claim.state !== "open") {
        logger.warn({ requestId: id, state: claim.state }, "another attempt began sending this export; not sent again");
        return null;
      }
      let sent;
      try {
        sent = await mailer.send(message);
      } catch (error) {
        const failure = classifySmtpError(error);
        if (failure.unconfirmed) {
          const note = `delivery unconfirmed: ${failure.reason}; not sent again to avoid a second copy`;
          await untilDatabaseAnswers(() => markSent(pool, id, claim.runId, null, "unknown", note), logger, "recording an export's delivery");
          logger.warn({ requestId: id }, note);
          return claim.runId;
        }
        await untilDatabaseAnswers(() => markUnsent(pool, id, claim.runId, failure.permanent, failure.reason), logger, "recording an export's failed send");
        if (failure.permanent) {
          fs.rmSync(file.path, { force: true });
          throw new PermanentJobError(`export request ${id}: ${failure.reason}`, { cause: error });
        }
        throw new Error(`export request ${id}: ${failure.reason}`, { cause: error });
      }
      // Only this attempt knows the server's answer: it waits out a database outage to record it.
      await untilDatabaseAnswers(() => markSent(pool, id, claim.runId, sent.messageId, sent.response, null), logger, "recording an export's delivery");
      return claim.runId;
    };
    /**
     * A task that lost its job must not return: graphile-worker would then
     * delete the job, whoever holds it now. What it did is on the request.
     */
    const finish = async (): Promise<void> => {
      if (!(await holdsJob(pool, attempt))) {
        throw new FencedJobError(
          `export request ${id}: worker ${attempt.workerId} lost job ${attempt.jobId} attempt ${attempt.attempt} while sending; the outcome is recorded on the request`,
        );
      }
    };
    const body = { instance: req.instance, format: req.format, rows: rows ?? "the requested", filters: filtersText, attachment };

    const target = config.offsite.url ? parseOffsiteUrl(config.offsite.url) : undefined;
    if (file.bytes > config.exportMaxAttachmentBytes && target?.kind === "s3") {
      // Too large to mail: put it on the offsite store and mail a link.
      s3 ??= createS3Client(config.offsite);
      const key = objectKey(target.prefix, "exports", req.instance, `${id}-${attachment}`);
      const link = await shareFile(s3, target.bucket, key, file, config.exportLinkDays, attachment);
      await markShared(pool, attempt, id, key, link.expiresAt);
      if ((await send(linkMessage(config, req, body, link))) !== null) fs.rmSync(file.path, { force: true });
      logger.info({ requestId: id, bytes: file.bytes, key }, "export too large to mail; sent a download link");
      return finish();
    }

    if (file.bytes > config.exportMaxAttachmentBytes) {
      const reason = `too large to mail: ${humanBytes(file.bytes)} compressed, the limit is ${humanBytes(config.exportMaxAttachmentBytes)}; narrow the filters`;
      fs.rmSync(file.path, { force: true });
      const runId = await send(tooLargeMessage(config, req, body, reason));
      if (runId !== null) await markNoticeSent(pool, id, runId, reason);
      logger.warn({ requestId: id, bytes: file.bytes }, "export too large to mail; the recipient was told");
      return finish();
    }

    // The attachment is read from a descriptor checked to be this very file (no link, one name, the size measured).
    const content = readSpool(file);
    let runId: number | null;
    try {
      runId = await send(exportMessage(config, req, body, content));
    } finally {
      content.destroy();
    }
    if (runId !== null) {
      if (config.exportKeepHours === 0) fs.rmSync(file.path, { force: true });
      logger.info({ requestId: id, rows, bytes: file.bytes, via: mailer.target }, "export sent");
    }
    return finish();
  };
}
