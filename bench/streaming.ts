/**
 * The streaming section: throughput, CPU per GB and time to first byte of the streaming routes
 * against two baselines measured alongside them (the direct download and the one-hop floor), and
 * the stack's memory while it streams.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sampleSha256 } from '../local/sample-upstream.ts';
import { AWS_STREAM_CAPS } from '../local/stream-caps.ts';
import { download, startAsyncDownload } from '../test/helpers/http.ts';
import type { RunningStack } from '../test/helpers/local-stack.ts';
import { openSocket } from '../test/helpers/ws.ts';
import type { BareProxy } from './bare-proxy-process.ts';
import { fetchDiscarding } from './client.ts';
import { ownStartSpread, type PeakRss, settledRss, summarizeMemory, watchPeakRss } from './proc-memory.ts';
import { ownCpuMs, readCpuMs } from './process-cpu.ts';
import {
  BenchError,
  cpuPerGb,
  log,
  MB,
  mbPerSecond,
  median,
  memoryRatio,
  mib,
  ms,
  plural,
  type Row,
  ratio,
  type Sample,
  seconds,
  signedMs,
  sum,
  toSample,
} from './report.ts';
import type { BenchSettings } from './settings.ts';

/** Small enough that many rounds cost little: time to first byte does not depend on the size. */
const FIRST_BYTE = toSample('1MB');

/**
 * `direct`: the sample upstream itself. `floor`: the bare proxy in front of it. `rest` and
 * `functionUrl`: the stack's streaming routes, which reach the same upstream through the function.
 */
export type StreamRoute = 'direct' | 'floor' | 'rest' | 'functionUrl';
export const STREAM_ROUTES: readonly StreamRoute[] = ['direct', 'floor', 'rest', 'functionUrl'];

/** How the table names each route. */
const ROUTE_LABELS: Record<StreamRoute, string> = {
  direct: 'direct',
  floor: 'one-hop floor',
  rest: 'REST `/stream/`',
  functionUrl: 'Function URL',
};

/** What the streaming routes are measured through, and the processes whose CPU time is read. */
export interface StreamTargets {
  stack: RunningStack;
  /** The stack process: gateways, the in-process Lambda runtime and the function, the emulators. */
  stackPid: number;
  proxy: BareProxy;
  /** The sample upstream's process (a child of the stack), when it was found. */
  upstreamPid: number | undefined;
}

export function streamUrl(targets: StreamTargets, route: StreamRoute, sample: Sample): string {
  const { upstream, restApi, functionUrl } = targets.stack.endpoints;
  switch (route) {
    case 'direct':
      return `${upstream}sample/${sample.name}`; // `upstream` ends with a slash
    case 'floor':
      return `${targets.proxy.url}sample/${sample.name}`;
    case 'rest':
      return `${restApi}/stream/sample/${sample.name}`;
    case 'functionUrl':
      return `${functionUrl}/sample/${sample.name}`;
  }
}

/** GETs `url` through Node's `http`, hashing while it streams; throws unless it is exactly the sample. */
export async function downloadSample(url: string, sample: Sample): Promise<void> {
  const result = await download(url);
  const expected = sampleSha256(sample.bytes);
  if (result.status !== 200 || result.error || result.bytes !== sample.bytes || result.sha256 !== expected) {
    throw new BenchError(
      `GET ${url}: status ${result.status}, ${result.bytes} of ${sample.bytes} bytes, sha256 ${result.sha256} ` +
        `(expected ${expected})${result.error ? `, ${result.error.message}` : ''}`,
    );
  }
}

/**
 * The verification pass, which doubles as the warm-up (it loads every module on the way and lets
 * V8 optimise the hot paths): one hashed, untimed download of each sample through each route.
 */
export async function verifyRoutes(targets: StreamTargets, samples: readonly Sample[]): Promise<void> {
  for (const sample of samples) {
    for (const route of STREAM_ROUTES) await downloadSample(streamUrl(targets, route, sample), sample);
    log(`${sample.name}: sha256 ok through ${STREAM_ROUTES.join(', ')}`);
  }
}

