import { Logger } from '@aws-lambda-powertools/logger';
import type { InvokeCommandInput, LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it, vi } from 'vitest';
import type { DownloadRecord, DownloadStatus } from '../../shared/downloads/record.ts';
import type { DownloadStore } from '../../shared/downloads/store.ts';
import {
  CONNECT_DELIVERY_WAIT_MS,
  connect,
  disconnect,
  message,
  type NotifyRequest,
} from '../../shared/downloads/websocket-routes.ts';

const DOWNLOAD_ID = '5f0c2b1a-8d7e-4a6b-9c3d-2e1f0a9b8c7d';
const OTHER_ID = '11111111-2222-4333-8444-555555555555';
const EXECUTION_ARN = `arn:aws:states:us-east-1:123456789012:execution:Downloads:${DOWNLOAD_ID}`;
const logger = new Logger({ logLevel: 'SILENT' });

function record(status: DownloadStatus, overrides: Partial<DownloadRecord> = {}): DownloadRecord {
  return {
    downloadId: DOWNLOAD_ID,
    key: 'exports/big.bin',
    status,
    executionArn: EXECUTION_ARN,
    createdAt: '2025-06-01T12:00:00.000Z',
    updatedAt: '2025-06-01T12:01:00.000Z',
    expiresAt: 4_102_444_800,
    bytes: 10,
    totalBytes: 100,
    fileName: 'big.bin',
    ...(status === 'READY'
      ? {
          url: 'https://bucket.example.com/big.bin?sig=1',
          urlExpiresAt: '2025-06-01T12:15:00.000Z',
          size: 100,
          contentType: 'application/octet-stream',
        }
      : {}),
    ...(status === 'FAILED' ? { error: { code: 'UpstreamFailed', message: 'Upstream answered 503' } } : {}),
    ...overrides,
  };
}

/**
 * An in-memory store with the methods the routes use. `attachConnection` fails (returns undefined)
 * when `expiresBeforeAttach` is set, as the real conditional update does for a download that
 * expired between the read and the write.
 */
function fakeStore(records: DownloadRecord[], options: { expiresBeforeAttach?: boolean } = {}) {
  const byId = new Map(records.map((item) => [item.downloadId, { ...item }]));
  const bindings = new Map<string, string>();
  const fake = {
    get: vi.fn(async (downloadId: string) => byId.get(downloadId)),
    attachConnection: vi.fn(async (downloadId: string, connectionId: string) => {
      const item = byId.get(downloadId);
      if (!item || options.expiresBeforeAttach) return undefined;
      item.connectionId = connectionId;
      bindings.set(connectionId, downloadId);
      return { ...item };
    }),
    downloadIdOf: vi.fn(async (connectionId: string) => bindings.get(connectionId)),
    detachConnection: vi.fn(async (connectionId: string) => {
      const downloadId = bindings.get(connectionId);
      const item = downloadId ? byId.get(downloadId) : undefined;
      if (item?.connectionId === connectionId) delete item.connectionId;
      bindings.delete(connectionId);
    }),
  } satisfies Partial<Record<keyof DownloadStore, unknown>>;
  return { fake, store: fake as unknown as DownloadStore, byId, bindings };
}

function fakeLambda(failure?: Error) {
  const invocations: InvokeCommandInput[] = [];
  const client = {
    send: vi.fn(async (command: { input: InvokeCommandInput }) => {
      expect(command.constructor.name).toBe('InvokeCommand');
      invocations.push(command.input);
      if (failure) throw failure;
      return { StatusCode: 202 };
    }),
  };
  return { lambda: client as unknown as LambdaClient, invocations };
}

function setup(
  records: DownloadRecord[],
  options: { invokeFails?: Error; expiresBeforeAttach?: boolean } = {},
) {
  const store = fakeStore(records, options);
  const lambda = fakeLambda(options.invokeFails);
  const deps = { store: store.store, lambda: lambda.lambda, notifierFunctionName: 'notifier', logger };
  return { ...store, ...lambda, deps };
}

function problemCode(body: string | undefined): unknown {
  return (JSON.parse(body ?? '{}') as { code?: unknown }).code;
}

function payloadOf(invocation: InvokeCommandInput | undefined): NotifyRequest {
  return JSON.parse(
    Buffer.from((invocation?.Payload ?? new Uint8Array()) as Uint8Array).toString('utf8'),
  ) as NotifyRequest;
}

