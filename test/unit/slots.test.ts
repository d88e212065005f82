/**
 * FairSlots: the process's slots given in turn to the databases it serves.
 */
import { describe, expect, it } from "vitest";
import { FairSlots, type Slot } from "../../src/worker/slots.js";

/** Acquires for `database`, recording the order in which slots are granted. */
function take(slots: FairSlots, database: string, granted: string[]): Promise<Slot> {
  return slots.acquire(database).then((slot) => {
    granted.push(database);
    return slot;
  });
}

const settle = () => new Promise((r) => setImmediate(r));

describe("FairSlots", () => {
  it("gives free slots at once, then makes the rest wait", async () => {
    const slots = new FairSlots(2);
    const granted: string[] = [];
    const a1 = await take(slots, "a", granted);
    await take(slots, "a", granted);
    const third = take(slots, "a", granted);
    await settle();
    expect(granted).toEqual(["a", "a"]);
    expect(slots.stats()).toEqual({ size: 2, busy: 2, waiting: { a: 1 } });
    a1.release();
    a1.release(); // twice is once
    await third;
    expect(slots.stats()).toEqual({ size: 2, busy: 2, waiting: {} });
  });

  it("serves the databases in turn, not in arrival order: a busy one cannot starve a quiet one", async () => {
    const slots = new FairSlots(1);
    const granted: string[] = [];
    let held = await take(slots, "busy", granted);
    // The busy database queues five jobs before the quiet one asks for one slot.
    const waits = [1, 2, 3, 4, 5].map(() => take(slots, "busy", granted));
    const other = take(slots, "other", granted);
    const quiet = take(slots, "quiet", granted);
    await settle();
    // Each freed slot goes to the next database in the round.
    for (let i = 0; i < 3; i++) {
      held.release();
      await settle();
      held = await [other, quiet, waits[0]!][i]!;
    }
    expect(granted).toEqual(["busy", "other", "quiet", "busy"]);
    for (const w of waits.slice(1)) {
      held.release();
      held = await w;
    }
    held.release();
    expect(slots.stats()).toEqual({ size: 1, busy: 0, waiting: {} });
  });

  it("takes back the slots of a database that stopped answering, and ignores their late release", async () => {
    const slots = new FairSlots(2);
    const granted: string[] = [];
    const stuck1 = await take(slots, "gone", granted);
    await take(slots, "gone", granted);
    const waiting = take(slots, "alive", granted);
    await settle();
    expect(slots.forfeit("gone")).toBe(2);
    await waiting;
    expect(slots.stats().busy).toBe(1);
    stuck1.release(); // the stuck job ends after all: not counted twice
    expect(slots.stats().busy).toBe(1);
    expect(slots.forfeit("gone")).toBe(0);
  });
});
