import type { Readable } from 'node:stream';
import { type S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { fullObjectChecksumBody, withUnsignedPayload } from '../checksum/copy-checksums.ts';
import {
  Crc64Nvme,
  combineCrc64Nvme,
  crc64NvmeFromBase64,
  crc64NvmeToBase64,
} from '../checksum/crc64nvme.ts';
import type { CopyRangeConfig } from '../config.ts';
import { DeadlineExceededError } from '../deadline.ts';
import { parseDownloadKey } from '../download-key.ts';
import {
  HttpError,
  RangeNotSatisfiableError,
  UpstreamChangedError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
} from '../errors.ts';
import type { Logger } from '../logger.ts';
import { cancelBody, openUpstream, type UpstreamResponse, withUpstreamErrors } from '../upstream.ts';
import { CopyCancelledError, CopyTimeoutError, S3UploadError } from './copy-errors.ts';
import { type CopyRange, partEnd, partNumberAt } from './copy-ranges.ts';
import type { CopySource } from './plan-copy.ts';
import type { RangeProgress, RangeState } from './range-progress.ts';

/** One iteration of the workflow's Map state: a range, and how far it got. */
export interface RangeTask {
  downloadId: string;
  copy: CopySource;
  range: CopyRange;
  /** Where to continue (a part boundary); absent on the first invocation (the range's offset). */
  next?: number;
  /** CRC64NVME (base64) of the range's bytes before `next`. */
  crc?: string | null;
}

/** What a worker returns: the task again, moved on; the workflow invokes it again until `done`. */
export interface RangeTaskResult extends RangeTask {
  next: number;
  crc: string | null;
  done: boolean;
}

/**
 * Reads exactly `length` bytes at a time from a byte stream, whatever its chunking: the pieces of
 * one upstream response, cut at part boundaries.
 */
class ChunkReader {
  readonly #chunks: AsyncIterator<Buffer>;
  #leftover: Buffer | undefined;

  constructor(body: Readable) {
    this.#chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Up to `max` bytes, or `undefined` at the end of the stream. */
  async read(max: number): Promise<Buffer | undefined> {
    let chunk = this.#leftover;
    this.#leftover = undefined;
    if (!chunk) {
      const next = await this.#chunks.next();
      if (next.done) return undefined;
      chunk = next.value;
    }
    if (chunk.length > max) {
      this.#leftover = chunk.subarray(max);
      return chunk.subarray(0, max);
    }
    return chunk;
  }
}

/**
 * Fills `target` with the next `target.length` bytes of `reader`, showing each chunk to `onChunk`
 * as it is copied in. Fails with an upstream error if upstream ends early.
 */
async function readPart(
  reader: ChunkReader,
  target: Buffer,
  onChunk: (chunk: Buffer) => void,
): Promise<Buffer> {
  let filled = 0;
  while (filled < target.length) {
    const chunk = await reader.read(target.length - filled);
    if (!chunk) {
      throw new UpstreamUnavailableError('UpstreamUnreachable', 'Upstream ended the range before its end');
    }
    chunk.copy(target, filled);
    filled += chunk.length;
    onChunk(chunk);
  }
  return target;
}

/**
 * Checks that a ranged answer is the asked-for range of the pinned version of the file: a 206
 * with the right `Content-Range`, and the pinned `ETag` (or `Last-Modified`) when upstream sends
 * one. A server that ignores `If-Match` but changed the file still fails here.
 */
export function checkRangeAnswer(
  response: UpstreamResponse,
  copy: CopySource,
  from: number,
  to: number,
): void {
  const { headers } = response;
  const changed = (what: string) =>
    new UpstreamChangedError(`Upstream changed the file while it was being copied (${what})`);
  if (copy.etag && headers.etag && headers.etag.trim() !== copy.etag) throw changed('another ETag');
  if (
    !copy.etag &&
    copy.lastModified &&
    headers['last-modified'] &&
    headers['last-modified'] !== copy.lastModified
  )
    throw changed('another Last-Modified');
  if (response.statusCode !== 206) {
    throw new UpstreamRejectedError('RangeIgnored', 'Upstream answered a byte range with the whole file');
  }
  const expected = `bytes ${from}-${to - 1}/${copy.size}`;
  const contentRange = headers['content-range']?.trim();
  if (contentRange !== expected) {
    if (contentRange?.endsWith(`/${copy.size}`) === false) throw changed('another size');
    throw new UpstreamRejectedError(
      'RangeMismatch',
      `Upstream answered ${contentRange ?? 'no range'}, not ${expected}`,
    );
  }
}

/**
 * One worker invocation of a parallel copy: continues the range where it stands (in the task,
 * or further on in the record when an earlier attempt got further), with one ranged GET pinned
 * to the planned version of the file (`If-Match`, else `If-Unmodified-Since`), and cuts it into
 * the multipart upload's parts. Each part is read into memory (exactly `partSize` bytes, fewer for
 * the last), its CRC64NVME computed, and uploaded with that `ChecksumCRC64NVME` (S3 wants it
 * before the body, and a buffered body lets the SDK retry the request) while the next part is
 * read: download and upload overlap, with at most two parts in memory (two buffers, reused), and
 * upstream waits (TCP backpressure) while both are full. It keeps the CRC64NVME of the range's
 * bytes, in order.
 *
 * It stops starting new parts at `softStopAt` (after at least one part) and returns where it
 * stopped; the workflow invokes it again. At `signal` (the function's own deadline) it abandons
 * the parts under way and does the same, or fails with `CopyTimeoutError` if not even one part got
 * through. When upstream fails, the part being read is not uploaded, the part before it finishes
 * its upload (so a retry resumes after it), and the upstream error keeps its name (the workflow
 * retries the retryable ones, and `UpstreamChangedError` fails the download); S3 errors become
 * `S3UploadError`, and a download settled elsewhere (or an upload already aborted) stops with
 * `CopyCancelledError`.
 */
export async function copyRange(
  task: RangeTask,
  deps: {
    config: CopyRangeConfig;
    s3: S3Client;
    progress: RangeProgress;
    logger: Logger;
    /** The function's deadline (remaining time minus a margin). */
    signal: AbortSignal;
    /** Epoch ms after which no new part is started. */
    softStopAt: number;
    /** Aborts the invocation's work when the download is settled elsewhere. */
    cancellation: AbortSignal;
  },
): Promise<RangeTaskResult> {
  const { copy, range } = task;
  const { logger, progress } = deps;
  const invokedAt = Date.now();
  /** When upstream's first body byte arrived, for the log. */
  let firstByteAt: number | undefined;
  const loaded = await progress.load();
  if (loaded.settled) throw new CopyCancelledError('The download ended before this range was copied');
  let next = task.next ?? range.offset;
  let crc = task.crc ? (crc64NvmeFromBase64(task.crc) ?? null) : null;
  if (loaded.stored && loaded.stored.next > next) {
    next = loaded.stored.next;
    crc = loaded.stored.crc ? (crc64NvmeFromBase64(loaded.stored.crc) ?? null) : null;
  }
  let reached = Math.max(next, loaded.stored?.reached ?? 0);
  const state = (): RangeState => ({ next, crc: crc === null ? null : crc64NvmeToBase64(crc), reached });
  const result = (): RangeTaskResult => ({
    downloadId: task.downloadId,
    copy,
    range,
    next,
    crc: crc === null ? null : crc64NvmeToBase64(crc),
    done: next >= range.end,
  });
  if (next >= range.end) {
    await progress.flush(state());
    return result();
  }

  // Stops the read of the next part when the upload of the one before it fails.
  const uploadFailed = new AbortController();
  const stop = AbortSignal.any([deps.signal, deps.cancellation, uploadFailed.signal]);
  const startedAt = next;
  let partsDone = 0;
  let response: UpstreamResponse | undefined;
  /** The first error, upstream's or S3's, whichever came first. */
  const failure: { error?: unknown } = {};
  /** The upload under way, of the part read before the one being read. */
  let uploading: Promise<void> | undefined;
  const buffers: Buffer[] = [];

  const uploadPart = async (partStart: number, body: Buffer, partCrc: bigint): Promise<void> => {
    try {
      await deps.s3.send(
        withUnsignedPayload(
          new UploadPartCommand({
            Bucket: copy.bucket,
            Key: copy.objectKey,
            UploadId: copy.uploadId,
            PartNumber: partNumberAt(partStart, copy.partSize),
            Body: body,
            ContentLength: body.length,
            ...fullObjectChecksumBody(crc64NvmeToBase64(partCrc)),
          }),
        ),
        { abortSignal: stop },
      );
    } catch (error) {
      failure.error ??= error;
      uploadFailed.abort(error);
      throw error;
    }
    crc = crc === null ? partCrc : combineCrc64Nvme(crc, partCrc, body.length);
    next = partStart + body.length;
    partsDone++;
    progress.report(state());
  };

  try {
    response = await openUpstream(
      {
        key: parseDownloadKey(copy.key),
        method: 'GET',
        query: copy.query ? new URLSearchParams(copy.query) : undefined,
        range: `bytes=${next}-${range.end - 1}`,
        signal: stop,
        preconditions: copy.etag
          ? { 'if-match': copy.etag }
          : copy.lastModified
            ? { 'if-unmodified-since': copy.lastModified }
            : undefined,
      },
      deps.config.upstream,
    );
    checkRangeAnswer(response, copy, next, range.end);
    const reader = new ChunkReader(withUpstreamErrors(response.body, stop));
    let readAt = next;
    let turn = 0;
    while (readAt < range.end && (readAt === startedAt || Date.now() < deps.softStopAt)) {
      const partStart = readAt;
      const length = partEnd(partStart, copy.partSize, range.end) - partStart;
      // Two buffers, taken in turn: one part uploading, the next one reading.
      const slot = turn++ % 2;
      const buffer = buffers[slot] ?? Buffer.allocUnsafeSlow(Math.min(copy.partSize, range.end - startedAt));
      buffers[slot] = buffer;
      const partCrc = new Crc64Nvme();
      let passed = 0;
      let part: Buffer;
      try {
        part = await readPart(reader, buffer.subarray(0, length), (chunk) => {
          partCrc.update(chunk);
          passed += chunk.length;
          reached = Math.max(reached, partStart + passed);
          firstByteAt ??= Date.now();
          progress.report(state());
        });
      } catch (error) {
        failure.error ??= error;
        throw error;
      }
      readAt = partStart + length;
      // The other buffer is free again once the part before this one is stored.
      await uploading;
      uploading = uploadPart(partStart, part, partCrc.digest());
      // Awaited below or in the catch; this only keeps a failure from going unhandled meanwhile.
      uploading.catch(() => {});
    }
    await uploading;
  } catch (error) {
    // A part already read may still be uploading: let it end, so the range keeps it if it got through.
    await uploading?.catch(() => {});
    if (deps.cancellation.aborted) {
      throw new CopyCancelledError('The download ended while this range was being copied');
    }
    if (deps.signal.reason instanceof DeadlineExceededError) {
      if (partsDone === 0) {
        throw new CopyTimeoutError('Not one part of the range was copied before the function timeout');
      }
      logger.info('range handed back at the deadline', { index: range.index, next });
    } else {
      // A retry resumes from the last stored part rather than from where this invocation began.
      await progress.flush(state()).catch(() => {});
      throw toWorkerError(failure.error ?? error);
    }
  } finally {
    if (response) cancelBody(response.body);
  }
  await progress.flush(state());
  logger.info('range copied', {
    downloadId: task.downloadId,
    index: range.index,
    from: startedAt,
    to: next,
    end: range.end,
    parts: partsDone,
    // From this invocation's start: upstream's first byte, and the end.
    firstByteMs: firstByteAt === undefined ? null : firstByteAt - invokedAt,
    durationMs: Date.now() - invokedAt,
  });
  return result();
}

/**
 * Upstream's errors keep their names (a range the planned size no longer holds, 416, means the file
 * changed); `NoSuchUpload` means the download was settled; the rest is S3's.
 */
function toWorkerError(error: unknown): Error {
  if (error instanceof RangeNotSatisfiableError) {
    return new UpstreamChangedError('Upstream changed the file while it was being copied (it is shorter)');
  }
  if (error instanceof HttpError) return error;
  if ((error as Error | null)?.name === 'NoSuchUpload') {
    return new CopyCancelledError('The upload was aborted while this range was being copied');
  }
  return new S3UploadError(`Storing a part failed: ${(error as Error).message}`, { cause: error });
}
