import { BadRequestError, NotFoundError } from '../errors.ts';
import { authorizeDownload, requireDownloadToken } from './download-token.ts';
import { type DownloadRecord, downloadIdFromExecutionArn, isDownloadId } from './record.ts';
import type { DownloadStore } from './store.ts';

/** Validates a download id from a client; 400 if malformed. */
export function parseDownloadId(value: string | undefined): string {
  if (!isDownloadId(value)) throw new BadRequestError('InvalidDownloadId', 'The download id is not valid');
  return value;
}

/** How a client names a download: its id, or the execution ARN (whose execution name is the id). */
export interface DownloadHandle {
  downloadId?: string;
  executionArn?: string;
}

/** The download id a handle names; 400 if it is malformed. The execution ARN wins over the id. */
export function parseDownloadHandle(handle: DownloadHandle): string {
  if (handle.executionArn === undefined) return parseDownloadId(handle.downloadId);
  const downloadId = downloadIdFromExecutionArn(handle.executionArn);
  if (!downloadId) throw new BadRequestError('InvalidExecutionArn', 'The execution ARN is not valid');
  return downloadId;
}

/**
 * Finds the download a client names, by download id or by execution ARN (the ARN must also match
 * the record, so a look-alike ARN is refused). Finding is not being allowed: see `download-token.ts`.
 */
export async function findDownload(store: DownloadStore, handle: DownloadHandle): Promise<DownloadRecord> {
  const record = await store.get(parseDownloadHandle(handle));
  if (!record || (handle.executionArn !== undefined && record.executionArn !== handle.executionArn)) {
    throw new NotFoundError('DownloadNotFound', 'No download with this id (it may have expired)');
  }
  return record;
}

/**
 * Finds the download a client names and checks that the client holds its token: 400 for a
 * malformed handle, 401 without a token (before any lookup: an id alone learns nothing), 404 for an
 * unknown or expired download, 403 for a wrong token.
 */
export async function findAuthorizedDownload(
  store: DownloadStore,
  handle: DownloadHandle,
  token: string | undefined,
): Promise<DownloadRecord> {
  parseDownloadHandle(handle);
  const proof = requireDownloadToken(token);
  const record = await findDownload(store, handle);
  authorizeDownload(record, proof);
  return record;
}
