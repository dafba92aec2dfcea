import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type AdvertisedDigest,
  combinableDigest,
  readAdvertisedDigest,
} from '../checksum/advertised-digest.ts';
import { fullObjectChecksumUpload } from '../checksum/copy-checksums.ts';
import type { PlanCopyConfig } from '../config.ts';
import { attachmentDisposition, toDownloadFileName } from '../content-disposition.ts';
import { parseDownloadKey } from '../download-key.ts';
import type { Logger } from '../logger.ts';
import { cancelBody, openUpstream } from '../upstream.ts';
import { CopyCancelledError, S3UploadError } from './copy-errors.ts';
import { type CopyRange, choosePartSize, partCount, planRanges } from './copy-ranges.ts';
import { toObjectKey } from './object-key.ts';
import type { WorkflowInput } from './start-download.ts';

/**
 * Why a download is copied the way it is: `parallel`, or the reason it keeps the single-stream
 * copy (`FetchToS3`).
 */
export type CopyModeReason =
  | 'parallel'
  | 'range-requested'
  | 'unknown-length'
  | 'below-threshold'
  | 'no-range-support'
  | 'encoded'
  | 'no-validator'
  | 'digest-not-combinable';

/** What the ranges of one parallel copy share: the file, its pinned version, the upload. */
export interface CopySource {
  downloadId: string;
  /** The key in wire form, as in the execution input. */
  key: string;
  /** Forwarded query string, or `null`. */
  query: string | null;
  bucket: string;
  objectKey: string;
  uploadId: string;
  size: number;
  partSize: number;
  contentType: string;
  fileName: string;
  /** Upstream's strong `ETag`, sent as `If-Match`; `null` when it had none (or a weak one). */
  etag: string | null;
  /** Upstream's `Last-Modified`, sent as `If-Unmodified-Since` when there is no strong `ETag`. */
  lastModified: string | null;
  /** The CRC64NVME upstream announced for the whole file (base64), checked on completion; or `null`. */
  advertisedCrc64Nvme: string | null;
  /** The header that announced it, for the mismatch message. */
  advertisedHeader: string | null;
}

/**
 * The planning step's answer (`$.plan`). Every field is always present (`null`, `[]` when not
 * used), because the state machine's `resultSelector` names each one.
 */
export interface CopyPlan {
  mode: 'single' | 'parallel';
  reason: CopyModeReason;
  copy: CopySource | null;
  ranges: CopyRange[];
  /** The Map state's `MaxConcurrencyPath`: ranges copied at once. */
  concurrency: number;
}

/** What the choice between the two copies reads from upstream's answer. */
export interface UpstreamFacts {
  contentLength: number | undefined;
  headers: Readonly<Record<string, string>>;
  /** The client asked for a byte range (forwarded as `Range`). */
  rangeRequested: boolean;
}

/** A strong entity tag (`"…"`), usable with `If-Match`; weak ones (`W/"…"`) never match it. */
export function strongEtag(value: string | undefined): string | null {
  const etag = value?.trim();
  return etag && /^"[^"]*"$/.test(etag) ? etag : null;
}

/**
 * Chooses between the single-stream copy and the parallel ranged copy. Parallel needs a known
 * length of at least `minBytes`, `Accept-Ranges: bytes`, an unencoded body (ranges of an encoded
 * representation are not ranges of the file), a version to pin (a strong `ETag` or a
 * `Last-Modified`), and no announced digest that only one pass over all bytes can check
 * (SHA-256, MD5, …: only CRC64NVME combines across ranges).
 */
export function chooseCopyMode(
  facts: UpstreamFacts,
  minBytes: number,
  advertised: AdvertisedDigest | undefined,
): CopyModeReason {
  const { headers } = facts;
  if (facts.rangeRequested) return 'range-requested';
  if (facts.contentLength === undefined) return 'unknown-length';
  if (facts.contentLength < minBytes) return 'below-threshold';
  const acceptRanges = (headers['accept-ranges'] ?? '').split(',').map((unit) => unit.trim().toLowerCase());
  if (!acceptRanges.includes('bytes')) return 'no-range-support';
  const encoding = headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') return 'encoded';
  if (!strongEtag(headers.etag) && !headers['last-modified']) return 'no-validator';
  if (advertised && !combinableDigest(advertised)) return 'digest-not-combinable';
  return 'parallel';
}

/**
 * The planning step of the async copy: reads upstream's headers (the body is not read), decides
 * how to copy, and for a parallel copy creates the multipart upload, pins the file's version,
 * cuts it into ranges and marks the record RUNNING with its total size. Returns references only
 * (upload id, ranges): the state machine's payloads are capped at 256 KiB.
 */
