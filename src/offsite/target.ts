/**
 * The S3 client of the offsite store (OFFSITE_URL's parsing is url.ts's,
 * re-exported here), configured for S3 clones: checksums only when the operation requires them
 * (s3rver, MinIO and others store aws-chunked stream bodies corrupted
 * otherwise); integrity is our own sha256, kept as object metadata.
 */
import { S3Client } from "@aws-sdk/client-s3";
import type { S3Settings } from "./url.js";

export { objectKey, parseOffsiteUrl, type OffsiteTarget, type S3Settings } from "./url.js";

/**
 * On Node 20 and 21, which we support, the SDK's first client would print a
 * 9-line warning that its releases after January 2027 need Node 22, on every
 * command. AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED is the SDK's own
 * switch for exactly that warning (@aws-sdk/core emitWarningIfUnsupportedVersion);
 * set to anything else by the user, it is left alone.
 */
function silenceNodeVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

/** The client that signs download links, for each client whose store recipients reach at another address. */
const linkSigners = new WeakMap<S3Client, S3Client>();

export function createS3Client(settings: S3Settings): S3Client {
  silenceNodeVersionWarning();
  const client = newClient(settings, settings.endpoint);
  if (settings.publicEndpoint) linkSigners.set(client, newClient(settings, settings.publicEndpoint));
  return client;
}

/**
 * The client to presign download links with: a presigned URL names the host
 * it was signed for, and the worker's endpoint (http://minio:9000 inside
 * compose) is often not one a recipient can reach. Signing needs no request.
 */
export function linkSigner(client: S3Client): S3Client {
  return linkSigners.get(client) ?? client;
}

function newClient(settings: S3Settings, endpoint: string | undefined): S3Client {
  return new S3Client({
    region: settings.region,
    endpoint,
    forcePathStyle: settings.forcePathStyle,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // The SDK's default asks `Expect: 100-continue` for bodies of 2 MB or more, and sends each such
    // request on a connection of its own (no keep-alive): every 5 MiB part paid a TCP (and TLS)
    // handshake and a round trip more. The header only spares sending a part the store would
    // refuse (bad credentials), which the first part already tells.
    expectContinueHeader: false,
    maxAttempts: 5,
    // No answer is an error, not a wait for ever: an endpoint that drops packets (no reset)
    // would otherwise hold the upload, the backup streaming into it and its lock indefinitely.
    // socketTimeout is the idle time on a connection (a slow link that moves bytes is fine).
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  });
}
