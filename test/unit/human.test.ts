/** The one human format (src/human.ts), colours (src/colour.ts), tables, JSON rows and readable log lines. */
import { describe, expect, it } from "vitest";
import { formatDuration, formatEvent, jsonRow, table } from "../../src/cli/format.js";
import { colourEnabled, colours, printable, visibleLength } from "../../src/colour.js";
import { humanAge, humanBytes, humanDuration, humanWhen, isoSeconds } from "../../src/human.js";
import { prettyLine } from "../../src/log.js";

describe("sizes", () => {
  it("are binary, one decimal below 100, none above", () => {
    expect(humanBytes(0)).toBe("0 B");
    expect(humanBytes(512)).toBe("512 B");
    expect(humanBytes(1023)).toBe("1023 B");
    expect(humanBytes(1024)).toBe("1.0 KB");
    expect(humanBytes(1536)).toBe("1.5 KB");
    expect(humanBytes(1.2 * 2 ** 30)).toBe("1.2 GB");
    expect(humanBytes(78951 * 2 ** 20)).toBe("77.1 GB");
    expect(humanBytes(99.96 * 2 ** 20)).toBe("100 MB");
    expect(humanBytes(312 * 2 ** 30)).toBe("312 GB");
    expect(humanBytes(3 * 2 ** 40)).toBe("3.0 TB");
    expect(humanBytes(null)).toBe("");
  });
});

describe("durations", () => {
  it("take at most two units, the second padded", () => {
    expect(humanDuration(0.35)).toBe("350 ms");
    expect(humanDuration(2.14)).toBe("2.1 s");
    expect(humanDuration(59.9)).toBe("59.9 s");
    expect(humanDuration(59.97)).toBe("1 min 00 s");
    expect(humanDuration(245)).toBe("4 min 05 s");
    expect(humanDuration(3780)).toBe("1 h 03 min");
    expect(humanDuration(86_400 * 3 + 3600 * 4 + 59)).toBe("3 d 04 h");
    expect(humanDuration(null)).toBe("");
    expect(formatDuration(1500)).toBe("1.5 s");
    expect(formatDuration(null)).toBe("");
  });
});

describe("ages", () => {
  it("take one unit, rounded down, hours up to two days", () => {
    expect(humanAge(13)).toBe("13 s ago");
    expect(humanAge(60 * 12 + 59)).toBe("12 min ago");
    expect(humanAge(2 * 3600 + 3599)).toBe("2 h ago");
    expect(humanAge(25 * 3600)).toBe("25 h ago");
    expect(humanAge(3 * 86_400 + 100)).toBe("3 d ago");
    expect(humanAge(null)).toBe("");
    const now = new Date("2026-12-01T14:00:00Z");
    expect(humanWhen(new Date("2026-12-01T17:30:00Z"), now)).toBe("in 3 h");
    expect(humanWhen(new Date("2026-12-01T13:55:00Z"), now)).toBe("5 min ago");
    expect(isoSeconds(new Date("2026-12-01T14:08:16.123Z"))).toBe("2026-12-01T14:08:16Z");
  });
});

