/**
 * The house plan, checked from the source: src/'s folders (the files at the
 * top of src/ count as one folder, ".") import each other in one direction
 * only, and the layers stack: cli/ above worker/ above jobs/ above the
 * capability folders (backups/, offsite/, exports/, ...), which never import
 * the layers that drive them. Every import counts: type-only ones,
 * re-exports, `import()` and `typeof import()`.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src");

/** The layers above the capability folders, lowest first: each may import only those below it. */
const LAYERS = ["jobs", "worker", "cli"];

/** The modules a source text imports, as written (comments and strings are not imports). */
function importsOf(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** A file's folder: its first directory under src/, or "." for the files at the top. */
function folderOf(root: string, file: string): string {
  const parts = path.relative(root, file).split(path.sep);
  return parts.length === 1 ? "." : parts[0]!;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(file);
    return /\.ts$/.test(e.name) && !e.name.endsWith(".d.ts") ? [file] : [];
  });
}

/** from folder -> to folder -> the imports that make the edge ("backups/run.ts imports ../db/pool.js"). */
type FolderGraph = Map<string, Map<string, string[]>>;

function folderGraph(root: string): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const file of sourceFiles(root)) {
    for (const spec of importsOf(fs.readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue; // a package
      const target = path.resolve(path.dirname(file), spec);
      if (path.relative(root, target).startsWith("..")) continue; // outside src/ (package.json)
      const [from, to] = [folderOf(root, file), folderOf(root, target)];
      if (from === to) continue;
      const edges = graph.get(from) ?? new Map<string, string[]>();
      graph.set(from, edges);
      edges.set(to, [...(edges.get(to) ?? []), `${path.relative(root, file)} imports ${spec}`]);
    }
  }
  return graph;
}

/** One circle of folders, as a path that ends where it starts, or undefined if there is none. */
function findCycle(graph: FolderGraph): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const trail: string[] = [];
  const visit = (folder: string): string[] | undefined => {
    if (state.get(folder) === "open") return [...trail.slice(trail.indexOf(folder)), folder];
    if (state.get(folder) === "done") return undefined;
    state.set(folder, "open");
    trail.push(folder);
    for (const next of [...(graph.get(folder)?.keys() ?? [])].sort()) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    trail.pop();
    state.set(folder, "done");
    return undefined;
  };
  for (const folder of [...graph.keys()].sort()) {
    const cycle = visit(folder);
    if (cycle) return cycle;
  }
  return undefined;
}

/** The circle, each step with the imports that make it. */
function describeCycle(graph: FolderGraph, cycle: string[]): string {
  const steps = cycle.slice(1).map((to, i) => `  ${cycle[i]} -> ${to}: ${graph.get(cycle[i]!)!.get(to)!.join(", ")}`);
  return `folders of src/ import each other: ${cycle.join(" -> ")}\n${steps.join("\n")}`;
}

/** Pairs of folders that import each other, then any longer circle. */
function cycleProblems(graph: FolderGraph): string[] {
  const problems: string[] = [];
  for (const [from, edges] of graph) {
    for (const to of edges.keys()) {
      if (from < to && graph.get(to)?.has(from)) problems.push(describeCycle(graph, [from, to, from]));
    }
  }
  if (problems.length) return problems;
  const cycle = findCycle(graph);
  return cycle ? [describeCycle(graph, cycle)] : [];
}

/** Imports that reach up: a capability folder importing jobs/, worker/ or cli/, or a layer importing one above it. */
function layerProblems(graph: FolderGraph): string[] {
  const rank = (folder: string) => LAYERS.indexOf(folder); // -1: a capability folder (or ".")
  const problems: string[] = [];
  for (const [from, edges] of graph) {
    for (const [to, imports] of edges) {
      if (rank(to) > rank(from)) {
        const who = rank(from) < 0 ? `capability folder ${from}/` : `${from}/`;
        problems.push(`${who} imports ${to}/, a layer above it: ${imports.join(", ")}`);
      }
    }
  }
  return problems;
}

function writeTree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? "/tmp"), "arch-"));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  return root;
}

