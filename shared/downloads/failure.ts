import type { DownloadError } from './record.ts';

/** What a Step Functions Catch puts at `$.error`. */
export interface CaughtError {
  Error?: string;
  Cause?: string;
}

/** Client codes for the error names the tasks throw; anything else is reported generically. */
const CODES: Record<string, string> = {
  UpstreamUnavailableError: 'UpstreamFailed',
  UpstreamRejectedError: 'UpstreamRejected',
  UpstreamTimeoutError: 'UpstreamTimeout',
  NotFoundError: 'UpstreamNotFound',
  BadRequestError: 'InvalidKey',
  RangeNotSatisfiableError: 'RangeNotSatisfiable',
  S3UploadError: 'StorageFailed',
  CopyTimeoutError: 'CopyTimeout',
  FileTooLargeError: 'FileTooLarge',
  'States.Timeout': 'Timeout',
};

/**
 * Turns a caught task error into the `{code, message}` a client sees. Messages of our own named
 * errors are safe to show; anything else (SDK internals, stack traces) is replaced.
 */
export function toDownloadError(caught: CaughtError | undefined): DownloadError {
  const name = caught?.Error ?? 'Unknown';
  const code = CODES[name];
  if (!code) return { code: 'InternalError', message: 'The download failed unexpectedly' };
  let message = 'The download failed';
  // Storage failures carry SDK text (bucket names, hosts); clients get a fixed sentence.
  if (code === 'StorageFailed') return { code, message: 'Storing the file failed; try again later' };
  try {
    const cause = JSON.parse(caught?.Cause ?? '{}') as { errorMessage?: unknown };
    if (typeof cause.errorMessage === 'string' && cause.errorMessage.length > 0)
      message = cause.errorMessage.slice(0, 500);
  } catch {
    // Cause is not JSON (e.g. States.Timeout): keep the generic message.
  }
  return { code, message };
}
