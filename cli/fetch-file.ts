import { setTimeout as sleep } from 'node:timers/promises';
import type { ByteSource, OpenedBody } from './byte-source.ts';
import { TransientHttpError } from './byte-source.ts';
import { CliError, FileChangedError, interruptionOr, RangeIgnoredError } from './errors.ts';
import type { ExitCode } from './exit-codes.ts';
import { formatBytes, formatDuration } from './format.ts';
import { describeNetworkError, isNetworkError } from './http.ts';
import type { PartialFile } from './partial-file.ts';
import { type ByteRange, splitRanges } from './range-set.ts';
import type { RateLimiter } from './rate-limiter.ts';

/** Ranges smaller than this are not split across connections: one request costs more than it saves. */
export const MIN_PART_BYTES = 4 * 1024 * 1024;
/** Parts never grow past this, so that a slow connection holds back little at the end. */
export const MAX_PART_BYTES = 64 * 1024 * 1024;
/** Writes are gathered up to this size (one `pwritev` instead of dozens of small writes). */
const WRITE_BATCH_BYTES = 1024 * 1024;

export interface FetchOptions {
  file: PartialFile;
  source: ByteSource;
  signal: AbortSignal;
  /** Failed attempts allowed per range (or for the one stream) before giving up. */
  retries: number;
  /** Exit code when the retries run out. */
  exhaustedExitCode: ExitCode;
  onBytes(bytesDone: number, total: number | undefined): void;
  note(line: string): void;
  limiter?: RateLimiter;
  /** First retry delay in ms (doubles each time, up to 8 s). */
  retryDelayMs?: number;
}

/** True for failures another attempt may get past: the network, a 5xx, a body cut short. */
export function isTransient(error: unknown): boolean {
  return error instanceof TransientHttpError || error instanceof ShortBodyError || isNetworkError(error);
}

/** The body ended before the bytes it announced. */
class ShortBodyError extends Error {
  override readonly name = 'ShortBodyError';
}

function describe(error: unknown): string {
  return isNetworkError(error) ? describeNetworkError(error) : (error as Error).message;
}

function retryDelay(options: FetchOptions, failures: number): number {
  const base = options.retryDelayMs ?? 500;
  return Math.min(base * 2 ** (failures - 1), 8_000);
}

/**
 * Writes a body into the file from `position`, at most up to `end`; returns where it stopped.
 * Chunks are gathered into batches of about 1 MiB per write, so memory per connection stays
 * around that whatever the file's size.
 */
async function writeBody(
  options: FetchOptions,
  body: OpenedBody['body'],
  position: number,
  end: number | undefined,
): Promise<number> {
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let at = position;
  const flush = async () => {
    if (batchBytes === 0) return;
    const data = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, batchBytes);
    batch = [];
    batchBytes = 0;
    await options.file.write(data, at);
    at += data.length;
    options.onBytes(options.file.bytesDone, options.file.facts.size);
  };
  try {
    for await (const received of body) {
      let chunk = received as Buffer;
      const room = end === undefined ? chunk.length : end - (at + batchBytes);
      if (chunk.length > room) chunk = chunk.subarray(0, Math.max(0, room));
      batch.push(chunk);
      batchBytes += chunk.length;
      if (options.limiter) await options.limiter.take(chunk.length, options.signal);
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
      if (end !== undefined && at + batchBytes >= end) break;
    }
  } finally {
    // What arrived before a failure is kept: the next attempt starts after it.
    await flush();
  }
  return at;
}

/** Checks an answer against what the partial file holds; resets the file when a whole new copy arrived. */
async function adopt(options: FetchOptions, opened: OpenedBody, expectedStart: number): Promise<void> {
  const { file } = options;
  const restartedWhole = opened.start === 0 && opened.status === 200;
  const changed =
    (file.facts.etag !== undefined && opened.etag !== file.facts.etag) ||
    (file.facts.size !== undefined && opened.total !== undefined && opened.total !== file.facts.size);
  if (opened.start !== expectedStart || changed) {
    if (!restartedWhole) {
      throw new FileChangedError(
        changed
          ? 'the ETag or size differs from the partial download'
          : 'the answer starts at another offset',
      );
    }
    if (file.bytesDone > 0) {
      options.note(
        changed
          ? `the file changed since the partial download (ETag ${file.facts.etag} → ${opened.etag}): starting over`
          : `${options.source.name} sent the whole file instead of the rest: starting over from byte 0`,
      );
    }
    await file.reset();
  }
  file.facts.etag = opened.etag;
  if (opened.total !== undefined) await file.setSize(opened.total);
}

/**
 * Downloads the file as one stream, sequentially. After a break it asks for the rest with `Range`
 * (and the ETag) when the server said it serves ranges and named the version; else it starts over.
 * `first` is an answer already open (the router's streamed response).
 */
