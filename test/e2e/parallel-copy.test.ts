import { SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleBytes, sampleSha256 } from '../../local/sample-upstream.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';
import { localClients } from '../helpers/aws.ts';
import { type AcceptedDownload, download, getJson, startAsyncDownload } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { openSocket } from '../helpers/ws.ts';

const MB = 1_000_000;
const MIB = 1024 * 1024;
let stack: RunningStack;
let rest: string;
let aws: ReturnType<typeof localClients>;

beforeAll(async () => {
  // Parallel from 20 MiB, in 5 MiB parts, 4 ranges at once; a worker hands its range back after
  // 1 s (at a part boundary), so a range of three parts at 5 MB/s takes several invocations.
  stack = await startStack({
    STREAM_MAX_BYTES: String(10 * MB),
    PARALLEL_COPY_MIN_BYTES: String(20 * MIB),
    PARALLEL_COPY_CONCURRENCY: '4',
    PARALLEL_COPY_WORKER_SECONDS: '1',
    UPLOAD_PART_SIZE_BYTES: String(5 * MIB),
  });
  rest = stack.endpoints.restApi;
  aws = localClients(stack.endpoints);
});

afterAll(async () => {
  aws?.close();
  await stack?.stop();
});

function startAsync(path: string): Promise<AcceptedDownload> {
  return startAsyncDownload(`${rest}${path}`);
}

/** The sample upstream's log lines for one URL: `GET /sample/… → 206 sent after N body bytes`. */
function upstreamAnswers(pathAndQuery: string): string[] {
  return stack
    .logs()
    .split('\n')
    .filter((line) => line.includes(`GET ${pathAndQuery} →`));
}

/** Nothing of the download in S3: no object, no open multipart upload (polled: workers stop within a second). */
async function expectNothingLeft(downloadId: string): Promise<void> {
  const prefix = `downloads/${downloadId}/`;
  const deadline = Date.now() + 5_000;
  for (;;) {
    const objects = await aws.objectsUnder(prefix);
    const uploads = await aws.uploadsUnder(prefix);
    if ((objects.length === 0 && uploads.length === 0) || Date.now() > deadline) {
      expect(objects).toEqual([]);
      expect(uploads).toEqual([]);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('the parallel ranged copy', () => {
  it('copies a large file in ranges over several invocations per range into one object with the right sha256', async () => {
    const path = '/sample/60MB?rate=5000000';
    const started = Date.now();
    const accepted = await startAsync(`/download${path}`);
    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready', 90_000);
    const elapsedMs = Date.now() - started;
    await client.close();

    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(60 * MB));
    // The ranges' CRCs, combined in order, are the file's.
    expect(ready).toMatchObject({
      size: 60 * MB,
      checksum: { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(crc64Nvme(sampleBytes(0, 60 * MB))) },
    });
    // Two whole-file GETs that read only the headers (the router's, the plan's), then ranged GETs:
    // 4 ranges, handed back and invoked again at least once.
    const answers = upstreamAnswers(path);
    const ranged = answers.filter((line) => line.includes('→ 206'));
    expect(answers.filter((line) => line.includes('→ 200'))).toHaveLength(2);
    expect(ranged.length).toBeGreaterThan(4);
    const record = await aws.record(accepted.downloadId);
    expect(Object.keys(record?.copyRanges as object).sort()).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(record).toMatchObject({ status: 'READY', bytes: 60 * MB, totalBytes: 60 * MB });
    // Progress from the four workers adds up, never goes back, and reaches the socket about once a second.
    const progress = client.messages.filter((m) => m.type === 'progress').map((m) => m.bytes as number);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / 1000) + 1);
  });

  it('ends in UpstreamChanged, status FAILED and nothing left in S3 when the file changes mid-copy', async () => {
    // The sample's ETag changes once 30 MB of this URL were served: later If-Match requests get 412.
    const accepted = await startAsync('/download/sample/60MB?rate=5000000&changeAfter=30000000');
    const client = await openSocket(accepted.webSocketUrl);
    const failed = await client.next('failed', 90_000);
    await client.close();

    expect(failed).toMatchObject({ downloadId: accepted.downloadId, error: { code: 'UpstreamChanged' } });
    const status = await getJson(accepted.statusUrl);
    expect(status.json).toMatchObject({ status: 'FAILED', error: { code: 'UpstreamChanged' } });
    expect(upstreamAnswers('/sample/60MB?rate=5000000&changeAfter=30000000').join('\n')).toMatch(/→ 412/);
    await expectNothingLeft(accepted.downloadId);
  });

  it('stores nothing once its execution is stopped: the workers under way stop too', async () => {
    const sfn = new SFNClient({
      endpoint: stack.endpoints.stepFunctions,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    // 4 ranges at 4 MB/s each: about 4 s of copying if left alone.
    const accepted = await startAsync('/download/sample/60MB?rate=4000000');
    const client = await openSocket(accepted.webSocketUrl);
    await client.next('progress', 30_000);
    const started = Date.now();

    await sfn.send(new StopExecutionCommand({ executionArn: accepted.executionArn }));
    const failed = await client.next('failed', 30_000);
    await client.close();
    sfn.destroy();

    expect(failed).toMatchObject({ error: { code: 'DownloadStopped' } });
    // Past the time the copy would have needed, had the workers gone on.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 5_000 - Date.now())));
    await expectNothingLeft(accepted.downloadId);
    expect((await getJson(accepted.statusUrl)).json.status).toBe('FAILED');
  });

  it('retries a range that fails once, resumes it and delivers the right bytes', async () => {
    // The first response to pass 3 MB breaks; its range is retried on its own.
    const path = '/sample/40MB?failAfter=3000000&failTimes=1';
    const accepted = await startAsync(`/download${path}`);
    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready', 90_000);
    await client.close();

    expect(upstreamAnswers(path).filter((line) => line.includes('failed on purpose'))).toHaveLength(1);
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(40 * MB));
  });

  it('keeps the single-stream copy for a file of unknown length, one from an origin without ranges, and one below the threshold', async () => {
    for (const path of [
      '/download/sample/30MB?chunked=1&mode=async',
      '/download/sample/30MB?ranges=0&mode=async',
      '/download/sample/15MB?mode=async',
    ]) {
      const accepted = await startAsync(path);
      const client = await openSocket(accepted.webSocketUrl);
      const ready = await client.next('ready', 60_000);
      await client.close();

      expect((await download(ready.url as string)).sha256, path).toBe(sampleSha256(ready.size as number));
      expect((await aws.record(accepted.downloadId))?.copyRanges, path).toBeUndefined();
    }
  });
});
