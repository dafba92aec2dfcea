import { Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The throughput cap AWS puts on one streamed response: the first `uncappedBytes` at full speed,
 * then at most `bytesPerSecond`.
 */
export interface StreamCap {
  uncappedBytes: number;
  bytesPerSecond: number;
}

/**
 * The platform's caps, as AWS documents them ("the first 6 MB … then 2 MBps" for Lambda response
 * streaming, "the first 10 MB … then 2 MB/s" for API Gateway REST `STREAM`), read in decimal
 * megabytes, the stricter reading. The README's crossover table (`npm run docs:crossover`) and
 * `LOCAL_STREAM_CAPS=aws` both use these numbers.
 */
export const AWS_STREAM_CAPS = {
  /** A Function URL in `RESPONSE_STREAM` mode (Lambda's own cap). */
  functionUrl: { uncappedBytes: 6_000_000, bytesPerSecond: 2_000_000 },
  /** API Gateway REST with `responseTransferMode: STREAM`. */
  restApi: { uncappedBytes: 10_000_000, bytesPerSecond: 2_000_000 },
} as const satisfies Record<string, StreamCap>;

/** `LOCAL_STREAM_CAPS`: `off` (default) or `aws` (the local gateways apply `AWS_STREAM_CAPS`). */
export const LOCAL_STREAM_CAPS_MODES = ['off', 'aws'] as const;
export type LocalStreamCaps = (typeof LOCAL_STREAM_CAPS_MODES)[number];

/** `LOCAL_STREAM_CAPS` from the environment (unset or empty: `off`); undefined for a value it does not know. */
export function parseLocalStreamCaps(raw: string | undefined): LocalStreamCaps | undefined {
  const value = raw?.trim() || 'off';
  return (LOCAL_STREAM_CAPS_MODES as readonly string[]).includes(value)
    ? (value as LocalStreamCaps)
    : undefined;
}

/** Largest piece released at once past the uncapped prefix: 64 KiB is 33 ms at 2 MB/s, so the rate stays smooth. */
const SLICE_BYTES = 64 * 1024;

/** The clock the throttle reads and waits on; tests pass one that only pretends to wait. */
export interface ThrottleClock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

const REAL_CLOCK: ThrottleClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

/**
 * A pass-through stream that lets the first `cap.uncappedBytes` through at once and then releases
 * bytes no faster than `cap.bytesPerSecond`, counted from the moment the uncapped prefix was used
 * up: byte `uncappedBytes + n` leaves no earlier than `n / bytesPerSecond` seconds after that. It
 * holds at most one incoming chunk, so backpressure reaches the writer as it would through a slow
 * network. Bytes are passed on unchanged.
 */
export function createStreamThrottle(cap: StreamCap, clock: ThrottleClock = REAL_CLOCK): Transform {
  const stopped = new AbortController();
  let sent = 0;
  let cappedSince: number | undefined;

  async function release(stream: Transform, chunk: Buffer): Promise<void> {
    let offset = Math.min(chunk.length, Math.max(0, cap.uncappedBytes - sent));
    if (offset > 0) {
      stream.push(chunk.subarray(0, offset));
      sent += offset;
    }
    while (offset < chunk.length) {
      cappedSince ??= clock.now();
      const slice = chunk.subarray(offset, offset + SLICE_BYTES);
      const due = cappedSince + ((sent - cap.uncappedBytes + slice.length) / cap.bytesPerSecond) * 1000;
      const wait = due - clock.now();
      if (wait > 0) await clock.sleep(wait, stopped.signal);
      if (stream.destroyed) return;
      stream.push(slice);
      sent += slice.length;
      offset += slice.length;
    }
  }

  return new Transform({
    transform(this: Transform, chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      release(this, chunk).then(
        () => callback(),
        (error: unknown) => {
          // Destroyed while waiting: the stream is gone, nobody reads the outcome.
          if (!this.destroyed) callback(error as Error);
        },
      );
    },
    destroy(error, callback) {
      stopped.abort();
      callback(error);
    },
  });
}
