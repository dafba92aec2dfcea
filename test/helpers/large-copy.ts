/**
 * A file larger than one copy worker can carry, through the local stack's parallel ranged copy:
 * upstream throttled per connection, and each worker handing its range back after
 * `PARALLEL_COPY_WORKER_SECONDS` (14 minutes deployed), so the copy completes only if the workflow
 * keeps invoking each range's worker until the range is done. Used by `test/e2e/large-copy.test.ts`
 * and `npm run check:large-copy`.
 */
import { statfs } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseSampleSize, sampleSha256 } from '../../local/sample-upstream.ts';
import { download, startAsyncDownload } from './http.ts';
import { startStack } from './local-stack.ts';
import { openSocket } from './ws.ts';

export interface LargeCopyOptions {
  /** A sample name: `6GB`. */
  size: string;
  /** Bytes per second per upstream connection. */
  rate: number;
  workerSeconds: number;
  concurrency: number;
  log?: (line: string) => void;
}

export interface LargeCopyResult {
  /** The first message after the 202: `ready`, or `failed` with its error. */
  outcome: Record<string, unknown>;
  /** Request → `ready` (or `failed`). */
  readyMs: number;
  progressMessages: number;
  /** The sample upstream's 206 answers for the file: one per worker invocation. */
  rangedGets: number;
  /** The sha256 of the bytes at the ready URL, and the sample's. */
  sha256?: { served: string; expected: string; checkMs: number };
}

/** Where the local stack keeps its S3 data (`.local/stack-*`). */
const STACK_DATA = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Refuses to start when the disk cannot hold the copy: the local S3 keeps the parts and then the
 * joined object, twice the file, plus a margin; a full disk would otherwise show as a 500 from S3.
 */
async function requireFreeSpace(bytes: number): Promise<void> {
  const needed = 2 * bytes + 1024 ** 3;
  const disk = await statfs(STACK_DATA);
  const free = disk.bavail * disk.bsize;
  if (free < needed) {
    throw new Error(
      `the copy needs ${(needed / 1e9).toFixed(1)} GB free under ${STACK_DATA} (the parts, then the joined object); ${(free / 1e9).toFixed(1)} GB are`,
    );
  }
}

export async function copyLargeFile(options: LargeCopyOptions): Promise<LargeCopyResult> {
  const log = options.log ?? (() => {});
  const bytes = parseSampleSize(options.size);
  if (!bytes) throw new Error(`not a sample size: "${options.size}"`);
  await requireFreeSpace(bytes);
  const stack = await startStack({
    PARALLEL_COPY_WORKER_SECONDS: String(options.workerSeconds),
    PARALLEL_COPY_CONCURRENCY: String(options.concurrency),
  });
  try {
    const path = `/sample/${options.size}?rate=${options.rate}`;
    log(
      `${options.size} at ${options.rate} B/s per connection, ${options.concurrency} ranges, ` +
        `workers hand back after ${options.workerSeconds} s`,
    );
    const requested = performance.now();
    const accepted = await startAsyncDownload(`${stack.endpoints.restApi}/download${path}`);
    const client = await openSocket(accepted.webSocketUrl);
    const timeoutMs = 30 * 60_000;
    const outcome = await Promise.race([client.next('ready', timeoutMs), client.next('failed', timeoutMs)]);
    const readyMs = performance.now() - requested;
    const progressMessages = client.messages.filter((message) => message.type === 'progress').length;
    await client.close();
    const rangedGets = stack
      .logs()
      .split('\n')
      .filter((line) => line.includes(`GET ${path} → 206`)).length;
    const result: LargeCopyResult = { outcome, readyMs, progressMessages, rangedGets };
    log(`${outcome.type} after ${(readyMs / 1000).toFixed(1)} s (${progressMessages} progress messages)`);
    log(`${rangedGets} ranged GETs for ${options.concurrency} ranges`);
    if (outcome.type === 'ready') {
      const checking = performance.now();
      const fetched = await download(outcome.url as string);
      result.sha256 = {
        served: fetched.sha256 ?? '',
        expected: sampleSha256(outcome.size as number),
        checkMs: performance.now() - checking,
      };
      log(`sha256 at the presigned URL checked in ${(result.sha256.checkMs / 1000).toFixed(1)} s`);
    }
    return result;
  } finally {
    await stack.stop();
  }
}
