/**
 * OFFSITE_URL parsed: `s3://bucket/prefix` on any S3-compatible store, or
 * `file:///path`, and the keys of objects under its prefix. Pure, and no AWS
 * SDK: a file:// store (the embedded default) never loads it.
 */
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
