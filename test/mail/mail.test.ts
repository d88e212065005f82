/**
 * The mailer against a real SMTP server over STARTTLS and implicit TLS with a
 * private CA; message composition; SMTP error classification.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import selfsigned from "selfsigned";
import { afterAll, describe, expect, it } from "vitest";
import { classifySmtpError } from "../../src/mail/classify.js";
import { bodyTemplate, fillTemplate } from "../../src/mail/compose.js";
import { createSmtpMailer } from "../../src/mail/transport.js";
import { SmtpSink } from "../harness/smtp.js";
import { testConfig } from "../harness/worker.js";

const sinks: SmtpSink[] = [];
afterAll(async () => {
  for (const s of sinks) await s.down();
});

async function certificate() {
  const pems = await selfsigned.generate([{ name: "commonName", value: "127.0.0.1" }], {
    notAfterDate: new Date(Date.now() + 24 * 3600 * 1000),
    keySize: 2048,
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }] }],
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-ca-"));
  const caFile = path.join(dir, "ca.pem");
  fs.writeFileSync(caFile, pems.cert);
  return { key: pems.private, cert: pems.cert, caFile };
}

describe("SMTP over TLS", () => {
  it.each([
    ["STARTTLS", false],
    ["implicit TLS", true],
  ])("delivers over %s when SMTP_CA_FILE trusts the server's certificate, and refuses without it", async (_name, implicit) => {
    const { key, cert, caFile } = await certificate();
    const sink = await SmtpSink.start({ key, cert, implicit });
    sinks.push(sink);
    const trusted = createSmtpMailer(sink.url, caFile);
    const sent = await trusted.send({ from: "a@example.org", to: "b@example.org", subject: "Data Request", text: "hello" });
    trusted.close();
    expect(sent.response).toMatch(/^250/);
    expect(sink.messages).toHaveLength(1);
    expect(sink.lastSecure).toBe(true);

    const untrusted = createSmtpMailer(sink.url);
    await expect(untrusted.send({ from: "a@example.org", to: "b@example.org", subject: "x", text: "x" })).rejects.toThrow(
      /self[- ]signed certificate/,
    );
    untrusted.close();
  });
});

describe("composition", () => {
  it("fills the body template and picks the instance's own body", () => {
    const config = testConfig({ EXPORT_MAIL_BODIES: '{"BMGF": "Dear grantee, {rows} rows of {instance}."}' });
    expect(fillTemplate(bodyTemplate(config, "bmgf"), { instance: "bmgf", format: "csv", rows: 3, filters: "none", attachment: "x" })).toBe(
      "Dear grantee, 3 rows of bmgf.",
    );
    expect(fillTemplate(bodyTemplate(config, "pmt"), { instance: "pmt", format: "csv", rows: 3, filters: "none", attachment: "x" })).toBe(
      "Attached is your data request from the Portfolio Mapping Tool (pmt): 3 activities, csv.\nFilters: none",
    );
    expect(() => testConfig({ EXPORT_MAIL_BODIES: "[1]" })).toThrow(/EXPORT_MAIL_BODIES: expected a JSON object/);
  });
});

describe("classifySmtpError", () => {
  it.each([
    [{ code: "EENVELOPE", responseCode: 550, response: "550 no such user" }, true],
    [{ code: "EMESSAGE", responseCode: 552, response: "552 too big" }, true],
    [{ code: "EENVELOPE", responseCode: 450, response: "450 try later" }, false],
    [{ code: "EAUTH", responseCode: 535, response: "535 bad credentials" }, false],
    [{ code: "ECONNECTION", message: "connect ECONNREFUSED" }, false],
    [{ code: "ETIMEDOUT", message: "timeout" }, false],
    [new Error("weird"), false],
  ])("%j permanent=%s", (error, permanent) => {
    expect(classifySmtpError(error).permanent).toBe(permanent);
  });
});
