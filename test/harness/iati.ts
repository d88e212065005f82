/** Validation against the official IATI 2.03 activity schema (../shared/iati-2.03), with xmllint compiled to wasm. */
import fs from "node:fs";
import path from "node:path";
import { validateXML } from "xmllint-wasm";
import { sharedDir } from "./cli.js";

export const IATI_DIR = sharedDir("iati-2.03");

/**
 * Why the schema cannot be checked here, or undefined. The schema is not in
 * the repository (the team's shared material, like PMT's upstream files), so
 * in a plain clone the check is skipped, saying so in one line; with
 * PMT_COMPAT_REQUIRED=1 (CI) that is a failure.
 */
export const iatiUnavailable = fs.existsSync(path.join(IATI_DIR, "iati-activities-schema.xsd"))
  ? undefined
  : `the IATI 2.03 schema is not at ${IATI_DIR} (set PMT_SHARED_DIR to a folder holding iati-2.03/)`;
let told = false;

/** The schema's errors for `xml` ([] when valid), or undefined when the schema files are missing. */
export async function iatiSchemaErrors(xml: string): Promise<string[] | undefined> {
  if (iatiUnavailable) {
    if (process.env.PMT_COMPAT_REQUIRED === "1") throw new Error(`IATI schema validation cannot run (PMT_COMPAT_REQUIRED=1): ${iatiUnavailable}`);
    if (!told) console.log(`IATI schema validation skipped: ${iatiUnavailable}`);
    told = true;
    return undefined;
  }
  const read = (f: string) => fs.readFileSync(path.join(IATI_DIR, f), "utf8");
  const result = await validateXML({
    xml: [{ fileName: "export.xml", contents: xml }],
    schema: [{ fileName: "iati-activities-schema.xsd", contents: read("iati-activities-schema.xsd") }],
    preload: [
      { fileName: "iati-common.xsd", contents: read("iati-common.xsd") },
      { fileName: "xml.xsd", contents: read("xml.xsd") },
    ],
  });
  return result.errors.map((e) => e.rawMessage ?? String(e));
}
