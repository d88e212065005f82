/**
 * An environment file read the way systemd's EnvironmentFile= reads it
 * (systemd.exec(5)): `#` and `;` lines are comments, whitespace around the name
 * and before the value is dropped, a value in double or single quotes loses its
 * quotes, an unquoted value loses its trailing whitespace. What systemd would
 * read differently from a shell (backslashes, `$`, quotes inside a value, line
 * continuations) is refused here, so a file this accepts means the same to both.
 */
import fs from "node:fs";

export function readSystemdEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith("#") || line.startsWith(";")) return;
      const where = `${file} line ${i + 1}`;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
      if (!m) throw new Error(`${where}: expected NAME=value`);
      let value = m[2]!;
      const quoted = /^"([^"]*)"$/.exec(value) ?? /^'([^']*)'$/.exec(value);
      if (quoted) value = quoted[1]!;
      else if (/["']/.test(value)) throw new Error(`${where}: a quote inside a value is read differently by systemd and a shell`);
      if (/[\\$`]/.test(value)) throw new Error(`${where}: \\, $ and \` are read differently by systemd and a shell`);
      out[m[1]!] = value;
    });
  return out;
}
