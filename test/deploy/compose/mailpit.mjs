// mailpit stand-in: SMTP on 1025 (no auth, no TLS), and the part of mailpit's
// API a test reads: GET /api/v1/messages -> { total, messages: [{ To, Subject }] }.
import http from "node:http";
import { SMTPServer } from "smtp-server";

const messages = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  size: 200 * 1024 * 1024,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on("data", (c) => chunks.push(c));
    stream.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const subject = /^Subject: (.*)$/im.exec(raw)?.[1] ?? "";
      messages.unshift({ To: session.envelope.rcptTo.map((r) => ({ Name: "", Address: r.address })), Subject: subject, Size: raw.length });
      callback();
    });
  },
});
smtp.listen(1025, "0.0.0.0");
http
  .createServer((req, res) => {
    if (req.url?.startsWith("/api/v1/messages")) {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ total: messages.length, messages }));
    } else if (req.url === "/readyz" || req.url === "/") {
      res.writeHead(200).end("ok\n");
    } else {
      res.writeHead(404).end("not found\n");
    }
  })
  .listen(8025, "0.0.0.0");
console.log("mailpit stand-in: SMTP :1025, API :8025");
process.on("SIGTERM", () => process.exit(0));
