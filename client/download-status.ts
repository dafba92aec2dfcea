/**
 * The shapes the download API answers with, as its clients (the `large-download` CLI in cli/ and
 * the browser page in web/) read them: the status URL's JSON, the WebSocket's messages and the
 * ready file they name. Environment-neutral: no Node or DOM imports.
 */

/** A checksum as the API announces it (`sha256`, hex or base64). */
export interface Checksum {
  algorithm: string;
  value: string;
}

/** `GET /downloads/{id}` (statusUrl), and the WebSocket's `status` message. */
export interface DownloadStatus {
  downloadId: string;
  status: 'PENDING' | 'RUNNING' | 'READY' | 'FAILED' | (string & {});
  key?: string;
  fileName?: string;
  bytes?: number;
  totalBytes?: number;
  createdAt?: string;
  updatedAt?: string;
  url?: string;
  expiresAt?: string;
  size?: number;
  contentType?: string;
  checksum?: Checksum;
  error?: { code: string; message: string };
  webSocketUrl?: string;
}

/** What a `ready` message or a READY status gives: where to fetch the file from S3. */
export interface ReadyFile {
  url: string;
  expiresAt?: string;
  size?: number;
  contentType?: string;
  checksum?: Checksum;
}

/** The `error` of a FAILED status or a `failed` message, as it arrived (not yet checked). */
export interface CopyFailureReport {
  code?: unknown;
  message?: unknown;
}

/** The ready file in a `ready` message or READY status, if it names one. */
export function toReadyFile(message: Record<string, unknown>): ReadyFile | undefined {
  if (typeof message.url !== 'string') return undefined;
  const checksum = message.checksum as Partial<Checksum> | undefined;
  return {
    url: message.url,
    ...(typeof message.expiresAt === 'string' ? { expiresAt: message.expiresAt } : {}),
    ...(typeof message.size === 'number' ? { size: message.size } : {}),
    ...(typeof message.contentType === 'string' ? { contentType: message.contentType } : {}),
    ...(typeof checksum?.algorithm === 'string' && typeof checksum.value === 'string'
      ? { checksum: { algorithm: checksum.algorithm, value: checksum.value } }
      : {}),
  };
}
