import { ENDED_EXECUTION_STATUSES, type ExecutionStatusChangeDetail } from './execution-events.ts';
import { type EndedExecutionStatus, toEndedExecutionError } from './failure.ts';
import { type FailureDeps, postFailure, recordFailure, removeLeftoversOrLog } from './mark-failed.ts';
import { type DownloadError, downloadIdFromExecutionArn, isDownloadId } from './record.ts';

/** What became of the download of an execution that ended. */
export type WorkflowEndedOutcome =
  /** Not an ending this watcher handles, or not one of this app's executions. */
  | { outcome: 'ignored'; reason: string }
  /** The record was still PENDING/RUNNING: now FAILED, client told, S3 cleaned. */
  | { outcome: 'marked-failed'; downloadId: string; error: DownloadError; delivered: boolean }
  /** The workflow had settled it already (its own `MarkFailed`, or READY); nothing was overwritten. */
  | { outcome: 'already-settled'; downloadId: string; status: string };

function isEndedStatus(status: string): status is EndedExecutionStatus {
  return (ENDED_EXECUTION_STATUSES as readonly string[]).includes(status);
}

/**
 * Settles the download of an execution that ended TIMED_OUT, ABORTED or FAILED — endings no
 * `Catch` inside the workflow sees — so no record stays RUNNING: marks it FAILED (only if it is
 * still PENDING/RUNNING, so `MarkFailed`'s own error stands), posts `failed` to a connected
 * client, and removes what the copy left in S3 (unless the download is READY: then the object is
 * the download). Safe to run more than once for the same event (EventBridge and Lambda retry).
 *
 * The copy may still be running in its own invocation (stopping an execution does not stop a
 * Lambda invocation); it sees the FAILED record and removes its own upload (`copyToS3`).
 */
export async function settleEndedWorkflow(
  detail: ExecutionStatusChangeDetail,
  deps: FailureDeps,
): Promise<WorkflowEndedOutcome> {
  if (!isEndedStatus(detail.status)) return { outcome: 'ignored', reason: `status ${detail.status}` };
  const downloadId = detail.name;
  // The ARN's last segment is the name; both must name a download, or this is not our execution.
  if (!isDownloadId(downloadId) || downloadIdFromExecutionArn(detail.executionArn) !== downloadId) {
    deps.logger.warn('ignored an execution not named after a download', {
      executionArn: detail.executionArn,
    });
    return { outcome: 'ignored', reason: 'not a download execution' };
  }
  const error = toEndedExecutionError({ status: detail.status, error: detail.error, cause: detail.cause });
  const record = await deps.store.markFailedIfUnsettled(downloadId, error);
  if (record) {
    recordFailure(deps.metrics, error);
    deps.logger.warn('execution ended with the download unsettled; marked it failed', {
      downloadId,
      status: detail.status,
      executionError: detail.error ?? undefined,
      error,
    });
    const delivered = await postFailure(record, deps);
    await removeLeftoversOrLog(downloadId, deps);
    return { outcome: 'marked-failed', downloadId, error, delivered };
  }
  const current = await deps.store.get(downloadId);
  const status = current?.status ?? 'UNKNOWN';
  deps.logger.info('execution ended with the download settled', {
    downloadId,
    executionStatus: detail.status,
    status,
  });
  // A FAILED (or expired) download may still have leftovers if its own cleanup failed; a READY one
  // keeps its object.
  if (status !== 'READY') await removeLeftoversOrLog(downloadId, deps);
  return { outcome: 'already-settled', downloadId, status };
}
