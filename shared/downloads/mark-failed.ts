import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../logger.ts';
import { removeDownloadLeftovers } from './cleanup.ts';
import type { ConnectionPoster } from './connections.ts';
import { type CaughtError, toDownloadError } from './failure.ts';
import { toOutcomeMessage } from './messages.ts';
import type { DownloadError } from './record.ts';
import type { DownloadStore } from './store.ts';

/** Removes S3 leftovers, marks the record FAILED and posts `failed` to a connected client. */
export async function markDownloadFailed(
  input: { downloadId: string; error?: CaughtError },
  deps: { store: DownloadStore; poster: ConnectionPoster; s3: S3Client; bucket: string; logger: Logger },
): Promise<{ error: DownloadError; delivered: boolean }> {
  const error = toDownloadError(input.error);
  deps.logger.warn('download failed', { downloadId: input.downloadId, error, caught: input.error?.Error });
  // Record and tell first: a cleanup failure must not leave the download looking alive.
  const record = await deps.store.markFailed(input.downloadId, error);
  const message = record ? toOutcomeMessage(record) : undefined;
  let delivered = false;
  if (record?.connectionId && message) {
    delivered =
      (await deps.poster.post(record.connectionId, message).catch(() => 'gone' as const)) === 'sent';
  }
  try {
    const removed = await removeDownloadLeftovers(deps.s3, deps.bucket, input.downloadId);
    if (removed.abortedUploads > 0 || removed.deletedObjects > 0)
      deps.logger.info('removed leftovers', { ...removed });
  } catch (cleanupError) {
    // The bucket's lifecycle rules abort incomplete uploads after a day and expire objects.
    deps.logger.error('could not remove leftovers; lifecycle rules will', { error: cleanupError as Error });
  }
  return { error, delivered };
}
