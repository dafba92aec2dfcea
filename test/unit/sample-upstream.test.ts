import { request } from 'node:http';
import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_GZIP_REPORT_ROWS,
  parseByteRange,
  reportCsvLength,
  type SampleUpstream,
  sampleBytes,
  sampleSha256,
  startSampleUpstream,
} from '../../local/sample-upstream.ts';
import { parseSampleSize, sha256Hex, sha256OfStream } from '../helpers/sample-bytes.ts';

let upstream: SampleUpstream;
const logLines: string[] = [];

beforeAll(async () => {
  upstream = await startSampleUpstream({ port: 0, log: (msg) => logLines.push(msg) });
});

afterAll(async () => {
  await upstream.close();
});

function at(path: string): string {
  return new URL(path, upstream.url).href;
}

async function getBytes(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ res: Response; body: Buffer }> {
  const res = await fetch(at(path), { headers });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

/** A raw GET that reports how many body bytes arrived and whether the message completed. */
function rawGet(path: string): Promise<{ status: number | undefined; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    request(at(path), { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode, bytes, complete: res.complete }));
    })
      .on('error', reject)
      .end();
  });
}

async function waitForLog(fragment: string, timeoutMs = 2000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = logLines.find((l) => l.includes(fragment));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no log line with "${fragment}" in:\n${logLines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('parseSampleSize', () => {
  it.each([
    ['12345', 12_345],
    ['0', 0],
    ['10kB', 10_000],
    ['10KB', 10_000],
    ['10kb', 10_000],
    ['5MB', 5_000_000],
    ['150MB', 150_000_000],
    ['1.5GB', 1_500_000_000],
    ['4.35kB', 4350],
    ['1.0005kB', 1000],
    ['512KiB', 512 * 1024],
    ['3MiB', 3 * 1024 ** 2],
    ['2GiB', 2 * 1024 ** 3],
    ['100GiB', 100 * 1024 ** 3],
  ])('reads %s as %d bytes', (token, bytes) => {
    expect(parseSampleSize(token)).toBe(bytes);
  });

  it.each(['', 'abc', '5XB', '-1', '1e6', '5 MB', '.5MB', '1.MB', '5MBs', '101GiB', '200GB'])(
    'refuses "%s"',
    (token) => {
      expect(parseSampleSize(token)).toBeUndefined();
    },
  );
});

describe('parseByteRange', () => {
  it.each([
    ['bytes=0-9', { start: 0, end: 10 }],
    ['bytes=90-', { start: 90, end: 100 }],
    ['bytes=-10', { start: 90, end: 100 }],
    ['bytes=-1000', { start: 0, end: 100 }],
    ['bytes=50-1000', { start: 50, end: 100 }],
    ['bytes=100-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=0-1,5-6', undefined],
    ['bytes=9-2', undefined],
    ['items=0-9', undefined],
    ['bytes=-', undefined],
  ])('reads %s of a 100-byte file', (header, expected) => {
    expect(parseByteRange(header, 100)).toEqual(expected);
  });
});

describe('sample bytes', () => {
  it('depend only on the offset, whatever the slicing', () => {
    const whole = sampleBytes(0, 200_000);
    expect(sampleBytes(0, 200_000).equals(whole)).toBe(true);
    const pieces = [
      sampleBytes(0, 1),
      sampleBytes(1, 65_535),
      sampleBytes(65_535, 65_537),
      sampleBytes(65_537, 200_000),
    ];
    expect(Buffer.concat(pieces).equals(whole)).toBe(true);
    expect(sampleBytes(131_000, 140_000).equals(whole.subarray(131_000, 140_000))).toBe(true);
  });

  it('differ from one 64 KiB block to the next, so a repeated or skipped chunk changes the hash', () => {
    const first = sampleBytes(0, 65_536);
    expect(sampleBytes(65_536, 131_072).equals(first)).toBe(false);
    expect(sampleSha256(131_072)).not.toBe(sha256Hex([first, first]));
  });

  it('hash to sampleSha256', () => {
    expect(sampleSha256(300_001)).toBe(sha256Hex(sampleBytes(0, 300_001)));
    expect(sampleSha256(0)).toBe(sha256Hex(Buffer.alloc(0)));
  });
});

describe('GET /sample/{size}', () => {
  it('streams the deterministic bytes with download headers', async () => {
    const res = await fetch(at('sample/1MB'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe('1000000');
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toBe('"sample-1000000"');
    expect(res.headers.get('last-modified')).toBe('Mon, 01 Jan 2024 00:00:00 GMT');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="sample-1MB.bin"');
    expect(await sha256OfStream(res.body!)).toEqual({ sha256: sampleSha256(1_000_000), bytes: 1_000_000 });
  });

  it('answers HEAD with the same headers and no body', async () => {
    const res = await fetch(at('sample/2MiB'), { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(2 * 1024 ** 2));
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="sample-2MiB.bin"');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it.each(['5XB', 'lots', '101GiB'])('refuses the size "%s" with 400 JSON', async (size) => {
    const res = await fetch(at(`sample/${size}`));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'InvalidSize' });
  });

  it.each(['rate=0', 'rate=fast', 'failAfter=-1', 'delayMs=soon'])(
    'refuses the parameter %s with 400 JSON',
    async (query) => {
      const res = await fetch(at(`sample/10kB?${query}`));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'InvalidParameter' });
    },
  );

  describe('ranges', () => {
    const size = 300_001;
    let full: Buffer;
    beforeAll(async () => {
      full = (await getBytes(`sample/${size}`)).body;
    });

    it.each([
      ['bytes=1000-70000', 1000, 70_001],
      ['bytes=250000-', 250_000, size],
      ['bytes=-12345', size - 12_345, size],
      ['bytes=65536-65536', 65_536, 65_537],
      ['bytes=0-999999999', 0, size],
    ])('answers %s with 206 and the same bytes as the full file', async (range, start, end) => {
      const { res, body } = await getBytes(`sample/${size}`, { range });
      expect(res.status).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end - 1}/${size}`);
      expect(res.headers.get('content-length')).toBe(String(end - start));
      expect(body.equals(full.subarray(start, end))).toBe(true);
    });

    it('answers an unsatisfiable range with 416 and the size', async () => {
      const res = await fetch(at(`sample/${size}`), { headers: { range: `bytes=${size}-` } });
      expect(res.status).toBe(416);
      expect(res.headers.get('content-range')).toBe(`bytes */${size}`);
    });

    it('serves the whole file for several ranges', async () => {
      const { res, body } = await getBytes(`sample/${size}`, { range: 'bytes=0-9,20-29' });
      expect(res.status).toBe(200);
      expect(body.equals(full)).toBe(true);
    });

    it('ignores the range when If-Range names another version', async () => {
      const { res, body } = await getBytes(`sample/${size}`, { range: 'bytes=0-9', 'if-range': '"other"' });
      expect(res.status).toBe(200);
      expect(body.length).toBe(size);
    });

    it('honours the range when If-Range matches the ETag', async () => {
      const { res, body } = await getBytes(`sample/${size}`, {
        range: 'bytes=0-9',
        'if-range': `"sample-${size}"`,
      });
      expect(res.status).toBe(206);
      expect(body.equals(full.subarray(0, 10))).toBe(true);
    });
  });

  it('omits Content-Length with chunked=1, same bytes', async () => {
    const res = await fetch(at('sample/500kB?chunked=1'));
    expect(res.headers.get('content-length')).toBeNull();
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    expect((await sha256OfStream(res.body!)).sha256).toBe(sampleSha256(500_000));
  });

  it.each(['', '&chunked=1'])(
    'sends exactly failAfter bytes then breaks the connection (query "%s")',
    async (extra) => {
      const raw = await rawGet(`sample/1MB?failAfter=100000${extra}`);
      expect(raw).toEqual({ status: 200, bytes: 100_000, complete: false });

      const res = await fetch(at(`sample/1MB?failAfter=100000${extra}`));
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
    },
  );

  it('with reset=1 breaks the connection at failAfter with a TCP reset', async () => {
    const { hostname, port } = new URL(upstream.url);
    const ending = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), hostname, () =>
        socket.write('GET /sample/1MB?failAfter=100000&reset=1 HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      socket.on('data', () => undefined);
      socket.on('end', () => resolve('end'));
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });

    expect(ending).toBe('ECONNRESET');
  });

  it('with failTimes=N breaks only the first N responses to the same URL', async () => {
    const path = 'sample/300kB?failAfter=100000&failTimes=2';

    const outcomes = [await rawGet(path), await rawGet(path), await rawGet(path)];

    expect(outcomes.map((outcome) => outcome.complete)).toEqual([false, false, true]);
    expect(outcomes[2]?.bytes).toBe(300_000);
    expect((await rawGet('sample/300kB?failAfter=100000&failTimes=2&other=1')).complete).toBe(false);
  });

  it('counts only responses that reach failAfter towards failTimes', async () => {
    const path = 'sample/300kB?failAfter=100000&failTimes=1&rate=1MB';
    const controller = new AbortController();
    const early = await fetch(at(path), { signal: controller.signal });
    controller.abort();
    await early.arrayBuffer().catch(() => undefined);
    await waitForLog(`GET /${path} → 200 client closed`);

    expect((await rawGet(path)).complete).toBe(false);
    expect((await rawGet(path)).complete).toBe(true);
  });

  it('with failAfter=0 sends the headers and no body', async () => {
    expect(await rawGet('sample/1MB?failAfter=0')).toEqual({ status: 200, bytes: 0, complete: false });
  });

  it('waits delayMs before the status line', async () => {
    const started = performance.now();
    const res = await fetch(at('sample/10?delayMs=150'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  // Both take about 200 ms. Loose bounds: this checks that the throttle works, not its precision;
  // the upper one catches a bucket too small to reach high rates.
  it.each([
    ['200kB', '1MB', 200_000],
    ['10MB', '50MB', 10_000_000],
  ])('throttles %s to about rate=%s per second', async (size, rate, bytes) => {
    const started = performance.now();
    const res = await fetch(at(`sample/${size}?rate=${rate}`));
    const { sha256 } = await sha256OfStream(res.body!);
    const elapsed = performance.now() - started;
    expect(sha256).toBe(sampleSha256(bytes));
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1000);
  });

  it('stops writing when the client goes away', async () => {
    const controller = new AbortController();
    const res = await fetch(at('sample/50GB?chunked=1'), { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();

    const line = await waitForLog('GET /sample/50GB?chunked=1 → 200 client closed after');
    const sent = Number(/after (\d+) body bytes/.exec(line)?.[1]);
    expect(sent).toBeLessThan(100 * 1024 ** 2);
    expect((await fetch(at('status/200'))).status).toBe(200);
  });
});

describe('GET /sample/report.csv', () => {
  it('serves the requested rows with an exact Content-Length', async () => {
    const res = await fetch(at('sample/report.csv?rows=10001'));
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="report.csv"');
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(reportCsvLength(10_001)).toBe(Buffer.byteLength(text));
    const lines = text.split('\n');
    expect(lines[0]).toBe('id,date,customer,amount,currency');
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength(10_001 + 2);
    expect(lines[1]).toMatch(/^1,2020-01-01,[A-Za-z ]+,\d+\.\d{2},[A-Z]{3}$/);
    expect(lines[10_001]).toMatch(/^10001,2020-01-11,/);
  });

  it('is deterministic and defaults to 1000 rows', async () => {
    const first = await (await fetch(at('sample/report.csv'))).text();
    const second = await (await fetch(at('sample/report.csv?rows=1000'))).text();
    expect(first).toBe(second);
    expect(first.split('\n')).toHaveLength(1002);
  });

  it('answers HEAD with the length of the full report', async () => {
    const res = await fetch(at('sample/report.csv?rows=10000000'), { method: 'HEAD' });
    expect(Number(res.headers.get('content-length'))).toBe(reportCsvLength(10_000_000));
  });

  it('with gzip=1 sends the report gzipped, labelled Content-Encoding: gzip with the encoded length', async () => {
    const plain = await getBytes('sample/report.csv?rows=2000');
    const encoded = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        // node:http does not decode, unlike fetch.
        request(at('sample/report.csv?rows=2000&gzip=1'), { agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        })
          .on('error', reject)
          .end();
      },
    );

    expect(encoded.headers['content-encoding']).toBe('gzip');
    expect(encoded.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(Number(encoded.headers['content-length'])).toBe(encoded.body.length);
    expect(encoded.body.length).toBeLessThan(plain.body.length);
    expect(gunzipSync(encoded.body).equals(plain.body)).toBe(true);
  });

  it('refuses gzip=1 for more rows than it compresses in memory', async () => {
    const res = await fetch(at(`sample/report.csv?gzip=1&rows=${MAX_GZIP_REPORT_ROWS + 1}`));
    expect(res.status).toBe(400);
  });

  it.each(['-1', 'many', '10000001'])('refuses rows=%s with 400', async (rows) => {
    const res = await fetch(at(`sample/report.csv?rows=${rows}`));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'InvalidRows' });
  });
});

describe('other endpoints', () => {
  it.each([404, 500, 503])('GET /status/%d answers that status with JSON', async (code) => {
    const res = await fetch(at(`status/${code}`));
    expect(res.status).toBe(code);
    expect(await res.json()).toMatchObject({ status: code });
  });

  it('refuses a status that is not a code', async () => {
    expect((await fetch(at('status/abc'))).status).toBe(400);
  });

  it('follows /redirect/{n}/… one hop at a time to the target', async () => {
    const hop = await fetch(at('redirect/2/sample/10kB?chunked=1'), { redirect: 'manual' });
    expect(hop.status).toBe(302);
    expect(hop.headers.get('location')).toBe('/redirect/1/sample/10kB?chunked=1');
    const last = await fetch(at('redirect/0/sample/10kB'), { redirect: 'manual' });
    expect(last.headers.get('location')).toBe('/sample/10kB');

    const res = await fetch(at('redirect/3/sample/10kB'));
    expect(res.url).toBe(at('sample/10kB'));
    expect(res.redirected).toBe(true);
    expect(sha256Hex(Buffer.from(await res.arrayBuffer()))).toBe(sampleSha256(10_000));
  });

  it('redirects to an absolute URL with /redirect-to', async () => {
    const res = await fetch(at('redirect-to?url=http%3A%2F%2Fexample.com%2Fx'), { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://example.com/x');
    expect((await fetch(at('redirect-to?url=ftp%3A%2F%2Fexample.com'))).status).toBe(400);
  });

  it('describes itself at / and answers 404 JSON elsewhere', async () => {
    expect(await (await fetch(at(''))).json()).toMatchObject({ name: 'sample-upstream' });
    const res = await fetch(at('nothing/here'));
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'NotFound' });
  });

  it('refuses other methods with 405', async () => {
    const res = await fetch(at('sample/10'), { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('close()', () => {
  it('ends in-flight responses instead of waiting for them', async () => {
    const own = await startSampleUpstream({ port: 0 });
    expect(own.url).toBe(`http://127.0.0.1:${own.port}/`);
    const slow = await fetch(new URL('sample/10MB?rate=100kB', own.url));
    const reading = slow.arrayBuffer();

    const started = performance.now();
    await own.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(reading).rejects.toThrow();
  });
});
