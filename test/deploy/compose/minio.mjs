// `minio server DIR` stand-in: s3rver on port 9000 storing in DIR, accepting
// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD as its access key.
import fs from "node:fs";
import { createRequire } from "node:module";
import S3rver from "s3rver";

const require = createRequire(import.meta.url);
const [command, directory] = process.argv.slice(2);
if (command !== "server" || !directory) {
  console.error("usage: minio server DIR");
  process.exit(2);
}
require("s3rver/lib/models/account.js").DUMMY_ACCOUNT.createKeyPair(process.env.MINIO_ROOT_USER, process.env.MINIO_ROOT_PASSWORD);
fs.mkdirSync(directory, { recursive: true });
// Path-style only: the host name "minio" is not a bucket.
const server = new S3rver({ port: 9000, address: "0.0.0.0", directory, silent: true, vhostBuckets: false });
await server.run();
console.log(`s3rver (minio stand-in) on :9000, data in ${directory}`);
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
