/**
 * The functions' structured log lines, read from the local stack's stdout: Powertools Logger
 * writes one JSON object per line (INFO and below to stdout), each with its `timestamp`. The async
 * rows take the lines of one download by its `downloadId` field to time the workflow's steps.
 */
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError } from './report.ts';

/** One log line of one download. */
export interface StackLogLine {
  message: string;
  /** The line's `timestamp`, epoch ms (the same clock as this process's `Date.now()`). */
  at: number;
  /** Everything else the line carries (`service`, `downloadId`, the step's own fields). */
  fields: Record<string, unknown>;
}

export interface StackLog {
  /**
   * Waits until a line of `downloadId` says `until` (rejects after `timeoutMs`), then hands over
   * every line of that download seen so far and ignores its later ones.
   */
  take(downloadId: string, until: string, timeoutMs?: number): Promise<StackLogLine[]>;
  /** Stops reading; the stream keeps flowing for its other readers. */
  close(): void;
}

/** Longer lines are not log lines of interest (and are dropped rather than kept whole). */
const MAX_LINE_CHARS = 256 * 1024;

/**
 * Reads `stdout` alongside whoever else does (`startStack` waits for its ready line there), with a
 * `data` listener of its own: a second readline interface would pause the stream when closed, and
 * a paused pipe would block the stack's writes.
 */
export function watchStackLog(stdout: Readable): StackLog {
  const byDownload = new Map<string, StackLogLine[]>();
  const taken = new Set<string>();
  const decoder = new StringDecoder('utf8');
  let pending = '';

  const record = (line: string) => {
    if (!line.startsWith('{') || !line.includes('"downloadId"')) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { message, timestamp, downloadId, ...fields } = parsed as Record<string, unknown>;
    if (typeof message !== 'string' || typeof timestamp !== 'string' || typeof downloadId !== 'string')
      return;
    const at = Date.parse(timestamp);
    if (Number.isNaN(at) || taken.has(downloadId)) return;
    const lines = byDownload.get(downloadId) ?? [];
    lines.push({ message, at, fields: { downloadId, ...fields } });
    byDownload.set(downloadId, lines);
  };
  const onData = (chunk: Buffer) => {
    const parts = (pending + decoder.write(chunk)).split('\n');
    pending = parts.pop() ?? '';
    if (pending.length > MAX_LINE_CHARS) pending = '';
    for (const line of parts) record(line);
  };
  stdout.on('data', onData);

  return {
    async take(downloadId, until, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (!byDownload.get(downloadId)?.some((line) => line.message === until)) {
        if (Date.now() > deadline) {
          const seen = (byDownload.get(downloadId) ?? []).map((line) => line.message);
          throw new BenchError(
            `no "${until}" log line of download ${downloadId} in ${timeoutMs} ms (seen: ${JSON.stringify(seen)}); ` +
              'the bench needs the stack at POWERTOOLS_LOG_LEVEL=INFO',
          );
        }
        await sleep(10);
      }
      const lines = byDownload.get(downloadId) ?? [];
      byDownload.delete(downloadId);
      taken.add(downloadId);
      return lines;
    },
    close() {
      stdout.off('data', onData);
      byDownload.clear();
    },
  };
}
