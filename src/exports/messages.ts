/** The export mails. Pure: request and numbers in, nodemailer message out. */
import type { Readable } from "node:stream";
import type Mail from "nodemailer/lib/mailer/index.js";
import type { Config } from "../config.js";
import type { ExportRequest } from "./requests.js";

export interface BodyFields {
  instance: string;
  format: string;
  rows: number | string;
  filters: string;
  attachment: string;
}

export const SUBJECT = "Data Request";

/** Fills {instance}, {format}, {rows}, {filters}, {attachment}; unknown {names} stay as they are. */
export function fillTemplate(template: string, fields: BodyFields): string {
  return template.replace(/\{(instance|format|rows|filters|attachment)\}/g, (_, key: keyof BodyFields) => String(fields[key]));
}

export function bodyTemplate(config: Config, instance: string): string {
  return config.exportMailBodies[instance.toLowerCase()] ?? config.exportMailBody;
}

/** Stable per request, so a resent copy would be recognisable as the same message. */
export function exportMessageId(req: ExportRequest): string {
  return `<export-${req.id}.${req.instance.replace(/[^A-Za-z0-9_-]/g, "_")}@pmt-worker>`;
}

/** `content`: the file's bytes, streamed from a checked descriptor; never a path nodemailer would open (and follow) itself. */
export function exportMessage(config: Config, req: ExportRequest, fields: BodyFields, content: Readable): Mail.Options {
  const contentType = fields.attachment.endsWith(".gz") ? "application/gzip" : req.format === "csv" ? "text/csv; charset=utf-8" : "application/xml";
  return {
    from: config.mailFrom,
    to: req.recipient,
    subject: SUBJECT,
    text: fillTemplate(bodyTemplate(config, req.instance), fields),
    messageId: exportMessageId(req),
    attachments: [{ filename: fields.attachment, content, contentType }],
  };
}

export function tooLargeMessage(config: Config, req: ExportRequest, fields: BodyFields, reason: string): Mail.Options {
  return {
    from: config.mailFrom,
    to: req.recipient,
    subject: SUBJECT,
    text:
      `Your data request from the Portfolio Mapping Tool (${req.instance}) matched ${fields.rows} activities, ` +
      `which is ${reason}.\nFilters: ${fields.filters}\n`,
    messageId: exportMessageId(req),
  };
}

export function linkMessage(config: Config, req: ExportRequest, fields: BodyFields, link: { url: string; expiresAt: Date }): Mail.Options {
  return {
    from: config.mailFrom,
    to: req.recipient,
    subject: SUBJECT,
    text:
      `${fillTemplate(bodyTemplate(config, req.instance), fields)}\n\n` +
      `The file (${fields.attachment}) is too large to attach. Download it until ${link.expiresAt.toISOString().slice(0, 16).replace("T", " ")} UTC:\n${link.url}\n`,
    messageId: exportMessageId(req),
  };
}
