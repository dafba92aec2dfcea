/**
 * Runtime fidelity: the same requests through the local gateway, once with the handlers in the
 * local stack's in-process runtime and once bundled as `cdk deploy` bundles them and run by the
 * real Lambda runtime interface client (npm `aws-lambda-ric`, Lambda's managed Node.js runtime) on
 * Node 24. Both must give the client the same observable result, and the real runtime must survive
 * every failure (error trailers, never a process exit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyHandler } from '../../local/http-gateway.ts';
import { type HttpGateway, type RestRoute, startHttpGateway } from '../../local/http-gateway.ts';
import { type RicFunction, ricAvailability, startRicFunction } from '../../local/ric-runtime.ts';
import type { InvokeStreaming } from '../../local/runtime-response.ts';
import type { SampleUpstream } from '../../local/sample-upstream.ts';
import { startSampleUpstreamProcess } from '../../local/sample-upstream-process.ts';
import { installAwsLambdaGlobal } from '../../local/streaming-runtime.ts';
import { ENV } from '../../shared/env-names.ts';
import { type Download, download } from '../helpers/http.ts';
import { sampleRangeSha256, sampleSha256 } from '../helpers/sample-bytes.ts';

const MB = 1_000_000;
const STREAM_MAX_BYTES = 160 * MB;
/** The stream function's timeout on the `/short` route: its deadline (timeout − 5 s) falls mid-body. */
const SHORT_TIMEOUT_MS = 7_000;
const TIMEOUT_MS = 120_000;

const availability = ricAvailability();
// Where the runtime cannot be installed (no cmake, not Linux x64) the suite says why and skips;
// CI must run it, so there an unavailable runtime is a failure.
const skip = !availability.ok && !process.env.CI;
const suiteName = availability.ok
  ? 'the local gateway and the real Lambda runtime client agree'
  : `the local gateway and the real Lambda runtime client agree (skipped: ${availability.reason})`;

/** One way of running the functions, behind the same local gateway. */
interface Rig {
  name: string;
  rest: HttpGateway;
  functionUrl: HttpGateway;
  /** Lines the gateway and the runtimes logged (errors the runtime reported, crashes). */
  logs: string[];
  /** The real runtime's processes per function; empty for the in-process runtime. */
  processes(): number[];
  close(): Promise<void>;
}

let upstream: SampleUpstream;
const rigs: Rig[] = [];

function functionEnvironment(upstreamUrl: string): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'conformance',
    AWS_SECRET_ACCESS_KEY: 'conformance',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    NODE_OPTIONS: '--enable-source-maps',
    [ENV.upstreamBaseUrl]: upstreamUrl,
    [ENV.streamMaxBytes]: String(STREAM_MAX_BYTES),
    // The router's async branch is not exercised here; these only satisfy its configuration.
    [ENV.downloadTable]: 'conformance',
    [ENV.stateMachineArn]: 'arn:aws:states:us-east-1:000000000000:stateMachine:conformance',
    [ENV.webSocketUrl]: 'ws://127.0.0.1:9/',
  };
}

type Target = Omit<RestRoute, 'methods' | 'resource'>;

async function startRig(
  name: string,
  targets: { stream: Target; short: Target; download: Target },
  logs: string[],
  processes: () => number[],
  closeRuntimes: () => Promise<void>,
): Promise<Rig> {
  const log = (line: string) => logs.push(line);
  const route = (resource: string, target: Target): RestRoute => ({
    methods: ['GET', 'HEAD'],
    resource,
    ...target,
  });
  const rest = await startHttpGateway({
    mode: {
      kind: 'rest',
      routes: [
        route('/stream/{key+}', targets.stream),
        route('/short/{key+}', targets.short),
        route('/download/{key+}', targets.download),
      ],
    },
    log,
  });
  const functionUrl = await startHttpGateway({
    mode: { kind: 'function-url', ...targets.stream },
    log,
  });
  return {
    name,
    rest,
    functionUrl,
    logs,
    processes,
    async close() {
      await rest.close();
      await functionUrl.close();
      await closeRuntimes();
    },
  };
}

