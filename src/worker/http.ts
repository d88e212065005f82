/**
 * /healthz: 200 when the database answers and the worker runs, 503 otherwise,
 * with a JSON body saying which. /metrics: Prometheus text.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type pg from "pg";
import { UserError, errorMessage } from "../errors.js";
import { redactText } from "../redact.js";
import type { Metrics } from "./metrics.js";

export interface HealthSource {
  pool: pg.Pool;
  metrics: Metrics;
  /** Why the worker is not running, or null when it is. */
  workerProblem(): string | null;
}

const DB_TIMEOUT_MS = 2000;

export async function checkHealth(source: HealthSource): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  let database: string;
  try {
    await Promise.race([
      source.pool.query("select 1"),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${DB_TIMEOUT_MS} ms`)), DB_TIMEOUT_MS).unref()),
    ]);
    database = "ok";
  } catch (error) {
    database = redactText(errorMessage(error)) || "unreachable";
  }
  const worker = source.workerProblem() ?? "running";
  const ok = database === "ok" && worker === "running";
  return { ok, body: { status: ok ? "ok" : "unavailable", database, worker } };
}

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(source: HealthSource, host: string, port: number): Promise<HttpServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url === "/healthz") {
      void checkHealth(source).then(({ ok, body }) => {
        res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(body) + "\n");
      });
    } else if (url === "/metrics") {
      source.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": source.metrics.registry.contentType }).end(text),
        (error) => res.writeHead(500, { "content-type": "text/plain" }).end(redactText(errorMessage(error)) + "\n"),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz or /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  }).catch((error: NodeJS.ErrnoException) => {
    throw new UserError(
      error.code === "EADDRINUSE"
        ? `HTTP_PORT ${port} on ${host} is already in use: choose another port (0 picks a free one)`
        : `cannot listen on ${host}:${port}: ${error.message}`,
    );
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
