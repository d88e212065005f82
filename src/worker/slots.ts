/**
 * Slots shared fairly by the databases one worker serves.
 *
 * Each database has its own graphile-worker runners (its queue is in its own
 * database), each allowed the whole WORKER_CONCURRENCY / MAINTENANCE_CONCURRENCY,
 * so that a lone busy database may use every slot. A job body then waits for
 * one of the process's slots; a freed slot goes to the next database in turn
 * that has a job waiting (round robin), not to whoever asked first: a database
 * with a thousand exports queued gets one slot in turn like a database with
 * one, and one database's exports never hold back another's backups (they have
 * slots of their own).
 *
 * A database that stops answering gives its slots back (`forfeit`): its jobs
 * are stuck waiting for it, and the others must not wait behind them.
 */

export interface Slot {
  /** Gives the slot back (once; later calls do nothing). */
  release(): void;
}

export class FairSlots {
  private busy = 0;
  /** Waiting acquirers per database, in arrival order; the map's order is the round's order. */
  private readonly waiting = new Map<string, (() => void)[]>();
  /** Slots held per database (a forfeited holder is no longer here). */
  private readonly held = new Map<string, Set<{ released: boolean }>>();
  /** Every database that ever waited, in first-seen order: the round's fixed order. */
  private readonly order: string[] = [];
  /** The database served last: the round goes on after it. */
  private last: string | undefined;

  constructor(readonly size: number) {}

  /** Resolves with a slot for a job of `database` once one is free and it is that database's turn. */
  acquire(database: string): Promise<Slot> {
    return new Promise((resolve) => {
      const grant = () => resolve(this.grant(database));
      if (this.busy < this.size && this.queued() === 0) return grant();
      if (!this.order.includes(database)) this.order.push(database);
      const queue = this.waiting.get(database) ?? [];
      queue.push(grant);
      this.waiting.set(database, queue);
    });
  }

  /** Gives back every slot `database` holds (its jobs are stuck on it); their later release does nothing. */
  forfeit(database: string): number {
    const holders = this.held.get(database);
    if (!holders?.size) return 0;
    const n = holders.size;
    for (const h of holders) h.released = true;
    holders.clear();
    this.busy -= n;
    this.next();
    return n;
  }

  /** Slots in use and jobs waiting, per database: for logs and tests. */
  stats(): { size: number; busy: number; waiting: Record<string, number> } {
    return { size: this.size, busy: this.busy, waiting: Object.fromEntries([...this.waiting].map(([db, q]) => [db, q.length])) };
  }

  private queued(): number {
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  private grant(database: string): Slot {
    this.busy++;
    this.last = database;
    const holder = { released: false };
    const holders = this.held.get(database) ?? new Set();
    holders.add(holder);
    this.held.set(database, holders);
    return {
      release: () => {
        if (holder.released) return;
        holder.released = true;
        holders.delete(holder);
        this.busy--;
        this.next();
      },
    };
  }

  /** Hands free slots to waiters, one database at a time, in the round's order after the last one served. */
  private next(): void {
    while (this.busy < this.size && this.waiting.size) {
      const from = this.last === undefined ? -1 : this.order.indexOf(this.last);
      for (let i = 1; i <= this.order.length; i++) {
        const database = this.order[(from + i) % this.order.length]!;
        const queue = this.waiting.get(database);
        if (!queue) continue;
        const grant = queue.shift()!;
        if (!queue.length) this.waiting.delete(database);
        grant();
        break;
      }
    }
  }
}
