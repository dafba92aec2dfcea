import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  invokeForResult,
  type RicFunction,
  RicFunctionError,
  ricAvailability,
  startRicFunction,
} from '../../local/ric-runtime.ts';
import { sampleBytes } from '../fixtures/ric-handlers/sample.mjs';
import { type ReadInvocation, readInvocation } from '../helpers/invocation.ts';

// These tests run tiny handlers under the real Lambda Node.js runtime client (aws-lambda-ric on
// Node.js 24) to record what it really does. Without it they skip, except under CI, where they fail.
const availability = ricAvailability();
const runnable = availability.ok || Boolean(process.env.CI);
const title = availability.ok ? 'aws-lambda-ric' : `aws-lambda-ric (unavailable: ${availability.reason})`;

const FIXTURES = fileURLToPath(new URL('../fixtures/ric-handlers/', import.meta.url));
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';
const DELIMITER = Buffer.alloc(8);

const running: RicFunction[] = [];
let logs: string[] = [];

async function start(handler: string, timeoutMs = 5_000): Promise<RicFunction> {
  const fn = await startRicFunction({
    name: handler.slice(0, handler.indexOf('.')),
    folder: { dir: FIXTURES, handler },
    environment: {},
    timeoutMs,
    log: (line) => logs.push(line),
  });
  running.push(fn);
  return fn;
}

/** Invokes and reads the posted body to its end, as a gateway would, then takes the outcome. */
function invokeAndRead(fn: RicFunction, event: unknown): Promise<ReadInvocation> {
  return readInvocation(fn.invoke(event));
}

