/**
 * Where a download's bytes live in the bucket. Its own module so that functions which only clean
 * up (mark-failed, workflow-ended) do not bundle the copy code and its HTTP client.
 */

/** S3 key of a download's object. */
export function toObjectKey(downloadId: string, fileName: string): string {
  return `${toObjectPrefix(downloadId)}${fileName}`;
}

/** Prefix under which a download's object and multipart uploads live. */
export function toObjectPrefix(downloadId: string): string {
  return `downloads/${downloadId}/`;
}
