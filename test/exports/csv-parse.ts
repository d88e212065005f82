/**
 * A strict RFC 4180 reader for the tests: records of fields, CRLF line ends
 * (or LF, as PostgreSQL's COPY ... CSV writes them, with `lf`).
 */
export function parseCsv(text: string, options: { lf?: boolean } = {}): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === "") {
      quoted = true;
      i++;
    } else if (c === ",") {
      record.push(field);
      field = "";
      i++;
    } else if ((c === "\r" && text[i + 1] === "\n") || (options.lf && c === "\n")) {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      i += c === "\r" ? 2 : 1;
    } else if (c === "\n" || c === "\r" || c === '"') {
      throw new Error(`bare ${JSON.stringify(c)} outside quotes at offset ${i}`);
    } else {
      field += c;
      i++;
    }
  }
  if (field !== "" || record.length) throw new Error("last record not ended by a line end");
  return records;
}
