/**
 * The async section: a large download through the async path (router, DynamoDB record, Step
 * Functions copy to S3, WebSocket `ready`) against a plain lib-storage `Upload` of the same bytes
 * to the same local S3, split into its phases (`bench/async-phases.ts`), and the stack's memory
 * meanwhile, also for one much larger download; the parallel ranged copy against the single-stream
 * copy of the same file, unthrottled and with upstream throttled per connection.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { request } from 'undici';
import { SETTINGS } from '../shared/settings.ts';
import { getJson } from '../test/helpers/http.ts';
import type { RunningStack } from '../test/helpers/local-stack.ts';
import { openSocket, type RecordingSocket } from '../test/helpers/ws.ts';
import {
  type ClientMoments,
  describePhases,
  describePlan,
  duration,
  type ParallelCopyPhases,
  PHASE_LOG_LINES,
  type PlainUploadTiming,
  phaseRows,
  toParallelCopyPhases,
} from './async-phases.ts';
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
import { type StackLog, type StackLogLine, watchStackLog } from './stack-log.ts';
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
  /** The functions' log lines of this download, up to `MarkReady`'s. */
  lines: StackLogLine[];
  /** A parallel copy's phases; none for a single-stream copy. */
  phases: ParallelCopyPhases | undefined;
}

interface PlainUploadRun extends PlainUploadTiming {
  memory: PeakRss;
}

