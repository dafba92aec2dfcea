import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { Context } from 'aws-lambda';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLocalContext } from '../../local/lambda-service.ts';
import { installAwsLambdaGlobal, invokeInProcess } from '../../local/streaming-runtime.ts';
import type { RouterConfig, StreamConfig } from '../../shared/config.ts';
import { parseDownloadKey } from '../../shared/download-key.ts';
import type { ExecutionStatusChangeEvent } from '../../shared/downloads/execution-events.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { ENV } from '../../shared/env-names.ts';
import type { LambdaResponseStream } from '../../shared/http/awslambda.ts';
import type { HttpRequest } from '../../shared/http/request.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';
import { readInvocation } from '../helpers/invocation.ts';

// Upstream is the only network the router reaches: answer from memory instead (no sockets).
const upstreamBody = Buffer.from('a,b\n1,2\n');
vi.mock('../../shared/upstream.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../shared/upstream.ts')>()),
  openUpstream: vi.fn(async () => ({
    url: new URL('https://upstream.example/exports/small.csv'),
    statusCode: 200,
    headers: { 'content-type': 'text/csv', 'content-length': String(upstreamBody.length) },
    contentLength: upstreamBody.length,
    body: Readable.from([upstreamBody]),
  })),
}));

/**
 * Every JSON line written while `act` runs: Powertools' Logger and Metrics write to stdout, the
 * Logger's WARN and ERROR to stderr.
 */
