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
import { bodyTemplate, fillTemplate } from "../../src/exports/messages.js";
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
    await expect(untrusted.send({ from: "a@example.org", to: "b@example.org", subject: "x", text: "x" })).rejects.toThrow(/self[- ]signed certificate/);
    untrusted.close();
  });
});

describe("a connection lost during the SMTP transaction", () => {
  const message = {
    from: "a@example.org",
    to: "b@example.org",
    subject: "Data Request",
    text: "hello",
    attachments: [{ filename: "x.csv", content: "a,b\r\n".repeat(50_000) }],
  };

  it.each([
    ["STARTTLS", false],
    ["plain SMTP", undefined],
  ])("after the final dot (%s): the server has the mail, the failure says delivery unconfirmed", async (_name, implicit) => {
    const tls = implicit === undefined ? undefined : { ...(await certificate()), implicit };
    const sink = await SmtpSink.start(tls);
    sinks.push(sink);
    sink.dropAfterStore = 1;
    const mailer = createSmtpMailer(sink.url, tls?.caFile);
    const error = await mailer.send(message).then(
      () => undefined,
      (e: unknown) => e,
    );
    mailer.close();
    expect(sink.messages).toHaveLength(1);
    expect(error).toBeInstanceOf(Error);
    expect(classifySmtpError(error)).toMatchObject({ permanent: false, unconfirmed: true });
    expect(classifySmtpError(error).reason).toMatch(
      /^the connection to the mail server was lost after the whole message was sent, before its reply \(E[A-Z]+: /,
    );
  });

  it("at MAIL FROM, before any of the message: safe to retry, and the retry delivers it once", async () => {
    const sink = await SmtpSink.start();
    sinks.push(sink);
    sink.dropAtMailFrom = 1;
    const mailer = createSmtpMailer(sink.url);
    const error = await mailer.send(message).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(sink.messages).toHaveLength(0);
    expect(classifySmtpError(error)).toMatchObject({ permanent: false, unconfirmed: false });
    expect(classifySmtpError(error).reason).toMatch(/^the mail server could not be reached/);
    await mailer.send(message);
    mailer.close();
    expect(sink.messages).toHaveLength(1);
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
    expect(classifySmtpError(error).unconfirmed).toBe(false);
  });

  it.each([
    [{ code: "ECONNECTION", command: "CONN", message: "Connection closed unexpectedly", messageSent: true }, "unconfirmed"],
    [{ code: "ETIMEDOUT", command: "CONN", message: "Timeout", messageSent: true }, "unconfirmed"],
    [{ code: "ECONNECTION", command: "CONN", message: "Connection closed unexpectedly", messageSent: false }, "retry"],
    // The server answered after the final dot: it said what it did with the message.
    [{ code: "EMESSAGE", responseCode: 451, response: "451 try later", messageSent: true }, "retry"],
    [{ code: "EMESSAGE", responseCode: 552, response: "552 too big", messageSent: true }, "refused"],
  ])("%j after the message: %s", (error, outcome) => {
    const f = classifySmtpError(error);
    expect(f.unconfirmed ? "unconfirmed" : f.permanent ? "refused" : "retry").toBe(outcome);
  });
});