/** The running stack, as the async section reaches it. */
interface AsyncTarget {
  stack: RunningStack;
  stackPid: number;
  s3: S3Client;
  stackLog: StackLog;
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

/**
 * Writes the machine's dirty pages to disk (`sync`) before a timed transfer: the local S3 keeps
 * every part and object in files, and without this the kernel flushes one transfer's gigabytes
 * while the next one runs, which then pays for them (a 2 GB completion took 10.9 s after the 4 GB
 * run against 2.4 s per GB otherwise).
 */
function flushWrites(): void {
  spawnSync('sync');
}

/**
 * One async download as a browser would do it: 202, connect to the returned `webSocketUrl` (it
 * carries the download token), wait for `ready`. Notes the moments the client sees on the machine's
 * clock and takes the download's log lines, for the phases of a parallel copy.
 */
async function runAsyncDownload(target: AsyncTarget, sample: Sample, query = ''): Promise<AsyncRun> {
  const { stack, stackPid, stackLog } = target;
  flushWrites();
  await sleep(250);
  const watch = watchPeakRss(stackPid);
  const started = performance.now();
  const requestAt = Date.now();
  let client: RecordingSocket | undefined;
  let firstProgress: number | undefined;
  const path = `/download/sample/${sample.name}${query ? `?${query}` : ''}`;
  try {
    const accepted = await getJson(`${stack.endpoints.restApi}${path}`);
    const acceptedAt = Date.now();
    if (accepted.status !== 202 || typeof accepted.json.webSocketUrl !== 'string') {
      throw new BenchError(`GET ${path}: ${accepted.status} ${JSON.stringify(accepted.json)}`);
    }
    const socket = await openSocket(accepted.json.webSocketUrl);
    client = socket;
    // After the helper's own listener, so `messages` already holds the new message.
    socket.socket.on('message', () => {
      if (firstProgress === undefined && socket.messages.at(-1)?.type === 'progress')
        firstProgress = Date.now();
    });
    const ready = await waitForReady(socket, READY_TIMEOUT_MS);
    const readyReceived = Date.now();
    const totalMs = performance.now() - started;
    const memory = watch.stop();
    if (ready.size !== sample.bytes)
      throw new BenchError(`ready.size ${ready.size}, expected ${sample.bytes}`);
    const progressMessages = socket.messages.filter((message) => message.type === 'progress').length;
    const lines = await stackLog.take(ready.downloadId, PHASE_LOG_LINES.markedReady);
    const moments: ClientMoments = {
      request: requestAt,
      accepted: acceptedAt,
      firstProgress,
      readyReceived,
      progressMessages,
    };
    const phases = lines.some((line) => line.message === PHASE_LOG_LINES.planned)
      ? toParallelCopyPhases(moments, lines)
      : undefined;
    log(
      `async ${sample.name}${query ? `?${query}` : ''}: ready after ${seconds(totalMs)}, ${progressMessages} progress messages, ` +
        `memory ${mib(memory.before)} → peak ${mib(memory.peak)}` +
        (phases ? `; ${describePlan(phases)}: ${describePhases(phases)}` : '; single-stream copy'),
    );
    return { totalMs, memory, progressMessages, ready, lines, phases };
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
async function runPlainUpload({ stack, stackPid, s3 }: AsyncTarget, sample: Sample): Promise<PlainUploadRun> {
  const bucket = stack.endpoints.bucket as string;
  const key = `bench/${randomUUID()}/sample-${sample.name}.bin`;
  flushWrites();
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
    // lib-storage reports progress as each part is stored; after the last, it completes the upload.
    let partsStoredAt = started;
    upload.on('httpUploadProgress', () => {
      partsStoredAt = performance.now();
    });
    await upload.done();
    const done = performance.now();
    const totalMs = done - started;
    const memory = watch.stop();
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== sample.bytes) {
      throw new BenchError(`plain Upload stored ${head.ContentLength} bytes, expected ${sample.bytes}`);
    }
    log(
      `plain Upload ${sample.name}: ${seconds(totalMs)} (completing ${duration(done - partsStoredAt)}), ` +
        `stack memory ${mib(memory.before)} → peak ${mib(memory.peak)}`,
    );
    return { totalMs, completeMs: done - partsStoredAt, memory };
  } finally {
    watch.stop();
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}

/**
 * Downloads the object behind a `ready` URL, checks its sha256, then deletes it so the run keeps at
 * most one large object on disk (the stack removes its data directory on exit anyway).
 */
async function verifyReadyObject({ stack, s3 }: AsyncTarget, run: AsyncRun, sample: Sample): Promise<void> {
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
 * large sample, large async, large single-stream; odd rounds in reverse. Memory drifts over a run,
 * so neither size always goes first, and neither large transfer always follows the other. After
 * the middle round, one async download of the huge sample, for the parallel copy's memory at
 * another size. The functions' log lines (read from the stack's stdout) split the large runs.
 */
export async function measureAsyncPath(
  stack: RunningStack,
  stackPid: number,
  s3: S3Client,
  settings: BenchSettings,
): Promise<AsyncSection> {
  const stdout = stack.process.stdout;
  if (!stdout) throw new BenchError('the stack process has no stdout to read its log from');
  const stackLog = watchStackLog(stdout);
  try {
    return await measureSeries({ stack, stackPid, s3, stackLog }, settings);
  } finally {
    stackLog.close();
  }
}

async function measureSeries(target: AsyncTarget, settings: BenchSettings): Promise<AsyncSection> {
  const { asyncSmall: small, asyncLarge: large, asyncHuge: huge, asyncRounds: rounds } = settings;
  log(`warm-up: one async ${small.name} download`);
  const warmUp = await runAsyncDownload(target, small);
  await verifyReadyObject(target, warmUp, small);
  const smallRuns: AsyncRun[] = [];
  const largeRuns: AsyncRun[] = [];
  const singleStreamMs: number[] = [];
  const plainRuns: PlainUploadRun[] = [];
  let hugeRun: AsyncRun | undefined;
  // In the middle of the series, so that memory's drift over the run favours neither size.
  const hugeAfterRound = Math.floor((rounds - 1) / 2);
  const start = await settledRss(target.stackPid);
  for (let round = 0; round < rounds; round++) {
    const steps = ['small', 'plain', 'large', 'single'] as const;
    for (const step of round % 2 === 0 ? steps : [...steps].reverse()) {
      if (step === 'single') {
        const run = await runAsyncDownload(target, large, SINGLE_STREAM_QUERY);
        singleStreamMs.push(run.totalMs);
        await verifyReadyObject(target, run, large);
      } else if (step === 'plain') {
        plainRuns.push(await runPlainUpload(target, large));
      } else {
        const sample = step === 'small' ? small : large;
        const run = await runAsyncDownload(target, sample);
        (step === 'small' ? smallRuns : largeRuns).push(run);
        await verifyReadyObject(target, run, sample);
      }
    }
    if (round === hugeAfterRound) {
      log(`one async ${huge.name} download, for the parallel copy's memory`);
      hugeRun = await runAsyncDownload(target, huge);
      await verifyReadyObject(target, hugeRun, huge);
    }
  }
  if (!hugeRun) throw new BenchError(`no async ${huge.name} download ran`);
  const plainMs = plainRuns.map((run) => run.totalMs);
  const plainGrowth = Math.max(0, ...plainRuns.map((run) => run.memory.growth));

  const asyncMs = median(largeRuns.map((run) => run.totalMs));
  const smallCopies = smallRuns.map((run) => run.memory);
  const largeCopies = largeRuns.map((run) => run.memory);
  const copies = summarizeMemory(start, smallCopies, largeCopies);
  const hugeGrowth = Math.max(0, hugeRun.memory.peak - start);
  const largePhases = largeRuns.map((run) => parallelPhases(run, large));
  const hugePhases = parallelPhases(hugeRun, huge);
  const largePlans = [...new Set(largePhases.map(describePlan))].join('; ');
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
    ...phaseRows(large.label, largePhases, plainRuns),
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
        `grew at most ${mib(plainGrowth)}`,
    },
    {
      measure: `Async memory, ${large.label} ÷ ${small.label}`,
      value: memoryRatio(copies.largeGrowth, copies.smallGrowth),
      note:
        `aim: flat (≈ 1×); ${small.label} is copied as one stream, which buffers about ${partsInFlight} ` +
        `whatever the size; ${large.label} (above \`parallelCopyMinBytes\`) in parallel ranges, each streamed part by part`,
    },
    {
      measure: `Stack peak RSS growth, async ${huge.label}`,
      value: mib(hugeGrowth),
      note:
        `one run, after round ${hugeAfterRound + 1} of ${rounds}: peak ${mib(hugeRun.memory.peak)} − ${mib(start)} before the series; over its own start: ` +
        `${mib(hugeRun.memory.growth)}; request → \`ready\` ${seconds(hugeRun.totalMs)} (${describePlan(hugePhases)}); ` +
        'the ready URL serves the right sha256',
    },
    {
      measure: `Parallel copy memory, ${huge.label} ÷ ${large.label}`,
      value: memoryRatio(hugeGrowth, copies.largeGrowth),
      note:
        `aim: flat (≈ 1×); both above \`parallelCopyMinBytes\`, copied in parallel ranges (${describePlan(hugePhases)} ` +
        `vs ${largePlans}), each worker holding two parts at a time whatever the size`,
    },
  ];
  rows.push(
    ...(await compareParallelCopy(target, settings, {
      parallelMs: asyncMs,
      singleStreamMs: median(singleStreamMs),
    })),
  );
  const usedHighWaterMark = [...smallCopies, ...largeCopies, hugeRun.memory].every(
    (memory) => memory.usedHighWaterMark,
  );
  return { rows, usedHighWaterMark };
}