/** CPU time, in ms, each process spent during one route's timed downloads. */
export interface CpuSpent {
  stack: number;
  proxy: number;
  upstream: number;
  /** This process: the discarding client. */
  client: number;
}

/** One route's timed downloads. */
export interface RouteTimings {
  route: StreamRoute;
  totalMs: number[];
  /** CPU time of the route's own process ({@link PATH_PROCESS}) during each download. */
  pathCpuMs: number[];
  firstByteMs: number[];
  /** Bytes moved in all of them, and the time they took in all. */
  bytes: number;
  wallMs: number;
  cpu: CpuSpent;
}

function readCpu(targets: StreamTargets): CpuSpent {
  return {
    stack: readCpuMs(targets.stackPid),
    proxy: readCpuMs(targets.proxy.pid),
    upstream: targets.upstreamPid === undefined ? 0 : readCpuMs(targets.upstreamPid),
    client: ownCpuMs(),
  };
}

/**
 * `rounds` downloads of `sample` per route with the discarding client, interleaved and rotated so
 * no route always goes first; each must answer 200 with exactly the sample's length. The CPU time of
 * every process involved is read just before and after each download, so it counts only the
 * transfers, not the time between them.
 */
export async function measureRoutes(
  targets: StreamTargets,
  sample: Sample,
  rounds: number,
): Promise<Record<StreamRoute, RouteTimings>> {
  const empty = (route: StreamRoute): RouteTimings => ({
    route,
    totalMs: [],
    pathCpuMs: [],
    firstByteMs: [],
    bytes: 0,
    wallMs: 0,
    cpu: { stack: 0, proxy: 0, upstream: 0, client: 0 },
  });
  const timings: Record<StreamRoute, RouteTimings> = {
    direct: empty('direct'),
    floor: empty('floor'),
    rest: empty('rest'),
    functionUrl: empty('functionUrl'),
  };
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < STREAM_ROUTES.length; i++) {
      const route = STREAM_ROUTES[(i + round) % STREAM_ROUTES.length] as StreamRoute;
      const url = streamUrl(targets, route, sample);
      const before = readCpu(targets);
      const transfer = await fetchDiscarding(url);
      const after = readCpu(targets);
      if (transfer.status !== 200 || transfer.bytes !== sample.bytes) {
        throw new BenchError(
          `GET ${url}: status ${transfer.status}, ${transfer.bytes} of ${sample.bytes} bytes`,
        );
      }
      const measured = timings[route];
      measured.totalMs.push(transfer.totalMs);
      measured.pathCpuMs.push(after[PATH_PROCESS[route]] - before[PATH_PROCESS[route]]);
      measured.firstByteMs.push(transfer.firstByteMs ?? transfer.totalMs);
      measured.bytes += transfer.bytes;
      measured.wallMs += transfer.totalMs;
      for (const name of ['stack', 'proxy', 'upstream', 'client'] as const)
        measured.cpu[name] += after[name] - before[name];
    }
  }
  return timings;
}

/** `288–331 MB/s`: the range of single measurements, so the table shows how much they scatter. */
function spread(values: readonly number[], unit: string): string {
  return `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} ${unit}`;
}

/** The process whose CPU time a route adds: the one that forwards the bytes (or serves them, direct). */
const PATH_PROCESS: Record<StreamRoute, keyof CpuSpent> = {
  direct: 'upstream',
  floor: 'proxy',
  rest: 'stack',
  functionUrl: 'stack',
};

/** `312, 298 MB/s; proxy CPU 2100, 1900 ms/GB`: each download, for the progress log (drift shows). */
function progress(timings: RouteTimings, sample: Sample): string {
  const speeds = timings.totalMs.map((totalMs) => mbPerSecond(sample.bytes, totalMs).replace(' MB/s', ''));
  const cpu = timings.pathCpuMs.map((cpuMs) => cpuPerGb(cpuMs, sample.bytes).replace(' ms/GB', ''));
  return `${speeds.join(', ')} MB/s; ${PATH_PROCESS[timings.route]} CPU ${cpu.join(', ')} ms/GB`;
}

