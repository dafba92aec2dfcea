/**
 * The cold-start section: every function of `FUNCTION_FOLDERS` bundled as CDK bundles it, its
 * bundle's size, and the cold start of a fresh runtime process under the real Lambda runtime client
 * (`aws-lambda-ric` on Node 24), against an empty handler bundled and started the same way.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { App } from 'aws-cdk-lib';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { build } from 'esbuild';
import { DownloadStack } from '../infra/download-stack.ts';
import {
  DownloadFunction,
  FUNCTION_BUNDLING,
  FUNCTION_FOLDERS,
  type FunctionFolder,
} from '../infra/functions.ts';
import { readCdkJsonContext } from '../infra/local-definition.ts';
import { bundleFunction, DEFAULT_BUNDLE_CACHE_DIR, toEsbuildOptions } from '../local/bundle.ts';
import { ricAvailability, startRicFunction } from '../local/ric-runtime.ts';
import { ENV } from '../shared/env-names.ts';
import { BenchError, kib, log, median, signedMs, toTable, wholeMs } from './report.ts';

const EMPTY_HANDLER_ENTRY = fileURLToPath(new URL('./empty-handler.ts', import.meta.url));
const EMPTY_HANDLER_DIR = path.join(DEFAULT_BUNDLE_CACHE_DIR, '..', 'bench', 'empty-handler');
const EMPTY = 'empty handler';
/** Every function tolerates this event: it fails fast (on its missing settings or the event) or answers. */
const TRIVIAL_EVENT = {};
const INVOCATION_TIMEOUT_MS = 30_000;
/** Lambda's default, for the empty handler (and a function the stack does not deploy). */
const DEFAULT_MEMORY_MB = 128;
const REGION = 'us-east-1';

/**
 * Source maps as deployed (`NODE_OPTIONS=--enable-source-maps`), or without that flag: the second
 * shows what the flag costs, at init (Node reads the bundle's source map as it loads the bundle)
 * and at the first error (it decodes the map to format the stack trace).
 */
type SourceMaps = 'on' | 'off';
const SOURCE_MAPS: readonly SourceMaps[] = ['on', 'off'];
const SOURCE_MAPS_FLAG = '--enable-source-maps';

function withSourceMaps(environment: Record<string, string>, sourceMaps: SourceMaps): Record<string, string> {
  const flags = (environment.NODE_OPTIONS ?? '')
    .split(/\s+/)
    .filter((flag) => flag !== '' && flag !== SOURCE_MAPS_FLAG);
  if (sourceMaps === 'on') flags.push(SOURCE_MAPS_FLAG);
  const { NODE_OPTIONS: _dropped, ...others } = environment;
  return flags.length > 0 ? { ...others, NODE_OPTIONS: flags.join(' ') } : others;
}

/** What the deployed function gets, for the runtime's Node flags (memory) and its environment. */
interface DeployedSettings {
  memoryMb: number;
  /** The deployed variables, less the function's own settings (`ENV`): `NODE_OPTIONS`, Powertools'. */
  environment: Record<string, string>;
}

/**
 * Synthesizes the real `DownloadStack` (bundling skipped) and reads each function's memory size
 * and environment from it. The function's own settings are left out on purpose: without them its
 * first invocation fails on its configuration (or on the empty event) before any network call, so
 * it measures the runtime and the code's loading, not an unreachable AWS endpoint.
 */
