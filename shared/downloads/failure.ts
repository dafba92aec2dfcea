import { ERRORS, type ErrorEntry, type ErrorName } from '../errors.ts';
import type { DownloadError } from './record.ts';

/** What a Step Functions Catch puts at `$.error`. */
export interface CaughtError {
  Error?: string;
  Cause?: string;
}

/** The record's code for an error name a task throws (`ERRORS`); `undefined` for anything else. */
function failureCodeOf(name: string): string | undefined {
  return Object.hasOwn(ERRORS, name) ? (ERRORS[name as ErrorName] as ErrorEntry).failureCode : undefined;
}

/**
 * Turns a caught task error into the `{code, message}` a client sees. Messages of our own named
 * errors are safe to show; anything else (SDK internals, stack traces) is replaced.
 */
export function toDownloadError(caught: CaughtError | undefined): DownloadError {
  const name = caught?.Error ?? 'Unknown';
  const code = failureCodeOf(name);
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

/** How an execution that no state of its own could report on ended (EventBridge's `detail.status`). */
export type EndedExecutionStatus = 'TIMED_OUT' | 'ABORTED' | 'FAILED';

/**
 * The `{code, message}` for a download whose execution ended without a `MarkFailed` of its own:
 * `Timeout` when it ran past the workflow's `TimeoutSeconds`, `DownloadStopped` when it was
 * stopped (`StopExecution`), and for a failed one whatever its error maps to (`InternalError` for
 * anything unnamed, such as `MarkFailed` itself failing).
 */
export function toEndedExecutionError(execution: {
  status: EndedExecutionStatus;
  error?: string | null;
  cause?: string | null;
}): DownloadError {
  switch (execution.status) {
    case 'TIMED_OUT':
      return { code: 'Timeout', message: 'The download did not finish in time' };
    case 'ABORTED':
      return { code: 'DownloadStopped', message: 'The download was stopped' };
    case 'FAILED':
      return toDownloadError({ Error: execution.error ?? undefined, Cause: execution.cause ?? undefined });
  }
}
