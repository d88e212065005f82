/**
 * deploy/pmt-worker.env.example is read twice in the guide: sourced by a shell
 * (`set -a; . /etc/pmt-worker.env`) for the first migrate, and by systemd's
 * EnvironmentFile= for the service. Both, and our own .env reader, must see
 * the same names and values; an unquoted `MAIL_FROM=PMT <pmt@example.org>` was
 * a shell syntax error that left every variable after it unset.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, readDotEnv } from "../../src/config.js";
import { ROOT } from "../harness/cli.js";
import { readSystemdEnvFile } from "../harness/envfile.js";

const EXAMPLE = path.join(ROOT, "deploy/pmt-worker.env.example");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-envfile-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What `set -a; . file; set +a` exports, in an empty environment: the names bash sets by itself removed. */
function sourced(file: string): { env: Record<string, string>; stderr: string } {
  const run = (f: string) => {
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", 'set -a; . "$1"; set +a; env -0', "_", f], {
      env: { PATH: "/usr/bin:/bin" },
      encoding: "utf8",
    });
    const env = Object.fromEntries(
      r.stdout
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    return { env, stderr: r.stderr };
  };
  const baseline = run("/dev/null").env;
  const { env, stderr } = run(file);
  for (const [k, v] of Object.entries(baseline)) if (env[k] === v) delete env[k];
  return { env, stderr };
}

describe("deploy/pmt-worker.env.example", () => {
  it("means the same to a shell, to systemd and to our .env reader", () => {
    const shell = sourced(EXAMPLE);
    expect(shell.stderr).toBe("");
    const systemd = readSystemdEnvFile(EXAMPLE);
    expect(shell.env).toEqual(systemd);
    expect(readDotEnv(EXAMPLE)).toEqual(systemd);
    // Every variable after MAIL_FROM is there, and the configuration takes them as meant.
    expect(Object.keys(systemd)).toEqual(
      expect.arrayContaining(["MAIL_FROM", "ALERT_EMAIL", "OFFSITE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HTTP_HOST"]),
    );
    const config = loadConfig(systemd, "/nonexistent/.env");
    expect(config.mailFrom).toBe("PMT <pmt@example.org>");
    expect(config.alerts.email).toBe("dba@example.org");
    expect(config.offsite.url).toBe("s3://pmt-backups/pmt");
  });

  it("its commented lines for several PMT databases, once uncommented, mean the same to all three too", () => {
    const file = path.join(tmp, "several.env");
    const example = fs.readFileSync(EXAMPLE, "utf8");
    const uncommented = example.replace(/^#(PMT_DATABASES|EXPORT_MAIL_BODIES)=/gm, "$1=");
    expect(uncommented.match(/^(PMT_DATABASES|EXPORT_MAIL_BODIES)=/gm)).toHaveLength(2);
    fs.writeFileSync(file, uncommented);
    const shell = sourced(file);
    expect(shell.stderr).toBe("");
    const systemd = readSystemdEnvFile(file);
    expect(shell.env).toEqual(systemd);
    expect(readDotEnv(file)).toEqual(systemd);
    const config = loadConfig(systemd, "/nonexistent/.env");
    expect(config.pmtDatabases).toEqual(["pmt", "oam"]);
    expect(config.exportMailBodies.oam).toMatch(/^Attached is your OAM data request: \{rows\} activities/);
    // BACKUP_DATABASES is left unset, so that every served database is backed up.
    expect(config.backup.databases).toEqual([]);
  });

  it("would catch an unquoted value the shell reads differently (the old MAIL_FROM line)", () => {
    const file = path.join(tmp, "old.env");
    fs.writeFileSync(file, "MAIL_FROM=PMT <pmt@example.org>\nALERT_EMAIL=dba@example.org\n");
    const shell = sourced(file);
    expect(shell.stderr).toMatch(/pmt@example.org/);
    expect(shell.env).not.toEqual(readSystemdEnvFile(file));
  });
});
