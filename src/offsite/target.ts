/**
 * The offsite store from OFFSITE_URL: `s3://bucket/prefix` on any
 * S3-compatible store, or `file:///path`. Pure parsing plus the S3 client,
 * configured for S3 clones: checksums only when the operation requires them
 * (s3rver, MinIO and others store aws-chunked stream bodies corrupted
 * otherwise); integrity is our own sha256, kept as object metadata.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { UserError } from "../errors.js";

export type OffsiteTarget = { kind: "s3"; bucket: string; prefix: string } | { kind: "file"; dir: string };

export function parseOffsiteUrl(value: string): OffsiteTarget {
  const url = new URL(value);
  // file://host/path is refused: the host part would be silently dropped (config.ts says so at start).
  if (url.protocol === "file:" && !url.host && url.pathname !== "/") return { kind: "file", dir: decodeURIComponent(url.pathname) };
  if (url.protocol === "s3:" && url.hostname) {
    return { kind: "s3", bucket: url.hostname, prefix: decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, "") };
  }
  throw new UserError("OFFSITE_URL: expected s3://bucket/prefix or file:///absolute/path");
}

/** `prefix/part/part`, without empty parts. */
export function objectKey(prefix: string, ...parts: string[]): string {
  return [prefix, ...parts].filter(Boolean).join("/");
}

export interface S3Settings {
  endpoint: string | undefined;
  /** S3_PUBLIC_ENDPOINT: the same store as recipients of download links reach it. */
  publicEndpoint?: string | undefined;
  region: string;
  forcePathStyle: boolean;
}

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
    maxAttempts: 5,
  });
}
