/**
 * What one run measures, and how often: the defaults of a full run, those of `BENCH_QUICK=1`, and
 * one `BENCH_*` variable per setting over either. Read once, at start; a bad value stops the run.
 */
import { DEFAULT_STREAM_MAX_BYTES } from '../shared/config.ts';
import { SETTINGS as PRODUCT_SETTINGS } from '../shared/settings.ts';
import { BenchError, type Sample, toSample } from './report.ts';

/** The parts of a run; `BENCH_SECTIONS` picks some (all by default). */
export const BENCH_SECTIONS = ['stream', 'async', 'capped', 'cold-start'] as const;
export type BenchSection = (typeof BENCH_SECTIONS)[number];

export interface BenchSettings {
  /** `BENCH_QUICK=1`: fewer rounds and smaller async files, for checking the bench, not for quoting. */
  quick: boolean;
  sections: ReadonlySet<BenchSection>;
  /** Size of the throughput, CPU and large-memory downloads; must fit `STREAM_MAX_BYTES`. */
  streamLarge: Sample;
  streamSmall: Sample;
  /**
   * Untimed downloads of the large sample per route before the timed ones (after the hashed one):
   * a fresh path needs about 1 GB before its CPU per GB settles (V8 optimising, heap sizing).
   */
  warmUpRounds: number;
  /** Timed downloads per route for throughput and CPU. */
  streamRounds: number;
  /** Requests per route for the time to first byte (1 MB each, so many rounds cost little). */
  firstByteRounds: number;
  /** REST downloads of each stream size for the memory rows. */
  memoryRounds: number;
  asyncLarge: Sample;
  asyncSmall: Sample;
  /** One async download of this size after the series, for the parallel copy's memory against `asyncLarge`'s. */
  asyncHuge: Sample;
  /** Async downloads of each size, and plain uploads, after one warm-up. */
  asyncRounds: number;
  /** Fresh runtime processes started per function (and for the empty handler). */
  coldStartRounds: number;
}

/** Variable names, each with its full and its quick default. */
const SETTINGS = {
  streamLarge: { variable: 'BENCH_STREAM_SIZE', full: '190MB', quick: '190MB' },
  streamSmall: { variable: 'BENCH_STREAM_SMALL_SIZE', full: '20MB', quick: '20MB' },
  warmUpRounds: { variable: 'BENCH_WARM_UP_ROUNDS', full: 6, quick: 6 },
  streamRounds: { variable: 'BENCH_STREAM_ROUNDS', full: 11, quick: 3 },
  firstByteRounds: { variable: 'BENCH_FIRST_BYTE_ROUNDS', full: 21, quick: 7 },
  memoryRounds: { variable: 'BENCH_MEMORY_ROUNDS', full: 7, quick: 2 },
  asyncLarge: { variable: 'BENCH_ASYNC_SIZE', full: '1GB', quick: '500MB' },
  asyncSmall: { variable: 'BENCH_ASYNC_SMALL_SIZE', full: '250MB', quick: '250MB' },
  asyncHuge: { variable: 'BENCH_ASYNC_HUGE_SIZE', full: '4GB', quick: '1GB' },
  asyncRounds: { variable: 'BENCH_ASYNC_ROUNDS', full: 2, quick: 1 },
  coldStartRounds: { variable: 'BENCH_COLD_START_ROUNDS', full: 7, quick: 2 },
} as const;

export const QUICK_VARIABLE = 'BENCH_QUICK';
export const SECTIONS_VARIABLE = 'BENCH_SECTIONS';

function rounds(env: NodeJS.ProcessEnv, name: keyof typeof SETTINGS, quick: boolean): number {
  const setting = SETTINGS[name];
  const raw = env[setting.variable];
  const fallback = Number(quick ? setting.quick : setting.full);
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new BenchError(`${setting.variable} must be a whole number from 1 to 1000, got "${raw}"`);
  }
  return value;
}

