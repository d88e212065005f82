/**
 * `npm run bench [-- <name> ...] [--rounds=N ...]`: runs the named benchmarks
 * (default: all). Not part of `npm test`.
 */
const BENCHES: Record<string, () => Promise<{ main(): Promise<void> }>> = {
  queue: () => import("./queue.js"),
  export: () => import("./export.js"),
  backup: () => import("./backup.js"),
  offsite: () => import("./offsite.js"),
  sync: () => import("./sync.js"),
  startup: () => import("./startup.js"),
  console: () => import("./console.js"),
};

const names = process.argv.slice(2).filter((a) => !a.startsWith("--"));
for (const name of names) {
  if (!BENCHES[name]) {
    process.stderr.write(`unknown benchmark "${name}": expected one of ${Object.keys(BENCHES).join(", ")}\n`);
    process.exit(2);
  }
}
for (const name of names.length ? names : Object.keys(BENCHES)) {
  await (await BENCHES[name]!()).main();
}
