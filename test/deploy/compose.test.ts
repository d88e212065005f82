/**
 * docker-compose.yml must validate with Debian's docker-compose 1.29, which
 * needs no engine (`config -q`). .ci/run installs it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ROOT } from "../harness/cli.js";

const available = spawnSync("docker-compose", ["version"], { encoding: "utf8" }).status === 0;

describe("docker-compose.yml", () => {
  it.runIf(available)("validates offline", () => {
    expect(() => execFileSync("docker-compose", ["-f", "docker-compose.yml", "config", "-q"], { cwd: ROOT, stdio: "pipe" })).not.toThrow();
  });

  it.runIf(!available)("cannot be validated here: docker-compose is not installed (apt-get install --no-install-recommends docker-compose)", () => {
    console.warn("\n!!! docker-compose is missing: docker-compose.yml was NOT validated !!!\n");
  });
});
