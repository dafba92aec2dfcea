import type { ObjectChecksum } from '../checksum/object-checksum.ts';

/** Where a download is in its life. */
export type DownloadStatus = 'PENDING' | 'RUNNING' | 'READY' | 'FAILED';

/** A client-safe error: stable code and a message that may be shown. */
export interface DownloadError {
  code: string;
  message: string;
}

/** The DynamoDB item of one async download (partition key `downloadId`). */
export interface DownloadRecord {
  downloadId: string;
  /** The download key in wire form (percent-encoded segments). */
  key: string;
  status: DownloadStatus;
  executionArn: string;
  createdAt: string;
  updatedAt: string;
  /** Epoch seconds; DynamoDB TTL deletes the item some time after. Treat as absent once past. */
  expiresAt: number;
  /** Bytes copied so far. */
  bytes: number;
  totalBytes?: number;
  fileName?: string;
  contentType?: string;
  objectKey?: string;
  /** SHA-256 (hex) of the download token; the token itself is handed out once and never stored. */
  tokenHash: string;
  /**
   * The WebSocket connections waiting for this download: connection id → when it was bound (epoch
   * ms). At most `MAX_CONNECTIONS_PER_DOWNLOAD`; every one gets progress and the outcome.
   */
  connections: Record<string, number>;
  url?: string;
  urlExpiresAt?: string;
  size?: number;
  /** The stored object's full-object CRC64NVME (records written before checksums have none). */
  checksum?: ObjectChecksum;
  error?: DownloadError;
}

/** What `GET /downloads/{id}` returns and the `status` WebSocket message carries. */
export interface DownloadStatusView {
  downloadId: string;
  status: DownloadStatus;
  key: string;
  fileName?: string;
  bytes: number;
  totalBytes?: number;
  createdAt: string;
  updatedAt: string;
  executionArn: string;
  url?: string;
  expiresAt?: string;
  size?: number;
  contentType?: string;
  /** READY only: the checksum of the bytes at `url` (S3 returns it for `x-amz-checksum-mode=ENABLED`). */
  checksum?: ObjectChecksum;
  error?: DownloadError;
}

/** The public view of a record (no connection ids, no token hash, no object keys). */
export function toStatusView(record: DownloadRecord): DownloadStatusView {
  return {
    downloadId: record.downloadId,
    status: record.status,
    key: record.key,
    fileName: record.fileName,
    bytes: record.bytes,
    totalBytes: record.totalBytes,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    executionArn: record.executionArn,
    ...(record.status === 'READY'
      ? {
          url: record.url,
          expiresAt: record.urlExpiresAt,
          size: record.size,
          contentType: record.contentType,
          ...(record.checksum ? { checksum: record.checksum } : {}),
        }
      : {}),
    ...(record.status === 'FAILED' ? { error: record.error } : {}),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// arn:{partition}:states:{region}:{account}:execution:{stateMachine}:{name}
const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:([^:]{1,80})$/;

/** True for a well-formed download id (a lower-case UUID). */
export function isDownloadId(value: string | undefined): value is string {
  return value !== undefined && UUID.test(value);
}

/** The download id an execution ARN names (executions are named after their download), if well-formed. */
export function downloadIdFromExecutionArn(arn: string | undefined): string | undefined {
  const name = arn ? EXECUTION_ARN.exec(arn)?.[1] : undefined;
  return isDownloadId(name) ? name : undefined;
}

/** The ARN the execution for `downloadId` gets when started on `stateMachineArn`. */
export function toExecutionArn(stateMachineArn: string, downloadId: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${downloadId}`;
}
