import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MiB, median } from './report.ts';

/** Resident memory of a process, in bytes, from `/proc/<pid>/status`. */
export interface ProcessMemory {
  /** `VmRSS`: resident now. */
  rss: number;
  /** `VmHWM`: the peak resident size since start or since the last {@link resetPeakRss}. */
  hwm: number;
}

/** Reads `VmRSS` and `VmHWM` of `pid` (Linux only). */
export function readProcessMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!match?.[1]) throw new Error(`/proc/${pid}/status has no ${field} line`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/**
 * Sets `VmHWM` back to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0), so the
 * next reading is the peak of what follows. `false` where the kernel or permissions refuse.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** What {@link watchPeakRss} saw between its start and `stop()`. */
export interface PeakRss {
  /** RSS just before the measured work. */
  before: number;
  /** Highest RSS seen: the largest sample, or `VmHWM` when it could be reset (it misses no spike). */
  peak: number;
  /** `peak − before`: what the work added at its worst. */
  growth: number;
  samples: number;
  /** Whether `peak` includes the kernel's own high-water mark. */
  usedHighWaterMark: boolean;
}

/**
 * Samples the RSS of `pid` every `intervalMs` until `stop()`. Call it right before the work to
 * measure: the reading at the start is the baseline.
 */
export function watchPeakRss(pid: number, intervalMs = 20): { stop(): PeakRss } {
  const usedHighWaterMark = resetPeakRss(pid);
  const before = readProcessMemory(pid).rss;
  let peak = before;
  let samples = 1;
  let gone = false;
  const sample = () => {
    if (gone) return;
    try {
      const { rss } = readProcessMemory(pid);
      samples += 1;
      if (rss > peak) peak = rss;
    } catch {
      // The process exited; the measured request fails on its own and says why.
      gone = true;
      clearInterval(timer);
    }
  };
  const timer = setInterval(sample, intervalMs);
  let result: PeakRss | undefined;
  return {
    // Idempotent, so a `finally` may call it again after the measured path already did.
    stop() {
      if (result) return result;
      clearInterval(timer);
      sample();
      if (usedHighWaterMark && !gone) {
        try {
          peak = Math.max(peak, readProcessMemory(pid).hwm);
        } catch {
          gone = true;
        }
      }
      result = { before, peak, growth: peak - before, samples, usedHighWaterMark };
      return result;
    },
  };
}

/** Peak RSS growth of a small and a large transfer over the same starting point. */
export interface MemorySummary {
  /** RSS of the warmed-up process just before the series. */
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
export function summarizeMemory(
  start: number,
  small: readonly PeakRss[],
  large: readonly PeakRss[],
): MemorySummary {
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

/** The RSS of `pid` once it has been idle for half a second, before a series. */
export async function settledRss(pid: number): Promise<number> {
  await sleep(500);
  return readProcessMemory(pid).rss;
}

/** `0.9–19.1 MiB`: the spread of the naive per-run measure (peak − RSS just before that run). */
export function ownStartSpread(runs: readonly PeakRss[]): string {
  const growths = runs.map((run) => run.growth / MiB);
  return `${Math.min(...growths).toFixed(1)}–${Math.max(...growths).toFixed(1)} MiB`;
}