async function startInProcessRig(environment: Record<string, string>): Promise<Rig> {
  // This worker process is the in-process runtime's "container": its environment is the functions'
  // (their logs silenced here; the real runtime's go to the rig's log).
  Object.assign(process.env, environment, { POWERTOOLS_LOG_LEVEL: 'SILENT' });
  installAwsLambdaGlobal();
  const load = async (folder: string) =>
    ((await import(`../../functions/${folder}/handler.ts`)) as { handler: AnyHandler }).handler;
  const stream = await load('stream');
  const router = await load('router');
  return startRig(
    'in-process runtime',
    {
      stream: { functionName: 'stream', handler: stream, timeoutMs: TIMEOUT_MS },
      short: { functionName: 'stream', handler: stream, timeoutMs: SHORT_TIMEOUT_MS },
      download: { functionName: 'router', handler: router, timeoutMs: TIMEOUT_MS },
    },
    [],
    () => [],
    async () => {},
  );
}

async function startRicRig(environment: Record<string, string>): Promise<Rig> {
  const logs: string[] = [];
  const log = (line: string) => logs.push(line);
  const functions: RicFunction[] = await Promise.all([
    startRicFunction({ name: 'stream', folder: 'stream', environment, timeoutMs: TIMEOUT_MS, log }),
    startRicFunction({ name: 'stream', folder: 'stream', environment, timeoutMs: SHORT_TIMEOUT_MS, log }),
    startRicFunction({ name: 'router', folder: 'router', environment, timeoutMs: TIMEOUT_MS, log }),
  ]);
  const [stream, short, router] = functions as [RicFunction, RicFunction, RicFunction];
  const target = (functionName: string, fn: RicFunction, timeoutMs: number): Target => ({
    functionName,
    timeoutMs,
    invokeStreaming: fn.invoke as InvokeStreaming,
    handler: () => Promise.reject(new Error('runs under aws-lambda-ric')),
  });
  return startRig(
    'aws-lambda-ric on Node 24 (bundled)',
    {
      stream: target('stream', stream, TIMEOUT_MS),
      short: target('stream', short, SHORT_TIMEOUT_MS),
      download: target('router', router, TIMEOUT_MS),
    },
    logs,
    () => functions.flatMap((fn) => fn.processes()),
    async () => {
      await Promise.all(functions.map((fn) => fn.close()));
    },
  );
}

beforeAll(async () => {
  if (skip) return;
  upstream = await startSampleUpstreamProcess({ port: 0, host: '127.0.0.1', log: () => {} });
  const environment = functionEnvironment(upstream.url);
  rigs.push(await startInProcessRig(environment), await startRicRig(environment));
}, 120_000);

afterAll(async () => {
  for (const rig of rigs) await rig.close();
  await upstream?.close();
});

/** What a client can observe of one response. */
interface Observation {
  status: number;
  complete: boolean;
  bytes: number;
  sha256: string;
  headers: Record<string, string | undefined>;
  /** What the runtime reported for the invocation (error trailers), from the gateway's log. */
  reported: string[];
}

const OBSERVED_HEADERS = ['content-type', 'content-length', 'content-range', 'x-download-mode'];

async function observe(
  rig: Rig,
  url: string,
  options: Parameters<typeof download>[1] = {},
): Promise<Observation & { raw: Download }> {
  const from = rig.logs.length;
  const raw = await download(url, options);
  // The gateway logs the runtime's report before it cuts or ends the client's connection.
  const reported = rig.logs
    .slice(from)
    .map((line) => /^(?:stream|router): ([\w.]+): /.exec(line)?.[1])
    .filter((type): type is string => type !== undefined);
  const headers: Record<string, string | undefined> = {};
  for (const name of OBSERVED_HEADERS) headers[name] = raw.headers[name] as string | undefined;
  return {
    status: raw.status,
    complete: raw.error === undefined,
    bytes: raw.bytes,
    sha256: raw.sha256,
    headers,
    reported,
    raw,
  };
}

/** Runs the same request against both rigs and returns both observations. */
async function both(path: string, options: Parameters<typeof download>[1] = {}, on: 'rest' | 'url' = 'rest') {
  const results: Array<Observation & { raw: Download }> = [];
  for (const rig of rigs) {
    const base = on === 'rest' ? rig.rest.url : rig.functionUrl.url;
    results.push(await observe(rig, `${base}${path}`, options));
  }
  return results as [Observation & { raw: Download }, Observation & { raw: Download }];
}

/** The observation minus what legitimately varies between runs (how far an aborted body got). */
function comparable(observation: Observation) {
  const { raw: _raw, ...rest } = observation as Observation & { raw?: Download };
  return observation.complete ? rest : { ...rest, bytes: undefined, sha256: undefined };
}

function expectSame(results: [Observation, Observation]) {
  expect(comparable(results[1]), `${rigs[1]?.name} vs ${rigs[0]?.name}`).toEqual(comparable(results[0]));
}