describe("the checker", () => {
  it("reads every kind of import, and nothing in comments or strings", () => {
    const text = [
      `import type { A } from "./a.js";`,
      `import { type B } from "../b/b.js";`,
      `export type { C } from "./c.js";`,
      `const d = await import("../d/d.js");`,
      `let e: typeof import("../e/e.js").e;`,
      `// import { f } from "../f/f.js";`,
      `const g = 'import("../g/g.js")';`,
    ].join("\n");
    expect(importsOf(text)).toEqual(["./a.js", "../b/b.js", "./c.js", "../d/d.js", "../e/e.js"]);
  });

  it("names two folders that import each other, with the imports, even type-only ones", () => {
    const root = writeTree({
      "config.ts": `export const x = 1;`,
      "backups/task.ts": `import type { Store } from "../offsite/store.js";\nimport { x } from "../config.js";`,
      "offsite/store.ts": `import { backupName } from "../backups/run.js";`,
      "backups/run.ts": `export const backupName = 1;`,
    });
    try {
      const graph = folderGraph(root);
      expect(cycleProblems(graph)).toEqual([
        "folders of src/ import each other: backups -> offsite -> backups\n" +
          "  backups -> offsite: backups/task.ts imports ../offsite/store.js\n" +
          "  offsite -> backups: offsite/store.ts imports ../backups/run.js",
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("names a longer circle, the top-level files as one folder, and a capability folder reaching up", () => {
    const root = writeTree({
      "config.ts": `import { MAILBOX } from "./mail/mailbox.js";`,
      "mail/mailbox.ts": `const compose = await import("../exports/messages.js");`,
      "exports/messages.ts": `import type { Config } from "../config.js";`,
      "alerts/alerts.ts": `import type { JobContext } from "../jobs/context.js";`,
      "jobs/context.ts": `import type { Task } from "../worker/tasks.js";`,
      "worker/tasks.ts": `export type Task = 1;`,
    });
    try {
      const graph = folderGraph(root);
      expect(cycleProblems(graph)).toEqual([
        "folders of src/ import each other: . -> mail -> exports -> .\n" +
          "  . -> mail: config.ts imports ./mail/mailbox.js\n" +
          "  mail -> exports: mail/mailbox.ts imports ../exports/messages.js\n" +
          "  exports -> .: exports/messages.ts imports ../config.js",
      ]);
      expect(layerProblems(graph).sort()).toEqual([
        "capability folder alerts/ imports jobs/, a layer above it: alerts/alerts.ts imports ../jobs/context.js",
        "jobs/ imports worker/, a layer above it: jobs/context.ts imports ../worker/tasks.js",
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("src/", () => {
  const graph = folderGraph(SRC);

  it("has the folders the plan names, and the layers import down", () => {
    for (const folder of [".", "backups", "offsite", "retention", "exports", "mail", "alerts", "db", "history", "doctor", ...LAYERS]) {
      expect(graph.has(folder) || [...graph.values()].some((edges) => edges.has(folder)), folder).toBe(true);
    }
    expect(graph.get("worker")?.has("jobs")).toBe(true);
    expect(graph.get("cli")?.has("jobs")).toBe(true);
  });

  it("no two folders import each other, nor any longer circle", () => {
    expect(cycleProblems(graph)).toEqual([]);
  });

  it("capability folders never import jobs/, worker/ or cli/, and each layer imports only those below it", () => {
    expect(layerProblems(graph)).toEqual([]);
  });

  it("src/jobs/ lists every duty, under the task names of the SQL and queue interface", async () => {
    const { JOBS } = await import("../../src/jobs/index.js");
    const listed = new Set<unknown>(JOBS);
    for (const file of sourceFiles(path.join(SRC, "jobs"))) {
      const exported = Object.entries(await import(file)).filter(([, value]) => typeof value === "object" && value !== null && "taskFor" in value);
      for (const [name, duty] of exported) expect(listed.has(duty), `${path.basename(file)}: ${name} is not in JOBS (src/jobs/index.ts)`).toBe(true);
    }
    expect(JOBS.map((job) => job.task).sort()).toEqual([
      "pmt_jobs.alerts_check",
      "pmt_jobs.backup",
      "pmt_jobs.backup_test_restore",
      "pmt_jobs.export",
      "pmt_jobs.history_prune",
      "pmt_jobs.noop",
      "pmt_jobs.offsite_sync",
      "pmt_jobs.offsite_upload",
      "pmt_jobs.spool_prune",
    ]);
  });
});
