/**
 * A NOTIFY pmt_jobs payload carries one event as an object, or several
 * written by one statement as an array (pmt_jobs.notify_events):
 * parseJobEvents reads both, as text or already parsed.
 */
import { describe, expect, it } from "vitest";
import { parseJobEvents, type JobEvent } from "../../src/history/queries.js";

const event = (id: number): JobEvent => ({
  op: "insert",
  id,
  job_id: id * 10,
  task: "export",
  attempt: 1,
  max_attempts: 5,
  queue: null,
  status: "running",
  started_at: "2026-12-01T12:00:00Z",
  finished_at: null,
  duration_ms: null,
  error_class: null,
  worker_id: "w",
  seq: 1,
});

describe("parseJobEvents", () => {
  it("reads one event or an array of them, as text or parsed", () => {
    expect(parseJobEvents(JSON.stringify(event(1)))).toEqual([event(1)]);
    expect(parseJobEvents(event(1))).toEqual([event(1)]);
    expect(parseJobEvents(JSON.stringify([event(1), event(2)]))).toEqual([event(1), event(2)]);
    expect(parseJobEvents([event(3)])).toEqual([event(3)]);
  });

  it("leaves out what is not an event, and never throws: any role may NOTIFY pmt_jobs", () => {
    expect(parseJobEvents("null")).toEqual([]);
    expect(parseJobEvents([1, "x", null, { id: "7" }, event(4)])).toEqual([event(4)]);
    expect(parseJobEvents("{not json")).toEqual([]);
    // A payload parsed by its receiver: '"x"' arrives as the string x.
    expect(parseJobEvents("x")).toEqual([]);
    expect(parseJobEvents({ id: 1 })).toEqual([]);
    expect(parseJobEvents({ ...event(5), seq: "1\ndata: forged" })).toEqual([]);
    expect(parseJobEvents({ ...event(6), seq: Number.NaN })).toEqual([]);
    expect(parseJobEvents({ ...event(7), status: "<b>owned</b>" })).toEqual([]);
    expect(parseJobEvents({ ...event(8), task: 42 })).toEqual([]);
    expect(parseJobEvents({ ...event(9), op: "delete" })).toEqual([]);
  });
});
