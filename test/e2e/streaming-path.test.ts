import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSha256 } from '../../local/sample-upstream.ts';
import { download, getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';

const MB = 1_000_000;
let stack: RunningStack;
let rest: string;
let functionUrl: string;

beforeAll(async () => {
  // A 160 MB limit keeps the too-large case cheap to generate while 150 MB still streams.
  stack = await startStack({ STREAM_MAX_BYTES: String(160 * MB), UPSTREAM_HEADERS_TIMEOUT_MS: '1000' });
  rest = stack.endpoints.restApi;
  functionUrl = stack.endpoints.functionUrl;
});

afterAll(async () => {
  await stack?.stop();
});

describe('GET /stream/{key+} through the local REST API', () => {
  it('streams 150 MB with the same sha256 as the upstream file', async () => {
    const result = await download(`${rest}/stream/sample/150MB`);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(200);
    expect(result.bytes).toBe(150 * MB);
    expect(result.sha256).toBe(sampleSha256(150 * MB));
    expect(result.headers['content-length']).toBe(String(150 * MB));
    expect(result.headers['content-type']).toBe('application/octet-stream');
    expect(result.headers['content-disposition']).toContain('sample-150MB.bin');
    expect(result.headers.etag).toBeDefined();
    expect(result.headers['last-modified']).toBeDefined();
    expect(result.headers['accept-ranges']).toBe('bytes');
  });

  it('sends the first bytes long before a throttled upstream finishes (streams, does not buffer)', async () => {
    // 2 MB at 1 MB/s: a buffering gateway would show nothing for ~2 s.
    const result = await download(`${rest}/stream/sample/2MB?rate=1000000`);
    expect(result.error).toBeUndefined();
    expect(result.sha256).toBe(sampleSha256(2 * MB));
    expect(result.firstByteMs).toBeDefined();
    expect(result.totalMs).toBeGreaterThan(1500);
    expect(result.firstByteMs as number).toBeLessThan(result.totalMs / 3);
  });

  it('answers a Range request with 206 and exactly those bytes', async () => {
    const full = await download(`${rest}/stream/sample/1MB`, { keepBody: true });
    const part = await download(`${rest}/stream/sample/1MB`, {
      headers: { Range: 'bytes=1000-1999' },
      keepBody: true,
    });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${MB}`);
    expect(part.body?.equals(full.body?.subarray(1000, 2000) as Buffer)).toBe(true);
  });

  it('passes an unsatisfiable range on as 416', async () => {
    const result = await getJson(`${rest}/stream/sample/1MB`, { Range: 'bytes=5000000-' });
    expect(result.status).toBe(416);
    expect(result.json.code).toBe('RangeNotSatisfiable');
  });

  it('aborts the response when upstream breaks mid-body (the client sees an incomplete transfer)', async () => {
    const result = await download(`${rest}/stream/sample/20MB?failAfter=3000000`);
    expect(result.status).toBe(200);
    expect(result.error).toBeDefined();
    expect(result.bytes).toBeLessThan(20 * MB);
  });

  it('streams a chunked upstream (no Content-Length) intact', async () => {
    const result = await download(`${rest}/stream/sample/30MB?chunked=1`);
    expect(result.error).toBeUndefined();
    expect(result.headers['content-length']).toBeUndefined();
    expect(result.sha256).toBe(sampleSha256(30 * MB));
  });

  it('aborts a chunked upstream that breaks mid-body', async () => {
    const result = await download(`${rest}/stream/sample/20MB?chunked=1&failAfter=1000000`);
    expect(result.error).toBeDefined();
  });

  it('refuses a file above STREAM_MAX_BYTES with 413 naming the async alternative, before streaming', async () => {
    const result = await getJson(`${rest}/stream/sample/200MB`);
    expect(result.status).toBe(413);
    expect(result.headers['content-type']).toBe('application/problem+json');
    expect(result.json).toMatchObject({
      code: 'TooLargeForStreaming',
      size: 200 * MB,
      asyncAlternative: { method: 'GET', path: '/download/sample/200MB?mode=async' },
    });
  });

  it('maps upstream 404 to 404', async () => {
    const result = await getJson(`${rest}/stream/no/such/file`);
    expect(result.status).toBe(404);
    expect(result.json).toMatchObject({ code: 'UpstreamNotFound', status: 404 });
  });

  it('maps upstream 5xx to 502 without leaking details', async () => {
    const result = await getJson(`${rest}/stream/status/503`);
    expect(result.status).toBe(502);
    expect(result.json.code).toBe('UpstreamFailed');
    expect(JSON.stringify(result.json)).not.toMatch(/at .*\.ts/);
  });

  it('maps an upstream that does not answer in time to 504', async () => {
    const result = await getJson(`${rest}/stream/sample/1KB?delayMs=3000`);
    expect(result.status).toBe(504);
    expect(result.json.code).toBe('UpstreamTimeout');
  });

  it.each([
    ['encoded traversal', '%2e%2e/%2e%2e/etc/passwd'],
    ['double-encoded traversal', '%252e%252e/secret'],
    ['backslash', 'a%5Cb'],
    ['empty segment', 'a//b'],
    ['control character', 'a%00b'],
    ['absolute URL', 'http%3A%2F%2F169.254.169.254%2Flatest'],
  ])('refuses a bad key (%s) with 400', async (_name, key) => {
    const result = await getJson(`${rest}/stream/${key}`);
    expect(result.status).toBe(400);
    expect(result.json.code).toBe('InvalidKey');
  });

  it.each([
    ['an escape that is not hex', 'sample/%zz'],
    ['overlong UTF-8 dots', '%c0%ae%c0%ae/x'],
  ])(
    'refuses a key with %s with 400 InvalidKey on every route, before reaching upstream',
    async (_name, key) => {
      for (const url of [`${rest}/stream/${key}`, `${rest}/download/${key}`, `${functionUrl}/${key}`]) {
        const result = await getJson(url);
        expect(result.status, url).toBe(400);
        expect(result.json.code, url).toBe('InvalidKey');
      }
    },
  );

  it('passes on a body upstream gzipped, labelled with its Content-Encoding and encoded length', async () => {
    const plain = await download(`${stack.endpoints.upstream}sample/report.csv?rows=2000`, {
      keepBody: true,
    });
    for (const path of ['/stream', '/download']) {
      const result = await download(`${rest}${path}/sample/report.csv?rows=2000&gzip=1`, { keepBody: true });
      const body = result.body as Buffer;
      expect(result.status, path).toBe(200);
      expect(result.headers['content-encoding'], path).toBe('gzip');
      expect(result.headers['content-type'], path).toBe('text/csv; charset=utf-8');
      expect(result.headers['content-length'], path).toBe(String(body.length));
      expect(gunzipSync(body).equals(plain.body as Buffer), path).toBe(true);
    }
  });

  it('sends every file as an attachment with a sanitised name and nosniff', async () => {
    for (const url of [
      `${rest}/stream/sample/report.csv?rows=3`,
      `${functionUrl}/sample/report.csv?rows=3`,
    ]) {
      const result = await download(url);
      expect(result.headers['content-disposition'], url).toBe(
        `attachment; filename="report.csv"; filename*=UTF-8''report.csv`,
      );
      expect(result.headers['x-content-type-options'], url).toBe('nosniff');
      expect(result.headers['content-type'], url).toBe('text/csv; charset=utf-8');
    }
  });

  it('forwards query parameters upstream', async () => {
    const result = await download(`${rest}/stream/sample/report.csv?rows=3`, { keepBody: true });
    expect(result.status).toBe(200);
    expect(result.body?.toString().trim().split('\n')).toHaveLength(4);
  });

  it('answers HEAD with the headers and no body', async () => {
    const result = await download(`${rest}/stream/sample/5MB`, { method: 'HEAD' });
    expect(result.status).toBe(200);
    expect(result.headers['content-length']).toBe(String(5 * MB));
    expect(result.bytes).toBe(0);
  });

  it('lets the function finish when the client goes away, as on AWS, and keeps serving', async () => {
    // On AWS no event reaches a streaming handler when its client disconnects (the runtime client
    // emits none): the function reads upstream to the end and the gateway drops the bytes. The
    // local stack does the same, so the cost of an abandoned download is visible here too.
    const aborted = await download(`${rest}/stream/sample/30MB?clientGoneProbe=1`, {
      abortAfterBytes: 1_000_000,
    });
    expect(aborted.error?.message).toBe('aborted by the client');
    await expect
      .poll(
        () => /clientGoneProbe=1 → 200 (sent|client closed) after (\d+) body bytes/.exec(stack.logs())?.[2],
        {
          timeout: 10_000,
        },
      )
      .toBe(String(30 * MB));
    const next = await download(`${rest}/stream/sample/1MB`);
    expect(next.sha256).toBe(sampleSha256(MB));
  });

  it('answers unknown routes like API Gateway', async () => {
    const result = await getJson(`${rest}/nope`);
    expect(result.status).toBe(403);
  });
});

describe('the Function URL', () => {
  it('serves the same bytes as the REST API, with the key as the whole path', async () => {
    const [viaUrl, viaRest] = await Promise.all([
      download(`${functionUrl}/sample/25MB`),
      download(`${rest}/stream/sample/25MB`),
    ]);
    expect(viaUrl.status).toBe(200);
    expect(viaUrl.error).toBeUndefined();
    expect(viaUrl.sha256).toBe(viaRest.sha256);
    expect(viaUrl.sha256).toBe(sampleSha256(25 * MB));
  });

  it('refuses bad keys the same way', async () => {
    const result = await getJson(`${functionUrl}/%2e%2e/x`);
    expect(result.status).toBe(400);
  });
});
