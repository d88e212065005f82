/**
 * Group commit: calls made while a flush is in flight are gathered and sent as
 * one statement when it returns. A lone call goes out at once (no added delay);
 * under load, N concurrent calls cost about one round trip instead of N.
 */
export class Batcher<T, R> {
  private pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;

  constructor(
    private readonly flushFn: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 100,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        const results = await this.flushFn(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (error) {
        batch.forEach((b) => b.reject(error));
      }
    }
    this.flushing = false;
  }
}
