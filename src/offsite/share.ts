/**
 * A file put on the S3 offsite store and shared by a presigned link: how an
 * export too large to mail still reaches its recipient. Streamed upload
 * (lib-storage, multipart, bounded memory), sha256 as object metadata, the
 * stored size checked before the link is handed out.
 */
import fs from "node:fs";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { linkSigner } from "./target.js";

export interface SharedFile {
  key: string;
  url: string;
  expiresAt: Date;
}

export async function shareFile(
  s3: S3Client,
  bucket: string,
  key: string,
  file: { path: string; bytes: number; sha256: string },
  days: number,
  downloadName: string,
): Promise<SharedFile> {
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: fs.createReadStream(file.path), Metadata: { sha256: file.sha256 } },
    queueSize: 2,
    partSize: 8 * 1024 * 1024,
  }).done();
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== file.bytes || head.Metadata?.sha256 !== file.sha256) {
    throw new Error(`the copy of ${key} in bucket ${bucket} does not match: ${head.ContentLength} bytes stored, ${file.bytes} sent`);
  }
  const seconds = days * 86_400;
  const url = await getSignedUrl(
    linkSigner(s3),
    new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentDisposition: `attachment; filename="${downloadName}"` }),
    { expiresIn: seconds },
  );
  return { key, url, expiresAt: new Date(Date.now() + seconds * 1000) };
}
