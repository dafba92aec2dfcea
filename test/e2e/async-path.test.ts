import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSha256 } from '../../local/sample-upstream.ts';
import { localClients } from '../helpers/aws.ts';
import { type AcceptedDownload, download, getJson, startAsyncDownload } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { openSocket } from '../helpers/ws.ts';

const MB = 1_000_000;
let stack: RunningStack;
let rest: string;
let ws: string;
let aws: ReturnType<typeof localClients>;

beforeAll(async () => {
  // 100 MB threshold: files above it go async without generating gigabytes in the tests.
  stack = await startStack({ STREAM_MAX_BYTES: String(100 * MB) });
  rest = stack.endpoints.restApi;
  ws = stack.endpoints.webSocket as string;
  aws = localClients(stack.endpoints);
});

afterAll(async () => {
  aws?.close();
  await stack?.stop();
});

type Accepted = AcceptedDownload;

/** The connection set of a download's record (connection id → when it was bound). */
async function connectionsOf(downloadId: string): Promise<Record<string, number>> {
  return ((await aws.record(downloadId))?.connections ?? {}) as Record<string, number>;
}

function startAsync(path: string, headers: Record<string, string> = {}): Promise<Accepted> {
  return startAsyncDownload(`${rest}${path}`, headers);
}

