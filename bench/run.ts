/**
 * `npm run bench`: starts the local stack once and measures, each against a baseline measured in
 * the same run: the streaming routes against the direct download and a bare one-hop proxy
 * (throughput, CPU per GB, time to first byte, memory), the async path against a plain lib-storage
 * `Upload`, and every function's bundle size and cold start under the real runtime client against
 * an empty handler. Prints Markdown tables (also written to `bench/results.md`); progress goes to
 * stderr. Fails, writing nothing, if any download has the wrong bytes. `bench/README.md` explains
 * every row and the `BENCH_*` variables (`BENCH_QUICK=1` for a short check of the bench itself).
 */
import { writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, loadavg, platform, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sampleSha256 } from '../local/sample-upstream.ts';
import { ENV } from '../shared/env-names.ts';
import { localClients } from '../test/helpers/aws.ts';
import { type RunningStack, startStack } from '../test/helpers/local-stack.ts';
import { measureAsyncPath, PART_SIZE_BYTES, QUEUE_SIZE } from './async-path.ts';
import { type BareProxy, startBareProxy } from './bare-proxy-process.ts';
import { measureColdStarts } from './cold-start.ts';
import { CPU_TICK_MS, childPidsMatching } from './process-cpu.ts';
import { BenchError, log, type Row, seconds, toRowsTable } from './report.ts';
import { type BenchSettings, describeBenchVariables, loadBenchSettings } from './settings.ts';
import { measureCappedCrossover, measureStreaming } from './streaming.ts';

const RESULTS_FILE = fileURLToPath(new URL('results.md', import.meta.url));

const loadAverage = () => (loadavg()[0] ?? 0).toFixed(2);

function pidOf(stack: RunningStack): number {
  const pid = stack.process.pid;
  if (pid === undefined) throw new BenchError('the stack process has no pid');
  return pid;
}

/** How long each part of the run took, for the header: `stack start 9.8 s, stream 61.2 s`. */
const durations: string[] = [];
async function timed<T>(part: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  durations.push(`${part} ${seconds(performance.now() - started)}`);
  return result;
}

/** The stream and async sections, around one local stack (and, for streaming, the bare proxy). */
async function measureOnStack(settings: BenchSettings): Promise<{ rows: Row[]; usedHighWaterMark: boolean }> {
  log('starting the local stack');
  const stack = await timed('stack start', () =>
    startStack({
      [ENV.uploadPartSizeBytes]: String(PART_SIZE_BYTES),
      [ENV.uploadQueueSize]: String(QUEUE_SIZE),
      // The deployed default (the tests run at WARN): the async rows time the workflow's steps by
      // the functions' log lines.
      POWERTOOLS_LOG_LEVEL: 'INFO',
    }),
  );
  const aws = localClients(stack.endpoints);
  let proxy: BareProxy | undefined;
  try {
    const stackPid = pidOf(stack);
    const rows: Row[] = [];
    let usedHighWaterMark = true;
    if (settings.sections.has('stream')) {
      proxy = await startBareProxy(stack.endpoints.upstream, log);
      const upstreamPid = childPidsMatching(stackPid, 'sample-upstream.ts')[0];
      if (upstreamPid === undefined)
        log('warning: no sample upstream process found; its CPU is not reported');
      const targets = { stack, stackPid, proxy, upstreamPid };
      const streaming = await timed('stream', () => measureStreaming(targets, settings));
      rows.push(...streaming.rows);
      usedHighWaterMark &&= streaming.usedHighWaterMark;
    }
    if (settings.sections.has('async')) {
      const asyncPath = await timed('async', () => measureAsyncPath(stack, stackPid, aws.s3, settings));
      rows.push(...asyncPath.rows);
      usedHighWaterMark &&= asyncPath.usedHighWaterMark;
    }
    return { rows, usedHighWaterMark };
  } catch (error) {
    log(`stack logs (tail):\n${stack.logs().slice(-4000)}`);
    throw error;
  } finally {
    aws.close();
    await proxy?.close();
    await stack.stop();
  }
}

/**
 * The capped comparison, on a stack of its own started with `LOCAL_STREAM_CAPS=aws`: a 50 MB file
 * streamed through the router against the async path, both with the platform's caps.
 */
