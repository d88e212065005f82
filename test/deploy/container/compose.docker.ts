/**
 * docker-compose.yml brought up for real, with local stand-ins under its
 * image names (test/deploy/compose/, built by .ci/container): the worker
 * becomes healthy after PostgreSQL's init scripts without a restart, backs up
 * with an offsite copy to the S3 service, and mails an export to the mail
 * sink; every published port is on 127.0.0.1.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../harness/cli.js";
import { freePort } from "../../harness/net.js";
import { until } from "../../harness/wait.js";

const run = promisify(execFile);
const PROJECT = `pmtci${process.pid}`;
let env: NodeJS.ProcessEnv;
let ports: { s3: number; mail: number; metrics: number };

async function compose(...args: string[]): Promise<string> {
  const { stdout } = await run("docker-compose", ["-p", PROJECT, "-f", "docker-compose.yml", ...args], {
    cwd: ROOT,
    env,
    maxBuffer: 64 * 2 ** 20,
    timeout: 300_000,
  });
  return stdout;
}
const inspect = async (id: string, format: string) => (await run("docker", ["inspect", "-f", format, id])).stdout.trim();
const container = async (service: string) => (await compose("ps", "-q", service)).trim();

beforeAll(async () => {
  ports = { s3: await freePort(), mail: await freePort(), metrics: await freePort() };
  env = {
    ...process.env,
    PMT_POSTGRES_IMAGE: "pmt-ci/standin-postgres",
    PMT_S3_IMAGE: "pmt-ci/standin-minio",
    PMT_MC_IMAGE: "pmt-ci/standin-tools",
    PMT_MAIL_IMAGE: "pmt-ci/standin-mailpit",
    PMT_WORKER_IMAGE: process.env.PMT_CI_IMAGE ?? "pmt-worker:ci",
    PMT_S3_PORT: String(ports.s3),
    PMT_MAIL_PORT: String(ports.mail),
    PMT_METRICS_PORT: String(ports.metrics),
  };
  await compose("up", "-d", "--no-build");
});

afterAll(async () => {
  if (env) await compose("down", "-v", "--timeout", "60");
});

describe("docker compose up", () => {
  it("starts the worker healthy once PostgreSQL's init scripts ran, with nothing published beyond 127.0.0.1", async () => {
    const worker = await container("worker");
    await until(async () => (await inspect(worker, "{{.State.Health.Status}}")) === "healthy", "the worker to be healthy", 180_000, 1000).catch(
      async (error) => {
        throw new Error(`${(error as Error).message}; worker log:\n${(await compose("logs", "--tail", "40", "worker")).slice(-4000)}`);
      },
    );
    // A socket-only healthcheck would let it start during the init scripts, fail, and restart.
    expect(await inspect(worker, "{{.RestartCount}}")).toBe("0");
    for (const service of ["postgres", "minio", "mailpit", "worker"]) {
      expect(await inspect(await container(service), "{{.HostConfig.RestartPolicy.Name}}"), service).toBe("unless-stopped");
    }
    expect(await inspect(worker, "{{.Config.StopTimeout}}")).toBe("600");
    const published = await Promise.all(["minio", "mailpit", "worker"].map(async (s) => (await run("docker", ["port", await container(s)])).stdout.trim()));
    expect(published).toEqual([`9000/tcp -> 127.0.0.1:${ports.s3}`, `8025/tcp -> 127.0.0.1:${ports.mail}`, `9464/tcp -> 127.0.0.1:${ports.metrics}`]);
    expect((await fetch(`http://127.0.0.1:${ports.metrics}/healthz`)).status).toBe(200);
  });

  it("backs up with an offsite copy and mails an export", async () => {
    const backup = await compose("exec", "-T", "worker", "pmt-worker", "backup", "run");
    expect(backup).toMatch(/^pmt: backup \d+ succeeded, .* offsite copy verified$/m);
    expect(
      await compose("exec", "-T", "postgres", "psql", "-U", "pmt", "-d", "pmt", "-Atc", "select pmt_filter_csv('', '', '', null, null, 'ida@example.org')"),
    ).toBe("t\n");
    const messages = await until(
      async () => {
        const body = (await (await fetch(`http://127.0.0.1:${ports.mail}/api/v1/messages`)).json()) as {
          messages: { To: { Address: string }[]; Subject: string }[];
        };
        return body.messages.length > 0 && body.messages;
      },
      "the export mail at the mail sink",
      60_000,
      500,
    );
    expect(messages.map((m) => [m.To.map((t) => t.Address), m.Subject])).toEqual([[["ida@example.org"], "Data Request"]]);
  });
});