/** Splits an HTTP-integration body into its JSON prelude and what follows the 8 NUL bytes. */
function splitPrelude(bytes: Buffer): { prelude: unknown; body: Buffer } {
  const end = bytes.indexOf(DELIMITER);
  expect(end).toBeGreaterThan(0);
  return { prelude: JSON.parse(bytes.subarray(0, end).toString('utf8')), body: bytes.subarray(end + 8) };
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(!runnable)(title, () => {
  beforeAll(() => {
    if (!availability.ok) throw new Error(`the real Lambda runtime is required here: ${availability.reason}`);
  });

  afterEach(async () => {
    const pids = running.flatMap((fn) => fn.processes());
    await Promise.all(running.splice(0).map((fn) => fn.close()));
    logs = [];
    // close() leaves no runtime process behind (nor a zombie: /proc has no entry left).
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('streams the prelude, 8 NUL bytes and the body byte for byte', async () => {
    const fn = await start('prelude-body.handler');

    const read = await invokeAndRead(fn, { size: 300_000, chunkSize: 16_384 });

    expect(read.outcome).toEqual({ ok: true });
    expect(read.contentType).toBe(HTTP_INTEGRATION);
    const { prelude, body } = splitPrelude(read.bytes);
    expect(prelude).toEqual({
      statusCode: 201,
      headers: { 'content-type': 'application/octet-stream', 'x-fixture': 'prelude-body' },
      cookies: ['a=1'],
    });
    expect(body.length).toBe(300_000);
    expect(sha256(body)).toBe(sha256(sampleBytes(300_000)));
  });

  it('reports a rejection mid-stream in the error trailers, and the same process serves the next invocation', async () => {
    const fn = await start('reject-mid-stream.handler');

    const failed = await invokeAndRead(fn, { fail: true });
    const [pid] = fn.processes();
    const next = await invokeAndRead(fn, { fail: false });

    expect(failed.outcome).toEqual({
      ok: false,
      errorType: 'UpstreamBrokeError',
      errorMessage: 'upstream closed after 12 bytes',
      crashed: false,
    });
    expect(failed.bodyError).toBeUndefined();
    expect(splitPrelude(failed.bytes).body.toString()).toBe('first bytes;');
    expect(next.outcome).toEqual({ ok: true });
    expect(splitPrelude(next.bytes).body.toString()).toBe(`first bytes;pid=${pid}`);
    expect(fn.processes()).toEqual([pid]);
    // The runtime logs the error itself, and the lines reach `log` prefixed with the function's name.
    expect(
      logs.some((line) => line.startsWith('[reject-mid-stream] ') && line.includes('Invoke Error')),
    ).toBe(true);
  });

  it('crashes the runtime process when the handler destroys the response stream; a new process serves next', async () => {
    const fn = await start('destroy-mid-stream.handler');

    const crashed = await invokeAndRead(fn, { destroy: true });
    const next = await invokeAndRead(fn, { destroy: false });

    expect(crashed.outcome).toMatchObject({ ok: false, errorType: 'Runtime.ExitError', crashed: true });
    expect(crashed.outcome.ok === false && crashed.outcome.errorMessage).toMatch(
      /^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 1$/,
    );
    // What was written before destroy() may or may not leave the dying process (usually it
    // does): whatever arrived is a prefix of it, and a body that started never ends cleanly.
    const written = Buffer.concat([
      Buffer.from(JSON.stringify({ statusCode: 200, headers: {} })),
      DELIMITER,
      Buffer.from('first bytes;'),
    ]);
    expect(written.subarray(0, crashed.bytes.length).equals(crashed.bytes)).toBe(true);
    if (crashed.contentType !== undefined) expect(crashed.bodyError).toBeDefined();
    // The process died of the request's unhandled 'socket hang up' (ECONNRESET).
    expect(logs.some((line) => line.includes('socket hang up'))).toBe(true);
    const newPid = Number(/pid=(\d+)$/.exec(splitPrelude(next.bytes).body.toString())?.[1]);
    expect(next.outcome).toEqual({ ok: true });
    expect(fn.processes()).toEqual([newPid]);
  });

  it('posts no prelude for end() alone nor for end(chunk); write("") then end() posts it', async () => {
    const fn = await start('empty-body.handler');

    const endOnly = await invokeAndRead(fn, { mode: 'end' });
    const writeEmpty = await invokeAndRead(fn, { mode: 'write-empty' });
    const endChunk = await invokeAndRead(fn, { mode: 'end-chunk' });

    for (const read of [endOnly, writeEmpty, endChunk]) {
      expect(read.outcome).toEqual({ ok: true });
      // HttpResponseStream.from() sets the content type at once, whatever is written later.
      expect(read.contentType).toBe(HTTP_INTEGRATION);
    }
    expect(endOnly.bytes.length).toBe(0);
    expect(splitPrelude(writeEmpty.bytes)).toEqual({
      prelude: { statusCode: 204, headers: { 'x-empty': 'yes' } },
      body: Buffer.alloc(0),
    });
    // end(chunk) bypasses the runtime's patched write(): the chunk goes out without the prelude.
    expect(endChunk.bytes.toString()).toBe('tail');
  });

  it('makes setContentType after the first write throw Runtime.InvalidStreamingOperation', async () => {
    const fn = await start('late-content-type.handler');

    const read = await invokeAndRead(fn, {});

    expect(read.contentType).toBe('application/octet-stream');
    expect(read.bytes.toString()).toBe('a');
    expect(read.outcome).toEqual({
      ok: false,
      errorType: 'Runtime.InvalidStreamingOperation',
      errorMessage: 'Cannot set content-type, too late.',
      crashed: false,
    });
  });

  it('times out a handler still running at the deadline and kills its process', async () => {
    const fn = await start('sleep.handler', 1_000);

    const timedOut = await invokeAndRead(fn, { ms: 10_000 });
    const [pid] = fn.processes();
    await waitUntil(() => pid === undefined || !isRunning(pid));
    const next = await invokeAndRead(fn, { ms: 10 });

    expect(timedOut.outcome).toEqual({
      ok: false,
      errorType: 'Sandbox.Timedout',
      errorMessage: 'Task timed out after 1.00 seconds',
      crashed: true,
    });
    // Nothing was written, so the runtime never started its response post.
    expect(timedOut.contentType).toBeUndefined();
    expect(logs.some((line) => line.endsWith('Task timed out after 1.00 seconds'))).toBe(true);
    expect(next.outcome).toEqual({ ok: true });
    expect(next.bytes.toString()).not.toBe(`pid=${pid}`);
  });

  it('starts a second process for a concurrent invocation and reuses both afterwards', async () => {
    const fn = await start('sleep.handler');

    const [first, second] = await Promise.all([
      invokeAndRead(fn, { ms: 300 }),
      invokeAndRead(fn, { ms: 300 }),
    ]);
    const pids = fn.processes().sort();
    const third = await invokeAndRead(fn, { ms: 0 });

    expect([first.outcome, second.outcome]).toEqual([{ ok: true }, { ok: true }]);
    expect(pids).toHaveLength(2);
    expect([first.bytes.toString(), second.bytes.toString()].sort()).toEqual(
      pids.map((pid) => `pid=${pid}`).sort(),
    );
    expect(pids.map((pid) => `pid=${pid}`)).toContain(third.bytes.toString());
    expect(fn.processes().sort()).toEqual(pids);
  });

  it.each([
    ['high-water-mark.handler', 4096],
    ['high-water-mark.standard', 65_536],
  ])('honours streamifyResponse(handler, { highWaterMark }) (%s)', async (handler, expected) => {
    const fn = await start(handler);

    const read = await invokeAndRead(fn, {});

    expect(read.outcome).toEqual({ ok: true });
    // The option sizes the response's socket: until the socket is attached (first write), the
    // stream reports Node 24's default of 64 KiB.
    expect(JSON.parse(read.bytes.toString())).toEqual({ before: 65_536, after: expected });
  });

  it('posts a buffered handler’s result, or its error to /error', async () => {
    const fn = await start('buffered.handler');

    const ok = await invokeAndRead(fn, {});
    const failed = await invokeAndRead(fn, { fail: true });

    expect(ok.outcome).toEqual({ ok: true });
    expect(ok.contentType).toBe('application/json');
    expect(JSON.parse(ok.bytes.toString())).toEqual({ pid: fn.processes()[0] });
    expect(failed.contentType).toBeUndefined();
    expect(failed.outcome).toEqual({
      ok: false,
      errorType: 'TypeError',
      errorMessage: 'bad input',
      crashed: false,
    });
  });

  it("gives a buffered function's result, or its error named after the error type, as Invoke does", async () => {
    const fn = await start('buffered.handler');

    const result = await invokeForResult(fn, {});
    const failure = await invokeForResult(fn, { fail: true }).catch((error: unknown) => error);

    expect(result).toEqual({ pid: fn.processes()[0] });
    expect(failure).toBeInstanceOf(RicFunctionError);
    expect(failure).toMatchObject({ name: 'TypeError', message: 'bad input' });
  });

  it('refuses a response that is not JSON as Runtime.InvalidResponse when a result is expected', async () => {
    const fn = await start('prelude-body.handler');

    const failure = await invokeForResult(fn, { size: 10, chunkSize: 5 }).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'Runtime.InvalidResponse' });
  });

  it('close() ends invocations in flight and environments still starting, leaving no process', async () => {
    const fn = await start('sleep.handler');
    const running = fn.invoke({ ms: 10_000 });
    await waitUntil(() => fn.processes().length === 1);
    const pid = fn.processes()[0] ?? 0;
    const starting = fn.invoke({ ms: 10_000 });

    await fn.close();

    const outcomes = await Promise.all([running.outcome, starting.outcome]);
    for (const outcome of outcomes)
      expect(outcome).toMatchObject({ ok: false, errorType: 'Runtime.ExitError', crashed: true });
    expect(fn.processes()).toEqual([]);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(() => fn.invoke({})).toThrow(/closed/);
  });

  it('answers the invocation that found init failing with the init error', async () => {
    const fn = await start('missing.handler');

    const read = await invokeAndRead(fn, {});

    expect(read.outcome).toMatchObject({ ok: false, errorType: 'Runtime.ImportModuleError', crashed: true });
    expect(read.outcome.ok === false && read.outcome.errorMessage).toMatch(/Cannot find module 'missing'/);
    await waitUntil(() => fn.processes().length === 0);
  });
});
