/**
 * Who may see the console and do its actions. With CONSOLE_PASSWORD: HTTP
 * Basic authentication, the user and password compared in constant time
 * (timingSafeEqual on SHA-256 digests, so neither length nor content leaks
 * through timing). Without it (loopback only: config.ts refuses any other
 * HTTP_HOST), the console is open, recipients' addresses are masked, and
 * requests must name a loopback Host (a DNS-rebinding page cannot reach it).
 *
 * Actions are POSTs carrying a CSRF token: a random value in a SameSite=Strict
 * cookie, repeated in the form (double submit), compared in constant time;
 * a cross-site Origin or Sec-Fetch-Site is refused as well.
 */
import crypto from "node:crypto";
import type http from "node:http";
import { isLoopbackHost } from "../config.js";

export interface AccessConfig {
  user: string;
  /** Unset: open on loopback. */
  password?: string;
}

export const CSRF_COOKIE = "pmt_console_csrf";
export const CSRF_FIELD = "csrf";

const digest = (text: string) => crypto.createHash("sha256").update(text, "utf8").digest();

/** The Basic credentials equal user:password; constant time whatever the input. */
export function credentialsMatch(header: string | undefined, access: AccessConfig): boolean {
  if (access.password === undefined) return false;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  const given = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
  return crypto.timingSafeEqual(digest(given), digest(`${access.user}:${access.password}`));
}

export interface Viewer {
  /** Logged in with CONSOLE_PASSWORD: sees recipients' addresses. */
  authenticated: boolean;
  /** For the history: who asked ("console user admin from 127.0.0.1"). */
  who: string;
}

export type AccessDecision = { ok: true; viewer: Viewer } | { ok: false; status: number; headers: Record<string, string>; body: string };

export function decideAccess(req: http.IncomingMessage, access: AccessConfig): AccessDecision {
  const from = req.socket.remoteAddress ?? "?";
  if (access.password !== undefined) {
    if (credentialsMatch(req.headers.authorization, access))
      return { ok: true, viewer: { authenticated: true, who: `console user ${access.user} from ${from}` } };
    return {
      ok: false,
      status: 401,
      headers: { "www-authenticate": 'Basic realm="pmt-worker console", charset="UTF-8"' },
      body: "authentication required: the console's user and CONSOLE_PASSWORD\n",
    };
  }
  const host = hostName(req.headers.host);
  if (!host || !isLoopbackHost(host)) {
    return {
      ok: false,
      status: 421,
      headers: {},
      body: "the console without CONSOLE_PASSWORD answers only to a loopback Host (127.0.0.1, localhost, [::1])\n",
    };
  }
  // A reverse proxy on this machine connects from loopback with a loopback Host (nginx's default):
  // without a password, only a connection from this machine that nothing forwarded is let in.
  const forwarded = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "via"].some((h) => req.headers[h] !== undefined);
  if (!isLoopbackHost(from) || forwarded) {
    return {
      ok: false,
      status: 403,
      headers: {},
      body: "the console without CONSOLE_PASSWORD serves only this machine, directly (not through a proxy): set CONSOLE_PASSWORD to reach it otherwise\n",
    };
  }
  return { ok: true, viewer: { authenticated: false, who: `console (loopback, no password) from ${from}` } };
}

/** The host of a Host header ("127.0.0.1:9464" -> "127.0.0.1", "[::1]:80" -> "::1"). */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header) ?? /^([^:]+)(?::\d+)?$/.exec(header);
  return m?.[1];
}

export function newCsrfToken(): string {
  return crypto.randomBytes(32).toString("base64url");
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function csrfCookieHeader(token: string): string {
  return `${CSRF_COOKIE}=${token}; Path=/console; HttpOnly; SameSite=Strict`;
}

/** Why a POST is refused as a possible cross-site request, or undefined when it is not. */
export function csrfProblem(req: http.IncomingMessage, formToken: string | undefined): string | undefined {
  const site = req.headers["sec-fetch-site"];
  if (typeof site === "string" && site !== "same-origin" && site !== "none") return `a ${site} request (Sec-Fetch-Site)`;
  const origin = req.headers.origin;
  if (typeof origin === "string" && origin !== "null") {
    // Both as URL writes them (lower case, no default port): Host: Console.Example.org:443 is https://console.example.org.
    const hostOf = (url: string): string | undefined => {
      try {
        return new URL(url).host;
      } catch {
        return undefined;
      }
    };
    const originUrl = hostOf(origin) === undefined ? undefined : new URL(origin);
    const host = originUrl && req.headers.host ? hostOf(`${originUrl.protocol}//${req.headers.host}`) : undefined;
    if (!originUrl || originUrl.host !== host) return "the request's Origin is another site";
  }
  const cookie = cookieValue(req.headers.cookie, CSRF_COOKIE);
  if (!cookie || !formToken) return "no CSRF token (reload the page and try again)";
  if (!crypto.timingSafeEqual(digest(cookie), digest(formToken))) return "the CSRF token does not match (reload the page and try again)";
  return undefined;
}

/** "jane.doe@example.org" -> "j…@example.org": the address is not shown, its organisation is. */
export function maskEmails(text: string): string {
  // Any local part before an @, whatever follows it: a domain cut short (a payload summary's 200 characters) or not ASCII.
  return text.replace(/([^\s"'<>,;:()[\]@…])[^\s"'<>,;:()[\]@]*@/gu, "$1…@");
}
