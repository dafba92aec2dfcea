/** Errors of the copy into S3, single-stream (`copy-to-s3.ts`) and parallel (`copy-range.ts`) alike. */

/** S3 refused or failed the upload; transient, so the state machine retries it. */
export class S3UploadError extends Error {
  override readonly name = 'S3UploadError';
}

/** The copy did not finish before the function's deadline; retrying would not help. */
export class CopyTimeoutError extends Error {
  override readonly name = 'CopyTimeoutError';
}

/**
 * The download was settled elsewhere while the copy ran (its execution stopped or timed out, and
 * the `workflow-ended` watcher marked it FAILED): the copy stops and removes its own upload.
 */
export class CopyCancelledError extends Error {
  override readonly name = 'CopyCancelledError';
}
