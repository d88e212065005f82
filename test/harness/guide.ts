/**
 * The deployment guide's (deploy/README.md) marked code blocks: the guide's
 * own test performs them all, the disaster-recovery drill sets up its first
 * server with step 2's, so both follow what the guide says, as it says it.
 */
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "./cli.js";

export const GUIDE = path.join(ROOT, "deploy/README.md");

export interface GuideBlock {
  kind: "sh" | "sql";
  /** sh: the block's name; sql: the database. */
  arg: string;
  text: string;
}

/** The marked code blocks of the guide (`<!-- guide:sh X -->`, `<!-- guide:sql DB -->`), in order. */
export function guideBlocks(markdown = fs.readFileSync(GUIDE, "utf8")): GuideBlock[] {
  const re = /<!-- guide:(sh|sql) (\S+) -->\s*\n```(?:sh|sql)\n([^]*?)```/g;
  return [...markdown.matchAll(re)].map((m) => ({ kind: m[1] as "sh" | "sql", arg: m[2]!, text: m[3]! }));
}
