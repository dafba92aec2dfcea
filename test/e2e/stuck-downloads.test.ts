import { DescribeExecutionCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import { localClients } from '../helpers/aws.ts';
import { getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { openSocket, type RecordingSocket } from '../helpers/ws.ts';

// Endings no Catch inside the workflow sees: a stopped execution, a timed-out one. The watcher
// (EventBridge rule → workflow-ended) must still settle the download: FAILED, a `failed` message,
// nothing left in S3 — also when the copy's invocation outlives its execution, as on AWS.

/** The stack's workflow timeout (local test knob): the synthesized definition says 2 hours. */
const WORKFLOW_TIMEOUT_SECONDS = 3;
const MiB = 1024 * 1024;

let stack: RunningStack;
let rest: string;
let sfn: SFNClient;
let aws: ReturnType<typeof localClients>;

beforeAll(async () => {
  stack = await startStack({
    LOCAL_WORKFLOW_TIMEOUT_SECONDS: String(WORKFLOW_TIMEOUT_SECONDS),
    // 5 MiB parts (the smallest S3 takes): a multipart upload is open within a second.
    UPLOAD_PART_SIZE_BYTES: String(5 * MiB),
  });
  rest = stack.endpoints.restApi;
  sfn = new SFNClient({
    endpoint: stack.endpoints.stepFunctions,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
  });
  aws = localClients(stack.endpoints);
});

afterAll(async () => {
  sfn?.destroy();
  aws?.close();
  await stack?.stop();
});

interface Accepted {
  downloadId: string;
  executionArn: string;
  webSocketUrl: string;
  statusUrl: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts an async download of `sample/{size}` served at `rate` bytes/s, and connects a client to it. */
async function startSlowDownload(size: string, rate: number) {
  const started = Date.now();
  const response = await getJson(`${rest}/download/sample/${size}?rate=${rate}&mode=async`);
  expect(response.status, JSON.stringify(response.json)).toBe(202);
  const accepted = response.json as unknown as Accepted;
  const client = await openSocket(accepted.webSocketUrl);
  return { accepted, client, started };
}

async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`${what}: not after ${timeoutMs} ms\n${stack.logs().slice(-3000)}`);
    await sleep(100);
  }
}

/** The multipart uploads and objects under the download's prefix. */
async function leftovers(downloadId: string) {
  const prefix = `downloads/${downloadId}/`;
  return { uploads: await aws.uploadsUnder(prefix), objects: await aws.objectsUnder(prefix) };
}

/** The `failed` message and the status a client sees once the download is settled. */
async function outcome(accepted: Accepted, client: RecordingSocket) {
  const failed = await client.next('failed', 15_000);
  const status = await getJson(accepted.statusUrl);
  await client.close();
  return { failed, status: status.json };
}

describe('a download whose execution ends where no Catch sees it', () => {
  it('is FAILED (DownloadStopped) with a failed message and nothing in S3 after StopExecution mid-copy', async () => {
    // 40 MB at 8 MB/s: 5 s of copying; stopped once its first part is in, well inside the timeout.
    const { accepted, client } = await startSlowDownload('40MB', 8_000_000);
    await client.next('progress');
    await waitUntil(
      'a multipart upload is open',
      async () => (await leftovers(accepted.downloadId)).uploads.length > 0,
    );

    await sfn.send(new StopExecutionCommand({ executionArn: accepted.executionArn }));
    const { failed, status } = await outcome(accepted, client);

    const error = { code: 'DownloadStopped', message: 'The download was stopped' };
    expect(failed).toEqual({ type: 'failed', downloadId: accepted.downloadId, error });
    expect(status).toMatchObject({ downloadId: accepted.downloadId, status: 'FAILED', error });
    const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: accepted.executionArn }));
    expect(execution.status).toBe('ABORTED');
    await waitUntil('the open upload is aborted', async () => {
      const left = await leftovers(accepted.downloadId);
      return left.uploads.length === 0 && left.objects.length === 0;
    });
  });

  it('is FAILED (Timeout) with a failed message and nothing in S3 when the execution times out', async () => {
    // 24 MB at 4 MB/s: 6 s of copying against a 3 s workflow timeout.
    const { accepted, client, started } = await startSlowDownload('24MB', 4_000_000);

    const { failed, status } = await outcome(accepted, client);

    const error = { code: 'Timeout', message: 'The download did not finish in time' };
    expect(failed).toEqual({ type: 'failed', downloadId: accepted.downloadId, error });
    expect(status).toMatchObject({ status: 'FAILED', error });
    expect(Date.now() - started).toBeGreaterThanOrEqual(WORKFLOW_TIMEOUT_SECONDS * 1000);
    const execution = await sfn.send(new DescribeExecutionCommand({ executionArn: accepted.executionArn }));
    expect(execution).toMatchObject({ status: 'TIMED_OUT', error: 'States.Timeout' });
    // Until after the copy, had it gone on, would have finished: no upload, no object.
    await sleep(Math.max(0, started + 6_000 + 1_500 - Date.now()));
    expect(await leftovers(accepted.downloadId)).toEqual({ uploads: [], objects: [] });
    expect((await getJson(accepted.statusUrl)).json.status).toBe('FAILED');
  });

  it('leaves nothing in S3 when stopped before the copy opened its upload (the copy outlives the cleanup)', async () => {
    // 12 MB at 3 MB/s: the first 5 MiB part needs about 1.7 s; the whole copy 4 s.
    const { accepted, client, started } = await startSlowDownload('12MB', 3_000_000);
    await client.next('progress');
    expect((await leftovers(accepted.downloadId)).uploads).toEqual([]);

    await sfn.send(new StopExecutionCommand({ executionArn: accepted.executionArn }));
    const { failed } = await outcome(accepted, client);

    expect(failed).toMatchObject({ type: 'failed', error: { code: 'DownloadStopped' } });
    // The watcher cleaned S3 before the copy had anything there; the copy, still running in its own
    // invocation, must see the download is over and not store the file afterwards.
    await sleep(Math.max(0, started + 4_000 + 1_500 - Date.now()));
    expect(await leftovers(accepted.downloadId)).toEqual({ uploads: [], objects: [] });
  });
});