/** The real runtime survived: the same processes are there and no runtime exited. */
function expectRuntimeAlive(before: number[]) {
  const ric = rigs[1] as Rig;
  expect(ric.processes()).toEqual(expect.arrayContaining(before));
  expect(ric.logs.join('\n')).not.toMatch(/Runtime\.ExitError|Runtime exited/);
}

describe.skipIf(skip)(suiteName, () => {
  it('streams 150 MB byte for byte', async () => {
    const results = await both('/stream/sample/150MB');
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 200, complete: true, bytes: 150 * MB, reported: [] });
    expect(results[0].sha256).toBe(sampleSha256(150 * MB));
  });

  it('answers a Range with 206', async () => {
    const results = await both('/stream/sample/5MB', { headers: { range: 'bytes=1000-1999' } });
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 206, complete: true, bytes: 1000 });
    expect(results[0].headers['content-range']).toBe(`bytes 1000-1999/${5 * MB}`);
    expect(results[0].sha256).toBe(sampleRangeSha256(1000, 2000));
  });

  it('answers HEAD with headers only', async () => {
    const results = await both('/stream/sample/5MB', { method: 'HEAD' });
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 200, complete: true, bytes: 0 });
    expect(results[0].headers['content-length']).toBe(String(5 * MB));
  });

  it('sends status and headers for an empty body of unknown length', async () => {
    const results = await both('/stream/sample/0?chunked=1');
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 200, complete: true, bytes: 0, reported: [] });
    expect(results[0].headers['x-download-mode']).toBe('stream');
  });

  it.each([
    ['upstream 404', '/stream/status/404', 404, 'UpstreamNotFound'],
    ['a bad key', '/stream/%2e%2e/x', 400, 'InvalidKey'],
    [
      'upstream breaking before the first body byte',
      '/stream/sample/5MB?malformed=1',
      502,
      'UpstreamUnreachable',
    ],
  ])('answers %s with a problem document', async (_name, path, status, code) => {
    const results = await both(path, { keepBody: true });
    expectSame(results);
    expect(results[0]).toMatchObject({ status, complete: true, reported: [] });
    expect(JSON.parse(results[0].raw.body?.toString() ?? '{}')).toMatchObject({ status, code });
  });

  it.each([
    ['upstream failing mid-body (REST)', '/stream/sample/20MB?chunked=1&failAfter=1000000', 'rest'],
    ['upstream failing mid-body (Function URL)', '/sample/20MB?chunked=1&failAfter=1000000', 'url'],
    ['upstream failing mid-body (router)', '/download/sample/20MB?failAfter=1000000', 'rest'],
    ['a body shorter than announced', '/stream/sample/20MB?failAfter=3000000', 'rest'],
  ] as const)('aborts the response on %s, and the runtime lives on', async (_name, path, on) => {
    const before = (rigs[1] as Rig).processes();
    const results = await both(path, {}, on);
    expectSame(results);
    expect(results[0]).toMatchObject({
      status: 200,
      complete: false,
      reported: ['UpstreamUnavailableError'],
    });
    expect(results[0].bytes).toBeLessThan(20 * MB);
    expectRuntimeAlive(before);
  });

  it('aborts the response when a body of unknown length outgrows STREAM_MAX_BYTES', async () => {
    // A body longer than its Content-Length never reaches the function: undici enforces the
    // framing. A chunked body that grows past the streaming limit is the overrun case here.
    const before = (rigs[1] as Rig).processes();
    const results = await both('/stream/sample/170MB?chunked=1');
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 200, complete: false, reported: ['FileTooLargeError'] });
    expectRuntimeAlive(before);
  });

  it('aborts the response when the function reaches its deadline mid-body', async () => {
    const before = (rigs[1] as Rig).processes();
    const results = await both('/short/sample/50MB?rate=4000000');
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 200, complete: false, reported: ['UpstreamTimeoutError'] });
    expectRuntimeAlive(before);
  });

  it('lets the function finish when the client goes away mid-body, and serves the next request', async () => {
    const before = (rigs[1] as Rig).processes();
    const results = await both('/stream/sample/30MB', { abortAfterBytes: MB });
    expectSame(results);
    expect(results[0]).toMatchObject({ status: 200, complete: false, reported: [] });
    const next = await both('/stream/sample/1MB');
    expectSame(next);
    expect(next[0].sha256).toBe(sampleSha256(MB));
    expectRuntimeAlive(before);
  });
});
