import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectChecksum } from '../checksum/object-checksum.ts';
import { attachmentDisposition } from '../content-disposition.ts';
import type { DownloadRecord } from './record.ts';

/** What a presigned GET needs to know about the object. */
export interface PresignTarget {
  bucket: string;
  objectKey: string;
  fileName: string;
  contentType: string;
  /** When the object carries one, the URL asks S3 to return it (`x-amz-checksum-mode=ENABLED`). */
  checksum?: ObjectChecksum | null;
}

/** A presigned GET URL that saves under the original file name, and when it stops working. */
export async function presignDownload(
  s3: S3Client,
  target: PresignTarget,
  ttlSeconds: number,
): Promise<{ url: string; expiresAt: string }> {
  const url = await getSignedUrl(
    s3,
    new GetObjectCommand({
      Bucket: target.bucket,
      Key: target.objectKey,
      ResponseContentDisposition: attachmentDisposition(target.fileName),
      ResponseContentType: target.contentType,
      // Signed into the query string: S3 then answers with `x-amz-checksum-crc64nvme` (full GETs
      // only), so a client can check the bytes against the value in the `ready` message.
      ...(target.checksum ? { ChecksumMode: 'ENABLED' as const } : {}),
    }),
    { expiresIn: ttlSeconds },
  );
  return { url, expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString() };
}

/** A URL with less than this left is re-signed before it is handed out again. */
const MIN_REMAINING_MS = 30_000;

/**
 * The record with a usable URL: a ready download whose stored URL has expired (or nearly) gets a
 * fresh one, so a client that reconnects or polls late still receives a working link. The record
 * in DynamoDB is left as it is; the object itself expires with the bucket's lifecycle rule.
 */
export async function withFreshUrl(
  record: DownloadRecord,
  deps: { s3: S3Client; bucket: string; ttlSeconds: number },
): Promise<DownloadRecord> {
  if (record.status !== 'READY' || !record.objectKey || !record.urlExpiresAt) return record;
  if (Date.parse(record.urlExpiresAt) - Date.now() > MIN_REMAINING_MS) return record;
  const fresh = await presignDownload(
    deps.s3,
    {
      bucket: deps.bucket,
      objectKey: record.objectKey,
      fileName: record.fileName ?? 'download',
      contentType: record.contentType ?? 'application/octet-stream',
      checksum: record.checksum,
    },
    deps.ttlSeconds,
  );
  return { ...record, url: fresh.url, urlExpiresAt: fresh.expiresAt };
}
