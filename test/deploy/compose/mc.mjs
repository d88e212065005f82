#!/usr/bin/env node
// `mc` stand-in: alias set NAME URL KEY SECRET, mb [--ignore-existing] NAME/BUCKET, ready NAME.
// Aliases in ~/.mc-standin.json; "local" is http://localhost:9000 as in mc.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const file = path.join(os.homedir(), ".mc-standin.json");
const aliases = { local: { url: "http://localhost:9000" }, ...(fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {}) };
const [command, ...args] = process.argv.slice(2);
const fail = (message) => {
  console.error(`mc: ${message}`);
  process.exit(1);
};

if (command === "alias" && args[0] === "set") {
  const [, name, url, key, secret] = args;
  aliases[name] = { url, key, secret };
  fs.writeFileSync(file, JSON.stringify(aliases), { mode: 0o600 });
  console.log(`Added \`${name}\` successfully.`);
} else if (command === "mb") {
  const target = args.filter((a) => !a.startsWith("--"))[0] ?? "";
  const [name, bucket] = target.split("/");
  if (!aliases[name] || !bucket) fail(`unknown target ${target}`);
  const res = await fetch(`${aliases[name].url}/${bucket}`, { method: "PUT" }).catch((e) => fail(e.cause?.code ?? e.message));
  if (!res.ok && !(res.status === 409 && args.includes("--ignore-existing"))) fail(`make bucket ${bucket}: HTTP ${res.status} ${await res.text()}`);
  console.log(`Bucket created successfully \`${target}\`.`);
} else if (command === "ready") {
  const alias = aliases[args[0]] ?? fail(`unknown alias ${args[0]}`);
  const res = await fetch(alias.url).catch((e) => fail(e.cause?.code ?? e.message));
  if (res.status >= 500) fail(`HTTP ${res.status}`);
  console.log(`The cluster is ready`);
} else {
  fail(`unsupported: ${process.argv.slice(2).join(" ")}`);
}
