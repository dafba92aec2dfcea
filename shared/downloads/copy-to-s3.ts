import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { type AdvertisedDigest, readAdvertisedDigest } from '../checksum/advertised-digest.ts';
import { CopyChecksums, withObjectChecksums } from '../checksum/copy-checksums.ts';
import type { FetchConfig } from '../config.ts';
import { attachmentDisposition, toDownloadFileName } from '../content-disposition.ts';
import { DeadlineExceededError } from '../deadline.ts';
import { parseDownloadKey } from '../download-key.ts';
import { HttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { type Metrics, MetricUnit } from '../observability.ts';
import { LengthGuard } from '../streaming/length-guard.ts';
import { cancelBody, openUpstream, withUpstreamErrors } from '../upstream.ts';
import type { ConnectionPoster } from './connections.ts';
// In their own module, so the parallel copy's functions name them without bundling lib-storage.
import { CopyCancelledError, CopyTimeoutError, S3UploadError } from './copy-errors.ts';
import { toProgressMessage } from './messages.ts';
import { type CopiedObject, toObjectKey } from './object-key.ts';

export type { CopiedObject } from './object-key.ts';

import type { WorkflowInput } from './start-download.ts';
import type { DownloadStore } from './store.ts';

export { CopyCancelledError, CopyTimeoutError, S3UploadError };

/** Names of the metrics a finished copy emits (namespace `POWERTOOLS_METRICS_NAMESPACE`, no dimension but `service`). */
export const COPY_METRICS = {
  /** Upstream → S3, from the start of the upload to its completion (ms). */
  copyDuration: 'CopyDuration',
  /** Bytes stored per second of `CopyDuration`. */
  copyThroughput: 'CopyThroughput',
  /** Size of the copied object (bytes). */
  bytesCopied: 'BytesCopied',
} as const;

/**
 * Counts bytes as they pass and calls `onProgress` at most once per `intervalMs`. Before the
 * stream ends it awaits `beforeEnd`, whose rejection fails the stream instead: the upload
 * completes only after that check.
 */
class ProgressMeter extends Transform {
  bytes = 0;
  private lastReport = 0;
  constructor(
    private readonly intervalMs: number,
    private readonly onProgress: (bytes: number) => void,
    private readonly beforeEnd: () => Promise<void>,
    private readonly checksums: CopyChecksums,
  ) {
    super();
  }

  override _flush(callback: TransformCallback): void {
    this.beforeEnd().then(
      () => callback(),
      (error: unknown) => callback(error as Error),
    );
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.checksums.update(chunk);
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
 * `partSize × (queueSize + 1)` whatever the size; progress goes to the record and, over the WebSocket,
 * to every connected client, and never goes backwards, also across retries. On any failure the
 * multipart upload is aborted and a named error is thrown for the state machine's Retry/Catch:
 * named after upstream when upstream's body failed, `S3UploadError` when storing failed.
 *
 * A download settled elsewhere (READY or FAILED in the record) is no longer wanted: its execution
 * ended without waiting for this invocation. The copy checks on every progress report that the
 * store refuses and once more before the upload completes, and then stops with
 * `CopyCancelledError`, aborting its own upload, so nothing is left behind by a copy that outlived
 * the cleanup of its download.
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
    /** Receives the copy's duration, throughput and size once it succeeded; flushed by the caller. */
    metrics?: Metrics;
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
  // Digest headers describe the whole file: a 206 (the client asked for a range) is not checked.
  let advertised: AdvertisedDigest | undefined;
  try {
    advertised = upstream.statusCode === 200 ? readAdvertisedDigest(upstream.headers) : undefined;
  } catch (error) {
    cancelBody(upstream.body);
    throw error;
  }
  const checksums = new CopyChecksums(config.partSizeBytes, advertised);

  // READY or FAILED: someone else settled the download (see `CopyCancelledError`).
  const settledElsewhere = async (): Promise<boolean> => {
    const record = await deps.store.get(input.downloadId).catch((error: unknown) => {
      logger.warn('could not check whether the download is still wanted', { error: error as Error });
      return undefined;
    });
    return record?.status === 'READY' || record?.status === 'FAILED';
  };
  const cancellation = new AbortController();

  let reporting = false;
  const report = (copied: number) => {
    if (reporting) return; // never queue updates behind a slow one
    reporting = true;
    const bytes = Math.max(copied, reachedBefore);
    deps.store
      .recordProgress(input.downloadId, bytes, totalBytes)
      .then(async (record) => {
        if (record) {
          const broadcast = await deps.poster.postToAll(
            record.connections ?? {},
            toProgressMessage(input.downloadId, bytes, totalBytes),
          );
          for (const { connectionId, error } of broadcast.failed) {
            logger.warn('progress post failed', { connectionId, error });
          }
          // Closed without their $disconnect reaching the table: stop posting to them.
          if (broadcast.gone.length > 0) await deps.store.removeConnections(input.downloadId, broadcast.gone);
        }
        // The store refuses progress for a settled download (see `recordProgress`).
        if (!record && (await settledElsewhere())) cancellation.abort();
      })
      .catch((error: unknown) => logger.warn('progress update failed', { error: error as Error }))
      .finally(() => {
        reporting = false;
      });
  };
  report(0);

  // Unknown lengths are capped by S3's own limit: 10,000 parts.
  const guard = new LengthGuard(totalBytes, config.partSizeBytes * 10_000);
  const cancelledError = () => new CopyCancelledError('The download ended while its file was being copied');
  // Before the body ends, and so before the upload completes: bytes that do not match upstream's
  // digest fail the body, and lib-storage aborts the multipart upload (nothing is stored).
  const meter = new ProgressMeter(
    deps.progressIntervalMs ?? 1000,
    report,
    async () => {
      checksums.verify();
      if (await settledElsewhere()) throw cancelledError();
    },
    checksums,
  );
  // Failing the body (not `upload.abort()`) makes the upload abort its multipart upload before
  // `done()` rejects, so the abort is not left to a frozen or finished invocation.
  cancellation.signal.addEventListener('abort', () => meter.destroy(cancelledError()), { once: true });
  // An error anywhere destroys the whole chain; the upload sees it through `meter`, its body. Errors
  // of upstream's body are tagged as upstream errors first, so that whatever reaches the upload
  // from its body is an `HttpError`, and anything else it throws is the storage's.
  pipeline(withUpstreamErrors(upstream.body, signal), guard, meter, () => {});

  const upload = new Upload({
    client: withObjectChecksums(deps.s3, checksums),
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
    if (bodyError instanceof CopyCancelledError) {
      logger.warn('copy cancelled: the download was settled elsewhere', {
        downloadId: input.downloadId,
        bytes: meter.bytes,
      });
      throw bodyError;
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
  const durationMs = Date.now() - started;
  const checksum = checksums.objectChecksum();
  logger.info('copy finished', {
    downloadId: input.downloadId,
    objectKey,
    size,
    durationMs,
    checksum,
    verified: advertised ? `${advertised.algorithm} from ${advertised.header}` : 'nothing announced',
  });
  deps.metrics?.addMetric(COPY_METRICS.copyDuration, MetricUnit.Milliseconds, durationMs);
  deps.metrics?.addMetric(COPY_METRICS.bytesCopied, MetricUnit.Bytes, size);
  deps.metrics?.addMetric(
    COPY_METRICS.copyThroughput,
    MetricUnit.BytesPerSecond,
    Math.round(size / (Math.max(durationMs, 1) / 1000)),
  );
  return { bucket: config.downloadBucket, objectKey, size, contentType, fileName, checksum };
}