async function measureCappedStack(settings: BenchSettings): Promise<Row[]> {
  log('starting a local stack with LOCAL_STREAM_CAPS=aws');
  const stack = await timed('capped stack start', () => startStack({ LOCAL_STREAM_CAPS: 'aws' }));
  try {
    return await timed('capped', () => measureCappedCrossover(stack, settings.asyncRounds));
  } catch (error) {
    log(`stack logs (tail):\n${stack.logs().slice(-4000)}`);
    throw error;
  } finally {
    await stack.stop();
  }
}

async function main(): Promise<void> {
  const benchStarted = performance.now();
  // As `local/main.ts` does: the SDK's notice that its 2027 releases need Node 22, once per client.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const date = new Date().toISOString();
  const settings = loadBenchSettings();
  const loadAtStart = loadAverage();
  if (Number(loadAtStart) > availableParallelism() / 2) {
    log(
      `warning: the machine is busy (load ${loadAtStart} on ${availableParallelism()} CPUs); expect noisy ratios`,
    );
  }
  if (platform() !== 'linux') throw new BenchError('the bench reads /proc/<pid>/{stat,status}: run on Linux');
  if (settings.quick) log('BENCH_QUICK=1: a short run to check the bench, not numbers to quote');

  log('hashing the expected samples');
  const samples = [settings.streamSmall, settings.streamLarge, settings.asyncSmall, settings.asyncLarge];
  if (settings.sections.has('async')) samples.push(settings.asyncHuge);
  for (const sample of samples) sampleSha256(sample.bytes);

  const onStack =
    settings.sections.has('stream') || settings.sections.has('async')
      ? await measureOnStack(settings)
      : undefined;
  const capped = settings.sections.has('capped') ? await measureCappedStack(settings) : undefined;
  // After the stack is gone: its emulators would share the CPU with the runtime processes.
  const coldStarts = settings.sections.has('cold-start')
    ? await timed('cold-start', () => measureColdStarts(settings.coldStartRounds))
    : undefined;

  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const header = [
    '# Benchmark results',
    '',
    `- Date: ${date}`,
    `- Node: ${process.version} (${platform()} ${arch()})`,
    `- CPUs: ${availableParallelism()} × ${cpu}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM`,
    `- Command: \`${process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'npx tsx bench/run.ts'}\`; ` +
      `variables: ${describeBenchVariables()}${settings.quick ? ' (a quick run: not numbers to quote)' : ''}`,
    `- Duration: ${seconds(performance.now() - benchStarted)} (${durations.join(', ')}); the stack, its emulators, the sample upstream, the ` +
      `bare proxy and this client share the machine (1-minute load average ${loadAtStart} at the start, ` +
      `${loadAverage()} at the end)`,
  ];
  if (onStack) {
    const peakSource = onStack.usedHighWaterMark
      ? '`VmHWM` after resetting it, and `VmRSS` sampled every 20 ms'
      : '`VmRSS` sampled every 20 ms; `VmHWM` could not be reset here';
    header.push(
      `- CPU: user + system time of each process from \`/proc/<pid>/stat\` (${CPU_TICK_MS} ms ticks), read ` +
        'just before and after each timed download and summed over them',
      `- Memory: peak RSS of the stack process (${peakSource}) over its RSS before the series, ` +
        'after the warm-ups; memory kept from one transfer to the next counts as growth',
    );
  }
  if (coldStarts) {
    header.push(
      `- Cold starts: ${coldStarts.runtime}; each a fresh runtime process with the deployed memory size and ` +
        `\`NODE_OPTIONS=--enable-source-maps\` as deployed (the last column without it); medians of ${settings.coldStartRounds}`,
    );
  }
  const sections: string[] = [...header, ''];
  if (onStack) sections.push('## Streaming and async paths', '', ...toRowsTable(onStack.rows), '');
  if (capped) sections.push("## With AWS's streaming caps", '', ...toRowsTable(capped), '');
  if (coldStarts) sections.push('## Bundles and cold starts', '', ...coldStarts.table, '');
  const markdown = sections.join('\n');
  writeFileSync(RESULTS_FILE, markdown);
  process.stdout.write(markdown);
}

try {
  await main();
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
}
