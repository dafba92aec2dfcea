import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../logger.ts';
import { emitMetric, type Metrics, MetricUnit } from '../observability.ts';
import { removeDownloadLeftovers } from './cleanup.ts';
import type { ConnectionPoster } from './connections.ts';
import { type CaughtError, toDownloadError } from './failure.ts';
import { toOutcomeMessage } from './messages.ts';
import type { DownloadError, DownloadRecord } from './record.ts';
import type { DownloadStore } from './store.ts';

/** What recording a failure needs: the record store, the WebSocket poster and the bucket. */
export interface FailureDeps {
  store: DownloadStore;
  poster: ConnectionPoster;
  s3: S3Client;
  bucket: string;
  logger: Logger;
  /** Receives `DownloadFailed`; without it nothing is measured. */
  metrics?: Metrics;
}

/** Names of the metrics a failed download emits (namespace `POWERTOOLS_METRICS_NAMESPACE`). */
export const FAILURE_METRICS = {
  /** One per download marked FAILED, dimension `code` (the client's error code, e.g. `UpstreamFailed`, `Timeout`). */
  downloadFailed: 'DownloadFailed',
} as const;

/** Counts a download marked FAILED under its error code. */
export function recordFailure(metrics: Metrics | undefined, error: DownloadError): void {
  emitMetric(metrics, {
    name: FAILURE_METRICS.downloadFailed,
    unit: MetricUnit.Count,
    value: 1,
    dimensions: { code: error.code },
  });
}

/** Marks the record FAILED, posts `failed` to every connected client and removes S3 leftovers. */
export async function markDownloadFailed(
  input: { downloadId: string; error?: CaughtError },
  deps: FailureDeps,
): Promise<{ error: DownloadError; delivered: boolean }> {
  const error = toDownloadError(input.error);
  deps.logger.warn('download failed', { downloadId: input.downloadId, error, caught: input.error?.Error });
  // Record and tell first: a cleanup failure must not leave the download looking alive.
  const record = await deps.store.markFailed(input.downloadId, error);
  recordFailure(deps.metrics, error);
  const delivered = await postFailure(record, deps);
  await removeLeftoversOrLog(input.downloadId, deps);
  return { error, delivered };
}

/**
 * Posts the `failed` message of a record just marked FAILED to every connection bound to it
 * (waiting for one that may still be inside `$connect`) and drops the ones that are gone. Resolves
 * `true` if any received it; a failed post is not an error (the record tells the rest).
 */
export async function postFailure(
  record: DownloadRecord | undefined,
  deps: Pick<FailureDeps, 'poster' | 'store' | 'logger'>,
): Promise<boolean> {
  const message = record ? toOutcomeMessage(record) : undefined;
  if (!record || !message) return false;
  try {
    const broadcast = await deps.poster.postToAll(record.connections ?? {}, message, { waitForNew: true });
    for (const { connectionId, error } of broadcast.failed) {
      deps.logger.warn('could not post "failed"', { downloadId: record.downloadId, connectionId, error });
    }
    if (broadcast.gone.length > 0) await deps.store.removeConnections(record.downloadId, broadcast.gone);
    return broadcast.sent.length > 0;
  } catch (error) {
    deps.logger.warn('could not tell the clients', { downloadId: record.downloadId, error: error as Error });
    return false;
  }
}

/** Removes what a copy left in S3; a failure is logged, not thrown (lifecycle rules back it up). */
export async function removeLeftoversOrLog(
  downloadId: string,
  deps: Pick<FailureDeps, 's3' | 'bucket' | 'logger'>,
): Promise<void> {
  try {
    const removed = await removeDownloadLeftovers(deps.s3, deps.bucket, downloadId);
    if (removed.abortedUploads > 0 || removed.deletedObjects > 0)
      deps.logger.info('removed leftovers', { downloadId, ...removed });
  } catch (cleanupError) {
    // The bucket's lifecycle rules abort incomplete uploads after a day and expire objects.
    deps.logger.error('could not remove leftovers; lifecycle rules will', { error: cleanupError as Error });
  }
}
