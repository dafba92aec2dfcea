import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  AWS_STREAM_CAPS,
  createStreamThrottle,
  parseLocalStreamCaps,
  type ThrottleClock,
} from '../../local/stream-caps.ts';

/** A clock whose `sleep` only moves the time on; records every wait and the signal it got. */
function fakeClock() {
  let time = 1_000;
  const waits: number[] = [];
  const signals: AbortSignal[] = [];
  const clock: ThrottleClock = {
    now: () => time,
    sleep: async (ms, signal) => {
      waits.push(ms);
      signals.push(signal);
      time += ms;
    },
  };
  return { clock, waits, signals, now: () => time };
}

/** Pushes `data` through a throttle in `chunkBytes` pieces; each piece out with the clock's time. */
async function throttle(
  data: Buffer,
  chunkBytes: number,
  cap: { uncappedBytes: number; bytesPerSecond: number },
  clock: ReturnType<typeof fakeClock>,
) {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += chunkBytes)
    chunks.push(data.subarray(offset, offset + chunkBytes));
  const out: { bytes: number; at: number; chunk: Buffer }[] = [];
  const stream = Readable.from(chunks).pipe(createStreamThrottle(cap, clock.clock));
  // 'data' events, one per piece the throttle releases (an async iterator would join pieces).
  stream.on('data', (chunk: Buffer) => out.push({ bytes: chunk.length, at: clock.now(), chunk }));
  await finished(stream);
  return out;
}

describe('createStreamThrottle', () => {
  const cap = { uncappedBytes: 1_000_000, bytesPerSecond: 500_000 };

  it('passes the uncapped prefix at once and the rest no faster than the rate, bytes unchanged', async () => {
    const data = randomBytes(3_000_000);
    const clock = fakeClock();
    const start = clock.now();

    const out = await throttle(data, 100_000, cap, clock);

    expect(Buffer.concat(out.map((piece) => piece.chunk)).equals(data)).toBe(true);
    let seen = 0;
    for (const piece of out) {
      seen += piece.bytes;
      const capped = seen - cap.uncappedBytes;
      if (capped <= 0) expect(piece.at).toBe(start);
      // Never ahead of the rate, counted from the end of the prefix.
      else expect(capped).toBeLessThanOrEqual(((piece.at - start) / 1000) * cap.bytesPerSecond + 1e-6);
    }
    // 2 MB past the prefix at 0.5 MB/s: 4 s, and not more.
    expect(clock.now() - start).toBeCloseTo(4_000, 6);
  });

  it('never releases more than 64 KiB at once past the prefix, so the rate is smooth', async () => {
    const clock = fakeClock();

    const out = await throttle(randomBytes(2_000_000), 1_000_000, cap, clock);

    const capped = out.filter((piece) => piece.at > 1_000);
    expect(capped.length).toBeGreaterThan(10);
    for (const piece of capped) expect(piece.bytes).toBeLessThanOrEqual(64 * 1024);
  });

  it('does not wait at all for a body within the prefix', async () => {
    const clock = fakeClock();

    const out = await throttle(randomBytes(cap.uncappedBytes), 65_536, cap, clock);

    expect(out.reduce((total, piece) => total + piece.bytes, 0)).toBe(cap.uncappedBytes);
    expect(clock.waits).toEqual([]);
  });

  it('splits a chunk that straddles the end of the prefix', async () => {
    const clock = fakeClock();

    const out = await throttle(randomBytes(1_200_000), 1_200_000, cap, clock);

    expect(out[0]).toMatchObject({ bytes: cap.uncappedBytes, at: 1_000 });
    expect(clock.now() - 1_000).toBeCloseTo(400, 6); // 200 kB at 0.5 MB/s
  });

  it('stops waiting when destroyed', async () => {
    let release: (() => void) | undefined;
    const signals: AbortSignal[] = [];
    const clock: ThrottleClock = {
      now: () => 0,
      sleep: (_ms, signal) => {
        signals.push(signal);
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    };
    const stream = createStreamThrottle({ uncappedBytes: 0, bytesPerSecond: 1 }, clock);
    const pushed: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => pushed.push(chunk));
    stream.on('error', () => undefined);
    stream.write(Buffer.alloc(10));
    await new Promise((resolve) => setImmediate(resolve));

    stream.destroy();
    release?.();
    await new Promise((resolve) => setImmediate(resolve));

    expect(signals[0]?.aborted).toBe(true);
    expect(pushed).toEqual([]);
  });
});

describe('AWS_STREAM_CAPS', () => {
  it('caps the Function URL after 6 MB and the REST API after 10 MB, both at 2 MB/s', () => {
    expect(AWS_STREAM_CAPS.functionUrl).toEqual({ uncappedBytes: 6_000_000, bytesPerSecond: 2_000_000 });
    expect(AWS_STREAM_CAPS.restApi).toEqual({ uncappedBytes: 10_000_000, bytesPerSecond: 2_000_000 });
  });
});

describe('parseLocalStreamCaps', () => {
  it.each([
    [undefined, 'off'],
    ['', 'off'],
    ['off', 'off'],
    ['aws', 'aws'],
    [' aws ', 'aws'],
    ['AWS', undefined],
    ['on', undefined],
  ])('%j → %s', (raw, expected) => {
    expect(parseLocalStreamCaps(raw)).toBe(expected);
  });
});
