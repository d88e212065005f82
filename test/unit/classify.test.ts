/**
 * What an SMTP failure means for the export's retry (src/mail/classify.ts):
 * the real nodemailer errors are produced against smtp-server in
 * test/mail; here each class of answer, without a server.
 */
import { describe, expect, it } from "vitest";
import { classifySmtpError } from "../../src/mail/classify.js";

describe("classifySmtpError", () => {
  it.each([
    [
      { code: "EENVELOPE", responseCode: 550, response: "550 5.1.1 no such user" },
      { permanent: true, unconfirmed: false },
      /refused it permanently \(550 5\.1\.1 no such user\)/,
    ],
    [{ code: "EMESSAGE", responseCode: 552, response: "552 too large" }, { permanent: true, unconfirmed: false }, /permanently/],
    [{ code: "EENVELOPE", responseCode: 451, response: "451 greylisted" }, { permanent: false, unconfirmed: false }, /deferred it \(451 greylisted\)/],
    [{ code: "EAUTH", responseCode: 535, response: "535 bad credentials" }, { permanent: false, unconfirmed: false }, /rejected the login; check SMTP_URL/],
    [{ code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:25" }, { permanent: false, unconfirmed: false }, /could not be reached \(ECONNREFUSED: /],
    [{ code: "ECONNRESET", message: "socket hang up", messageSent: true }, { permanent: false, unconfirmed: true }, /lost after the whole message was sent/],
    [{ code: "ETIMEDOUT", message: "timeout", messageSent: false }, { permanent: false, unconfirmed: false }, /could not be reached/],
  ])("%j", (error, expected, reason) => {
    const failure = classifySmtpError(error);
    expect(failure).toMatchObject(expected);
    expect(failure.reason).toMatch(reason);
  });

  it("a server's 4xx wins over a lost connection: it answered, so nothing was delivered", () => {
    expect(classifySmtpError({ responseCode: 421, response: "421 closing", messageSent: true })).toMatchObject({ permanent: false, unconfirmed: false });
  });

  it("copes with anything thrown", () => {
    expect(classifySmtpError(undefined)).toMatchObject({ permanent: false, unconfirmed: false });
    expect(classifySmtpError("boom").reason).toMatch(/boom/);
  });
});
