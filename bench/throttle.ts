/**
 * A TCP proxy in front of a store on localhost that makes it look remote, the
 * same for every tool measured through it: a bandwidth limit shared by all
 * its connections in each direction (an uplink), and a round-trip time (each
 * chunk delivered `rttMs / 2` after it was sent, in order, and a new
 * connection's first bytes an extra `rttMs` later, its TCP handshake). No TLS
 * handshake is added: the stores measured here speak plain HTTP.
 */
import net from "node:net";

/** Paces the bytes of one direction to `bytesPerSecond` in all. */
class Pace {
  private due = 0;
  constructor(private readonly bytesPerSecond: number) {}

  /** The time (performance.now()) this chunk has gone through the link. */
  take(bytes: number): number {
    this.due = Math.max(this.due, performance.now()) + (bytes / this.bytesPerSecond) * 1000;
    return this.due;
  }
}

/**
 * One direction of one connection: chunks delivered at their due time, in
 * order (one timer at a time), then the end or the close that followed them.
 */
class Lane {
  private readonly queue: { at: number; chunk?: Buffer; then?: "end" | "destroy" }[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Nothing is delivered before this (the handshake of a new connection). */
  private floor: number;

  constructor(
    private readonly to: net.Socket,
    private readonly delayMs: number,
    handshakeMs: number,
  ) {
    this.floor = performance.now() + handshakeMs;
  }

  push(at: number, item: { chunk?: Buffer; then?: "end" | "destroy" }): void {
    const last = this.queue.at(-1)?.at ?? 0;
    this.queue.push({ at: Math.max(at + this.delayMs, this.floor + this.delayMs, last), ...item });
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || !this.queue.length) return;
    const wait = this.queue[0]!.at - performance.now();
    if (wait <= 0) return this.flush();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const now = performance.now();
    while (this.queue.length && this.queue[0]!.at <= now) {
      const item = this.queue.shift()!;
      if (item.chunk) this.to.write(item.chunk);
      if (item.then === "end") this.to.end();
      if (item.then === "destroy") this.to.destroy();
    }
    this.schedule();
  }
}

function pipeDelayed(from: net.Socket, lane: Lane, pace: Pace | undefined): void {
  from.on("data", (chunk: Buffer) => {
    const now = performance.now();
    const sent = pace ? pace.take(chunk.length) : now;
    lane.push(sent, { chunk });
    // Backpressure on the sender while its bytes are still on the (limited) link.
    if (sent - now > 1) {
      from.pause();
      setTimeout(() => from.resume(), sent - now);
    }
  });
  from.on("end", () => lane.push(performance.now(), { then: "end" }));
  // The other side learns of a close after what was sent before it.
  from.on("close", () => lane.push(performance.now(), { then: "destroy" }));
}

export interface LinkOptions {
  /** Each way, shared by all connections; 0 or undefined: no limit. */
  megabitsPerSecond?: number;
  /** Round-trip time added to every exchange; 0 or undefined: none. */
  rttMs?: number;
}

export class ThrottleProxy {
  private readonly sockets = new Set<net.Socket>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** A link (`megabitsPerSecond` each way, or `{ megabitsPerSecond, rttMs }`) in front of 127.0.0.1:`targetPort`. */
  static async start(targetPort: number, link: number | LinkOptions): Promise<ThrottleProxy> {
    const { megabitsPerSecond = 0, rttMs = 0 } = typeof link === "number" ? { megabitsPerSecond: link } : link;
    const pace = () => (megabitsPerSecond > 0 ? new Pace((megabitsPerSecond * 1e6) / 8) : undefined);
    const up = pace();
    const down = pace();
    let proxy: ThrottleProxy | undefined = undefined;
    const server = net.createServer({ allowHalfOpen: true }, (client) => {
      const upstream = net.connect({ port: targetPort, host: "127.0.0.1", allowHalfOpen: true });
      for (const s of [client, upstream]) {
        proxy!.sockets.add(s);
        s.on("close", () => proxy!.sockets.delete(s));
        s.on("error", () => s.destroy());
        // A link forwards each segment as it comes; Nagle's wait here would be the proxy's, not the link's.
        s.setNoDelay(true);
      }
      // The client's first bytes wait for the handshake's round trip.
      pipeDelayed(client, new Lane(upstream, rttMs / 2, rttMs), up);
      pipeDelayed(upstream, new Lane(client, rttMs / 2, 0), down);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new ThrottleProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