function sample(env: NodeJS.ProcessEnv, name: keyof typeof SETTINGS, quick: boolean): Sample {
  const setting = SETTINGS[name];
  const raw = env[setting.variable];
  return toSample(raw === undefined || raw === '' ? String(quick ? setting.quick : setting.full) : raw);
}

function sections(env: NodeJS.ProcessEnv): Set<BenchSection> {
  const raw = env[SECTIONS_VARIABLE];
  if (raw === undefined || raw.trim() === '') return new Set(BENCH_SECTIONS);
  const chosen = new Set<BenchSection>();
  for (const part of raw.split(',').map((item) => item.trim())) {
    if (!(BENCH_SECTIONS as readonly string[]).includes(part)) {
      throw new BenchError(
        `${SECTIONS_VARIABLE} takes ${BENCH_SECTIONS.join(', ')} (comma-separated), got "${part}"`,
      );
    }
    chosen.add(part as BenchSection);
  }
  return chosen;
}

export function loadBenchSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const quick = env[QUICK_VARIABLE] === '1';
  const settings: BenchSettings = {
    quick,
    sections: sections(env),
    streamLarge: sample(env, 'streamLarge', quick),
    streamSmall: sample(env, 'streamSmall', quick),
    warmUpRounds: rounds(env, 'warmUpRounds', quick),
    streamRounds: rounds(env, 'streamRounds', quick),
    firstByteRounds: rounds(env, 'firstByteRounds', quick),
    memoryRounds: rounds(env, 'memoryRounds', quick),
    asyncLarge: sample(env, 'asyncLarge', quick),
    asyncSmall: sample(env, 'asyncSmall', quick),
    asyncHuge: sample(env, 'asyncHuge', quick),
    asyncRounds: rounds(env, 'asyncRounds', quick),
    coldStartRounds: rounds(env, 'coldStartRounds', quick),
  };
  if (settings.streamLarge.bytes > DEFAULT_STREAM_MAX_BYTES)
    throw new BenchError(
      `${SETTINGS.streamLarge.variable} must fit STREAM_MAX_BYTES (${DEFAULT_STREAM_MAX_BYTES} bytes)`,
    );
  // The router sends a file it can stream down the streaming path, not the async one.
  if (settings.asyncSmall.bytes <= DEFAULT_STREAM_MAX_BYTES)
    throw new BenchError(
      `${SETTINGS.asyncSmall.variable} must exceed STREAM_MAX_BYTES (${DEFAULT_STREAM_MAX_BYTES} bytes)`,
    );
  if (settings.streamSmall.bytes >= settings.streamLarge.bytes)
    throw new BenchError('the small stream sample must be smaller than the large one');
  if (settings.asyncSmall.bytes >= settings.asyncLarge.bytes)
    throw new BenchError('the small async sample must be smaller than the large one');
  if (settings.asyncLarge.bytes >= settings.asyncHuge.bytes)
    throw new BenchError(
      `${SETTINGS.asyncHuge.variable} must be larger than ${SETTINGS.asyncLarge.variable}`,
    );
  // The phase and parallel-copy rows read the parallel copy's log lines.
  const parallelMin = PRODUCT_SETTINGS.parallelCopyMinBytes.default;
  if (settings.asyncLarge.bytes < parallelMin)
    throw new BenchError(
      `${SETTINGS.asyncLarge.variable} must reach parallelCopyMinBytes (${parallelMin} bytes): its rows measure the parallel copy`,
    );
  return settings;
}

/** `BENCH_QUICK=1 BENCH_STREAM_ROUNDS=5`: the variables this run was given, for the header. */
export function describeBenchVariables(env: NodeJS.ProcessEnv = process.env): string {
  const names = [
    QUICK_VARIABLE,
    SECTIONS_VARIABLE,
    ...Object.values(SETTINGS).map((setting) => setting.variable),
  ];
  const given = names.filter((name) => env[name] !== undefined && env[name] !== '');
  return given.length === 0 ? 'none (a full run)' : given.map((name) => `${name}=${env[name]}`).join(' ');
}