/** CPU ms per second of wall time the stack spent while it was not in the path (direct, floor). */
export function stackBackgroundMsPerSecond(timings: Record<StreamRoute, RouteTimings>): number {
  const routes = [timings.direct, timings.floor];
  return sum(routes.map((route) => route.cpu.stack)) / (sum(routes.map((route) => route.wallMs)) / 1000);
}

/** Peak RSS growth of the stack during REST `/stream/` downloads, `rounds` of each size, alternating. */
export async function measureStreamMemory(
  targets: StreamTargets,
  small: Sample,
  large: Sample,
  rounds: number,
): Promise<Map<Sample, PeakRss[]>> {
  const results = new Map<Sample, PeakRss[]>([
    [small, []],
    [large, []],
  ]);
  for (let round = 0; round < rounds; round++) {
    for (const sample of round % 2 === 0 ? [small, large] : [large, small]) {
      await sleep(250); // let the previous response's sockets close
      const watch = watchPeakRss(targets.stackPid);
      try {
        await downloadSample(streamUrl(targets, 'rest', sample), sample);
      } finally {
        const memory = watch.stop();
        results.get(sample)?.push(memory);
        log(`memory ${sample.name} stream: ${mib(memory.before)} → peak ${mib(memory.peak)}`);
      }
    }
  }
  return results;
}

/** What the streaming section found. */
export interface StreamingSection {
  rows: Row[];
  /** Whether every memory peak includes the kernel's own high-water mark. */
  usedHighWaterMark: boolean;
}

/**
 * The verification pass (also the warm-up), then throughput and CPU on the large sample, time to
 * first byte on 1 MB, and the stack's memory on both stream sizes.
 */