/** The phases of a download the rows take for a parallel copy. */
function parallelPhases(run: AsyncRun, sample: Sample): ParallelCopyPhases {
  if (!run.phases) {
    throw new BenchError(
      `async ${sample.name} was not copied in parallel ranges (log lines: ${JSON.stringify(run.lines.map((line) => line.message))})`,
    );
  }
  return run.phases;
}

/**
 * The parallel ranged copy against the single-stream copy of the same file: unthrottled (the
 * large sample, timed in the rounds above), and with upstream throttled per connection (one run
 * each; 2 GB, 500 MB with `BENCH_QUICK=1`), where the parallel copy's connections add up.
 */
async function compareParallelCopy(
  target: AsyncTarget,
  settings: BenchSettings,
  timed: { parallelMs: number; singleStreamMs: number },
): Promise<Row[]> {
  const { parallelMs, singleStreamMs } = timed;
  const throttled = toSample(settings.quick ? '500MB' : '2GB');
  const rate = `rate=${THROTTLE_BYTES_PER_SECOND}`;
  const parallel = await runAsyncDownload(target, throttled, rate);
  await verifyReadyObject(target, parallel, throttled);
  const single = await runAsyncDownload(target, throttled, `${rate}&${SINGLE_STREAM_QUERY}`);
  await verifyReadyObject(target, single, throttled);
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