export async function planCopy(
  input: WorkflowInput,
  deps: {
    config: PlanCopyConfig;
    s3: S3Client;
    documentClient: DynamoDBDocumentClient;
    logger: Logger;
    signal: AbortSignal;
  },
): Promise<CopyPlan> {
  const { config, logger } = deps;
  const key = parseDownloadKey(input.key);
  const upstream = await openUpstream(
    {
      key,
      method: 'GET',
      query: input.query ? new URLSearchParams(input.query) : undefined,
      range: input.range,
      signal: deps.signal,
    },
    config.upstream,
  );
  // Headers are all this step needs; the workers fetch the bytes, range by range.
  cancelBody(upstream.body);
  const advertised = upstream.statusCode === 200 ? readAdvertisedDigest(upstream.headers) : undefined;
  const reason = chooseCopyMode(
    { contentLength: upstream.contentLength, headers: upstream.headers, rangeRequested: !!input.range },
    config.minBytes,
    advertised,
  );
  const size = upstream.contentLength ?? 0;
  if (reason !== 'parallel') {
    logger.info('single-stream copy', { downloadId: input.downloadId, reason, size: upstream.contentLength });
    return { mode: 'single', reason, copy: null, ranges: [], concurrency: 1 };
  }

  const partSize = choosePartSize(size, config.partSizeBytes);
  const ranges = planRanges(size, partSize, config.concurrency);
  const fileName = toDownloadFileName(upstream.headers['content-disposition'], key.fileName);
  const contentType = upstream.headers['content-type'] ?? 'application/octet-stream';
  const objectKey = toObjectKey(input.downloadId, fileName);
  let uploadId: string | undefined;
  try {
    ({ UploadId: uploadId } = await deps.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: config.downloadBucket,
        Key: objectKey,
        ContentType: contentType,
        ContentDisposition: attachmentDisposition(fileName),
        // Every part carries its CRC64NVME, and the object S3's full-object checksum.
        ...fullObjectChecksumUpload(),
      }),
    ));
  } catch (error) {
    throw new S3UploadError(`Starting the upload failed: ${(error as Error).message}`, { cause: error });
  }
  if (!uploadId) throw new S3UploadError('S3 started an upload without an upload id');

  try {
    await startRecord(deps.documentClient, config.downloadTable, input.downloadId, size);
  } catch (error) {
    // Nothing may outlive a plan that did not come through: the workers would never run.
    await deps.s3
      .send(
        new AbortMultipartUploadCommand({
          Bucket: config.downloadBucket,
          Key: objectKey,
          UploadId: uploadId,
        }),
      )
      .catch((abortError: unknown) =>
        logger.warn('could not abort the upload', { error: abortError as Error }),
      );
    throw error;
  }
  const copy: CopySource = {
    downloadId: input.downloadId,
    key: input.key,
    query: input.query ?? null,
    bucket: config.downloadBucket,
    objectKey,
    uploadId,
    size,
    partSize,
    contentType,
    fileName,
    etag: strongEtag(upstream.headers.etag),
    lastModified: upstream.headers['last-modified'] ?? null,
    advertisedCrc64Nvme: advertised?.value ?? null,
    advertisedHeader: advertised?.header ?? null,
  };
  logger.info('parallel copy planned', {
    downloadId: input.downloadId,
    size,
    partSize,
    parts: partCount(size, partSize),
    ranges: ranges.length,
  });
  return { mode: 'parallel', reason, copy, ranges, concurrency: ranges.length };
}

/**
 * Marks the record RUNNING with its total size and an empty map of range progress
 * (`copyRanges`, see `range-progress.ts`); throws `CopyCancelledError` if the download was
 * settled meanwhile.
 */
async function startRecord(
  client: DynamoDBDocumentClient,
  tableName: string,
  downloadId: string,
  totalBytes: number,
): Promise<void> {
  try {
    await client.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { downloadId },
        UpdateExpression:
          'SET #status = :running, totalBytes = :total, copyRanges = :none, updatedAt = :updatedAt',
        ConditionExpression: 'attribute_exists(downloadId) AND (#status = :running OR #status = :pending)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':running': 'RUNNING',
          ':pending': 'PENDING',
          ':total': totalBytes,
          ':none': {},
          ':updatedAt': new Date().toISOString(),
        },
      }),
    );
  } catch (error) {
    if ((error as Error | null)?.name === 'ConditionalCheckFailedException') {
      throw new CopyCancelledError('The download ended before its copy started');
    }
    throw error;
  }
}