describe('connect: naming the download', () => {
  it.each([
    ['the header as sent by wscat', { 'X-StateMachine-ExecutionArn': EXECUTION_ARN }],
    ['the lower-case header', { 'x-statemachine-executionarn': EXECUTION_ARN }],
    ['the upper-case header', { 'X-STATEMACHINE-EXECUTIONARN': EXECUTION_ARN }],
  ])('binds the connection named by %s', async (_label, headers) => {
    const { deps, byId } = setup([record('RUNNING')]);

    const result = await connect(deps, { connectionId: 'conn-1', headers, query: undefined });

    expect(result.statusCode).toBe(200);
    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBe('conn-1');
  });

  it('binds the connection named by ?executionArn=', async () => {
    const { deps, byId } = setup([record('RUNNING')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: {},
      query: { executionArn: EXECUTION_ARN },
    });

    expect(result.statusCode).toBe(200);
    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBe('conn-1');
  });

  it('binds the connection named by ?downloadId=', async () => {
    const { deps, byId, bindings } = setup([record('PENDING')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: undefined,
      query: { downloadId: DOWNLOAD_ID },
    });

    expect(result.statusCode).toBe(200);
    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBe('conn-1');
    expect(bindings.get('conn-1')).toBe(DOWNLOAD_ID);
  });

  it.each([
    ['an empty', ''],
    ['a blank', '  '],
  ])(
    'binds the connection named by ?downloadId= next to %s X-StateMachine-ExecutionArn header',
    async (_label, value) => {
      const { deps, byId } = setup([record('PENDING')]);

      const result = await connect(deps, {
        connectionId: 'conn-1',
        headers: { 'X-StateMachine-ExecutionArn': value },
        query: { downloadId: DOWNLOAD_ID },
      });

      expect(result.statusCode).toBe(200);
      expect(byId.get(DOWNLOAD_ID)?.connectionId).toBe('conn-1');
    },
  );

  it('binds the connection named by ?executionArn= next to an empty header', async () => {
    const { deps, byId } = setup([record('RUNNING')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'x-statemachine-executionarn': '' },
      query: { executionArn: EXECUTION_ARN },
    });

    expect(result.statusCode).toBe(200);
    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBe('conn-1');
  });

  it('prefers the execution ARN over ?downloadId=', async () => {
    const { deps, fake } = setup([record('RUNNING'), record('RUNNING', { downloadId: OTHER_ID })]);

    await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'X-StateMachine-ExecutionArn': EXECUTION_ARN },
      query: { downloadId: OTHER_ID },
    });

    expect(fake.attachConnection).toHaveBeenCalledWith(DOWNLOAD_ID, 'conn-1');
  });
});

