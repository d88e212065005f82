/** Every command's --help ends with examples; the top-level help says where the environment is described. */
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/index.js";

/** Every command under `program`, as the words that name it. */
function commands(cmd: Command, path: string[] = []): string[][] {
  return cmd.commands.filter((c) => c.name() !== "help").flatMap((c) => [[...path, c.name()], ...commands(c, [...path, c.name()])]);
}

/** `pmt-worker <words> --help`, in this process. */
async function help(words: string[]): Promise<string> {
  const program = buildProgram("");
  let out = "";
  const capture = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
    c.commands.forEach(capture);
  };
  capture(program);
  await program.parseAsync(["node", "pmt-worker", ...words, "--help"]).catch((error: { code?: string }) => {
    if (error.code !== "commander.helpDisplayed") throw error;
  });
  return out;
}

describe("--help", () => {
  it("shows examples on every command", async () => {
    const all = commands(buildProgram(""));
    expect(all.map((w) => w.join(" "))).toEqual(expect.arrayContaining(["jobs retry", "retention apply", "backup test-restore", "config", "status"]));
    for (const words of all) {
      const text = await help(words);
      expect(text, words.join(" ")).toMatch(/\nExamples:\n {2}\$ pmt-worker /);
    }
  });

  it("points to the environment's description and the effective settings", async () => {
    const text = await help([]);
    expect(text).toMatch(/\nExamples:\n/);
    expect(text).toContain("pmt-worker config");
    expect(text).toContain("pmt-worker start --help");
    expect(text).toContain("NO_COLOR");
  });
});
