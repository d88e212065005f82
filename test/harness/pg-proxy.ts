/**
 * A TCP proxy in front of a PostgreSQL server that can lose one reply: the
 * reply to graphile-worker's job fetch (get_job) that locked a job is held
 * until the server says it is ready for the next query (the fetch committed),
 * then both connections are cut, so the worker never hears which job it
 * locked. Everything else passes through.
 */
import net from "node:net";
import { afterAll } from "vitest";

export class PgProxy {
  private trap: (() => void) | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(targetPort: number): Promise<PgProxy> {
    const server = net.createServer();
    const proxy = new PgProxy(server);
    server.on("connection", (client) => proxy.pipe(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    afterAll(() => proxy.close());
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Resolves once a fetch that locked a job has had its reply dropped. */
  loseNextFetchReply(): Promise<void> {
    return new Promise((resolve) => (this.trap = resolve));
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  private pipe(client: net.Socket, targetPort: number): void {
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let held: Buffer | null = null; // the reply to a trapped fetch, while it arrives
    client.on("data", (chunk: Buffer) => {
      if (this.trap && chunk.includes("get_job")) held = Buffer.alloc(0);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (held === null) return void client.write(chunk);
      held = Buffer.concat([held, chunk]);
      const reply = scan(held);
      if (!reply.complete) return;
      const trap = this.trap;
      if (reply.rows && trap) {
        this.trap = undefined;
        client.destroy();
        upstream.destroy();
        trap();
      } else {
        client.write(held);
      }
      held = null;
    });
  }
}

/** Protocol messages from the start of `buf`: whether a row came back and whether ReadyForQuery ended the reply. */
function scan(buf: Buffer): { rows: boolean; complete: boolean } {
  let rows = false;
  for (let at = 0; at + 5 <= buf.length;) {
    const type = String.fromCharCode(buf[at]!);
    const length = buf.readInt32BE(at + 1);
    if (at + 1 + length > buf.length) break;
    if (type === "D") rows = true;
    if (type === "Z") return { rows, complete: true };
    at += 1 + length;
  }
  return { rows, complete: false };
}