describe('connect: refusals store nothing', () => {
  it.each<[string, number, string, Record<string, string> | undefined, Record<string, string> | undefined]>([
    ['no handle at all', 400, 'MissingDownload', undefined, undefined],
    ['an unrelated header only', 400, 'MissingDownload', { 'x-other': EXECUTION_ARN }, {}],
    ['an empty header only', 400, 'MissingDownload', { 'X-StateMachine-ExecutionArn': '' }, undefined],
    ['a malformed download id', 400, 'InvalidDownloadId', {}, { downloadId: 'not-a-uuid' }],
    ['an upper-case download id', 400, 'InvalidDownloadId', {}, { downloadId: DOWNLOAD_ID.toUpperCase() }],
    [
      'a malformed execution ARN',
      400,
      'InvalidExecutionArn',
      { 'X-StateMachine-ExecutionArn': 'arn:aws:states:us-east-1:123:execution:x' },
      undefined,
    ],
    [
      'an execution ARN whose name is not a download id',
      400,
      'InvalidExecutionArn',
      undefined,
      { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:Downloads:my-run' },
    ],
    ['an unknown download id', 404, 'DownloadNotFound', {}, { downloadId: OTHER_ID }],
    [
      'an ARN naming the download on another state machine',
      404,
      'DownloadNotFound',
      { 'x-statemachine-executionarn': EXECUTION_ARN.replace(':Downloads:', ':Other:') },
      undefined,
    ],
    [
      'an ARN naming the download in another account',
      404,
      'DownloadNotFound',
      undefined,
      { executionArn: EXECUTION_ARN.replace('123456789012', '999999999999') },
    ],
  ])('refuses %s with %i %s', async (_label, status, code, headers, query) => {
    const { deps, fake, invocations, byId } = setup([record('READY')]);

    const result = await connect(deps, { connectionId: 'conn-1', headers, query });

    expect(result.statusCode).toBe(status);
    expect(problemCode(result.body)).toBe(code);
    expect(fake.attachConnection).not.toHaveBeenCalled();
    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBeUndefined();
    expect(invocations).toEqual([]);
  });

  it('refuses an expired download (the store reads it as absent) with 404', async () => {
    // The real store treats an expired item as absent; see download-store.test.ts.
    const { deps, fake, invocations } = setup([]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: {},
      query: { downloadId: DOWNLOAD_ID },
    });

    expect(result.statusCode).toBe(404);
    expect(problemCode(result.body)).toBe('DownloadNotFound');
    expect(fake.attachConnection).not.toHaveBeenCalled();
    expect(invocations).toEqual([]);
  });

  it('refuses with 404 when the download expires between the read and the conditional bind', async () => {
    const { deps, bindings, invocations } = setup([record('READY')], { expiresBeforeAttach: true });

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: {},
      query: { downloadId: DOWNLOAD_ID },
    });

    expect(result.statusCode).toBe(404);
    expect(problemCode(result.body)).toBe('DownloadNotFound');
    expect(bindings.size).toBe(0);
    expect(invocations).toEqual([]);
  });
});

describe('connect: delivery of a settled download', () => {
  it.each(['READY', 'FAILED'] as const)(
    'asks the notifier, asynchronously, to deliver a %s download',
    async (status) => {
      const { deps, invocations } = setup([record(status)]);

      const result = await connect(deps, {
        connectionId: 'conn-7',
        headers: {},
        query: { downloadId: DOWNLOAD_ID },
      });

      expect(result.statusCode).toBe(200);
      expect(invocations).toHaveLength(1);
      expect(invocations[0]?.FunctionName).toBe('notifier');
      expect(invocations[0]?.InvocationType).toBe('Event');
      expect(payloadOf(invocations[0])).toEqual({
        downloadId: DOWNLOAD_ID,
        connectionId: 'conn-7',
        waitForConnectionMs: CONNECT_DELIVERY_WAIT_MS,
      });
    },
  );

  it.each(['PENDING', 'RUNNING'] as const)(
    'does not invoke the notifier for a %s download',
    async (status) => {
      const { deps, invocations } = setup([record(status)]);

      const result = await connect(deps, {
        connectionId: 'conn-7',
        headers: {},
        query: { downloadId: DOWNLOAD_ID },
      });

      expect(result.statusCode).toBe(200);
      expect(invocations).toEqual([]);
    },
  );

  it('decides on the status the bind returned, not the one read before it', async () => {
    // The workflow may mark the download READY between findDownload and attachConnection.
    const { deps, fake, invocations, byId } = setup([record('RUNNING')]);
    fake.attachConnection.mockImplementationOnce(async (downloadId: string, connectionId: string) => ({
      ...(byId.get(downloadId) as DownloadRecord),
      ...record('READY'),
      connectionId,
    }));

    await connect(deps, { connectionId: 'conn-7', headers: {}, query: { downloadId: DOWNLOAD_ID } });

    expect(invocations).toHaveLength(1);
  });

  it('refuses the handshake with a 500 that hides the cause when the notifier cannot be invoked', async () => {
    const { deps, invocations } = setup([record('READY')], {
      invokeFails: new Error('AccessDeniedException: arn:aws:iam::123456789012:role/secret-role'),
    });

    const result = await connect(deps, {
      connectionId: 'conn-7',
      headers: {},
      query: { downloadId: DOWNLOAD_ID },
    });

    expect(invocations).toHaveLength(1);
    expect(result.statusCode).toBe(500);
    expect(problemCode(result.body)).toBe('InternalError');
    expect(result.body).not.toContain('secret-role');
    expect(result.body).not.toContain('123456789012');
  });

  it('answers 500 when the store fails', async () => {
    const { deps, fake } = setup([record('RUNNING')]);
    fake.get.mockRejectedValueOnce(new Error('DynamoDB is down'));

    const result = await connect(deps, {
      connectionId: 'conn-7',
      headers: {},
      query: { downloadId: DOWNLOAD_ID },
    });

    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain('DynamoDB is down');
  });
});

