import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSha256 } from '../../local/sample-upstream.ts';
import { download, getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { openSocket } from '../helpers/ws.ts';

const MB = 1_000_000;
const TTL_SECONDS = 3;
let stack: RunningStack;
let rest: string;

beforeAll(async () => {
  // Presigned URLs that expire within seconds, so a late client meets an expired one.
  stack = await startStack({ PRESIGN_TTL_SECONDS: String(TTL_SECONDS) });
  rest = stack.endpoints.restApi;
});

afterAll(async () => {
  await stack?.stop();
});

async function readyDownload(): Promise<{ statusUrl: string; webSocketUrl: string; url: string }> {
  const accepted = await getJson(`${rest}/download/sample/2MB?mode=async`);
  expect(accepted.status).toBe(202);
  // The status URL carries the download token.
  const statusUrl = accepted.json.statusUrl as string;
  for (let i = 0; i < 150; i++) {
    const status = await getJson(statusUrl);
    if (status.json.status === 'READY') {
      return {
        statusUrl,
        webSocketUrl: accepted.json.webSocketUrl as string,
        url: status.json.url as string,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('download did not become ready');
}

describe('a client that comes back after the presigned URL expired', () => {
  it('gets a fresh, working URL from the status endpoint and over the WebSocket', async () => {
    const { statusUrl, webSocketUrl, url: firstUrl } = await readyDownload();
    await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 500));
    expect((await download(firstUrl)).status).toBe(403);

    const polled = await getJson(statusUrl);
    expect(polled.json.url).not.toBe(firstUrl);
    expect(Date.parse(polled.json.expiresAt as string)).toBeGreaterThan(Date.now());
    const viaStatus = await download(polled.json.url as string);
    expect(viaStatus.status).toBe(200);
    expect(viaStatus.sha256).toBe(sampleSha256(2 * MB));

    const client = await openSocket(webSocketUrl);
    const ready = await client.next('ready');
    await client.close();
    expect(ready.url).not.toBe(firstUrl);
    expect((await download(ready.url as string)).sha256).toBe(sampleSha256(2 * MB));
  });
});
