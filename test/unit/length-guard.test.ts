import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { FileTooLargeError, UpstreamUnavailableError } from '../../shared/errors.ts';
import { LengthGuard } from '../../shared/streaming/length-guard.ts';

/** A sink that keeps what reaches it. */
function collector() {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return { sink, received: () => Buffer.concat(chunks) };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function chunksOf(total: number, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < total; offset += size) {
    const length = Math.min(size, total - offset);
    chunks.push(Buffer.from(Array.from({ length }, (_, i) => (offset + i) % 251)));
  }
  return chunks;
}

/** Pipes `chunks` through a guard; resolves with what arrived, or the error the pipeline failed with. */
async function run(chunks: Buffer[], expected: number | undefined, max: number) {
  const guard = new LengthGuard(expected, max);
  const { sink, received } = collector();
  let error: unknown;
  try {
    await pipeline(Readable.from(chunks), guard, sink);
  } catch (caught) {
    error = caught;
  }
  return { error, received: received(), counted: guard.bytes };
}

describe('LengthGuard', () => {
  it('passes exactly the announced bytes through unchanged', async () => {
    const chunks = chunksOf(100_000, 16_384);
    const sent = Buffer.concat(chunks);

    const { error, received, counted } = await run(chunks, 100_000, 1_000_000);

    expect(error).toBeUndefined();
    expect(received.length).toBe(100_000);
    expect(sha256(received)).toBe(sha256(sent));
    expect(counted).toBe(100_000);
  });

  it('passes a body of unknown length up to the maximum', async () => {
    const chunks = chunksOf(1_000, 300);

    const { error, received } = await run(chunks, undefined, 1_000);

    expect(error).toBeUndefined();
    expect(sha256(received)).toBe(sha256(Buffer.concat(chunks)));
  });

  it('passes an empty body that was announced empty', async () => {
    const { error, received } = await run([], 0, 10);

    expect(error).toBeUndefined();
    expect(received.length).toBe(0);
  });

  it('fails with UpstreamLengthMismatch when upstream sends more than it announced', async () => {
    const { error, received } = await run(chunksOf(150, 50), 100, 1_000);

    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error).toMatchObject({ code: 'UpstreamLengthMismatch', statusCode: 502 });
    // Nothing past the announced length reaches the client.
    expect(received.length).toBeLessThanOrEqual(100);
  });

  it('fails on the very chunk that crosses the announced length', async () => {
    const { error, received } = await run([Buffer.alloc(100), Buffer.alloc(1)], 100, 1_000);

    expect(error).toMatchObject({ code: 'UpstreamLengthMismatch' });
    expect(received.length).toBe(100);
  });

  it('fails with UpstreamEndedEarly when upstream ends before the announced length', async () => {
    const { error, received } = await run(chunksOf(60, 20), 100, 1_000);

    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error).toMatchObject({ code: 'UpstreamEndedEarly', statusCode: 502 });
    expect((error as Error).message).toContain('60 of 100');
    expect(received.length).toBe(60);
  });

  it('fails an announced-empty body that sends a byte', async () => {
    const { error } = await run([Buffer.from('x')], 0, 10);

    expect(error).toMatchObject({ code: 'UpstreamLengthMismatch' });
  });

  it('fails a body of unknown length that grows past the maximum', async () => {
    const { error, received } = await run(chunksOf(1_001, 250), undefined, 1_000);

    expect(error).toBeInstanceOf(FileTooLargeError);
    expect(error).toMatchObject({ code: 'FileTooLarge', statusCode: 413 });
    expect(received.length).toBeLessThanOrEqual(1_000);
  });

  it('also caps an announced length that is above the maximum', async () => {
    const { error } = await run(chunksOf(2_000, 500), 2_000, 1_000);

    expect(error).toMatchObject({ code: 'FileTooLarge', statusCode: 413 });
  });
});