export async function measureStreaming(
  targets: StreamTargets,
  settings: BenchSettings,
): Promise<StreamingSection> {
  const { streamLarge: large, streamSmall: small, streamRounds, firstByteRounds, memoryRounds } = settings;
  log(`verification and warm-up: one hashed download of ${FIRST_BYTE.name} and ${large.name} per route`);
  await verifyRoutes(targets, [FIRST_BYTE, large]);

  // Each path needs about 1 GB before its CPU per GB settles (V8 optimising, heap sizing).
  log(`warm-up: ${settings.warmUpRounds} more ${large.name} downloads per route, bytes discarded`);
  const warmUp = await measureRoutes(targets, large, settings.warmUpRounds);
  for (const route of STREAM_ROUTES) log(`warm-up ${route}: ${progress(warmUp[route], large)}`);
  log(`throughput and CPU: ${large.name}, ${streamRounds} rounds, bytes discarded`);
  const timings = await measureRoutes(targets, large, streamRounds);
  for (const route of STREAM_ROUTES) log(`${route}: ${progress(timings[route], large)}`);
  log(`time to first byte: ${FIRST_BYTE.name}, ${firstByteRounds} rounds`);
  const firstBytes = await measureRoutes(targets, FIRST_BYTE, firstByteRounds);
  const memoryStart = await settledRss(targets.stackPid);
  const memory = await measureStreamMemory(targets, small, large, memoryRounds);

  const totalMs = (route: StreamRoute) => median(timings[route].totalMs);
  const speed = (route: StreamRoute) => mbPerSecond(large.bytes, totalMs(route));
  const cpu = (route: StreamRoute, who: keyof CpuSpent) =>
    cpuPerGb(timings[route].cpu[who], timings[route].bytes);
  const cpuRatio = (route: StreamRoute) =>
    timings[route].cpu.stack / timings[route].bytes / (timings.floor.cpu.proxy / timings.floor.bytes);
  const speedSpread = (route: StreamRoute) =>
    spread(
      timings[route].totalMs.map((totalMs) => large.bytes / MB / (totalMs / 1000)),
      'MB/s',
    );
  const cpuSpread = (route: StreamRoute) =>
    spread(
      timings[route].pathCpuMs.map((cpuMs) => (cpuMs / large.bytes) * 1e9),
      'ms/GB',
    );
  const firstByteMs = (route: StreamRoute) => median(firstBytes[route].firstByteMs);
  const sizeAndRounds = `${large.label}, median of ${streamRounds}`;
  const background = stackBackgroundMsPerSecond(timings);

  const routeRows = (route: 'rest' | 'functionUrl'): Row[] => {
    const label = ROUTE_LABELS[route];
    return [
      {
        measure: `Streaming throughput, ${label} vs one-hop floor`,
        value: ratio(totalMs('floor') / totalMs(route)),
        note:
          `${sizeAndRounds}: ${speed(route)} (${speedSpread(route)}) vs ${speed('floor')} (${speedSpread('floor')}) ` +
          'through the bare proxy; aim ≥ 0.90×',
      },
      {
        measure: `Streaming throughput, ${label} vs direct`,
        value: ratio(totalMs('direct') / totalMs(route)),
        note: `${sizeAndRounds}: ${speed(route)} vs ${speed('direct')} straight from the sample upstream`,
      },
      {
        measure: `CPU per GB, ${label} (stack process) vs bare proxy`,
        value: ratio(cpuRatio(route)),
        note:
          `user + system time of the stack process during the ${streamRounds} timed downloads: ` +
          `${cpu(route, 'stack')} (single downloads ${cpuSpread(route)}) vs ${cpu('floor', 'proxy')} ` +
          `(${cpuSpread('floor')}) for the proxy process; aim ≤ 1.20×`,
      },
      {
        measure: `Extra time to first byte, ${label}`,
        value: signedMs(firstByteMs(route) - firstByteMs('direct')),
        note:
          `${FIRST_BYTE.label}, median of ${firstByteRounds}: ${ms(firstByteMs(route))} vs ${ms(firstByteMs('direct'))} ` +
          `direct (the one-hop floor: ${signedMs(firstByteMs('floor') - firstByteMs('direct'))}); ` +
          'request started → first body byte, a new connection each time',
      },
    ];
  };

  const smallRuns = memory.get(small) ?? [];
  const largeRuns = memory.get(large) ?? [];
  const streams = summarizeMemory(memoryStart, smallRuns, largeRuns);
  const memoryRow = (sample: Sample, peak: number, growth: number, runs: readonly PeakRss[]): Row => ({
    measure: `Stack peak RSS growth, ${sample.label} stream`,
    value: mib(growth),
    note:
      `REST \`/stream/\`, ${plural(memoryRounds, 'run')}: median peak ${mib(peak)} − ${mib(streams.start)} before the ` +
      `series; per run over its own start: ${ownStartSpread(runs)}`,
  });

  const rows: Row[] = [
    {
      measure: 'Direct download: sample upstream → client',
      value: speed('direct'),
      note:
        `${sizeAndRounds}; the client discards the bytes (its CPU: ${cpu('direct', 'client')}; ` +
        `the sample upstream's process: ${cpu('direct', 'upstream')})`,
    },
    {
      measure: 'One-hop floor: bare `undici.request` → `pipeline` → `node:http` proxy',
      value: speed('floor'),
      note:
        `${sizeAndRounds}, ${ratio(totalMs('direct') / totalMs('floor'))} of direct; its own process in front of ` +
        `the same upstream, using ${cpu('floor', 'proxy')}`,
    },
    ...routeRows('rest'),
    ...routeRows('functionUrl'),
    {
      measure: 'Stack CPU while idle (not in the path)',
      value: `${background.toFixed(1)} ms/s`,
      note:
        'its CPU time during the direct and one-hop-floor downloads per second of them: emulators and timers, ' +
        "also counted in the stack's CPU per GB above",
    },
    memoryRow(small, streams.smallPeak, streams.smallGrowth, smallRuns),
    memoryRow(large, streams.largePeak, streams.largeGrowth, largeRuns),
    {
      measure: `Stream memory, ${large.label} ÷ ${small.label}`,
      value: memoryRatio(streams.largeGrowth, streams.smallGrowth),
      note: 'aim: flat (≈ 1×): memory must not grow with the file size',
    },
  ];
  const usedHighWaterMark = [...smallRuns, ...largeRuns].every((run) => run.usedHighWaterMark);
  return { rows, usedHighWaterMark };
}

