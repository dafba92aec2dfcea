import type { ObjectChecksum } from '../checksum/object-checksum.ts';
import { type DownloadError, type DownloadRecord, type DownloadStatusView, toStatusView } from './record.ts';

/** Copy progress, at most about once a second. */
export interface ProgressMessage {
  type: 'progress';
  downloadId: string;
  bytes: number;
  totalBytes?: number;
}

/** The file is in S3; `url` is a presigned GET valid until `expiresAt`. */
export interface ReadyMessage {
  type: 'ready';
  downloadId: string;
  url: string;
  expiresAt: string;
  size: number;
  contentType: string;
  /** The checksum of the bytes at `url`, to verify the download against (absent on older records). */
  checksum?: ObjectChecksum;
}

/** The download failed for good. */
export interface FailedMessage {
  type: 'failed';
  downloadId: string;
  error: DownloadError;
}

/**
 * Sent just before the service closes a connection (API Gateway cannot give a close code or
 * reason of its own: the client sees code 1000). `reason.code` is `TooManyConnections` when a
 * newer connection for the same download pushed this one out of its set.
 */
export interface ClosedMessage {
  type: 'closed';
  downloadId: string;
  reason: DownloadError;
}

/** Answer to `{"action":"status"}`. */
export type StatusMessage = { type: 'status' } & DownloadStatusView;

/** Answer to a message the API does not understand. */
export interface ErrorMessage {
  type: 'error';
  error: DownloadError;
}

export type DownloadMessage =
  | ProgressMessage
  | ReadyMessage
  | FailedMessage
  | ClosedMessage
  | StatusMessage
  | ErrorMessage;

export function toProgressMessage(
  downloadId: string,
  bytes: number,
  totalBytes: number | undefined,
): ProgressMessage {
  return { type: 'progress', downloadId, bytes, totalBytes };
}

/** Why the oldest connection of a download is closed when a newer one exceeds the cap. */
export function toTooManyConnectionsMessage(downloadId: string, maxConnections: number): ClosedMessage {
  return {
    type: 'closed',
    downloadId,
    reason: {
      code: 'TooManyConnections',
      message: `A download delivers to at most ${maxConnections} connections; a newer one replaced this one`,
    },
  };
}

export function toStatusMessage(record: DownloadRecord): StatusMessage {
  return { type: 'status', ...toStatusView(record) };
}

/**
 * The message that settles a download for a client: `ready` or `failed`, or `undefined` while it
 * is still running.
 */
export function toOutcomeMessage(record: DownloadRecord): ReadyMessage | FailedMessage | undefined {
  if (record.status === 'READY' && record.url && record.urlExpiresAt) {
    return {
      type: 'ready',
      downloadId: record.downloadId,
      url: record.url,
      expiresAt: record.urlExpiresAt,
      size: record.size ?? record.bytes,
      contentType: record.contentType ?? 'application/octet-stream',
      ...(record.checksum ? { checksum: record.checksum } : {}),
    };
  }
  if (record.status === 'FAILED') {
    return {
      type: 'failed',
      downloadId: record.downloadId,
      error: record.error ?? { code: 'InternalError', message: 'The download failed' },
    };
  }
  return undefined;
}
