/**
 * Expected sample content for tests and benchmarks, computed without HTTP. The generator lives
 * with the sample upstream (`local/sample-upstream.ts`) so that server and checks cannot drift.
 */
import { createHash } from 'node:crypto';
import { parseSampleSize, sampleBytes, sampleSha256 } from '../../local/sample-upstream.ts';

export { parseSampleSize, sampleBytes, sampleSha256 };

/** Hex sha256 of one buffer or of several, in order. */
export function sha256Hex(data: Uint8Array | Iterable<Uint8Array>): string {
  const hash = createHash('sha256');
  if (data instanceof Uint8Array) hash.update(data);
  else for (const chunk of data) hash.update(chunk);
  return hash.digest('hex');
}

/** Hex sha256 of a sample given as a size token (`'5MB'`, `'2GiB'`) or in bytes. */
export function expectedSampleSha256(size: string | number): string {
  const bytes = typeof size === 'number' ? size : parseSampleSize(size);
  if (bytes === undefined) throw new RangeError(`not a sample size: ${size}`);
  return sampleSha256(bytes);
}

/** Hex sha256 of the sample bytes at `[start, end)`, e.g. what a `Range: bytes=start-(end-1)` returns. */
export function sampleRangeSha256(start: number, end: number): string {
  const hash = createHash('sha256');
  // 8 MiB at a time keeps memory flat for multi-GiB ranges.
  for (let at = start; at < end; at += 8 * 1024 * 1024)
    hash.update(sampleBytes(at, Math.min(end, at + 8 * 1024 * 1024)));
  return hash.digest('hex');
}

/** Reads a body (Node stream, web stream, any async iterable) to the end: its sha256 and length. */
export async function sha256OfStream(
  body: AsyncIterable<Uint8Array>,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}
