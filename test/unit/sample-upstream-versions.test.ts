import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SampleUpstream, startSampleUpstream } from '../../local/sample-upstream.ts';

/** The sample upstream's preconditions, `?changeAfter=` and `?ranges=0` (what the parallel copy relies on). */
describe('sample upstream versions and ranges', () => {
  let upstream: SampleUpstream;
  beforeAll(async () => {
    upstream = await startSampleUpstream({ port: 0 });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  async function get(path: string, headers: Record<string, string> = {}) {
    const response = await request(`${upstream.url}${path.replace(/^\//, '')}`, { headers });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: response.headers, bytes: body.length };
  }

  it('honours If-Match and If-Unmodified-Since with the current version, and answers 412 to another', async () => {
    const first = await get('/sample/1MB');
    const etag = String(first.headers.etag);
    const lastModified = String(first.headers['last-modified']);

    expect((await get('/sample/1MB', { 'if-match': etag, range: 'bytes=0-9' })).status).toBe(206);
    expect((await get('/sample/1MB', { 'if-match': '"other"' })).status).toBe(412);
    expect((await get('/sample/1MB', { 'if-match': `W/${etag}` })).status).toBe(412);
    expect((await get('/sample/1MB', { 'if-unmodified-since': lastModified })).status).toBe(200);
    expect(
      (await get('/sample/1MB', { 'if-unmodified-since': 'Sun, 31 Dec 2023 00:00:00 GMT' })).status,
    ).toBe(412);
  });

  it('changes the ETag and Last-Modified of a URL once changeAfter bytes of it were served', async () => {
    const path = '/sample/2MB?changeAfter=1500000';
    const before = await get(path, { range: 'bytes=0-999999' });
    const stillSame = await get(path, { range: 'bytes=1000000-1999999' });
    const after = await get(path);

    expect(stillSame.headers.etag).toBe(before.headers.etag);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect(after.headers['last-modified']).not.toBe(before.headers['last-modified']);
    expect((await get(path, { 'if-match': String(before.headers.etag) })).status).toBe(412);
    expect((await get(path, { 'if-unmodified-since': String(before.headers['last-modified']) })).status).toBe(
      412,
    );
  });

  it('plays an origin without range support with ?ranges=0', async () => {
    const answer = await get('/sample/1MB?ranges=0', { range: 'bytes=0-9' });

    expect(answer.status).toBe(200);
    expect(answer.bytes).toBe(1_000_000);
    expect(answer.headers['accept-ranges']).toBeUndefined();
  });
});
