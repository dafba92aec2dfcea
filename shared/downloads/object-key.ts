/**
 * Where a download's bytes live in the bucket, and what a finished copy hands to the rest of the
 * workflow. Its own module so that functions which only clean up (mark-failed, workflow-ended) or
 * complete a parallel copy do not bundle the copy code and its HTTP client.
 */
import type { ObjectChecksum } from '../checksum/object-checksum.ts';

/**
 * What a copy returns to the state machine in `$.object` (a reference, never the body): `FetchToS3`
 * and the parallel copy's `CompleteCopy` alike.
 */
export interface CopiedObject {
  bucket: string;
  objectKey: string;
  size: number;
  contentType: string;
  fileName: string;
  /** The object's full-object CRC64NVME, as stored on it in S3 (`ChecksumMode: ENABLED` returns it). */
  checksum: ObjectChecksum;
}

/** S3 key of a download's object. */
export function toObjectKey(downloadId: string, fileName: string): string {
  return `${toObjectPrefix(downloadId)}${fileName}`;
}

/** Prefix under which a download's object and multipart uploads live. */
export function toObjectPrefix(downloadId: string): string {
  return `downloads/${downloadId}/`;
}
