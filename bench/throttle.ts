/**
 * A TCP proxy that limits bandwidth, shared by all its connections in each
 * direction: an offsite store behind an uplink (a store is rarely on
 * localhost), the same for every tool measured through it.
 */
import net from "node:net";

/** Paces the bytes of one direction to `bytesPerSecond` in all. */
class Pace {
  private due = 0;
  constructor(private readonly bytesPerSecond: number) {}

  /** Milliseconds to wait before the next chunk may go after this one. */
  take(bytes: number): number {
    const now = performance.now();
    this.due = Math.max(this.due, now) + (bytes / this.bytesPerSecond) * 1000;
    return this.due - now;
  }
}

function pipePaced(from: net.Socket, to: net.Socket, pace: Pace): void {
  from.on("data", (chunk: Buffer) => {
    to.write(chunk);
    const wait = pace.take(chunk.length);
    if (wait > 1) {
      from.pause();
      setTimeout(() => from.resume(), wait);
    }
  });
  from.on("end", () => to.end());
}

export class ThrottleProxy {
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** `megabitsPerSecond` each way, in front of 127.0.0.1:`targetPort`. */
  static async start(targetPort: number, megabitsPerSecond: number): Promise<ThrottleProxy> {
    const up = new Pace((megabitsPerSecond * 1e6) / 8);
    const down = new Pace((megabitsPerSecond * 1e6) / 8);
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, "127.0.0.1");
      for (const s of [client, upstream]) s.on("error", () => (s === client ? upstream : client).destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      pipePaced(client, upstream, up);
      pipePaced(upstream, client, down);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new ThrottleProxy(server, (server.address() as net.AddressInfo).port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
