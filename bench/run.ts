/**
 * `npm run bench`: starts the local stack once, measures the streaming and the async path against
 * the same bytes fetched or uploaded without them, and prints a Markdown table of ratios (also
 * written to `bench/results.md`). Every number in the table comes from this one run. Progress goes
 * to stderr, the table to stdout. Fails, writing nothing, if any download has the wrong sha256.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, loadavg, platform, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { request } from 'undici';
import { sampleSha256 } from '../local/sample-upstream.ts';
import { DEFAULT_STREAM_MAX_BYTES } from '../shared/config.ts';
import { ENV } from '../shared/env-names.ts';
import { localClients } from '../test/helpers/aws.ts';
import { type Download, download, getJson } from '../test/helpers/http.ts';
import { type RunningStack, startStack } from '../test/helpers/local-stack.ts';
import { openSocket, type RecordingSocket } from '../test/helpers/ws.ts';
import { type PeakRss, readProcessMemory, watchPeakRss } from './proc-memory.ts';

const MB = 1_000_000;
const MiB = 1024 * 1024;

/** A file of the sample upstream: `GET /sample/{name}` serves `bytes` deterministic bytes. */
interface Sample {
  name: string;
  label: string;
  bytes: number;
}
const STREAM_LARGE: Sample = { name: '190MB', label: '190 MB', bytes: 190 * MB };
const STREAM_SMALL: Sample = { name: '20MB', label: '20 MB', bytes: 20 * MB };
const ASYNC_LARGE: Sample = { name: '1GB', label: '1 GB', bytes: 1000 * MB };
const ASYNC_SMALL: Sample = { name: '250MB', label: '250 MB', bytes: 250 * MB };
/** Small enough that many rounds cost little: time to first byte does not depend on the size. */
const FIRST_BYTE: Sample = { name: '1MB', label: '1 MB', bytes: 1 * MB };

