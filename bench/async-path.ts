/**
 * The async section: a large download through the async path (router, DynamoDB record, Step
 * Functions copy to S3, WebSocket `ready`) against a plain lib-storage `Upload` of the same bytes
 * to the same local S3, and the stack's memory meanwhile; the parallel ranged copy against the
 * single-stream copy of the same file, unthrottled and with upstream throttled per connection.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { request } from 'undici';
import { SETTINGS } from '../shared/settings.ts';
import { getJson } from '../test/helpers/http.ts';
import type { RunningStack } from '../test/helpers/local-stack.ts';
import { openSocket, type RecordingSocket } from '../test/helpers/ws.ts';
import { ownStartSpread, type PeakRss, settledRss, summarizeMemory, watchPeakRss } from './proc-memory.ts';
import {
  BenchError,
  log,
  MiB,
  median,
  memoryRatio,
  mib,
  plural,
  type Row,
  ratio,
  type Sample,
  seconds,
  toSample,
} from './report.ts';
import type { BenchSettings } from './settings.ts';
import { downloadSample } from './streaming.ts';

/** Pinned for both the stack's copy step and the baseline `Upload` (they are also the defaults). */
export const PART_SIZE_BYTES = 8 * MiB;
export const QUEUE_SIZE = 4;
const READY_TIMEOUT_MS = 5 * 60_000;
/**
 * The sample upstream's `?ranges=0`: an origin without range support, so the same file is copied
 * as one stream (`PlanCopy` keeps the single-stream copy), for the comparison with the parallel copy.
 */
const SINGLE_STREAM_QUERY = 'ranges=0';
/** Per-connection throttle of the parallel-vs-single comparison (many origins cap each connection). */
const THROTTLE_BYTES_PER_SECOND = 25_000_000;

interface ReadyMessage {
  type: 'ready';
  downloadId: string;
  url: string;
  size: number;
}

interface AsyncRun {
  /** From sending `GET /download/…` to receiving `ready` over the WebSocket. */
  totalMs: number;
  memory: PeakRss;
  progressMessages: number;
  ready: ReadyMessage;
}

/** Resolves with the `ready` message; rejects on `failed`, on close, or after `timeoutMs`. */
function waitForReady(client: RecordingSocket, timeoutMs: number): Promise<ReadyMessage> {
  return new Promise((resolve, reject) => {
    const settle = (error: Error | undefined, ready?: ReadyMessage) => {
      clearTimeout(timer);
      client.socket.off('message', check);
      client.socket.off('close', onClose);
      if (ready) resolve(ready);
      else reject(error);
    };
    // Registered after the helper's own listener, so `messages` already holds the new message.
    function check(): boolean {
      const outcome = client.messages.find(
        (message) => message.type === 'ready' || message.type === 'failed',
      );
      if (outcome?.type === 'ready') settle(undefined, outcome as unknown as ReadyMessage);
      else if (outcome) settle(new BenchError(`the download failed: ${JSON.stringify(outcome)}`));
      return outcome !== undefined;
    }
    function onClose() {
      if (!check()) settle(new BenchError('the WebSocket closed before the ready message'));
    }
    const timer = setTimeout(
      () => settle(new BenchError(`no ready message in ${timeoutMs} ms: ${JSON.stringify(client.messages)}`)),
      timeoutMs,
    );
    client.socket.on('message', check);
    client.socket.on('close', onClose);
    check();
  });
}

/** One async download as a browser would do it: 202, connect to the returned `webSocketUrl` (it carries the download token), wait for `ready`. */
async function runAsyncDownload(
  stack: RunningStack,
  stackPid: number,
  sample: Sample,
  query = '',
): Promise<AsyncRun> {
  await sleep(250);
  const watch = watchPeakRss(stackPid);
  const started = performance.now();
  let client: RecordingSocket | undefined;
  const path = `/download/sample/${sample.name}${query ? `?${query}` : ''}`;
  try {
    const accepted = await getJson(`${stack.endpoints.restApi}${path}`);
    if (accepted.status !== 202 || typeof accepted.json.webSocketUrl !== 'string') {
      throw new BenchError(`GET ${path}: ${accepted.status} ${JSON.stringify(accepted.json)}`);
    }
    client = await openSocket(accepted.json.webSocketUrl);
    const ready = await waitForReady(client, READY_TIMEOUT_MS);
    const totalMs = performance.now() - started;
    const memory = watch.stop();
    if (ready.size !== sample.bytes)
      throw new BenchError(`ready.size ${ready.size}, expected ${sample.bytes}`);
    const progressMessages = client.messages.filter((message) => message.type === 'progress').length;
    log(
      `async ${sample.name}${query ? `?${query}` : ''}: ready after ${seconds(totalMs)}, ${progressMessages} progress messages, ` +
        `memory ${mib(memory.before)} → peak ${mib(memory.peak)}`,
    );
    return { totalMs, memory, progressMessages, ready };
  } finally {
    watch.stop();
    await client?.close();
  }
}

