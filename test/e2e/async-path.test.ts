import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSha256 } from '../../local/sample-upstream.ts';
import { localClients } from '../helpers/aws.ts';
import { download, getJson } from '../helpers/http.ts';
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

interface Accepted {
  downloadId: string;
  executionArn: string;
  webSocketEndpoint: string;
  webSocketUrl: string;
  statusUrl: string;
  expiresAt: string;
  reason: string;
  status: string;
}

async function startAsync(path: string, headers: Record<string, string> = {}): Promise<Accepted> {
  const response = await getJson(`${rest}${path}`, headers);
  expect(response.status, JSON.stringify(response.json)).toBe(202);
  expect(response.headers.location).toBe(response.json.statusUrl);
  return response.json as unknown as Accepted;
}

async function waitForStatus(downloadId: string, status: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await getJson(`${rest}/downloads/${downloadId}`);
    if (current.json.status === status) return current.json;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(current.json)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('GET /download/{key+} above the threshold', () => {
  it('answers 202, pushes progress then a ready URL to a client that names the execution in a header, and the URL serves the same bytes', async () => {
    const accepted = await startAsync('/download/sample/250MB');
    expect(accepted).toMatchObject({
      status: 'PENDING',
      reason: 'too-large-to-stream',
      webSocketEndpoint: ws,
    });
    expect(accepted.executionArn).toContain(`:execution:DownloadWorkflow:${accepted.downloadId}`);

    const client = await openSocket(accepted.webSocketEndpoint, {
      'X-StateMachine-ExecutionArn': accepted.executionArn,
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
    await waitForStatus(accepted.downloadId, 'READY');

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
    const second = await openSocket(`${ws}?executionArn=${encodeURIComponent(accepted.executionArn)}`);
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
    const status = await waitForStatus(accepted.downloadId, 'FAILED');
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
    expect((await waitForStatus(accepted.downloadId, 'FAILED')).error).toMatchObject({
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

describe('the WebSocket handshake', () => {
  it.each([
    [
      'an unknown execution ARN',
      {
        'X-StateMachine-ExecutionArn':
          'arn:aws:states:us-east-1:000000000000:execution:DownloadWorkflow:00000000-0000-4000-8000-000000000000',
      },
      '',
      404,
    ],
    ['a malformed execution ARN', { 'X-StateMachine-ExecutionArn': 'not-an-arn' }, '', 400],
    ['an unknown download id', {}, '?downloadId=00000000-0000-4000-8000-000000000000', 404],
    ['a malformed download id', {}, '?downloadId=..%2Fx', 400],
    ['no download at all', {}, '', 400],
  ])('refuses %s and stores nothing', async (_name, headers, query, status) => {
    const before = await aws.itemCount();
    await expect(openSocket(`${ws}${query}`, headers)).rejects.toMatchObject({ statusCode: status });
    expect(await aws.itemCount()).toBe(before);
  });

  it('binds ?downloadId= sent next to an empty X-StateMachine-ExecutionArn header', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    const client = await openSocket(accepted.webSocketUrl, { 'X-StateMachine-ExecutionArn': '' });
    client.send({ action: 'status' });
    expect(await client.next('status')).toMatchObject({ downloadId: accepted.downloadId });
    await client.close();
  });

  it('refuses an ARN whose name is a real download but whose state machine is not', async () => {
    const accepted = await startAsync('/download/sample/2MB?mode=async');
    const forged = accepted.executionArn.replace(':DownloadWorkflow:', ':OtherMachine:');
    await expect(openSocket(ws, { 'X-StateMachine-ExecutionArn': forged })).rejects.toMatchObject({
      statusCode: 404,
    });
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
    expect((await aws.record(accepted.downloadId))?.connectionId).toEqual(expect.any(String));

    await client.next('ready', 60_000);
    await client.close();
    const ready = await waitForStatus(accepted.downloadId, 'READY');
    expect(ready).toMatchObject({ size: 6 * MB, bytes: 6 * MB, contentType: 'application/octet-stream' });
    expect(ready.url).toEqual(expect.any(String));
    // $disconnect removed the connection id.
    await expect.poll(async () => (await aws.record(accepted.downloadId))?.connectionId).toBeUndefined();
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    expect((await getJson(`${rest}/downloads/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await getJson(`${rest}/downloads/not-an-id`)).status).toBe(400);
  });
});

describe('presigned URLs on the local S3', () => {
  it('refuses a tampered and an expired URL', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    const ready = await waitForStatus(accepted.downloadId, 'READY');
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
