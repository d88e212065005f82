/**
 * `doctor` says which servers the newest pg_dump can back up (9.2 to its
 * major): in a container, the image's client is fixed at build time.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findTools, searchDirs } from "../../src/pgtools/tools.js";
import { dumpRangeCheck } from "../../src/doctor/dump-range.js";
import { testConfig } from "../harness/worker.js";

describe("doctor's backup range", () => {
  it("names the newest pg_dump and the servers it backs up", () => {
    const newest = findTools("pg_dump", searchDirs()).sort((a, b) => b.major - a.major)[0]!;
    const major = Number(/\(PostgreSQL\) (\d+)/.exec(execFileSync(newest.path, ["--version"], { encoding: "utf8" }))![1]);
    const check = dumpRangeCheck(testConfig());
    expect(check).toEqual({ verdict: "OK", name: "backup range", detail: `pg_dump ${newest.version} (${newest.path}) backs up PostgreSQL 9.2 to ${major}` });
  });

  it("fails, saying where it looked, when PG_BIN_DIR has no pg_dump", () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "pmt-no-pgdump-"));
    try {
      expect(dumpRangeCheck(testConfig({ PG_BIN_DIR: empty }))).toEqual({
        verdict: "FAIL",
        name: "backup range",
        detail: `no pg_dump in PG_BIN_DIR (${empty}): install postgresql-client-<server major> or set PG_BIN_DIR`,
      });
    } finally {
      fs.rmSync(empty, { recursive: true });
    }
  });
});
