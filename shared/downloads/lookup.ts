import { BadRequestError, NotFoundError } from '../errors.ts';
import { type DownloadRecord, downloadIdFromExecutionArn, isDownloadId } from './record.ts';
import type { DownloadStore } from './store.ts';

/** Validates a download id from a client; 400 if malformed. */
export function parseDownloadId(value: string | undefined): string {
  if (!isDownloadId(value)) throw new BadRequestError('InvalidDownloadId', 'The download id is not valid');
  return value;
}

/**
 * Finds the download a client names, by download id or by execution ARN (whose execution name is
 * the download id; the ARN must also match the record, so a look-alike ARN is refused).
 */
export async function findDownload(
  store: DownloadStore,
  handle: { downloadId?: string; executionArn?: string },
): Promise<DownloadRecord> {
  let downloadId: string | undefined;
  if (handle.executionArn !== undefined) {
    downloadId = downloadIdFromExecutionArn(handle.executionArn);
    if (!downloadId) throw new BadRequestError('InvalidExecutionArn', 'The execution ARN is not valid');
  } else {
    downloadId = parseDownloadId(handle.downloadId);
  }
  const record = await store.get(downloadId);
  if (!record || (handle.executionArn !== undefined && record.executionArn !== handle.executionArn)) {
    throw new NotFoundError('DownloadNotFound', 'No download with this id (it may have expired)');
  }
  return record;
}