/** Polls the download's status URL (it carries the token) until it reaches `status`. */
async function waitForStatus(accepted: Accepted, status: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await getJson(accepted.statusUrl);
    if (current.json.status === status) return current.json;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(current.json)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('GET /download/{key+} above the threshold', () => {
  it('answers 202, pushes progress then a ready URL to a client that names the execution in a header with the token, and the URL serves the same bytes', async () => {
    const accepted = await startAsync('/download/sample/250MB');
    expect(accepted).toMatchObject({
      status: 'PENDING',
      reason: 'too-large-to-stream',
      webSocketEndpoint: ws,
    });
    expect(accepted.executionArn).toContain(`:execution:DownloadWorkflow:${accepted.downloadId}`);

    const client = await openSocket(accepted.webSocketEndpoint, {
      'X-StateMachine-ExecutionArn': accepted.executionArn,
      'X-Download-Token': accepted.token,
    });
    const progress = await client.next('progress');
    const ready = await client.next('ready', 120_000);
    await client.close();

    expect(progress).toMatchObject({ downloadId: accepted.downloadId, totalBytes: 250 * MB });
    expect(client.messages.findIndex((m) => m.type === 'progress')).toBeLessThan(
      client.messages.findIndex((m) => m.type === 'ready'),
    );
    expect(ready).toMatchObject({
      downloadId: accepted.downloadId,
      size: 250 * MB,
      contentType: 'application/octet-stream',
    });
    const file = await download(ready.url as string);
    expect(file.status).toBe(200);
    expect(file.headers['content-disposition']).toContain('sample-250MB.bin');
    expect(file.sha256).toBe(sampleSha256(250 * MB));
  });

  it('delivers the URL to a browser-style client (?downloadId=) that connects only after the copy finished', async () => {
    const accepted = await startAsync('/download/sample/120MB');
    await waitForStatus(accepted, 'READY');

    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready');
    await client.close();

    const file = await download(ready.url as string);
    expect(file.sha256).toBe(sampleSha256(120 * MB));
  });

  it('still delivers after the client drops and reconnects mid-copy', async () => {
    // 8 MB at 2 MB/s: about 4 s of copying, forced async.
    const accepted = await startAsync('/download/sample/8MB?rate=2000000&mode=async');
    expect(accepted.reason).toBe('requested');
    const first = await openSocket(accepted.webSocketUrl);
    await first.next('progress');
    await first.close();
    const second = await openSocket(
      `${ws}?executionArn=${encodeURIComponent(accepted.executionArn)}&token=${accepted.token}`,
    );
    const ready = await second.next('ready', 60_000);
    await second.close();
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(8 * MB));
    expect(first.messages.some((m) => m.type === 'ready')).toBe(false);
  });

  it('answers {"action":"status"} with the current status', async () => {
    const accepted = await startAsync('/download/sample/4MB?rate=2000000', { Prefer: 'respond-async' });
    const client = await openSocket(accepted.webSocketUrl);
    client.send({ action: 'status' });
    const status = await client.next('status');
    expect(status).toMatchObject({ downloadId: accepted.downloadId, key: 'sample/4MB' });
    expect(['PENDING', 'RUNNING']).toContain(status.status);
    client.send({ action: 'dance' });
    expect(await client.next('error')).toMatchObject({ error: { code: 'UnknownAction' } });
    await client.next('ready', 60_000);
    await client.close();
  });

  it('sends a chunked upstream (unknown length) the async way, intact', async () => {
    const accepted = await startAsync('/download/sample/30MB?chunked=1');
    expect(accepted.reason).toBe('unknown-length');
    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready', 60_000);
    await client.close();
    expect(ready.size).toBe(30 * MB);
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(30 * MB));
  });

  it('ends an upstream that breaks mid-copy in a failed message, status FAILED, and nothing left in S3', async () => {
    // 12 MB in: at least one 8 MiB part was uploaded, so a multipart upload existed.
    const accepted = await startAsync('/download/sample/30MB?failAfter=12000000&mode=async');
    const client = await openSocket(accepted.webSocketUrl);
    const failed = await client.next('failed', 60_000);
    await client.close();

    expect(failed).toMatchObject({ downloadId: accepted.downloadId, error: { code: 'UpstreamFailed' } });
    const status = await waitForStatus(accepted, 'FAILED');
    expect(status.error).toMatchObject({ code: 'UpstreamFailed' });
    expect(status.url).toBeUndefined();
    const prefix = `downloads/${accepted.downloadId}/`;
    expect(await aws.objectsUnder(prefix)).toEqual([]);
    expect(await aws.uploadsUnder(prefix)).toEqual([]);
  });

  it('names an upstream that resets the connection mid-copy UpstreamFailed, not StorageFailed, after its retries', async () => {
    const accepted = await startAsync('/download/sample/30MB?failAfter=12000000&reset=1&mode=async');
    const client = await openSocket(accepted.webSocketUrl);
    const failed = await client.next('failed', 60_000);
    await client.close();

    expect(failed).toMatchObject({ error: { code: 'UpstreamFailed' } });
    expect((await waitForStatus(accepted, 'FAILED')).error).toMatchObject({
      code: 'UpstreamFailed',
    });
    // Retried (UpstreamUnavailableError is retryable): every attempt reached upstream's reset.
    expect(
      stack.logs().match(/failAfter=12000000&reset=1 → 200 failed on purpose/g)?.length,
    ).toBeGreaterThanOrEqual(3);
    const prefix = `downloads/${accepted.downloadId}/`;
    expect(await aws.objectsUnder(prefix)).toEqual([]);
    expect(await aws.uploadsUnder(prefix)).toEqual([]);
  });

  it('reports progress that never goes backwards when a copy is retried, and delivers the file', async () => {
    // 20 MB at 5 MB/s; the first attempt breaks at 12 MB (after two progress reports), the retry
    // starts over from the first byte and succeeds.
    const accepted = await startAsync(
      '/download/sample/20MB?rate=5000000&failAfter=12000000&failTimes=1&mode=async',
    );
    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready', 60_000);
    await client.close();

    const progress = client.messages.filter((m) => m.type === 'progress').map((m) => m.bytes as number);
    expect(Math.max(...progress)).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(stack.logs()).toMatch(/failTimes=1 → 200 failed on purpose after 12000000 body bytes/);
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(20 * MB));
  });

  it('stores a body upstream gzipped with its Content-Encoding, so the presigned URL serves it labelled', async () => {
    const plain = await download(`${stack.endpoints.upstream}sample/report.csv?rows=2000`, {
      keepBody: true,
    });
    const accepted = await startAsync('/download/sample/report.csv?rows=2000&gzip=1&mode=async');
    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready', 60_000);
    await client.close();

    const file = await download(ready.url as string, { keepBody: true });
    const body = file.body as Buffer;
    expect(ready).toMatchObject({ contentType: 'text/csv; charset=utf-8', size: body.length });
    expect(file.headers['content-encoding']).toBe('gzip');
    expect(file.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(file.headers['content-disposition']).toContain('report.csv');
    expect(gunzipSync(body).equals(plain.body as Buffer)).toBe(true);
  });

  it('answers HEAD like GET (202, async) without starting a download', async () => {
    const before = await aws.itemCount();

    const head = await download(`${rest}/download/sample/250MB`, { method: 'HEAD' });

    expect(head.status).toBe(202);
    expect(head.headers['x-download-mode']).toBe('async');
    expect(head.headers['content-type']).toBe('application/json');
    expect(head.headers.location).toBeUndefined();
    expect(head.bytes).toBe(0);
    expect(await aws.itemCount()).toBe(before);
  });

  it('maps upstream 404 to 404 before anything is started', async () => {
    const before = await aws.itemCount();
    const response = await getJson(`${rest}/download/no/such/file.bin`);
    expect(response.status).toBe(404);
    expect(response.json.code).toBe('UpstreamNotFound');
    expect(await aws.itemCount()).toBe(before);
  });

  it('refuses a bad key and a bad mode with 400 before reaching upstream', async () => {
    expect((await getJson(`${rest}/download/a%2F..%2F..%2Fsecret`)).status).toBe(400);
    const mode = await getJson(`${rest}/download/sample/1MB?mode=fast`);
    expect(mode.status).toBe(400);
    expect(mode.json.code).toBe('InvalidMode');
  });

  it('refuses ?mode=stream for a file above the threshold with 413', async () => {
    const response = await getJson(`${rest}/download/sample/101MB?mode=stream`);
    expect(response.status).toBe(413);
  });
});

