/**
 * A real SMTP server in-process (smtp-server), parsing what it receives with
 * mailparser. It can refuse recipients and go down and up on the same port.
 */
import { performance } from "node:perf_hooks";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer } from "smtp-server";
import { freePort } from "./net.js";

export class SmtpSink {
  readonly messages: ParsedMail[] = [];
  /** performance.now() when each message's DATA had fully arrived (before this sink parses it). */
  readonly receivedAt: number[] = [];
  /** Recipients to refuse, with the SMTP code to answer. */
  readonly refuse = new Map<string, number>();
  private server: SMTPServer | undefined;
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(
    readonly port: number,
    private readonly tls?: { key: string; cert: string; implicit: boolean },
  ) {}

  /** Plain SMTP; with `tls`, STARTTLS (or implicit TLS) with that key and certificate. */
  static async start(tls?: { key: string; cert: string; implicit: boolean }): Promise<SmtpSink> {
    const sink = new SmtpSink(await freePort(), tls);
    await sink.up();
    return sink;
  }

  get url(): string {
    return `${this.tls?.implicit ? "smtps" : "smtp"}://sink:sink-password@127.0.0.1:${this.port}`;
  }

  /** Runs after a message is received and before the server answers 250 (a fault test's hook). */
  beforeAccept: ((mail: ParsedMail) => Promise<void>) | undefined;

  /** Cut the connection of this many next messages after storing them, before the 250 reply (the server has the mail; the client never hears). */
  dropAfterStore = 0;

  /** Runs when MAIL FROM arrives, before the server answers it (holds a client inside the SMTP transaction). */
  beforeMailFrom: (() => Promise<void>) | undefined;

  /** Cut the connection of this many next sessions at MAIL FROM (nothing of the message was sent). */
  dropAtMailFrom = 0;

  /** Whether the last session was encrypted. */
  lastSecure: boolean | undefined;

  async up(): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: this.tls ? [] : ["STARTTLS"],
      secure: this.tls?.implicit ?? false,
      key: this.tls?.key,
      cert: this.tls?.cert,
      allowInsecureAuth: true,
      logger: false,
      size: 200 * 1024 * 1024,
      onAuth: (auth, _session, callback) =>
        auth.password === "sink-password"
          ? callback(null, { user: auth.username })
          : callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 })),
      onMailFrom: (_address, session, callback) => {
        if (this.dropAtMailFrom > 0) {
          this.dropAtMailFrom--;
          return this.cut(session.id);
        }
        Promise.resolve(this.beforeMailFrom?.()).then(() => callback(), callback);
      },
      onRcptTo: (address, _session, callback) => {
        const code = this.refuse.get(address.address);
        if (code) {
          const error = Object.assign(new Error(`${code} mailbox ${address.address} unavailable`), { responseCode: code });
          return callback(error);
        }
        callback();
      },
      onData: (stream, session, callback) => {
        this.lastSecure = session.secure;
        stream.once("end", () => this.receivedAt.push(performance.now()));
        simpleParser(stream)
          .then(async (mail) => {
            await this.beforeAccept?.(mail);
            this.messages.push(mail);
            this.waiters = this.waiters.filter((w) => (this.messages.length >= w.n ? (w.resolve(), false) : true));
          })
          .then(
            () => {
              if (this.dropAfterStore <= 0) return callback();
              this.dropAfterStore--;
              this.cut(session.id);
            },
            (error) => callback(error),
          );
      },
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.port, "127.0.0.1", () => resolve());
    });
  }

  /** Destroys a session's socket without a reply (smtp-server keeps its connections in a private set). */
  private cut(sessionId: string): void {
    const connections = (this.server as unknown as { connections: Set<{ session: { id: string }; _socket: { destroy(): void } }> }).connections;
    for (const c of connections) if (c.session.id === sessionId) c._socket.destroy();
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Resolves once `n` messages in all have arrived. */
  waitForMessages(n: number, timeoutMs = 30_000): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${n} messages (have ${this.messages.length})`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}
