import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSha256 } from '../../local/sample-upstream.ts';
import { ENV } from '../../shared/env-names.ts';
import { localClients } from '../helpers/aws.ts';
import { download, getJson, startAsyncDownload } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { openSocket } from '../helpers/ws.ts';

const MB = 1_000_000;
let stack: RunningStack;
let rest: string;
let ws: string;
let aws: ReturnType<typeof localClients>;

beforeAll(async () => {
  // The opt-in, seed-compatible mode: the X-StateMachine-ExecutionArn header alone is proof enough.
  stack = await startStack({ [ENV.webSocketAuth]: 'execution-arn-header' });
  rest = stack.endpoints.restApi;
  ws = stack.endpoints.webSocket as string;
  aws = localClients(stack.endpoints);
});

afterAll(async () => {
  aws?.close();
  await stack?.stop();
});

function startAsync(path: string) {
  return startAsyncDownload(`${rest}${path}`);
}

describe('webSocketAuth execution-arn-header (opt-in)', () => {
  it('delivers progress and ready to a client that sends only the X-StateMachine-ExecutionArn header', async () => {
    const accepted = await startAsync('/download/sample/6MB?rate=3000000&mode=async');

    const client = await openSocket(ws, { 'X-StateMachine-ExecutionArn': accepted.executionArn });
    const progress = await client.next('progress');
    const ready = await client.next('ready', 60_000);
    await client.close();

    expect(progress).toMatchObject({ downloadId: accepted.downloadId });
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(6 * MB));
  });

  it('still refuses the download id or the ARN in the query without the token, and stores nothing', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');
    const before = await aws.itemCount();

    await expect(openSocket(`${ws}?downloadId=${accepted.downloadId}`)).rejects.toMatchObject({
      statusCode: 401,
    });
    await expect(
      openSocket(`${ws}?executionArn=${encodeURIComponent(accepted.executionArn)}`),
    ).rejects.toMatchObject({ statusCode: 401 });

    expect(await aws.itemCount()).toBe(before);
    expect((await aws.record(accepted.downloadId))?.connections).toEqual({});
  });

  it('keeps the token flows working, and the status endpoint still needs the token', async () => {
    const accepted = await startAsync('/download/sample/1MB?mode=async');

    const client = await openSocket(accepted.webSocketUrl);
    const ready = await client.next('ready', 60_000);
    await client.close();

    expect(ready.url).toEqual(expect.any(String));
    expect((await getJson(`${rest}/downloads/${accepted.downloadId}`)).status).toBe(401);
    expect((await getJson(accepted.statusUrl)).json.url).toEqual(expect.any(String));
  });
});