describe('disconnect', () => {
  it('unbinds the connection from its download', async () => {
    const { deps, byId, fake } = setup([record('RUNNING')]);
    await connect(deps, { connectionId: 'conn-1', headers: {}, query: { downloadId: DOWNLOAD_ID } });

    const result = await disconnect(deps, 'conn-1');

    expect(result.statusCode).toBe(200);
    expect(fake.detachConnection).toHaveBeenCalledWith('conn-1');
    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBeUndefined();
  });

  it('leaves a newer connection of the same download bound', async () => {
    const { deps, byId } = setup([record('RUNNING')]);
    await connect(deps, { connectionId: 'conn-old', headers: {}, query: { downloadId: DOWNLOAD_ID } });
    await connect(deps, { connectionId: 'conn-new', headers: {}, query: { downloadId: DOWNLOAD_ID } });

    await disconnect(deps, 'conn-old');

    expect(byId.get(DOWNLOAD_ID)?.connectionId).toBe('conn-new');
  });
});

describe('message', () => {
  async function bound(status: DownloadStatus) {
    const context = setup([record(status)]);
    await connect(context.deps, { connectionId: 'conn-1', headers: {}, query: { downloadId: DOWNLOAD_ID } });
    context.fake.get.mockClear();
    return context;
  }

  function parsed(body: string | undefined): Record<string, unknown> {
    return JSON.parse(body ?? 'null') as Record<string, unknown>;
  }

  it('answers {"action":"status"} with the status of the bound download', async () => {
    const { deps } = await bound('RUNNING');

    const result = await message(deps, { connectionId: 'conn-1', body: '{"action":"status"}' });

    expect(result.statusCode).toBe(200);
    expect(parsed(result.body)).toEqual({
      type: 'status',
      downloadId: DOWNLOAD_ID,
      status: 'RUNNING',
      key: 'exports/big.bin',
      fileName: 'big.bin',
      bytes: 10,
      totalBytes: 100,
      createdAt: '2025-06-01T12:00:00.000Z',
      updatedAt: '2025-06-01T12:01:00.000Z',
      executionArn: EXECUTION_ARN,
    });
  });

  it('includes the URL in the status of a READY download, but never the connection id', async () => {
    const { deps } = await bound('READY');

    const result = await message(deps, { connectionId: 'conn-1', body: '{"action":"status"}' });

    expect(parsed(result.body)).toMatchObject({
      type: 'status',
      status: 'READY',
      url: 'https://bucket.example.com/big.bin?sig=1',
      expiresAt: '2025-06-01T12:15:00.000Z',
    });
    expect(result.body).not.toContain('conn-1');
  });

  it.each([
    ['invalid JSON', '{action:status'],
    ['an unknown action', '{"action":"cancel"}'],
    ['no action', '{}'],
    ['JSON null', 'null'],
    ['a JSON string', '"status"'],
    ['an empty body', ''],
    ['no body', undefined],
  ])('answers %s with an UnknownAction error message', async (_label, body) => {
    const { deps, fake } = await bound('RUNNING');

    const result = await message(deps, { connectionId: 'conn-1', body });

    expect(result.statusCode).toBe(200);
    expect(parsed(result.body)).toEqual({
      type: 'error',
      error: { code: 'UnknownAction', message: 'Send {"action":"status"}' },
    });
    expect(fake.get).not.toHaveBeenCalled();
  });

  it('answers DownloadNotFound for a connection bound to nothing', async () => {
    const { deps } = setup([record('RUNNING')]);

    const result = await message(deps, { connectionId: 'conn-unbound', body: '{"action":"status"}' });

    expect(parsed(result.body)).toMatchObject({ type: 'error', error: { code: 'DownloadNotFound' } });
  });

  it('answers DownloadNotFound once the bound download has expired', async () => {
    const { deps, byId } = await bound('RUNNING');
    byId.delete(DOWNLOAD_ID);

    const result = await message(deps, { connectionId: 'conn-1', body: '{"action":"status"}' });

    expect(parsed(result.body)).toMatchObject({ type: 'error', error: { code: 'DownloadNotFound' } });
  });
});