export async function fetchSequential(options: FetchOptions & { first?: OpenedBody }): Promise<void> {
  const { file } = options;
  let opened = options.first;
  let failures = 0;
  let acceptsRanges = opened?.acceptsRanges ?? true;
  for (;;) {
    const offset = file.done.contiguousEnd;
    try {
      if (!opened) {
        const resumable = offset > 0 && file.facts.etag !== undefined && acceptsRanges;
        if (offset > 0 && !resumable) await file.reset();
        opened = await options.source.open(
          resumable ? { start: offset } : undefined,
          resumable ? file.facts.etag : undefined,
          options.signal,
        );
      }
      acceptsRanges = opened.acceptsRanges;
      await adopt(options, opened, file.done.contiguousEnd);
      const total = file.facts.size;
      const end = await writeBody(options, opened.body, opened.start, total);
      if (total !== undefined && end < total) {
        throw new ShortBodyError(`the body ended at byte ${end} of ${total}`);
      }
      if (total === undefined) await file.setSize(end);
      return;
    } catch (error) {
      opened?.body.destroy();
      opened = undefined;
      if (options.signal.aborted) throw interruptionOr(error, options.signal);
      if (!isTransient(error)) throw error;
      failures++;
      const at = file.done.contiguousEnd;
      const total = file.facts.size;
      const where = `at byte ${at}${total === undefined ? '' : ` of ${total}`}`;
      if (failures > options.retries) {
        throw new CliError(
          options.exhaustedExitCode,
          `the transfer from ${options.source.name} broke off ${where}, ${failures} times`,
          `${describe(error)}. Run the same command again to resume.`,
          { cause: error },
        );
      }
      const delay = retryDelay(options, failures);
      const resumable = file.facts.etag !== undefined && acceptsRanges;
      options.note(
        `the transfer broke off ${where} (${describe(error)}); ${resumable ? 'resuming' : 'starting over'} in ${formatDuration(delay / 1000)} (retry ${failures}/${options.retries})`,
      );
      await sleep(delay, undefined, { signal: options.signal }).catch((sleepError: unknown) => {
        throw interruptionOr(sleepError, options.signal);
      });
    }
  }
}

/**
 * Downloads the missing ranges of a file of known `size` over up to `connections` parallel
 * `Range` requests, each written in place as it arrives. The first request goes alone: if the
 * server ignores `Range`, it throws RangeIgnoredError (fall back to `fetchSequential`); otherwise
 * its ETag pins the version and the other connections start. Every request carries the ETag (S3:
 * `If-Match`), and every answer's ETag is checked: a changed file is a FileChangedError, never
 * stitched. Each range retries on its own, from where it stopped.
 */
export async function fetchParallel(
  options: FetchOptions & { size: number; connections: number },
): Promise<void> {
  const { file, size } = options;
  await file.setSize(size);
  const missing = file.done.missing(size);
  const missingBytes = missing.reduce((sum, [start, end]) => sum + end - start, 0);
  if (missingBytes === 0) return;
  const partSize = Math.min(
    MAX_PART_BYTES,
    Math.max(MIN_PART_BYTES, Math.ceil(missingBytes / (options.connections * 2))),
  );
  const queue: ByteRange[] = splitRanges(missing, partSize);
  const connections = Math.max(1, Math.min(options.connections, queue.length));

  // Stops the other connections when one fails for good, or when the user interrupts.
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal.reason);
  options.signal.addEventListener('abort', onAbort, { once: true });
  const signal = stop.signal;
  let failure: unknown;

  const fetchPart = async ([start, end]: ByteRange, onOpened: () => void) => {
    let position = start;
    let failures = 0;
    while (position < end) {
      let opened: OpenedBody | undefined;
      try {
        opened = await options.source.open({ start: position, end }, file.facts.etag, signal);
        if (opened.status !== 206) throw new RangeIgnoredError(`${options.source.name} ignored Range`);
        if (opened.start !== position) throw new FileChangedError('the answer starts at another offset');
        if (opened.total !== undefined && opened.total !== size) {
          throw new FileChangedError(`the file has ${opened.total} bytes, not ${size}`);
        }
        if (file.facts.etag === undefined && file.bytesDone > 0 && opened.etag !== undefined) {
          throw new FileChangedError('the partial download has no ETag to compare');
        }
        if (file.facts.etag !== undefined && opened.etag !== file.facts.etag) {
          throw new FileChangedError(`the ETag changed (${file.facts.etag} → ${opened.etag})`);
        }
        file.facts.etag = opened.etag;
        onOpened();
        position = await writeBody({ ...options, signal }, opened.body, position, end);
        if (position < end) throw new ShortBodyError(`the body of range ${start}-${end - 1} ended early`);
      } catch (error) {
        opened?.body.destroy();
        if (signal.aborted) throw interruptionOr(error, options.signal);
        if (!isTransient(error)) throw error;
        failures++;
        if (failures > options.retries) {
          throw new CliError(
            options.exhaustedExitCode,
            `bytes ${position}-${end - 1} from ${options.source.name} failed ${failures} times`,
            `${describe(error)}. Run the same command again to resume.`,
            { cause: error },
          );
        }
        const delay = retryDelay(options, failures);
        options.note(
          `bytes ${position}-${end - 1}: ${describe(error)}; retrying in ${formatDuration(delay / 1000)} (${failures}/${options.retries})`,
        );
        await sleep(delay, undefined, { signal });
      }
    }
  };

  const worker = async (first: ByteRange | undefined, onOpened: () => void) => {
    try {
      if (first) await fetchPart(first, onOpened);
      for (let part = queue.shift(); part && !signal.aborted; part = queue.shift()) {
        await fetchPart(part, () => {});
      }
    } catch (error) {
      failure ??= error;
      stop.abort(error);
      throw error;
    }
  };

  try {
    // The first range alone, until its answer shows that ranges work and which version this is.
    let opened!: () => void;
    const firstOpened = new Promise<void>((resolve) => {
      opened = resolve;
    });
    const first = worker(queue.shift(), opened);
    await Promise.race([firstOpened, first]);
    const workers = [first];
    if (!signal.aborted) {
      if (file.bytesDone === 0 && connections > 1) {
        options.note(`${connections} connections, parts of ${formatBytes(partSize)}`);
      }
      for (let i = 1; i < connections; i++) workers.push(worker(undefined, () => {}));
    }
    await Promise.allSettled(workers);
    if (failure !== undefined) throw failure;
    if (options.signal.aborted) throw interruptionOr(new Error('aborted'), options.signal);
  } finally {
    options.signal.removeEventListener('abort', onAbort);
  }
}
