/**
 * deploy/README.md, performed literally: its marked blocks (`<!-- guide:sh X -->`,
 * `<!-- guide:sql DB -->`) run in order in one root shell, as a DBA would type
 * them, on a fresh Debian PostgreSQL 15 cluster with Debian's authentication
 * (peer for postgres, passwords over TCP), PostGIS and a stand-in PMT database.
 * The only changes are the substitutions below, each of which must still apply
 * (so the guide and this test cannot drift apart): paths under a temporary
 * folder, the cluster's port, the checkout under test instead of a clone, a
 * local SMTP and S3 server in the env file, and the systemd unit started by
 * this test with systemd's rules (User=, WorkingDirectory=, EnvironmentFile=,
 * Environment=, ExecStartPre=, ExecStart=), and restarted by it for step 7.
 * Then: migrate, doctor, a backup with its offsite copy, a test restore, an
 * export and a restore must all have worked under the guide's roles; and after
 * step 7 the same service serves a second PMT database, oam, too: its exports,
 * its backups (with their offsite copies) and its health, each in oam's own
 * queue and catalog.
 *
 * Needs root and Debian's postgresql-15 with postgresql-15-postgis-3; without
 * them it skips with one line, unless PMT_GUIDE_REQUIRED=1 (CI).
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChildHandle, ROOT, runCli } from "../harness/cli.js";
import { readSystemdEnvFile } from "../harness/envfile.js";
import { GUIDE, guideBlocks } from "../harness/guide.js";
import { startPostgisCluster, type PostgisCluster } from "../harness/postgis.js";
import { S3Sink, S3RVER_CREDENTIALS } from "../harness/s3.js";
import { SmtpSink } from "../harness/smtp.js";
import { until } from "../harness/wait.js";

const UNIT = path.join(ROOT, "deploy/pmt-worker.service");
const USER = "pmt-worker";

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "it runs as root (useradd, runuser)";
  if (!fs.existsSync("/usr/lib/postgresql/15/bin/initdb")) return "Debian's postgresql-15 is not installed";
  if (!fs.existsSync("/usr/share/postgresql/15/extension/postgis.control")) return "postgresql-15-postgis-3 is not installed";
  return undefined;
}
const why = unavailable();
if (why && process.env.PMT_GUIDE_REQUIRED === "1") throw new Error(`the deployment guide test must run here (PMT_GUIDE_REQUIRED=1), but ${why}`);

/** Applies each [from, to]; one that no longer matches means the guide changed under the test. */
function substitute(text: string, pairs: [string | RegExp, string][], where: string): string {
  for (const [from, to] of pairs) {
    const next = typeof from === "string" ? text.split(from).join(to) : text.replace(from, to);
    if (next === text) throw new Error(`${where}: the guide no longer contains ${String(from)}; update test/deploy/guide.test.ts with it`);
    text = next;
  }
  return text;
}

/** PMT's web role, once per server: a superuser, as the old workaround made it. */
const PMT_WEB_ROLE = "create role pmt_write login password 'web-pw' superuser;";

/** The stand-in for an existing PMT instance's database: PostGIS, PMT's sample schema and data, PMT's own export functions. */
const existingPmt = (database: string) => `
create database ${database};
\\c ${database}
create extension postgis;
${fs.readFileSync(path.join(ROOT, "sql/pmt_sample_schema.sql"), "utf8")}
${fs.readFileSync(path.join(ROOT, "sql/pmt_demo_data.sql"), "utf8")}
select public.pmt_demo_seed(40);
create table public.gaul0 (gaul0_code integer primary key, name text, polygon geometry(Polygon, 4326));
insert into public.gaul0 values (1, 'Somewhere', 'SRID=4326;POLYGON((0 0, 1 0, 1 1, 0 0))');
create function public.pmt_filter_csv(character varying, character varying, character varying, date, date, text) returns boolean language sql as 'select true';
create function public.pmt_filter_iati(character varying, character varying, character varying, date, date, text) returns boolean language sql as 'select true';
`;

/** Runs psql as postgres over the cluster's socket. */
function psqlAsPostgres(cluster: PostgisCluster, sql: string, database = "postgres"): string {
  const r = spawnSync(
    "runuser",
    ["-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", cluster.socketDir, "-p", String(cluster.port), "-d", database],
    { input: sql, encoding: "utf8", cwd: "/" },
  );
  if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
  return r.stdout;
}

/** The unit's settings as systemd reads them (one value per key; ExecStart*= and Environment= as given). */
function readUnit(file: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) (out[m[1]!] ??= []).push(m[2]!);
  }
  return out;
}

