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
  if (url.protocol === "file:") return { kind: "file", dir: decodeURIComponent(url.pathname) };
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

/** The client that signs download links, for each client whose store recipients reach at another address. */
const linkSigners = new WeakMap<S3Client, S3Client>();

export function createS3Client(settings: S3Settings): S3Client {
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