async function captureStdout(act: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: Record<string, unknown>[] = [];
  const collect = (chunk: unknown) => {
    for (const line of String(chunk).split('\n')) {
      if (line.trim().startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(collect),
    vi.spyOn(process.stderr, 'write').mockImplementation(collect),
  ];
  try {
    await act();
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return lines;
}

/** The EMF lines among `lines`: metric names with the dimensions they are published under. */
function emfMetrics(lines: Record<string, unknown>[]) {
  return lines
    .filter((line) => line._aws !== undefined)
    .flatMap((line) => {
      const aws = line._aws as {
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
      };
      return aws.CloudWatchMetrics.flatMap((directive) =>
        directive.Metrics.map((metric) => ({
          namespace: directive.Namespace,
          name: metric.Name,
          value: line[metric.Name],
          dimensions: Object.fromEntries(
            (directive.Dimensions[0] ?? []).map((name) => [name, line[name]] as const),
          ),
        })),
      );
    });
}

function executionEnded(name: string): ExecutionStatusChangeEvent {
  const executionArn = `arn:aws:states:eu-west-1:123456789012:execution:downloads:${name}`;
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'eu-west-1',
    resources: [executionArn],
    detail: {
      executionArn,
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:downloads',
      name,
      status: 'FAILED',
      startDate: Date.now() - 1000,
      stopDate: Date.now(),
      input: null,
      output: null,
      error: 'States.Runtime',
    },
  } as ExecutionStatusChangeEvent;
}

beforeEach(() => {
  vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'LargeDownloads');
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('per-invocation logger context (workflow-ended handler, real Powertools)', () => {
  it('sets the download id as correlation id and leaks no key into the next invocation', async () => {
    vi.stubEnv(ENV.downloadTable, 'downloads');
    vi.stubEnv(ENV.downloadBucket, 'bucket');
    vi.stubEnv(ENV.webSocketManagementUrl, 'https://ws.example/live');
    // The record is already settled: the handler only reads it (no S3, no @connections).
    vi.spyOn(DownloadStore.prototype, 'markFailedIfUnsettled').mockResolvedValue(undefined);
    vi.spyOn(DownloadStore.prototype, 'get').mockResolvedValue({ status: 'READY' } as never);
    const { handler } = await import('../../functions/workflow-ended/handler.ts');
    const [first, second] = [randomUUID(), randomUUID()];
    const contexts: Context[] = [0, 1, 2].map(() => createLocalContext('workflow-ended', 5_000));

    const lines = await captureStdout(async () => {
      await handler(executionEnded(first), contexts[0]);
      await handler(executionEnded(second), contexts[1]);
      await handler(executionEnded('manual-test-run'), contexts[2]);
    });

    const logs = lines.filter((line) => line.message !== undefined);
    const byRequest = (context: Context | undefined) =>
      logs.filter((line) => line.function_request_id === context?.awsRequestId);
    expect(byRequest(contexts[0]).length).toBeGreaterThan(0);
    for (const line of byRequest(contexts[0])) expect(line.correlation_id).toBe(first);
    expect(byRequest(contexts[1]).length).toBeGreaterThan(0);
    for (const line of byRequest(contexts[1])) {
      expect(line.correlation_id).toBe(second);
      expect(JSON.stringify(line)).not.toContain(first);
    }
    // Not a download: the request id correlates, and nothing of the earlier ones remains.
    expect(byRequest(contexts[2]).length).toBeGreaterThan(0);
    for (const line of byRequest(contexts[2])) {
      expect(line.correlation_id).toBe(contexts[2]?.awsRequestId);
      expect(JSON.stringify(line)).not.toContain(first);
      expect(JSON.stringify(line)).not.toContain(second);
    }
  });
});

describe('observeInvocation', () => {
  it('removes temporary keys and flushes metrics when the invocation rejects', async () => {
    const logger = createLogger('observability-test');
    const metrics = createMetrics('observability-test');
    const downloadId = randomUUID();

    const lines = await captureStdout(async () => {
      await observeInvocation({ logger, metrics }, { correlationId: downloadId }, async () => {
        logger.appendKeys({ downloadId });
        metrics.addMetric('Attempts', 'Count', 1);
        throw new Error('boom');
      }).catch(() => undefined);
      await observeInvocation({ logger, metrics }, {}, async () => logger.info('next invocation'));
    });

    expect(emfMetrics(lines)).toEqual([
      {
        namespace: 'LargeDownloads',
        name: 'Attempts',
        value: 1,
        dimensions: { service: 'observability-test' },
      },
    ]);
    const next = lines.find((line) => line.message === 'next invocation');
    expect(next).toBeDefined();
    expect(next?.downloadId).toBeUndefined();
    expect(next?.correlation_id).toBeUndefined();
  });
});

describe('metrics of the download path (real Powertools Metrics, EMF on stdout)', () => {
  beforeAll(() => installAwsLambdaGlobal());

  it('emits the router decision and the streamed bytes with their outcome', async () => {
    const { routeDownload } = await import('../../shared/downloads/route-download.ts');
    const logger = createLogger('download');
    const metrics = createMetrics('download');
    const config = {
      upstream: {
        baseUrl: new URL('https://upstream.example/'),
        allowedOrigins: new Set(['https://upstream.example']),
        headersTimeoutMs: 1000,
        bodyTimeoutMs: 1000,
      },
      streamMaxBytes: 1024,
    } as unknown as RouterConfig;
    const request: HttpRequest = {
      method: 'GET',
      pathParameters: { key: 'exports/small.csv' },
      query: new URLSearchParams(),
      headers: {},
      requestId: 'req-1',
      baseUrl: 'https://api.example.com/prod',
    };
    const context = createLocalContext('download', 5_000);

    let received: Awaited<ReturnType<typeof readInvocation>> | undefined;
    const lines = await captureStdout(async () => {
      received = await readInvocation(
        invokeInProcess(
          (_event, responseStream, ctx) =>
            observeInvocation({ logger, metrics }, { context: ctx }, () =>
              routeDownload(request, responseStream, {
                config,
                logger,
                signal: new AbortController().signal,
                starter: undefined as never,
                metrics,
              }),
            ),
          {},
          context,
          { timeoutMs: 5_000, log: () => undefined },
        ),
      );
    });

    expect(received?.outcome).toEqual({ ok: true });
    expect(received?.bytes.subarray(-upstreamBody.length).equals(upstreamBody)).toBe(true);
    expect(emfMetrics(lines)).toEqual([
      {
        namespace: 'LargeDownloads',
        name: 'RouteDecision',
        value: 1,
        dimensions: { service: 'download', decision: 'stream' },
      },
      {
        namespace: 'LargeDownloads',
        name: 'BytesStreamed',
        value: upstreamBody.length,
        dimensions: { service: 'download', outcome: 'complete' },
      },
    ]);
  });
});

/** A response stream whose client leaves after the first chunk: writes stall, then it closes. */
function leavingClientStream(): LambdaResponseStream {
  const emitter = new EventEmitter();
  return Object.assign(emitter, {
    setContentType: () => undefined,
    write: () => {
      setImmediate(() => emitter.emit('close'));
      return false;
    },
    end: () => undefined,
    destroyed: false,
    writableFinished: false,
    writableHighWaterMark: 16,
  }) as unknown as LambdaResponseStream;
}

/** A response stream that takes everything. */
function acceptingStream(): LambdaResponseStream {
  const emitter = new EventEmitter();
  return Object.assign(emitter, {
    setContentType: () => undefined,
    write: () => true,
    end: () => setImmediate(() => emitter.emit('finish')),
    destroyed: false,
    writableFinished: false,
    writableHighWaterMark: 16,
  }) as unknown as LambdaResponseStream;
}

describe('how a streamed body ends, in logs and metrics', () => {
  beforeAll(() => installAwsLambdaGlobal());
  const config = { streamMaxBytes: 1024 } as StreamConfig;
  const request = { method: 'GET' } as HttpRequest;
  const opened = (body: Readable) => ({
    key: parseDownloadKey('exports/a.csv'),
    upstream: {
      url: new URL('https://upstream.example/exports/a.csv'),
      statusCode: 200 as const,
      headers: { 'content-type': 'text/csv' },
      contentLength: undefined,
      body,
    },
  });

  it('logs a client that left at INFO, never as an upstream failure, and counts its bytes', async () => {
    const { sendDownload } = await import('../../shared/streaming/stream-download.ts');
    const logger = createLogger('stream');
    const metrics = createMetrics('stream');
    const signal = new AbortController().signal;

    const lines = await captureStdout(() =>
      sendDownload(
        opened(Readable.from([Buffer.from('abc'), Buffer.from('def')])),
        request,
        leavingClientStream(),
        {
          config,
          logger,
          signal,
          metrics,
        },
      ),
    );

    expect(lines.filter((line) => line.level === 'ERROR' || line.level === 'WARN')).toEqual([]);
    expect(lines.some((line) => line.message === 'client closed the response')).toBe(true);
    expect(emfMetrics(lines)).toMatchObject([
      { name: 'BytesStreamed', dimensions: { service: 'stream', outcome: 'client-closed' } },
    ]);
  });

  it('logs a failure after the first body byte once, at ERROR, with the error name, and rejects', async () => {
    const { sendDownload } = await import('../../shared/streaming/stream-download.ts');
    const logger = createLogger('stream');
    const metrics = createMetrics('stream');
    const body = new Readable({ read() {} });
    body.push(Buffer.from('abc'));
    setTimeout(() => body.destroy(new Error('socket hang up')), 20);

    let rejection: unknown;
    const lines = await captureStdout(() =>
      sendDownload(opened(body), request, acceptingStream(), {
        config,
        logger,
        signal: new AbortController().signal,
        metrics,
      }).catch((error: unknown) => {
        rejection = error;
      }),
    );

    expect((rejection as Error).name).toBe('UpstreamUnavailableError');
    const errors = lines.filter((line) => line.level === 'ERROR');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      message: 'stream aborted mid-body',
      errorName: 'UpstreamUnavailableError',
    });
    expect(emfMetrics(lines)).toMatchObject([
      { name: 'BytesStreamed', value: 3, dimensions: { service: 'stream', outcome: 'failed-mid-body' } },
    ]);
  });
});