if (why) {
  describe("deploy/README.md", () => {
    it(`cannot be performed here: ${why}`, () => {
      console.warn(`\n!!! the deployment guide was NOT tried: ${why} !!!\n`);
    });
  });
}

describe.skipIf(why)("deploy/README.md, followed literally on Debian 12 + PostgreSQL 15", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-guide-"));
  let cluster: PostgisCluster;
  let smtp: SmtpSink;
  let s3: S3Sink;
  let service: ChildHandle | undefined;
  let shell: ChildHandle | undefined;
  let createdUser = false;
  // opt: the guide's /opt/pmt-worker, the checkout under test installed where the service's user can read it (a clone in /root, mode 0700, is not).
  const paths = { varLib: path.join(tmp, "var/lib/pmt-worker"), etc: path.join(tmp, "etc/pmt-worker.env"), opt: path.join(tmp, "opt/pmt-worker") };

  beforeAll(async () => {
    fs.chmodSync(tmp, 0o755); // the service's user enters it, as it would /var/lib
    fs.mkdirSync(path.join(tmp, "var/lib"), { recursive: true });
    fs.mkdirSync(path.join(tmp, "etc"), { mode: 0o755 });
    fs.mkdirSync(path.join(tmp, "opt"), { mode: 0o755 });
    // Hard links where the file system allows (fast), else a copy.
    if (spawnSync("cp", ["-al", ROOT, paths.opt]).status !== 0) {
      fs.rmSync(paths.opt, { recursive: true, force: true });
      const copy = spawnSync("cp", ["-a", ROOT, paths.opt], { encoding: "utf8" });
      if (copy.status !== 0) throw new Error(`cannot install the checkout in ${paths.opt}: ${copy.stderr}`);
    }
    fs.chmodSync(paths.opt, 0o755);
    createdUser = spawnSync("id", ["-u", USER]).status !== 0;
    [cluster, smtp, s3] = await Promise.all([startPostgisCluster({ auth: "debian" }), SmtpSink.start(), S3Sink.start(["pmt-backups"])]);
    // Both instances exist before the DBA starts: step 7 adds oam's to the worker.
    psqlAsPostgres(cluster, [PMT_WEB_ROLE, existingPmt("pmt"), existingPmt("oam")].join("\n"));
  }, 180_000);

  afterAll(async () => {
    // A failed run may leave the guide's shell waiting at step 4: it must not go on without its cluster.
    if (shell && shell.child.exitCode === null) shell.kill("SIGKILL");
    if (service) {
      service.kill("SIGTERM");
      await service.exited;
    }
    await cluster?.stop();
    await smtp?.down();
    await s3?.close();
    if (createdUser) spawnSync("userdel", [USER]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** The DBA's edit of /etc/pmt-worker.env: this machine's database, mail and store. */
  function editedEnvFile(): string {
    const example = fs.readFileSync(path.join(ROOT, "deploy/pmt-worker.env.example"), "utf8");
    const edited = substitute(
      example,
      [
        ["@localhost:5432/pmt", `@127.0.0.1:${cluster.port}/pmt`],
        [/^SMTP_URL=.*$/m, `SMTP_URL=${smtp.url}`],
        [/^AWS_ACCESS_KEY_ID=.*$/m, `AWS_ACCESS_KEY_ID=${S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID}`],
        [/^AWS_SECRET_ACCESS_KEY=.*$/m, `AWS_SECRET_ACCESS_KEY=${S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY}`],
        [/^#S3_ENDPOINT=.*$/m, `S3_ENDPOINT=${s3.endpoint}`],
        [/^#S3_FORCE_PATH_STYLE=.*$/m, "S3_FORCE_PATH_STYLE=true"],
        ["/var/lib/pmt-worker", paths.varLib],
      ],
      "deploy/pmt-worker.env.example",
    );
    // Beside other tests on this machine: a free port for /metrics.
    const file = path.join(tmp, "edited.env");
    fs.writeFileSync(file, `${edited}HTTP_PORT=0\n`, { mode: 0o600 });
    return file;
  }

  /** The guide as one root shell script; "node" is the machine's (checked below), the unit is started by startService. */
  function script(): string {
    const blocks = guideBlocks(fs.readFileSync(GUIDE, "utf8"));
    expect(blocks.map((b) => `${b.kind} ${b.arg}`)).toEqual([
      "sh node",
      "sh install",
      "sql pmt",
      "sql template1",
      "sh first-run",
      "sh service",
      "sql pmt",
      "sh restore",
      "sql oam",
      "sh several",
      "sql oam",
    ]);
    const everywhere: [string, string][] = [
      ["/var/lib/pmt-worker", paths.varLib],
      ["/etc/pmt-worker.env", paths.etc],
      ["/opt/pmt-worker", paths.opt],
    ];
    const per: Record<string, [string | RegExp, string][]> = {
      install: [
        // A machine that ran this test before keeps the user.
        ["useradd --system", `id -u ${USER} >/dev/null 2>&1 || useradd --system`],
        // The checkout under test is the clone, installed and built by CI; pruning would remove the tests' tools.
        [/^git clone .*\n/m, ""],
        [/^npm ci .*\n/m, ""],
        [/^npm prune .*\n/m, ""],
        ["deploy/pmt-worker.env.example", editedEnvFile()],
      ],
      service: [
        [/^cp deploy\/pmt-worker.service .*\n/m, ""],
        [/^systemctl daemon-reload\n/m, ""],
        // The test starts the unit (no systemd here) and answers when it runs.
        [/^systemctl enable --now pmt-worker$/m, 'echo "guide: start pmt-worker.service" >&2; read -r started'],
      ],
      several: [
        // The test restarts the unit and answers with the port it listens on (HTTP_PORT=0 here).
        [/^systemctl restart pmt-worker\b/m, 'echo "guide: restart pmt-worker.service" >&2; read -r PMT_GUIDE_HTTP_PORT'],
        ["curl -s localhost:9464/healthz", "curl -s 127.0.0.1:$PMT_GUIDE_HTTP_PORT/healthz"],
      ],
    };
    const parts = ["set -euo pipefail", `export PGHOST=${cluster.socketDir} PGPORT=${cluster.port}`];
    for (const b of blocks) {
      if (b.kind === "sh" && b.arg === "node") continue;
      let text = b.kind === "sh" ? substitute(b.text, per[b.arg] ?? [], `block ${b.arg}`) : b.text;
      for (const [from, to] of everywhere) text = text.split(from).join(to);
      parts.push(b.kind === "sql" ? `runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -d ${b.arg} <<'GUIDE_SQL'\n${text}GUIDE_SQL` : text);
    }
    return parts.join("\n");
  }

  /** pmt-worker.service as systemd would start it: its user, folder, environment and commands. */
  async function startService(): Promise<ChildHandle> {
    const unit = readUnit(UNIT);
    expect(unit.User).toEqual([USER]);
    expect(unit.WorkingDirectory).toEqual(["/opt/pmt-worker"]);
    expect(unit.EnvironmentFile).toEqual(["/etc/pmt-worker.env"]);
    const env: Record<string, string> = {
      PATH: `${path.dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      ...readSystemdEnvFile(paths.etc),
    };
    for (const line of unit.Environment ?? []) {
      for (const kv of line.split(/\s+/))
        env[kv.slice(0, kv.indexOf("="))] = kv
          .slice(kv.indexOf("=") + 1)
          .split("/var/lib/pmt-worker")
          .join(paths.varLib);
    }
    const command = (line: string) => ["-u", USER, "--", ...line.split(/\s+/)];
    const pre = spawnSync("runuser", command(unit.ExecStartPre![0]!), { cwd: paths.opt, env, encoding: "utf8" });
    expect(pre.status, `${pre.error ?? ""}${pre.stdout}${pre.stderr}`).toBe(0);
    const child = new ChildHandle(spawn("runuser", command(unit.ExecStart![0]!), { cwd: paths.opt, env }));
    await child.waitForOutput(/"msg":"worker started"/, 60_000);
    return child;
  }

  /** `systemctl restart`: the running service stopped as systemd stops it (SIGTERM, running jobs finish), then started again. */
  async function restartService(running: ChildHandle): Promise<ChildHandle> {
    running.kill("SIGTERM");
    await running.exited;
    return startService();
  }

  /** The port the service's /healthz listens on, from its "worker started" line. */
  function httpPort(child: ChildHandle): number {
    const line = child.stdout.split("\n").find((l) => l.includes('"msg":"worker started"'));
    const port = Number(/:(\d+)$/.exec((JSON.parse(line!) as { http: string }).http)?.[1]);
    expect(port, line).toBeGreaterThan(0);
    return port;
  }

  /** The first message with an attachment named like `name`, once it has arrived. */
  function mailWith(name: RegExp, to?: string) {
    return until(
      async () => smtp.messages.find((m) => m.attachments.some((a) => name.test(a.filename ?? "")) && (!to || [m.to].flat()[0]!.value[0]!.address === to)),
      () =>
        `a mail with an attachment ${name}${to ? ` to ${to}` : ""} (have: ${smtp.messages.map((m) => m.attachments.map((a) => a.filename).join(",")).join("; ")})`,
      90_000,
      100,
    );
  }

  /** A job's last attempt in a database's history, once it succeeded or failed for good. */
  function finishedJob(database: string, jobId: string) {
    return until(
      async () => {
        const row = psqlAsPostgres(
          cluster,
          `select status || '|' || coalesce(error, '') from pmt_jobs.job_run where job_id = ${jobId} and (status = 'succeeded' or (status = 'failed' and attempt = max_attempts)) order by id desc limit 1`,
          database,
        ).trim();
        return row || undefined;
      },
      `job ${jobId} in ${database} to succeed or fail for good`,
      120_000,
      200,
    );
  }

  /** A role of its own, not the guide's, and its database (owned by postgres, as PMT's is). */
  async function migrateAs(role: string, grants: string): Promise<{ code: number | null; stderr: string }> {
    psqlAsPostgres(cluster, `create role ${role} login password 'pw'; create database ${role}; ${grants.replaceAll("DB", role)}`);
    const url = `postgres://${role}:pw@127.0.0.1:${cluster.port}/${role}`;
    return runCli(["migrate"], { DATABASE_URL: url, PMT_HOME: path.join(tmp, role) });
  }

  it("before the DBA's step: migrate says which roles to create, rather than failing in a migration", async () => {
    const r = await migrateAs("pmt_early", "grant create on database DB to pmt_early; \\c DB\ngrant create on schema public to pmt_early;");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /the group roles are missing and this role may not create them .*as a DBA run once: create role pmt_app nologin; create role pmt_backup nologin;/,
    );
    expect(r.stderr).not.toMatch(/malformed array literal/);
  });

  it("ends with backups, an offsite copy, test restores, a restore and exports working under its roles", async () => {
    const started = new Date();
    const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
    expect(major > 20 || (major === 20 && minor >= 12), "the guide's Node is 20.12 or newer").toBe(true);

    const file = path.join(tmp, "guide.sh");
    fs.writeFileSync(file, script(), { mode: 0o700 });
    shell = new ChildHandle(spawn("bash", [file], { cwd: tmp, env: { ...process.env, HOME: "/root" }, stdio: ["pipe", "pipe", "pipe"] }));
    // "close", not "exit": all of its output has been read.
    const closed = new Promise<number | null>((resolve) => shell!.child.on("close", (c) => resolve(c)));
    const reaches = (marker: RegExp) =>
      Promise.race([
        shell!.waitForOutput(marker, 180_000).then(
          () => true,
          () => false,
        ),
        closed.then(() => false),
      ]);
    expect(await reaches(/guide: start pmt-worker\.service/), `the guide stopped before step 4:\n${shell.stdout}\n${shell.stderr}`).toBe(true);
    service = await startService();
    shell.child.stdin!.write("\n");
    expect(await reaches(/guide: restart pmt-worker\.service/), `the guide stopped before step 7's restart:\n${shell.stdout}\n${shell.stderr}`).toBe(true);
    service = await restartService(service);
    shell.child.stdin!.end(`${httpPort(service)}\n`);
    expect(await closed, `${shell.stdout}\n${shell.stderr}`).toBe(0);
    const out = shell.stdout;

    // Step 3: doctor has no FAIL (the script would have stopped) and says restores can run.
    expect(out).toMatch(/^OK\s+restore pmt\s+role pmt_worker may create databases \(restores and test restores\); postgis in template1/m);
    expect(out).not.toMatch(/^FAIL/m);
    expect(out).toMatch(/^pmt: backup 1 succeeded, .*, offsite copy verified$/m);
    expect(out).toMatch(/^pmt: test restore of backup 1 passed/m);
    // Step 6: the restore, PostGIS data included.
    expect(out).toMatch(/^restored backup 1 into pmt_restored: \d+ tables/m);
    expect(psqlAsPostgres(cluster, "select st_astext(polygon) from public.gaul0", "pmt_restored").trim()).toBe("POLYGON((0 0,1 0,1 1,0 0))");
    // The offsite copy is in the store.
    const stored = spawnSync("find", [s3.directory, "-name", "pmt_*"], { encoding: "utf8" }).stdout;
    expect(stored).toMatch(/pmt_\S+\.dump/);
    // Step 5: the export PMT requested, mailed by the service.
    const mail = await mailWith(/^pmt_\d{8}\.csv$/);
    expect([mail.to].flat()[0]!.value[0]!.address).toBe("dba@example.org");
    expect(mail.from!.value[0]).toMatchObject({ name: "PMT", address: "pmt@example.org" });
    expect(mail.text).not.toMatch(/OAM/);
    // Least privilege, as the guide states it.
    expect(psqlAsPostgres(cluster, "select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = 'pmt_worker'").trim()).toBe("f|f|t");
    expect(psqlAsPostgres(cluster, "select rolsuper from pg_roles where rolname = 'pmt_write'").trim()).toBe("f");

    await stepSeven(out, started);
  }, 480_000);

  /**
   * Step 7, judged by what the restarted service does (not by the commands'
   * output): it answers for both databases, mails oam's export with oam's body
   * from oam's own queue, still serves pmt, and backs oam up into oam's catalog.
   */
  async function stepSeven(out: string, started: Date): Promise<void> {
    expect(out).toMatch(/^\{"status":"ok","worker":"running","databases":\{"pmt":"ok","oam":"ok"\}\}$/m);

    // The export requested in oam as PMT's application role, named and worded as oam's.
    const oamMail = await mailWith(/^oam_\d{8}\.csv$/);
    const attachment = oamMail.attachments[0]!.filename!;
    const days = [started, new Date()].map((d) => d.toISOString().slice(0, 10).replace(/-/g, ""));
    expect(days).toContain(attachment.slice(4, 12));
    expect([oamMail.to].flat()[0]!.value[0]!.address).toBe("dba@example.org");
    expect(oamMail.text).toMatch(/^Attached is your OAM data request: \d+ activities, /);
    // ...from oam's own queue and history; pmt's holds none of it.
    const request = await until(
      async () =>
        psqlAsPostgres(cluster, "select instance, status, attachment, recipient from pmt_jobs.export_request", "oam")
          .trim()
          .match(/^.*\|sent\|.*$/)?.[0],
      "oam's export request to be sent",
      60_000,
      100,
    );
    expect(request).toBe(`oam|sent|${attachment}|dba@example.org`);
    expect(psqlAsPostgres(cluster, "select status from pmt_jobs.job_run where task = 'pmt_jobs.export'", "oam").trim()).toBe("succeeded");
    expect(psqlAsPostgres(cluster, "select count(*) from pmt_jobs.export_request where instance <> 'pmt'", "pmt").trim()).toBe("0");

    // pmt is still served by the restarted worker.
    psqlAsPostgres(cluster, "set role pmt_write; select pmt_filter_csv('', '', '', null, null, 'after@example.org');", "pmt");
    const after = await mailWith(/^pmt_\d{8}\.csv$/, "after@example.org");
    expect(after.text).not.toMatch(/OAM/);

    // Each database schedules its own backup (BACKUP_DATABASES unset: every served database)...
    const crontab = (db: string) =>
      psqlAsPostgres(cluster, "select identifier from graphile_worker._private_known_crontabs where identifier like 'backup:%' order by 1", db).trim();
    expect(crontab("oam")).toBe("backup:oam");
    expect(crontab("pmt")).toBe("backup:pmt");
    // ...and the service runs oam's as its cron item would enqueue it, into oam's catalog, copied offsite into oam's folder.
    const jobId = psqlAsPostgres(
      cluster,
      `select (graphile_worker.add_job('pmt_jobs.backup', json_build_object('database', 'oam'), queue_name => 'backup:oam', max_attempts => 3, job_key => 'backup:oam')).id`,
      "oam",
    ).trim();
    expect(await finishedJob("oam", jobId)).toBe("succeeded|");
    const backup = psqlAsPostgres(
      cluster,
      `select id || '|' || database || '|' || status from pmt_jobs.backup where database = 'oam' and status = 'succeeded' order by id desc limit 1`,
      "oam",
    ).trim();
    expect(backup).toMatch(/^\d+\|oam\|succeeded$/);
    const key = await until(
      async () =>
        psqlAsPostgres(cluster, `select key from pmt_jobs.backup_copy where backup_id = ${backup.split("|")[0]} and status = 'verified'`, "oam").trim() ||
        undefined,
      "oam's backup to be copied offsite and verified",
      120_000,
      200,
    );
    expect(key).toMatch(/\/oam\/oam_\S+\.dump$/);
    expect(psqlAsPostgres(cluster, "select count(*) from pmt_jobs.backup where database = 'oam'", "pmt").trim()).toBe("0");
  }

  it("without the guide's grant on public (PostgreSQL 15), migrate names that grant", async () => {
    const r = await migrateAs("pmt_nopublic", "grant create on database DB to pmt_nopublic;");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/permission denied for schema public; the worker's role may not create in schema public .*grant create on schema public/);
  });
});
