/** Validation against the official IATI 2.03 activity schema (../shared/iati-2.03), with xmllint compiled to wasm. */
import fs from "node:fs";
import path from "node:path";
import { validateXML } from "xmllint-wasm";
import { sharedDir } from "./cli.js";

export const IATI_DIR = sharedDir("iati-2.03");

/** The schema's errors for `xml` ([] when valid), or undefined when the schema files are missing. */
export async function iatiSchemaErrors(xml: string): Promise<string[] | undefined> {
  if (!fs.existsSync(IATI_DIR)) {
    console.warn(`\n!!! IATI schema folder ${IATI_DIR} is missing: the IATI export was NOT validated against the schema !!!\n`);
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