function deployedSettings(): Map<FunctionFolder, DeployedSettings> {
  const outdir = mkdtempSync(path.join(tmpdir(), 'large-downloads-bench-'));
  try {
    const app = new App({ outdir, context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const stack = new DownloadStack(app, 'BenchColdStartStack');
    const settingNames = new Set<string>(Object.values(ENV));
    const result = new Map<FunctionFolder, DeployedSettings>();
    for (const construct of stack.node.findAll()) {
      if (!(construct instanceof DownloadFunction)) continue;
      const cfn = construct.node.defaultChild as CfnFunction;
      const memory = stack.resolve(cfn.memorySize) as unknown;
      const resolved = stack.resolve(cfn.environment) as { variables?: Record<string, unknown> } | undefined;
      const environment: Record<string, string> = {};
      for (const [name, value] of Object.entries(resolved?.variables ?? {}))
        if (typeof value === 'string' && !settingNames.has(name)) environment[name] = value;
      result.set(construct.folder, {
        memoryMb: typeof memory === 'number' ? memory : DEFAULT_MEMORY_MB,
        environment,
      });
    }
    return result;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** One thing to cold-start: a function, or the empty handler. */
interface Target {
  name: string;
  dir: string;
  memoryMb: number;
  environment: Record<string, string>;
  indexBytes: number;
  gzipBytes: number;
  mapBytes: number;
}

function sizes(dir: string): Pick<Target, 'indexBytes' | 'gzipBytes' | 'mapBytes'> {
  const index = readFileSync(path.join(dir, 'index.mjs'));
  const map = path.join(dir, 'index.mjs.map');
  return {
    indexBytes: index.length,
    gzipBytes: gzipSync(index).length,
    mapBytes: statSync(map, { throwIfNoEntry: false })?.size ?? 0,
  };
}

/** The empty handler, bundled with the functions' esbuild options (a build takes milliseconds). */
async function bundleEmptyHandler(): Promise<string> {
  rmSync(EMPTY_HANDLER_DIR, { recursive: true, force: true });
  await build(toEsbuildOptions(FUNCTION_BUNDLING, EMPTY_HANDLER_ENTRY, EMPTY_HANDLER_DIR));
  return EMPTY_HANDLER_DIR;
}

async function prepareTargets(): Promise<Target[]> {
  const deployed = deployedSettings();
  const emptyDir = await bundleEmptyHandler();
  const targets: Target[] = [
    {
      name: EMPTY,
      dir: emptyDir,
      memoryMb: DEFAULT_MEMORY_MB,
      environment: { NODE_OPTIONS: SOURCE_MAPS_FLAG },
      ...sizes(emptyDir),
    },
  ];
  for (const folder of FUNCTION_FOLDERS) {
    const started = performance.now();
    const bundle = await bundleFunction(folder);
    log(
      `bundle ${folder}: ${bundle.cached ? 'unchanged, reused' : `built in ${wholeMs(performance.now() - started)}`}`,
    );
    const settings = deployed.get(folder);
    if (!settings) log(`warning: ${folder} is not in DownloadStack; cold-started with Lambda's defaults`);
    targets.push({
      name: folder,
      dir: bundle.dir,
      memoryMb: settings?.memoryMb ?? DEFAULT_MEMORY_MB,
      environment: settings?.environment ?? { NODE_OPTIONS: SOURCE_MAPS_FLAG },
      ...sizes(bundle.dir),
    });
  }
  return targets;
}

interface ColdStart {
  /** Spawn of the runtime process → its first `GET /next`: Lambda's `Init Duration`. */
  initMs: number;
  /** `invoke()` (which spawns the process) → the first invocation's outcome. */
  firstInvocationMs: number;
  /** `ok`, or the error type the first invocation ended with. */
  outcome: string;
}

/** Starts a fresh runtime process for `target`, invokes it once with the trivial event, stops it. */
async function coldStart(target: Target, sourceMaps: SourceMaps): Promise<ColdStart> {
  let initMs: number | undefined;
  const lines: string[] = [];
  const fn = await startRicFunction({
    name: target.name.replaceAll(' ', '-'),
    folder: { dir: target.dir },
    environment: { ...withSourceMaps(target.environment, sourceMaps), AWS_REGION: REGION },
    timeoutMs: INVOCATION_TIMEOUT_MS,
    memoryMb: target.memoryMb,
    log: (line) => lines.push(line),
    onInit: (init) => {
      initMs ??= init.initMs;
    },
  });
  try {
    const started = performance.now();
    const invocation = fn.invoke(TRIVIAL_EVENT);
    (await invocation.response)?.body.resume();
    const outcome = await invocation.outcome;
    const firstInvocationMs = performance.now() - started;
    if (initMs === undefined || (!outcome.ok && outcome.crashed)) {
      throw new BenchError(
        `${target.name} did not start: ${JSON.stringify(outcome)}\n${lines.slice(-20).join('\n')}`,
      );
    }
    return { initMs, firstInvocationMs, outcome: outcome.ok ? 'ok' : outcome.errorType };
  } finally {
    await fn.close();
  }
}

/** What the cold-start section found: its table, and what ran it. */
export interface ColdStartSection {
  table: string[];
  runtime: string;
}

/**
 * Bundles every function, then `rounds` rounds of one cold start per target with source maps on
 * and one with them off, the order rotated each round so that none always runs first or last (the
 * machine's load drifts).
 */
export async function measureColdStarts(rounds: number): Promise<ColdStartSection> {
  const availability = ricAvailability();
  if (!availability.ok) {
    throw new BenchError(
      `cold starts need the real runtime client: ${availability.reason} (or leave out cold-start with BENCH_SECTIONS)`,
    );
  }
  const ric = JSON.parse(readFileSync(path.join(path.dirname(availability.ric), 'package.json'), 'utf8')) as {
    version: string;
  };
  const nodeVersion = execFileSync(availability.node, ['--version'], { encoding: 'utf8' }).trim();
  const runtime = `aws-lambda-ric ${ric.version} on Node ${nodeVersion}`;

  log('cold starts: bundling every function as CDK does');
  const targets = await prepareTargets();
  const runs = targets.flatMap((target) => SOURCE_MAPS.map((sourceMaps) => ({ target, sourceMaps })));
  const keyOf = (target: Target, sourceMaps: SourceMaps) => `${target.name}, source maps ${sourceMaps}`;
  const results = new Map<string, ColdStart[]>(runs.map((run) => [keyOf(run.target, run.sourceMaps), []]));
  log(`cold starts: ${rounds} rounds of ${runs.length} fresh runtime processes (${runtime})`);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < runs.length; i++) {
      const run = runs[(i + round) % runs.length] as (typeof runs)[number];
      await sleep(100); // let the previous runtime's exit settle
      const result = await coldStart(run.target, run.sourceMaps);
      results.get(keyOf(run.target, run.sourceMaps))?.push(result);
      log(
        `cold start ${keyOf(run.target, run.sourceMaps)}: init ${wholeMs(result.initMs)}, ` +
          `first invocation ${wholeMs(result.firstInvocationMs)} (${result.outcome})`,
      );
    }
  }

  const resultsOf = (target: Target, sourceMaps: SourceMaps) => results.get(keyOf(target, sourceMaps)) ?? [];
  const initOf = (target: Target, sourceMaps: SourceMaps = 'on') =>
    median(resultsOf(target, sourceMaps).map((run) => run.initMs));
  const firstOf = (target: Target, sourceMaps: SourceMaps = 'on') =>
    median(resultsOf(target, sourceMaps).map((run) => run.firstInvocationMs));
  const emptyInit = initOf(targets[0] as Target);
  const rows = targets.map((target) => {
    const outcomes = [...new Set(resultsOf(target, 'on').map((run) => run.outcome))].join(', ');
    return [
      target.name === EMPTY ? 'empty handler (baseline)' : `\`${target.name}\``,
      `${target.memoryMb} MB`,
      target.indexBytes.toLocaleString('en-US'),
      kib(target.gzipBytes),
      kib(target.mapBytes),
      wholeMs(initOf(target)),
      target.name === EMPTY ? '—' : signedMs(initOf(target) - emptyInit, 0),
      `${wholeMs(firstOf(target))} (${outcomes})`,
      `${wholeMs(initOf(target, 'off'))} / ${wholeMs(firstOf(target, 'off'))}`,
    ];
  });
  const table = toTable(
    [
      'function',
      'memory',
      '`index.mjs` (minified), bytes',
      'gzip',
      'source map',
      'init: spawn → first `/next`',
      'init over empty',
      'spawn → first invocation done',
      'without source maps: init / first invocation',
    ],
    ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    rows,
  );
  return { table, runtime };
}
