import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { FetchConfig } from '../config.ts';
import { attachmentDisposition, toDownloadFileName } from '../content-disposition.ts';
import { DeadlineExceededError } from '../deadline.ts';
import { parseDownloadKey } from '../download-key.ts';
import { HttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { LengthGuard } from '../streaming/length-guard.ts';
import { cancelBody, openUpstream, withUpstreamErrors } from '../upstream.ts';
import type { ConnectionPoster } from './connections.ts';
import { toProgressMessage } from './messages.ts';
import type { WorkflowInput } from './start-download.ts';
import type { DownloadStore } from './store.ts';

/** S3 refused or failed the upload; transient, so the state machine retries it. */
export class S3UploadError extends Error {
  override readonly name = 'S3UploadError';
}

/** The copy did not finish before the function's deadline; retrying would not help. */
export class CopyTimeoutError extends Error {
  override readonly name = 'CopyTimeoutError';
}

/** What `FetchToS3` returns to the state machine (a reference, never the body). */
export interface CopiedObject {
  bucket: string;
  objectKey: string;
  size: number;
  contentType: string;
  fileName: string;
}

/** S3 key of a download's object. */
export function toObjectKey(downloadId: string, fileName: string): string {
  return `downloads/${downloadId}/${fileName}`;
}

/** Prefix under which a download's object and multipart uploads live. */
export function toObjectPrefix(downloadId: string): string {
  return `downloads/${downloadId}/`;
}

/** Counts bytes as they pass and calls `onProgress` at most once per `intervalMs`. */
class ProgressMeter extends Transform {
  bytes = 0;
  private lastReport = 0;
  constructor(
    private readonly intervalMs: number,
    private readonly onProgress: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const now = Date.now();
    if (now - this.lastReport >= this.intervalMs) {
      this.lastReport = now;
      this.onProgress(this.bytes);
    }
    callback(null, chunk);
  }
}

/**
 * Streams upstream's body into an S3 multipart upload. Memory stays near
 * `partSize × (queueSize + 1)` whatever the size; progress goes to the record and, if a client is
 * connected, over the WebSocket, and never goes backwards, also across retries. On any failure the
 * multipart upload is aborted and a named error is thrown for the state machine's Retry/Catch:
 * named after upstream when upstream's body failed, `S3UploadError` when storing failed.
 */
export async function copyToS3(
  input: WorkflowInput,
  deps: {
    config: FetchConfig;
    s3: S3Client;
    store: DownloadStore;
    poster: ConnectionPoster;
    logger: Logger;
    signal: AbortSignal;
    progressIntervalMs?: number;
  },
): Promise<CopiedObject> {
  const { config, logger, signal } = deps;
  const key = parseDownloadKey(input.key);
  // A retried copy starts over from the first byte. Progress never goes backwards: until this
  // attempt passes the furthest point an earlier one reached, it reports that point (the store
  // refuses to lower `bytes` in any case; this keeps the messages coming meanwhile).
  const reachedBefore = await deps.store.get(input.downloadId).then(
    (record) => record?.bytes ?? 0,
    (error: unknown) => {
      logger.warn('could not read earlier progress', { error: error as Error });
      return 0;
    },
  );
  const upstream = await openUpstream(
    {
      key,
      method: 'GET',
      query: input.query ? new URLSearchParams(input.query) : undefined,
      range: input.range,
      signal,
    },
    config.upstream,
  );
  const fileName = toDownloadFileName(upstream.headers['content-disposition'], key.fileName);
  const contentType = upstream.headers['content-type'] ?? 'application/octet-stream';
  // Stored as sent: an encoded body (upstream may ignore `Accept-Encoding: identity`) keeps its
  // label, so S3 serves it with `Content-Encoding` and clients decode it.
  const contentEncoding = upstream.headers['content-encoding'];
  const objectKey = toObjectKey(input.downloadId, fileName);
  const totalBytes = upstream.contentLength;

  let reporting = false;
  const report = (copied: number) => {
    if (reporting) return; // never queue updates behind a slow one
    reporting = true;
    const bytes = Math.max(copied, reachedBefore);
    deps.store
      .recordProgress(input.downloadId, bytes, totalBytes)
      .then(async (record) => {
        if (record?.connectionId) {
          await deps.poster.post(record.connectionId, toProgressMessage(input.downloadId, bytes, totalBytes));
        }
      })
      .catch((error: unknown) => logger.warn('progress update failed', { error: error as Error }))
      .finally(() => {
        reporting = false;
      });
  };
  report(0);

  // Unknown lengths are capped by S3's own limit: 10,000 parts.
  const guard = new LengthGuard(totalBytes, config.partSizeBytes * 10_000);
  const meter = new ProgressMeter(deps.progressIntervalMs ?? 1000, report);
  // An error anywhere destroys the whole chain; the upload sees it through `meter`, its body. Errors
  // of upstream's body are tagged as upstream errors first, so that whatever reaches the upload
  // from its body is an `HttpError`, and anything else it throws is the storage's.
  pipeline(withUpstreamErrors(upstream.body, signal), guard, meter, () => {});

  const upload = new Upload({
    client: deps.s3,
    params: {
      Bucket: config.downloadBucket,
      Key: objectKey,
      Body: meter,
      ContentType: contentType,
      ...(contentEncoding ? { ContentEncoding: contentEncoding } : {}),
      ContentDisposition: attachmentDisposition(fileName),
    },
    partSize: config.partSizeBytes,
    queueSize: config.queueSize,
    leavePartsOnError: false,
  });
  const onAbort = () => {
    upstream.body.destroy(signal.reason as Error);
    void upload.abort();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  const started = Date.now();
  try {
    await upload.done();
  } catch (error) {
    // The body's own failure, if it failed: upstream's (tagged above) or the length guard's.
    const bodyError = meter.errored;
    cancelBody(upstream.body);
    if (signal.reason instanceof DeadlineExceededError) {
      throw new CopyTimeoutError('The copy did not finish before the function timeout');
    }
    const cause = bodyError ?? error;
    const named =
      cause instanceof HttpError
        ? cause
        : new S3UploadError(`Storing the file failed: ${(error as Error).message}`, { cause: error });
    logger.error('copy failed', { downloadId: input.downloadId, bytes: meter.bytes, error: named });
    throw named;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  const size = meter.bytes;
  logger.info('copy finished', {
    downloadId: input.downloadId,
    objectKey,
    size,
    durationMs: Date.now() - started,
  });
  return { bucket: config.downloadBucket, objectKey, size, contentType, fileName };
}
