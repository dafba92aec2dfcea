import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSha256 } from '../../local/sample-upstream.ts';
import { AWS_STREAM_CAPS } from '../../local/stream-caps.ts';
import { download, getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';

const MB = 1_000_000;
/** The router streams up to 8 MB on its own in the capped stack; the stream limit stays 190 MiB. */
const ROUTER_STREAM_MAX_BYTES = 8 * MB;

let capped: RunningStack;
let uncapped: RunningStack;

beforeAll(async () => {
  [capped, uncapped] = await Promise.all([
    startStack({ LOCAL_STREAM_CAPS: 'aws', ROUTER_STREAM_MAX_BYTES: String(ROUTER_STREAM_MAX_BYTES) }),
    startStack(),
  ]);
});

afterAll(async () => {
  await Promise.all([capped?.stop(), uncapped?.stop()]);
});

/** A GET that hashes the body and notes when the first `mark` bytes had arrived, and when all had. */
function timedGet(url: string, mark: number) {
  const started = performance.now();
  return new Promise<{ status: number; bytes: number; sha256: string; markMs: number; totalMs: number }>(
    (resolve, reject) => {
      get(url, { agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let markMs = Number.NaN;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash.update(chunk);
          if (bytes >= mark && Number.isNaN(markMs)) markMs = performance.now() - started;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            bytes,
            sha256: hash.digest('hex'),
            markMs,
            totalMs: performance.now() - started,
          }),
        );
        res.on('error', reject);
      }).on('error', reject);
    },
  );
}

describe('LOCAL_STREAM_CAPS=aws', () => {
  it('streams past the Function URL’s first 6 MB no faster than 2 MB/s (16 MB: about 5 s)', async () => {
    const { uncappedBytes, bytesPerSecond } = AWS_STREAM_CAPS.functionUrl;

    const result = await timedGet(`${capped.endpoints.functionUrl}/sample/16MB`, uncappedBytes);

    expect(result.status).toBe(200);
    expect(result.sha256).toBe(sampleSha256(16 * MB));
    const cappedSeconds = (result.totalMs - result.markMs) / 1000;
    // 10 MB at 2 MB/s is 5 s; timers may fire a little early, hence 10% below.
    expect((16 * MB - uncappedBytes) / cappedSeconds).toBeLessThanOrEqual(bytesPerSecond * 1.1);
    expect(result.totalMs).toBeGreaterThanOrEqual(4_000);
  });

  it('streams the REST API’s first 10 MB uncapped, then at most 2 MB/s', async () => {
    const { uncappedBytes, bytesPerSecond } = AWS_STREAM_CAPS.restApi;

    const result = await timedGet(`${capped.endpoints.restApi}/stream/sample/13MB`, uncappedBytes);

    expect(result.status).toBe(200);
    expect(result.sha256).toBe(sampleSha256(13 * MB));
    // 3 MB past the first 10 MB at 2 MB/s: 1.5 s; the first 10 MB arrive far faster than 2 MB/s.
    expect((13 * MB - uncappedBytes) / ((result.totalMs - result.markMs) / 1000)).toBeLessThanOrEqual(
      bytesPerSecond * 1.1,
    );
    expect(result.totalMs).toBeGreaterThanOrEqual(1_300);
    // Capped from the start, the first 10 MB would take 5 s; a busy machine still moves them in well under that.
    expect(result.markMs).toBeLessThan((uncappedBytes / bytesPerSecond) * 0.7 * 1000);
  });

  it('leaves the stack uncapped without it: the same 16 MB in well under the capped time', async () => {
    const result = await timedGet(`${uncapped.endpoints.functionUrl}/sample/16MB`, 16 * MB);

    expect(result.sha256).toBe(sampleSha256(16 * MB));
    // Capped, it takes at least 5 s; uncapped, a fraction of a second (seconds on a busy machine).
    expect(result.totalMs).toBeLessThan(3_000);
  });
});

describe('ROUTER_STREAM_MAX_BYTES below the stream limit', () => {
  it('streams a file up to the router threshold', async () => {
    const result = await download(`${capped.endpoints.restApi}/download/sample/5MB`);

    expect(result.status).toBe(200);
    expect(result.headers['x-download-mode']).toBe('stream');
    expect(result.sha256).toBe(sampleSha256(5 * MB));
  });

  it('sends a file above it the async way, saying the router threshold decided', async () => {
    const accepted = await getJson(`${capped.endpoints.restApi}/download/sample/9MB`);

    expect(accepted.status).toBe(202);
    expect(accepted.json.reason).toBe('above-router-threshold');
    expect(accepted.headers['x-download-reason']).toBe('above-router-threshold');
  });

  it('answers HEAD as GET would: 202 with the reason, nothing started', async () => {
    const head = await download(`${capped.endpoints.restApi}/download/sample/9MB`, { method: 'HEAD' });

    expect(head.status).toBe(202);
    expect(head.headers['x-download-mode']).toBe('async');
    expect(head.headers['x-download-reason']).toBe('above-router-threshold');
    expect(head.headers.location).toBeUndefined();
  });

  it('streams a file above it on ?mode=stream, since the streaming path can carry it', async () => {
    const result = await download(`${capped.endpoints.restApi}/download/sample/9MB?mode=stream`);

    expect(result.status).toBe(200);
    expect(result.sha256).toBe(sampleSha256(9 * MB));
  });
});