describe("colours", () => {
  it("only on a terminal, never with NO_COLOR or TERM=dumb, forced by FORCE_COLOR", () => {
    expect(colourEnabled({ isTTY: true }, {})).toBe(true);
    expect(colourEnabled({ isTTY: false }, {})).toBe(false);
    expect(colourEnabled({}, {})).toBe(false);
    expect(colourEnabled({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(colourEnabled({ isTTY: true }, { NO_COLOR: "" })).toBe(true);
    expect(colourEnabled({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(colourEnabled({ isTTY: false }, { FORCE_COLOR: "1" })).toBe(true);
    expect(colourEnabled({ isTTY: true }, { FORCE_COLOR: "0" })).toBe(false);
    expect(colours(false).red("x")).toBe("x");
    expect(colours(true).red("x")).toBe("\x1b[31mx\x1b[39m");
  });

  it("take no room in a table", () => {
    const c = colours(true);
    const text = table(
      ["a", "b"],
      [
        [c.red("failed"), "x"],
        ["ok", "y"],
      ],
      c,
    );
    const lines = text.split("\n").filter(Boolean);
    expect(lines.map(visibleLength)).toEqual([9, 9, 9, 9]);
    expect(table(["a", "b"], [["failed", "x"]])).toBe("a       b\n------  -\nfailed  x\n");
  });
});

describe("JSON rows", () => {
  it("give *_ms as *_s in seconds, intervals as *_s, Dates in ISO 8601, in place", () => {
    const interval = { minutes: 1, seconds: 2, milliseconds: 500, toPostgres: () => "00:01:02.5" };
    const row = jsonRow({ id: 1, duration_ms: 1500, started_at: new Date("2026-12-01T00:00:00Z"), restore: interval, none_ms: null });
    expect(row).toEqual({ id: 1, duration_s: 1.5, started_at: "2026-12-01T00:00:00.000Z", restore_s: 62.5, none_s: null });
    expect(Object.keys(row)).toEqual(["id", "duration_s", "started_at", "restore_s", "none_s"]);
  });
});

describe("log lines on a terminal", () => {
  const line = JSON.stringify({
    level: "warn",
    time: "2026-12-01T14:08:16.123Z",
    pid: 42,
    msg: "backup pruned by retention",
    database: "bmgf",
    files: ["a b.dump"],
    err: { type: "Error", message: "disk full", stack: "Error: disk full\n    at x (y.js:1:1)" },
  });

  it("read as time, level, message and fields, the stack below", () => {
    expect(prettyLine(line)).toBe(
      '2026-12-01 14:08:16Z WARN  backup pruned by retention  database=bmgf files=["a b.dump"] err="disk full"\n    at x (y.js:1:1)\n',
    );
    expect(prettyLine(line, colours(true))).toContain("\x1b[33mWARN \x1b[39m");
    expect(prettyLine("not json\n")).toBe("not json\n");
  });
});

describe("control characters from data", () => {
  // Built from code points: the lint refuses control characters in a regular expression literal.
  const ESC = String.fromCharCode(27);
  const OBEYED = new RegExp(`${String.fromCharCode(7)}|${ESC}\\]|${ESC}\\[2J|\\r|\u202e|\u0085`);
  const hostile = "evil\x1b]0;owned\x07\x1b[2J\r\u202etxt.exe\u0085";

  it("are shown escaped, never sent to the terminal", () => {
    expect(printable(hostile)).toBe("evil\\x1b]0;owned\\x07\\x1b[2J\\x0d\\u202etxt.exe\\x85");
    expect(printable("plain text, é, 中文")).toBe("plain text, é, 中文");
    // A finished cell keeps exactly our colour codes, and nothing else that looks like one.
    const c = colours(true);
    expect(printable(`${c.red("failed")} \x1b[8mhidden`, true)).toBe("\x1b[31mfailed\x1b[39m \\x1b[8mhidden");
  });

  it("in tables, log lines on a terminal, history rows and events", () => {
    const c = colours(true);
    expect(hostile).toMatch(OBEYED);
    const out = table(["task", "status"], [[hostile, c.red("failed")]], c);
    expect(out).not.toMatch(OBEYED);
    expect(out).toContain("\x1b[31mfailed\x1b[39m");
    const line = JSON.stringify({
      level: "error",
      time: "2026-12-01T14:08:16.000Z",
      msg: hostile,
      task: "a\x1bb",
      err: { message: hostile, stack: `Error\n    at ${hostile}` },
    });
    const pretty = prettyLine(line, c);
    expect(pretty).not.toMatch(OBEYED);
    expect(pretty).toContain("evil\\x1b]0;owned");
    expect(
      formatEvent({
        op: "insert",
        id: 1,
        job_id: 2,
        task: hostile,
        attempt: 1,
        max_attempts: 1,
        queue: null,
        status: "failed",
        started_at: "2026-12-01T00:00:00Z",
        finished_at: null,
        duration_ms: 5,
        error_class: null,
        error: hostile,
        worker_id: "w",
        seq: 1,
      }),
    ).not.toContain(ESC);
  });
});
