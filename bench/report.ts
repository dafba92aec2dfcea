/** What every part of the bench shares: samples, statistics, formatting, the tables, the log. */
import { parseSampleSize } from '../local/sample-upstream.ts';

export const MB = 1_000_000;
export const MiB = 1024 * 1024;

/** Progress, to stderr; the tables go to stdout. */
export const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

/** A measurement that cannot be trusted: wrong bytes, wrong status, a failed download. */
export class BenchError extends Error {
  override readonly name = 'BenchError';
}

/** A file of the sample upstream: `GET /sample/{name}` serves `bytes` deterministic bytes. */
export interface Sample {
  name: string;
  label: string;
  bytes: number;
}

/** `'190MB'` → the sample the upstream serves at `/sample/190MB`, labelled `190 MB`. */
export function toSample(name: string): Sample {
  const bytes = parseSampleSize(name);
  if (bytes === undefined || bytes === 0) throw new BenchError(`not a sample size: "${name}"`);
  return { name, label: name.replace(/^([\d.]+)/, '$1 '), bytes };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

export const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);

/** `1 run`, `2 runs`. */
export const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;
export const ratio = (value: number) => `${value.toFixed(2)}×`;
export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
export const kib = (bytes: number) => `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KiB`;
export const ms = (value: number) => `${value.toFixed(1)} ms`;
export const wholeMs = (value: number) => `${value.toFixed(0)} ms`;
export const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)} s`;
export const mbPerSecond = (bytes: number, milliseconds: number) =>
  `${(bytes / MB / (milliseconds / 1000)).toFixed(0)} MB/s`;
/** CPU milliseconds per GB (10⁹ bytes) moved. */
export const cpuPerGb = (cpuMs: number, bytes: number) => `${((cpuMs / bytes) * 1e9).toFixed(0)} ms/GB`;
/** `+1.5 ms` / `−0.3 ms` (`digits` after the point). */
export const signedMs = (value: number, digits = 1) =>
  `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(digits)} ms`;

/**
 * Ratio of two memory growths. Below 1 MiB a growth is page-level noise and no denominator, so
 * that case says what happened instead of dividing by (almost) zero.
 */
export function memoryRatio(large: number, small: number): string {
  if (small >= MiB) return ratio(large / small);
  if (large < MiB) return 'flat (both < 1 MiB)';
  return `n/a (${mib(small)} vs ${mib(large)})`;
}

/** One row of the main table. */
export interface Row {
  measure: string;
  value: string;
  note: string;
}

/** A Markdown table; `|` in cells is escaped. */
export function toTable(columns: readonly string[], align: readonly ('left' | 'right')[], rows: string[][]) {
  const toCell = (text: string) => text.replaceAll('|', '\\|');
  return [
    `| ${columns.join(' | ')} |`,
    `| ${align.map((side) => (side === 'right' ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((cells) => `| ${cells.map(toCell).join(' | ')} |`),
  ];
}

export function toRowsTable(rows: readonly Row[]): string[] {
  return toTable(
    ['measure', 'value', 'note'],
    ['left', 'right', 'left'],
    rows.map((row) => [row.measure, row.value, row.note]),
  );
}