/** Repeats of each streaming measurement; the table shows medians. */
const STREAM_ROUNDS = 7;
const FIRST_BYTE_ROUNDS = 21;
/** Repeats of each async measurement, after one warm-up; the table shows medians. */
const ASYNC_ROUNDS = 2;
/** Pinned for both the stack's copy step and the baseline `Upload` (they are also the defaults). */
const PART_SIZE_BYTES = 8 * MiB;
const QUEUE_SIZE = 4;
const READY_TIMEOUT_MS = 5 * 60_000;
const RESULTS_FILE = fileURLToPath(new URL('results.md', import.meta.url));

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** A measurement that cannot be trusted: wrong bytes, wrong status, a failed download. */
class BenchError extends Error {
  override readonly name = 'BenchError';
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

const ratio = (value: number) => `${value.toFixed(2)}×`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const loadAverage = () => (loadavg()[0] ?? 0).toFixed(2);
const ms = (value: number) => `${value.toFixed(1)} ms`;
const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)} s`;
const mbPerSecond = (bytes: number, milliseconds: number) =>
  `${(bytes / MB / (milliseconds / 1000)).toFixed(0)} MB/s`;

/**
 * Ratio of two memory growths. Below 1 MiB a growth is page-level noise and no denominator, so
 * that case says what happened instead of dividing by (almost) zero.
 */
function memoryRatio(large: number, small: number): string {
  if (small >= MiB) return ratio(large / small);
  if (large < MiB) return 'flat (both < 1 MiB)';
  return `n/a (${mib(small)} vs ${mib(large)})`;
}

/** GETs `url` and checks status, length and sha256 against the sample (hashed while streaming). */
async function downloadSample(url: string, sample: Sample): Promise<Download> {
  const result = await download(url);
  const expected = sampleSha256(sample.bytes);
  if (result.status !== 200 || result.error || result.bytes !== sample.bytes || result.sha256 !== expected) {
    throw new BenchError(
      `GET ${url}: status ${result.status}, ${result.bytes} of ${sample.bytes} bytes, sha256 ${result.sha256} ` +
        `(expected ${expected})${result.error ? `, ${result.error.message}` : ''}`,
    );
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Streaming path
// ---------------------------------------------------------------------------------------------

type StreamRoute = 'direct' | 'rest' | 'functionUrl';
const STREAM_ROUTES: readonly StreamRoute[] = ['direct', 'rest', 'functionUrl'];

function streamUrl(stack: RunningStack, route: StreamRoute, sample: Sample): string {
  const { upstream, restApi, functionUrl } = stack.endpoints;
  switch (route) {
    case 'direct':
      return `${upstream}sample/${sample.name}`; // `upstream` ends with a slash
    case 'rest':
      return `${restApi}/stream/sample/${sample.name}`;
    case 'functionUrl':
      return `${functionUrl}/sample/${sample.name}`;
  }
}

interface StreamTimings {
  totalMs: number[];
  firstByteMs: number[];
}

/** `rounds` downloads per route, interleaved and rotated so no route always goes first. */
async function measureStreaming(
  stack: RunningStack,
  sample: Sample,
  rounds: number,
): Promise<Record<StreamRoute, StreamTimings>> {
  const timings: Record<StreamRoute, StreamTimings> = {
    direct: { totalMs: [], firstByteMs: [] },
    rest: { totalMs: [], firstByteMs: [] },
    functionUrl: { totalMs: [], firstByteMs: [] },
  };
  for (let round = 0; round < rounds; round++) {
    const order = STREAM_ROUTES.map(
      (_, i) => STREAM_ROUTES[(i + round) % STREAM_ROUTES.length] as StreamRoute,
    );
    for (const route of order) {
      const result = await downloadSample(streamUrl(stack, route, sample), sample);
      timings[route].totalMs.push(result.totalMs);
      timings[route].firstByteMs.push(result.firstByteMs ?? result.totalMs);
    }
  }
  return timings;
}

/** Peak RSS growth of the stack during REST `/stream/` downloads, `STREAM_ROUNDS` of each size, alternating. */
async function measureStreamMemory(stack: RunningStack): Promise<Map<Sample, PeakRss[]>> {
  const pid = stackPid(stack);
  const results = new Map<Sample, PeakRss[]>([
    [STREAM_SMALL, []],
    [STREAM_LARGE, []],
  ]);
  for (let round = 0; round < STREAM_ROUNDS; round++) {
    for (const sample of round % 2 === 0 ? [STREAM_SMALL, STREAM_LARGE] : [STREAM_LARGE, STREAM_SMALL]) {
      await sleep(250); // let the previous response's sockets close
      const watch = watchPeakRss(pid);
      try {
        await downloadSample(streamUrl(stack, 'rest', sample), sample);
      } finally {
        const memory = watch.stop();
        results.get(sample)?.push(memory);
        log(`memory ${sample.name} stream: ${mib(memory.before)} → peak ${mib(memory.peak)}`);
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Async path
// ---------------------------------------------------------------------------------------------

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

/** One async download as a browser would do it: 202, connect with `?downloadId=`, wait for `ready`. */
async function runAsyncDownload(stack: RunningStack, sample: Sample): Promise<AsyncRun> {
  await sleep(250);
  const watch = watchPeakRss(stackPid(stack));
  const started = performance.now();
  let client: RecordingSocket | undefined;
  try {
    const accepted = await getJson(`${stack.endpoints.restApi}/download/sample/${sample.name}`);
    if (accepted.status !== 202 || typeof accepted.json.webSocketUrl !== 'string') {
      throw new BenchError(
        `GET /download/sample/${sample.name}: ${accepted.status} ${JSON.stringify(accepted.json)}`,
      );
    }
    client = await openSocket(accepted.json.webSocketUrl);
    const ready = await waitForReady(client, READY_TIMEOUT_MS);
    const totalMs = performance.now() - started;
    const memory = watch.stop();
    if (ready.size !== sample.bytes)
      throw new BenchError(`ready.size ${ready.size}, expected ${sample.bytes}`);
    const progressMessages = client.messages.filter((message) => message.type === 'progress').length;
    log(
      `async ${sample.name}: ready after ${seconds(totalMs)}, ${progressMessages} progress messages, ` +
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
 * local S3. Returns its duration and the stack's memory growth meanwhile (S3 emulator and sample
 * upstream alone, since the bench process runs the upload).
 */
async function runPlainUpload(
  stack: RunningStack,
  s3: S3Client,
  sample: Sample,
): Promise<{ totalMs: number; memory: PeakRss }> {
  const bucket = stack.endpoints.bucket as string;
  const key = `bench/${randomUUID()}/sample-${sample.name}.bin`;
  await sleep(250);
  const watch = watchPeakRss(stackPid(stack));
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

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

function stackPid(stack: RunningStack): number {
  const pid = stack.process.pid;
  if (pid === undefined) throw new BenchError('the stack process has no pid');
  return pid;
}

interface Row {
  measure: string;
  value: string;
  note: string;
}

function toMarkdown(header: readonly string[], rows: readonly Row[]): string {
  const toCell = (text: string) => text.replaceAll('|', '\\|');
  return [
    ...header,
    '',
    '| measure | value | note |',
    '| --- | ---: | --- |',
    ...rows.map((row) => `| ${toCell(row.measure)} | ${toCell(row.value)} | ${toCell(row.note)} |`),
    '',
  ].join('\n');
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

/** Peak RSS growth of a small and a large transfer over the same starting point. */
interface MemorySummary {
  /** RSS of the warmed-up stack just before the series. */
  start: number;
  smallPeak: number;
  largePeak: number;
  /** `peak − start`, medians. */
  smallGrowth: number;
  largeGrowth: number;
}

/**
 * Compares the peaks of a series against the RSS before the whole series rather than each run
 * against its own start: the RSS just before a single transfer swings by tens of MiB as garbage
 * collection returns memory or not, while the peaks barely move. Memory kept from one transfer to
 * the next counts as growth.
 */
function summarizeMemory(start: number, small: readonly PeakRss[], large: readonly PeakRss[]): MemorySummary {
  const smallPeak = median(small.map((run) => run.peak));
  const largePeak = median(large.map((run) => run.peak));
  return {
    start,
    smallPeak,
    largePeak,
    smallGrowth: Math.max(0, smallPeak - start),
    largeGrowth: Math.max(0, largePeak - start),
  };
}

/** The stack's RSS once it has been idle for a moment, before a series. */
async function settledRss(stack: RunningStack): Promise<number> {
  await sleep(500);
  return readProcessMemory(stackPid(stack)).rss;
}

/** `0.9–19.1 MiB`: the spread of the naive per-run measure (peak − RSS just before that run). */
function ownStartSpread(runs: readonly PeakRss[]): string {
  const growths = runs.map((run) => run.growth / MiB);
  return `${Math.min(...growths).toFixed(1)}–${Math.max(...growths).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  const date = new Date().toISOString();
  const loadAtStart = loadAverage();
  if (Number(loadAtStart) > availableParallelism() / 2) {
    log(
      `warning: the machine is busy (load ${loadAtStart} on ${availableParallelism()} CPUs); expect noisy ratios`,
    );
  }
  if (platform() !== 'linux') throw new BenchError('the memory rows read /proc/<pid>/status: run on Linux');
  if (STREAM_LARGE.bytes > DEFAULT_STREAM_MAX_BYTES)
    throw new BenchError('the stream sample must fit STREAM_MAX_BYTES');

  log('hashing the expected samples');
  for (const sample of [FIRST_BYTE, STREAM_SMALL, STREAM_LARGE, ASYNC_SMALL, ASYNC_LARGE])
    sampleSha256(sample.bytes);

  log('starting the local stack');
  const stack = await startStack({
    [ENV.uploadPartSizeBytes]: String(PART_SIZE_BYTES),
    [ENV.uploadQueueSize]: String(QUEUE_SIZE),
  });
  const aws = localClients(stack.endpoints);
  try {
    // Loads every module on the way and lets V8 optimize the hot paths of both processes.
    log(`warm-up: one ${STREAM_LARGE.name} download per route`);
    for (const route of STREAM_ROUTES)
      await downloadSample(streamUrl(stack, route, STREAM_LARGE), STREAM_LARGE);

    log(`streaming ${STREAM_LARGE.name}, ${STREAM_ROUNDS} rounds`);
    const timings = await measureStreaming(stack, STREAM_LARGE, STREAM_ROUNDS);
    for (const route of STREAM_ROUTES) {
      const speeds = timings[route].totalMs.map((totalMs) => mbPerSecond(STREAM_LARGE.bytes, totalMs));
      log(`${route}: ${speeds.join(', ')}`);
    }
    log(`time to first byte, ${FIRST_BYTE.name}, ${FIRST_BYTE_ROUNDS} rounds`);
    const firstBytes = await measureStreaming(stack, FIRST_BYTE, FIRST_BYTE_ROUNDS);
    const streamStart = await settledRss(stack);
    const streamMemory = await measureStreamMemory(stack);

    log(`warm-up: one async ${ASYNC_SMALL.name} download`);
    const warmUp = await runAsyncDownload(stack, ASYNC_SMALL);
    await verifyReadyObject(stack, aws.s3, warmUp, ASYNC_SMALL);
    const asyncSmall: AsyncRun[] = [];
    const asyncLarge: AsyncRun[] = [];
    const plainMs: number[] = [];
    let plainMemory: PeakRss | undefined;
    const asyncStart = await settledRss(stack);
    // Even rounds run small, plain, async 1 GB; odd rounds the reverse. Memory drifts over a run, so
    // neither size always goes first, and neither 1 GB transfer always follows the other.
    for (let round = 0; round < ASYNC_ROUNDS; round++) {
      const steps = ['small', 'plain', 'large'] as const;
      for (const step of round % 2 === 0 ? steps : [...steps].reverse()) {
        if (step === 'plain') {
          const plain = await runPlainUpload(stack, aws.s3, ASYNC_LARGE);
          plainMs.push(plain.totalMs);
          if (!plainMemory || plain.memory.growth > plainMemory.growth) plainMemory = plain.memory;
        } else {
          const sample = step === 'small' ? ASYNC_SMALL : ASYNC_LARGE;
          const run = await runAsyncDownload(stack, sample);
          (step === 'small' ? asyncSmall : asyncLarge).push(run);
          await verifyReadyObject(stack, aws.s3, run, sample);
        }
      }
    }

    const directMs = median(timings.direct.totalMs);
    const directFirstByteMs = median(firstBytes.direct.firstByteMs);
    const streamRows = (route: 'rest' | 'functionUrl', label: string): Row[] => {
      const routeMs = median(timings[route].totalMs);
      const firstByteMs = median(firstBytes[route].firstByteMs);
      return [
        {
          measure: `Streaming throughput, ${label} vs direct`,
          value: ratio(directMs / routeMs),
          note:
            `${STREAM_LARGE.label}, median of ${STREAM_ROUNDS}: ${mbPerSecond(STREAM_LARGE.bytes, routeMs)} vs ` +
            `${mbPerSecond(STREAM_LARGE.bytes, directMs)} direct, sha256 checked; aim ≥ 0.90×`,
        },
        {
          measure: `Extra time to first byte, ${label}`,
          value: `${firstByteMs >= directFirstByteMs ? '+' : '−'}${ms(Math.abs(firstByteMs - directFirstByteMs))}`,
          note:
            `${FIRST_BYTE.label}, median of ${FIRST_BYTE_ROUNDS}: ${ms(firstByteMs)} vs ${ms(directFirstByteMs)} ` +
            'direct, request sent → first body byte, a new connection each time',
        },
      ];
    };
    const smallStreams = streamMemory.get(STREAM_SMALL) ?? [];
    const largeStreams = streamMemory.get(STREAM_LARGE) ?? [];
    const streams = summarizeMemory(streamStart, smallStreams, largeStreams);
    const asyncMs = median(asyncLarge.map((run) => run.totalMs));
    const smallCopies = asyncSmall.map((run) => run.memory);
    const largeCopies = asyncLarge.map((run) => run.memory);
    const copies = summarizeMemory(asyncStart, smallCopies, largeCopies);
    const usedHighWaterMark = [...smallStreams, ...largeStreams, ...smallCopies, ...largeCopies].every(
      (run) => run.usedHighWaterMark,
    );
    const progressMessages = asyncLarge.map((run) => run.progressMessages).join(', ');

    const rows: Row[] = [
      ...streamRows('rest', 'REST `/stream/`'),
      ...streamRows('functionUrl', 'Function URL'),
      {
        measure: `Stack peak RSS growth, ${STREAM_SMALL.label} stream`,
        value: mib(streams.smallGrowth),
        note:
          `REST \`/stream/\`, ${STREAM_ROUNDS} runs: median peak ${mib(streams.smallPeak)} − ` +
          `${mib(streams.start)} before the series; per run over its own start: ${ownStartSpread(smallStreams)}`,
      },
      {
        measure: `Stack peak RSS growth, ${STREAM_LARGE.label} stream`,
        value: mib(streams.largeGrowth),
        note:
          `REST \`/stream/\`, ${STREAM_ROUNDS} runs: median peak ${mib(streams.largePeak)} − ` +
          `${mib(streams.start)} before the series; per run over its own start: ${ownStartSpread(largeStreams)}`,
      },
      {
        measure: `Stream memory, ${STREAM_LARGE.label} ÷ ${STREAM_SMALL.label}`,
        value: memoryRatio(streams.largeGrowth, streams.smallGrowth),
        note: 'aim: flat (≈ 1×): memory must not grow with the file size',
      },
      {
        measure: `Async ${ASYNC_LARGE.label}: request → \`ready\` on the WebSocket`,
        value: seconds(asyncMs),
        note:
          `median of ${ASYNC_ROUNDS}: 202, connect with \`?downloadId=\`, progress (${progressMessages} messages), ` +
          'ready; the ready URL serves the right sha256',
      },
      {
        measure: `Async ${ASYNC_LARGE.label} speed vs plain lib-storage \`Upload\``,
        value: ratio(median(plainMs) / asyncMs),
        note:
          `plain \`Upload\` of the same bytes to the same S3 (8 MiB parts, queue 4), median of ${ASYNC_ROUNDS}: ` +
          `${seconds(median(plainMs))}; value = its time ÷ the async time; aim ≥ 0.90×`,
      },
      {
        measure: `Stack peak RSS growth, async ${ASYNC_SMALL.label}`,
        value: mib(copies.smallGrowth),
        note:
          `request → ready, ${ASYNC_ROUNDS} runs: median peak ${mib(copies.smallPeak)} − ${mib(copies.start)} before the series; ` +
          `per run over its own start: ${ownStartSpread(smallCopies)}; the first async download after start ` +
          `(warm-up, not counted) grew it by ${mib(warmUp.memory.growth)}`,
      },
      {
        measure: `Stack peak RSS growth, async ${ASYNC_LARGE.label}`,
        value: mib(copies.largeGrowth),
        note:
          `same runs as the timing: median peak ${mib(copies.largePeak)} − ${mib(copies.start)} before the series; per run over ` +
          `its own start: ${ownStartSpread(largeCopies)}; during the plain \`Upload\` the stack (S3 emulator, ` +
          `sample upstream) grew at most ${mib(plainMemory?.growth ?? 0)}`,
      },
      {
        measure: `Async memory, ${ASYNC_LARGE.label} ÷ ${ASYNC_SMALL.label}`,
        value: memoryRatio(copies.largeGrowth, copies.smallGrowth),
        note: 'aim: flat (≈ 1×); the copy buffers about 8 MiB × (4 + 1) whatever the size',
      },
    ];

    const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
    const peakSource = usedHighWaterMark
      ? '`VmHWM` after resetting it, and `VmRSS` sampled every 20 ms'
      : '`VmRSS` sampled every 20 ms; `VmHWM` could not be reset here';
    const header = [
      '# Benchmark results',
      '',
      `- Date: ${date}`,
      `- Node: ${process.version} (${platform()} ${arch()})`,
      `- CPUs: ${availableParallelism()} × ${cpu}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM`,
      `- Command: \`${process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'npx tsx bench/run.ts'}\``,
      `- Duration: ${seconds(performance.now() - benchStarted)}; the stack, its emulators and this client share the machine ` +
        `(1-minute load average ${loadAtStart} at the start, ${loadAverage()} at the end)`,
      `- Memory: peak RSS of the stack process (${peakSource}) over its RSS before the series, ` +
        'after the warm-ups; memory kept from one transfer to the next counts as growth',
    ];
    const markdown = toMarkdown(header, rows);
    writeFileSync(RESULTS_FILE, markdown);
    process.stdout.write(markdown);
  } catch (error) {
    log(`stack logs (tail):\n${stack.logs().slice(-4000)}`);
    throw error;
  } finally {
    aws.close();
    await stack.stop();
  }
}

try {
  await main();
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
}