/** The file of the capped comparison: well past both uncapped prefixes, still quick to copy. */
export const CAPPED_SAMPLE = toSample('50MB');
const READY_TIMEOUT_MS = 120_000;

/**
 * Time to the last byte of `sample` through the router with `?mode=async`, as a client does it:
 * the 202, a WebSocket to its `webSocketUrl`, the `ready` message, then a GET of the presigned URL
 * (hashed: the bytes must be the sample's).
 */
async function asyncTimeToLastByte(restApi: string, sample: Sample): Promise<number> {
  const started = performance.now();
  const accepted = await startAsyncDownload(`${restApi}/download/sample/${sample.name}?mode=async`);
  if (accepted.reason !== 'requested') throw new BenchError(`202 with reason ${accepted.reason}`);
  const socket = await openSocket(accepted.webSocketUrl);
  try {
    const outcome = await Promise.race([
      socket.next('ready', READY_TIMEOUT_MS),
      socket.next('failed', READY_TIMEOUT_MS).then((failed) => {
        throw new BenchError(`the download failed: ${JSON.stringify(failed)}`);
      }),
    ]);
    await downloadSample(String(outcome.url), sample);
    return performance.now() - started;
  } finally {
    await socket.close();
  }
}

/**
 * With the platform's caps applied by the local gateways (`LOCAL_STREAM_CAPS=aws`): a 50 MB file's
 * time to the last byte streamed through the router (REST API, `?mode=stream`) against the async
 * path (`?mode=async` → `ready` → presigned S3 URL), alternating, on a stack started with the caps.
 */
export async function measureCappedCrossover(stack: RunningStack, rounds: number): Promise<Row[]> {
  const sample = CAPPED_SAMPLE;
  const { restApi } = stack.endpoints;
  const streamMs: number[] = [];
  const asyncMs: number[] = [];
  log(
    `capped crossover: ${sample.name} streamed vs async, ${plural(rounds, 'round')} (LOCAL_STREAM_CAPS=aws)`,
  );
  // One async download first, untimed: the first loads the workflow's modules.
  await asyncTimeToLastByte(restApi, sample);
  for (let round = 0; round < rounds; round++) {
    for (const path of round % 2 === 0 ? ['stream', 'async'] : ['async', 'stream']) {
      const started = performance.now();
      if (path === 'stream') {
        await downloadSample(`${restApi}/download/sample/${sample.name}?mode=stream`, sample);
        streamMs.push(performance.now() - started);
      } else {
        asyncMs.push(await asyncTimeToLastByte(restApi, sample));
      }
      log(`capped ${sample.name} ${path}: ${seconds(performance.now() - started)}`);
    }
  }
  const stream = median(streamMs);
  const viaS3 = median(asyncMs);
  const { uncappedBytes, bytesPerSecond } = AWS_STREAM_CAPS.restApi;
  const caps = `first ${uncappedBytes / MB} MB at full speed, then ${bytesPerSecond / MB} MB/s`;
  return [
    {
      measure: `Time to last byte, ${sample.label} with AWS's caps: streamed through the router`,
      value: seconds(stream),
      note:
        `REST \`/download/…?mode=stream\`, LOCAL_STREAM_CAPS=aws (${caps}), median of ${rounds}; ` +
        `the platform numbers predict ${seconds(((sample.bytes - uncappedBytes) / bytesPerSecond) * 1000)} after the first ${uncappedBytes / MB} MB`,
    },
    {
      measure: `Time to last byte, ${sample.label} with AWS's caps: async path`,
      value: seconds(viaS3),
      note:
        `\`?mode=async\` → 202 → WebSocket \`ready\` → GET of the presigned S3 URL (uncapped), median of ${rounds}, ` +
        'same stack and run; hashed, right sha256',
    },
    {
      measure: `Async path vs stream, ${sample.label} with AWS's caps`,
      value: ratio(stream / viaS3),
      note:
        'streamed time ÷ async time to the last byte: above 1× the async path delivers sooner (README: ' +
        '"Choosing the router threshold", `npm run docs:crossover`)',
    },
  ];
}