/**
 * The baseline for the async path: the sample upstream's body, read with undici (as the copy step
 * does), straight into a plain lib-storage `Upload` with the same part size and queue to the same
 * local S3. Returns its duration and the stack's memory growth meanwhile (its S3 emulator's alone:
 * the bench process runs the upload, and the sample upstream is a process of its own).
 */
async function runPlainUpload(
  stack: RunningStack,
  stackPid: number,
  s3: S3Client,
  sample: Sample,
): Promise<{ totalMs: number; memory: PeakRss }> {
  const bucket = stack.endpoints.bucket as string;
  const key = `bench/${randomUUID()}/sample-${sample.name}.bin`;
  await sleep(250);
  const watch = watchPeakRss(stackPid);
  const started = performance.now();
  try {
    const response = await request(`${stack.endpoints.upstream}sample/${sample.name}`);
    if (response.statusCode !== 200) {
      response.body.destroy();
      throw new BenchError(`upstream answered ${response.statusCode}`);
    }
    const upload = new Upload({
      client: s3,
      params: {
        Bucket: bucket,
        Key: key,
        Body: response.body,
        ContentType: response.headers['content-type'] as string,
        ContentDisposition: `attachment; filename="sample-${sample.name}.bin"`,
      },
      partSize: PART_SIZE_BYTES,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    await upload.done();
    const totalMs = performance.now() - started;
    const memory = watch.stop();
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== sample.bytes) {
      throw new BenchError(`plain Upload stored ${head.ContentLength} bytes, expected ${sample.bytes}`);
    }
    log(
      `plain Upload ${sample.name}: ${seconds(totalMs)}, stack memory ${mib(memory.before)} → peak ${mib(memory.peak)}`,
    );
    return { totalMs, memory };
  } finally {
    watch.stop();
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}

/**
 * Downloads the object behind a `ready` URL, checks its sha256, then deletes it so the run keeps at
 * most one large object on disk (the stack removes its data directory on exit anyway).
 */
async function verifyReadyObject(
  stack: RunningStack,
  s3: S3Client,
  run: AsyncRun,
  sample: Sample,
): Promise<void> {
  const started = performance.now();
  await downloadSample(run.ready.url, sample);
  log(`ready URL of ${sample.name}: sha256 ok in ${seconds(performance.now() - started)}`);
  const bucket = stack.endpoints.bucket as string;
  // Path-style presigned URL: /{bucket}/{key}.
  const key = decodeURIComponent(new URL(run.ready.url).pathname.slice(bucket.length + 2));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
}

/** What the async section found. */
export interface AsyncSection {
  rows: Row[];
  /** Whether every peak includes the kernel's own high-water mark. */
  usedHighWaterMark: boolean;
}

/**
 * One warm-up async download, then `asyncRounds` rounds of: small async, plain `Upload` of the
 * large sample, large async; odd rounds in reverse. Memory drifts over a run, so neither size
 * always goes first, and neither large transfer always follows the other.
 */
export async function measureAsyncPath(
  stack: RunningStack,
  stackPid: number,
  s3: S3Client,
  settings: BenchSettings,
): Promise<AsyncSection> {
  const { asyncSmall: small, asyncLarge: large, asyncRounds: rounds } = settings;
  log(`warm-up: one async ${small.name} download`);
  const warmUp = await runAsyncDownload(stack, stackPid, small);
  await verifyReadyObject(stack, s3, warmUp, small);
  const smallRuns: AsyncRun[] = [];
  const largeRuns: AsyncRun[] = [];
  const singleStreamMs: number[] = [];
  const plainMs: number[] = [];
  let plainMemory: PeakRss | undefined;
  const start = await settledRss(stackPid);
  for (let round = 0; round < rounds; round++) {
    const steps = ['small', 'plain', 'large', 'single'] as const;
    for (const step of round % 2 === 0 ? steps : [...steps].reverse()) {
      if (step === 'single') {
        const run = await runAsyncDownload(stack, stackPid, large, SINGLE_STREAM_QUERY);
        singleStreamMs.push(run.totalMs);
        await verifyReadyObject(stack, s3, run, large);
      } else if (step === 'plain') {
        const plain = await runPlainUpload(stack, stackPid, s3, large);
        plainMs.push(plain.totalMs);
        if (!plainMemory || plain.memory.growth > plainMemory.growth) plainMemory = plain.memory;
      } else {
        const sample = step === 'small' ? small : large;
        const run = await runAsyncDownload(stack, stackPid, sample);
        (step === 'small' ? smallRuns : largeRuns).push(run);
        await verifyReadyObject(stack, s3, run, sample);
      }
    }
  }

  const asyncMs = median(largeRuns.map((run) => run.totalMs));
  const smallCopies = smallRuns.map((run) => run.memory);
  const largeCopies = largeRuns.map((run) => run.memory);
  const copies = summarizeMemory(start, smallCopies, largeCopies);
  const progressMessages = largeRuns.map((run) => run.progressMessages).join(', ');
  const partsInFlight = `${PART_SIZE_BYTES / MiB} MiB × (${QUEUE_SIZE} + 1)`;
  const rows: Row[] = [
    {
      measure: `Async ${large.label}: request → \`ready\` on the WebSocket`,
      value: seconds(asyncMs),
      note:
        `median of ${rounds}: 202, connect to \`webSocketUrl\`, progress (${progressMessages} messages), ` +
        'ready; the ready URL serves the right sha256',
    },
    {
      measure: `Async ${large.label} speed vs plain lib-storage \`Upload\``,
      value: ratio(median(plainMs) / asyncMs),
      note:
        `plain \`Upload\` of the same bytes to the same S3 (${PART_SIZE_BYTES / MiB} MiB parts, queue ${QUEUE_SIZE}), ` +
        `median of ${rounds}: ${seconds(median(plainMs))}; value = its time ÷ the async time; aim ≥ 0.90×`,
    },
    {
      measure: `Stack peak RSS growth, async ${small.label}`,
      value: mib(copies.smallGrowth),
      note:
        `request → ready, ${plural(rounds, 'run')}: median peak ${mib(copies.smallPeak)} − ${mib(copies.start)} before the series; ` +
        `per run over its own start: ${ownStartSpread(smallCopies)}; the first async download after start ` +
        `(warm-up, not counted) grew it by ${mib(warmUp.memory.growth)}`,
    },
    {
      measure: `Stack peak RSS growth, async ${large.label}`,
      value: mib(copies.largeGrowth),
      note:
        `same runs as the timing: median peak ${mib(copies.largePeak)} − ${mib(copies.start)} before the series; per run over ` +
        `its own start: ${ownStartSpread(largeCopies)}; during the plain \`Upload\` the stack (its S3 emulator) ` +
        `grew at most ${mib(plainMemory?.growth ?? 0)}`,
    },
    {
      measure: `Async memory, ${large.label} ÷ ${small.label}`,
      value: memoryRatio(copies.largeGrowth, copies.smallGrowth),
      note:
        `aim: flat (≈ 1×); ${small.label} is copied as one stream, which buffers about ${partsInFlight} ` +
        `whatever the size; ${large.label} (above \`parallelCopyMinBytes\`) in parallel ranges, each streamed part by part`,
    },
  ];
  rows.push(
    ...(await compareParallelCopy(stack, stackPid, s3, settings, {
      parallelMs: asyncMs,
      singleStreamMs: median(singleStreamMs),
    })),
  );
  const usedHighWaterMark = [...smallCopies, ...largeCopies].every((run) => run.usedHighWaterMark);
  return { rows, usedHighWaterMark };
}

/**
 * The parallel ranged copy against the single-stream copy of the same file: unthrottled (the
 * large sample, timed in the rounds above), and with upstream throttled per connection (one run
 * each; 2 GB, 500 MB with `BENCH_QUICK=1`), where the parallel copy's connections add up.
 */
async function compareParallelCopy(
  stack: RunningStack,
  stackPid: number,
  s3: S3Client,
  settings: BenchSettings,
  timed: { parallelMs: number; singleStreamMs: number },
): Promise<Row[]> {
  const { parallelMs, singleStreamMs } = timed;
  const throttled = toSample(settings.quick ? '500MB' : '2GB');
  const rate = `rate=${THROTTLE_BYTES_PER_SECOND}`;
  const parallel = await runAsyncDownload(stack, stackPid, throttled, rate);
  await verifyReadyObject(stack, s3, parallel, throttled);
  const single = await runAsyncDownload(stack, stackPid, throttled, `${rate}&${SINGLE_STREAM_QUERY}`);
  await verifyReadyObject(stack, s3, single, throttled);
  const ranges = SETTINGS.parallelCopyConcurrency.default;
  const { asyncLarge: large, asyncRounds: rounds } = settings;
  // Locally every copy goes through one process (the functions and the S3 emulator): the throttled
  // parallel copy cannot beat the unthrottled one, scaled to its size.
  const floorMs = (parallelMs / large.bytes) * throttled.bytes;
  return [
    {
      measure: `Async ${throttled.label} at ${THROTTLE_BYTES_PER_SECOND / 1e6} MB/s per connection: parallel vs single-stream copy`,
      value: ratio(single.totalMs / parallel.totalMs),
      note:
        `request → \`ready\`, one run each: ${seconds(parallel.totalMs)} in ${ranges} ranges at once ` +
        `(\`parallelCopyConcurrency\` default) vs ${seconds(single.totalMs)} over one connection ` +
        `(upstream \`?${SINGLE_STREAM_QUERY}\`: no range support); both ready URLs serve the right sha256; aim ≥ 3×. ` +
        `Ceiling here: the unthrottled parallel copy would take ${seconds(floorMs)} (its ${large.label} time, scaled), ` +
        `so about ${ratio(single.totalMs / floorMs)} at most on this machine`,
    },
    {
      measure: `Async ${large.label} unthrottled: parallel vs single-stream copy`,
      value: ratio(singleStreamMs / parallelMs),
      note:
        `request → \`ready\`, median of ${rounds}: ${seconds(parallelMs)} (the timing above) vs ` +
        `${seconds(singleStreamMs)} over one connection; aim ≥ 1× (not slower)`,
    },
  ];
}