describe('GET /download/{key+} below the threshold', () => {
  it('streams the file like /stream does', async () => {
    const result = await download(`${rest}/download/sample/5MB`);
    expect(result.status).toBe(200);
    expect(result.headers['x-download-mode']).toBe('stream');
    expect(result.sha256).toBe(sampleSha256(5 * MB));
  });
});

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';
const UNKNOWN_ARN = `arn:aws:states:us-east-1:000000000000:execution:DownloadWorkflow:${UNKNOWN_ID}`;
/** Well-formed, but no download's token. */
const SOME_TOKEN = 'A'.repeat(43);

describe('the WebSocket handshake', () => {
  it.each([
    [
      'an unknown execution ARN',
      { 'X-StateMachine-ExecutionArn': UNKNOWN_ARN, 'X-Download-Token': SOME_TOKEN },
      '',
      404,
    ],
    ['a malformed execution ARN', { 'X-StateMachine-ExecutionArn': 'not-an-arn' }, '', 400],
    ['an unknown download id', {}, `?downloadId=${UNKNOWN_ID}&token=${SOME_TOKEN}`, 404],
    ['a malformed download id', {}, '?downloadId=..%2Fx', 400],
    ['no download at all', {}, '', 400],
  ])('refuses %s and stores nothing', async (_name, headers, query, status) => {
    const before = await aws.itemCount();
    await expect(openSocket(`${ws}${query}`, headers)).rejects.toMatchObject({ statusCode: status });
    expect(await aws.itemCount()).toBe(before);
  });

  it('binds ?downloadId=&token= sent next to an empty X-StateMachine-ExecutionArn header', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    const client = await openSocket(accepted.webSocketUrl, { 'X-StateMachine-ExecutionArn': '' });
    client.send({ action: 'status' });
    expect(await client.next('status')).toMatchObject({ downloadId: accepted.downloadId });
    await client.close();
  });

  it('refuses an ARN whose name is a real download but whose state machine is not', async () => {
    const accepted = await startAsync('/download/sample/2MB?mode=async');
    const forged = accepted.executionArn.replace(':DownloadWorkflow:', ':OtherMachine:');
    await expect(
      openSocket(ws, { 'X-StateMachine-ExecutionArn': forged, 'X-Download-Token': accepted.token }),
    ).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('who may receive a download over the WebSocket', () => {
  it('refuses, without the token, every way of naming a ready download, and stores nothing', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    await waitForStatus(accepted, 'READY');
    const before = await aws.itemCount();
    const attempts: Array<[string, Record<string, string>, number]> = [
      [`${ws}?downloadId=${accepted.downloadId}`, {}, 401],
      [`${ws}?executionArn=${encodeURIComponent(accepted.executionArn)}`, {}, 401],
      [ws, { 'X-StateMachine-ExecutionArn': accepted.executionArn }, 401],
      [`${ws}?downloadId=${accepted.downloadId}&token=`, {}, 401],
      [`${ws}?downloadId=${accepted.downloadId}&token=${SOME_TOKEN}`, {}, 403],
      [ws, { 'X-StateMachine-ExecutionArn': accepted.executionArn, 'X-Download-Token': SOME_TOKEN }, 403],
    ];

    for (const [url, headers, status] of attempts) {
      await expect(openSocket(url, headers), `${url} ${JSON.stringify(headers)}`).rejects.toMatchObject({
        statusCode: status,
      });
    }

    expect(await aws.itemCount()).toBe(before);
    expect(await connectionsOf(accepted.downloadId)).toEqual({});
  });

  it('gives the webSocketUrl, exactly as returned, progress and then ready', async () => {
    const accepted = await startAsync('/download/sample/6MB?rate=3000000&mode=async');
    expect(new URL(accepted.webSocketUrl).searchParams.get('token')).toBe(accepted.token);

    const client = await openSocket(accepted.webSocketUrl);
    const progress = await client.next('progress');
    const ready = await client.next('ready', 60_000);
    await client.close();

    expect(progress).toMatchObject({ downloadId: accepted.downloadId });
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(6 * MB));
  });

  it('never stores the token, only its hash', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');

    const item = await aws.record(accepted.downloadId);

    expect(JSON.stringify(item)).not.toContain(accepted.token);
    expect(item?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('several connections for one download', () => {
  it('delivers progress and the same ready URL to each of three connections', async () => {
    const accepted = await startAsync('/download/sample/6MB?rate=3000000&mode=async');
    const clients = [
      await openSocket(accepted.webSocketUrl),
      await openSocket(accepted.webSocketEndpoint, {
        'X-StateMachine-ExecutionArn': accepted.executionArn,
        'X-Download-Token': accepted.token,
      }),
      await openSocket(
        `${ws}?executionArn=${encodeURIComponent(accepted.executionArn)}&token=${accepted.token}`,
      ),
    ];
    expect(Object.keys(await connectionsOf(accepted.downloadId))).toHaveLength(3);

    const progress = await Promise.all(clients.map((client) => client.next('progress')));
    const ready = await Promise.all(clients.map((client) => client.next('ready', 60_000)));
    await Promise.all(clients.map((client) => client.close()));

    expect(progress.every((message) => message.downloadId === accepted.downloadId)).toBe(true);
    expect(new Set(ready.map((message) => message.url)).size).toBe(1);
    for (const client of clients) {
      expect(client.messages.filter((message) => message.type === 'ready')).toHaveLength(1);
    }
    expect((await download(ready[0]?.url as string)).sha256).toBe(sampleSha256(6 * MB));
  });

  it('delivers a ready download to each of three connections opened after it was ready', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    await waitForStatus(accepted, 'READY');

    const clients = await Promise.all([1, 2, 3].map(() => openSocket(accepted.webSocketUrl)));
    const ready = await Promise.all(clients.map((client) => client.next('ready')));
    await Promise.all(clients.map((client) => client.close()));

    expect(new Set(ready.map((message) => message.url)).size).toBe(1);
  });

  it('closes the oldest connection, saying why, when an eleventh one arrives', async () => {
    const accepted = await startAsync('/download/sample/4MB?rate=1000000&mode=async');
    const clients = [];
    for (let i = 0; i < 10; i++) clients.push(await openSocket(accepted.webSocketUrl));
    const oldest = clients[0] as (typeof clients)[number];
    const closedOldest = new Promise<number>((resolve) =>
      oldest.socket.once('close', (code) => resolve(code)),
    );

    const newest = await openSocket(accepted.webSocketUrl);

    expect(await oldest.next('closed')).toMatchObject({
      downloadId: accepted.downloadId,
      reason: { code: 'TooManyConnections' },
    });
    expect(await closedOldest).toBe(1000); // what API Gateway's DeleteConnection sends
    await expect.poll(async () => Object.keys(await connectionsOf(accepted.downloadId)).length).toBe(10);
    const ready = await newest.next('ready', 60_000);
    await clients[1]?.next('ready');
    expect(oldest.messages.some((message) => message.type === 'ready')).toBe(false);
    await Promise.all([...clients.slice(1), newest].map((client) => client.close()));
    expect(ready.url).toEqual(expect.any(String));
  });
});

describe('GET /downloads/{downloadId}', () => {
  it('follows the whole life cycle and stores the connection while one is open', async () => {
    const accepted = await startAsync('/download/sample/6MB?rate=3000000&mode=async');
    const early = await getJson(accepted.statusUrl);
    expect(early.status).toBe(200);
    expect(['PENDING', 'RUNNING']).toContain(early.json.status);
    expect(early.json.url).toBeUndefined();

    const client = await openSocket(accepted.webSocketUrl);
    await client.next('progress');
    const running = await getJson(accepted.statusUrl);
    expect(running.json.status).toBe('RUNNING');
    expect(Object.keys(await connectionsOf(accepted.downloadId))).toHaveLength(1);

    await client.next('ready', 60_000);
    await client.close();
    const ready = await waitForStatus(accepted, 'READY');
    expect(ready).toMatchObject({ size: 6 * MB, bytes: 6 * MB, contentType: 'application/octet-stream' });
    expect(ready.url).toEqual(expect.any(String));
    // $disconnect removed the connection id.
    await expect.poll(async () => connectionsOf(accepted.downloadId)).toEqual({});
  });

  it('answers 404 for an unknown id, 400 for a malformed one', async () => {
    expect((await getJson(`${rest}/downloads/${UNKNOWN_ID}?token=${SOME_TOKEN}`)).status).toBe(404);
    expect((await getJson(`${rest}/downloads/not-an-id`)).status).toBe(400);
  });

  it('does not reveal a ready download, nor its URL, to a request without its token', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    const ready = await waitForStatus(accepted, 'READY');
    expect(ready.url).toEqual(expect.any(String));
    const bare = `${rest}/downloads/${accepted.downloadId}`;

    const withoutToken = await getJson(bare);
    const wrongToken = await getJson(`${bare}?token=${SOME_TOKEN}`);
    const wrongHeader = await getJson(bare, { 'X-Download-Token': SOME_TOKEN });
    const byHeader = await getJson(bare, { 'X-Download-Token': accepted.token });

    expect(withoutToken.status).toBe(401);
    expect(withoutToken.json.code).toBe('DownloadTokenRequired');
    expect(wrongToken.status).toBe(403);
    expect(wrongHeader.status).toBe(403);
    for (const refused of [withoutToken, wrongToken, wrongHeader]) {
      expect(JSON.stringify(refused.json)).not.toContain(ready.url as string);
      expect(refused.json).not.toHaveProperty('status', 'READY');
    }
    expect(byHeader.status).toBe(200);
    expect(byHeader.json.url).toEqual(expect.any(String));
    expect(byHeader.json.webSocketUrl).toBe(accepted.webSocketUrl);
  });
});

describe('presigned URLs on the local S3', () => {
  it('refuses a tampered and an expired URL', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    const ready = await waitForStatus(accepted, 'READY');
    const url = new URL(ready.url as string);

    const signature = url.searchParams.get('X-Amz-Signature') as string;
    url.searchParams.set(
      'X-Amz-Signature',
      `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`,
    );
    expect((await download(url.href)).status).toBe(403);

    const record = await aws.record(accepted.downloadId);
    const shortLived = await getSignedUrl(
      aws.s3,
      new GetObjectCommand({ Bucket: stack.endpoints.bucket, Key: record?.objectKey as string }),
      { expiresIn: 1 },
    );
    expect((await download(shortLived)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect((await download(shortLived)).status).toBe(403);
  });
});
