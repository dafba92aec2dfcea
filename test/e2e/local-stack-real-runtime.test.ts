/**
 * `LOCAL_RUNTIME=ric npm start`: the local stack runs every function, bundled as CDK bundles it,
 * under the real Lambda runtime client, one process per warm execution environment. The whole
 * product must work that way: streaming through both gateways, failures reported without killing
 * a runtime process, the router starting async downloads with the stack's local AWS endpoints, the
 * workflow's functions (parallel copy workers included) invoked as processes of their own, and
 * their errors reaching the workflow by name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ricAvailability } from '../../local/ric-runtime.ts';
import { download, getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { sampleSha256 } from '../helpers/sample-bytes.ts';
import { openSocket } from '../helpers/ws.ts';

const MB = 1_000_000;
const MIB = 1024 * 1024;
const availability = ricAvailability();
const skip = !availability.ok && !process.env.CI;
const suiteName = availability.ok
  ? 'the local stack with LOCAL_RUNTIME=ric'
  : `the local stack with LOCAL_RUNTIME=ric (skipped: ${availability.reason})`;

let stack: RunningStack;

beforeAll(async () => {
  if (skip) return;
  stack = await startStack({
    LOCAL_RUNTIME: 'ric',
    STREAM_MAX_BYTES: String(50 * MB),
    POWERTOOLS_LOG_LEVEL: 'INFO',
    // 60 MB is copied in parallel: 3 ranges of 5 MiB parts at once.
    PARALLEL_COPY_MIN_BYTES: String(20 * MIB),
    PARALLEL_COPY_CONCURRENCY: '3',
    UPLOAD_PART_SIZE_BYTES: String(5 * MIB),
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe.skipIf(skip)(suiteName, () => {
  it('streams through the REST API and the Function URL from runtime processes', async () => {
    const [viaRest, viaUrl] = await Promise.all([
      download(`${stack.endpoints.restApi}/stream/sample/25MB`),
      download(`${stack.endpoints.functionUrl}/sample/25MB`),
    ]);
    for (const result of [viaRest, viaUrl]) {
      expect(result.status).toBe(200);
      expect(result.error).toBeUndefined();
      expect(result.sha256).toBe(sampleSha256(25 * MB));
    }
    // The runtime client's own log lines, prefixed with the function's name. The handler logs
    // after its stream ended, so the line may arrive just after the client saw the last byte.
    await expect.poll(() => stack.logs()).toMatch(/\[stream\] .*"message":"download streamed"/);
  });

  it('aborts a failing stream and keeps the runtime process', async () => {
    const failed = await download(`${stack.endpoints.restApi}/stream/sample/20MB?failAfter=1000000`);
    expect(failed.status).toBe(200);
    expect(failed.error).toBeDefined();
    const next = await download(`${stack.endpoints.restApi}/stream/sample/1MB`);
    expect(next.sha256).toBe(sampleSha256(MB));
    await expect.poll(() => stack.logs()).toMatch(/stream: UpstreamUnavailableError/);
    expect(stack.logs()).not.toMatch(/Runtime\.ExitError|Runtime exited/);
  });

  it('starts an async download from the router and copies it in parallel ranges, each worker a runtime process', async () => {
    const accepted = await getJson(`${stack.endpoints.restApi}/download/sample/60MB`);
    expect(accepted.status).toBe(202);
    const client = await openSocket(accepted.json.webSocketUrl as string);
    try {
      const ready = await client.next('ready', 60_000);
      const file = await download(ready.url as string);
      expect(file.sha256).toBe(sampleSha256(60 * MB));
    } finally {
      await client.close();
    }
    // The workers' own log lines, from their runtime processes (prefixed with the function's name).
    const copied = stack.logs().match(/\[copy-range\] .*"message":"range copied"/g) ?? [];
    expect(copied.length).toBeGreaterThanOrEqual(3);
    expect(stack.logs()).toMatch(/\[complete-copy\] /);
  });

  it("ends a download whose digest does not match in failed, the error's name crossing from the runtime process", async () => {
    const accepted = await getJson(`${stack.endpoints.restApi}/download/sample/30MB?digest=bad&mode=async`);
    expect(accepted.status).toBe(202);
    const client = await openSocket(accepted.json.webSocketUrl as string);
    try {
      const failed = await client.next('failed', 60_000);
      expect(failed).toMatchObject({ type: 'failed', error: { code: 'ChecksumMismatch' } });
    } finally {
      await client.close();
    }
  });
});
