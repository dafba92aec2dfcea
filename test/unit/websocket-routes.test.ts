import { Logger } from '@aws-lambda-powertools/logger';
import type { InvokeCommandInput, LambdaClient } from '@aws-sdk/client-lambda';
import { describe, expect, it, vi } from 'vitest';
import type { WebSocketAuth } from '../../shared/config.ts';
import { createDownloadToken } from '../../shared/downloads/download-token.ts';
import type { NotifyRequest } from '../../shared/downloads/notify.ts';
import type { DownloadRecord, DownloadStatus } from '../../shared/downloads/record.ts';
import { type DownloadStore, MAX_CONNECTIONS_PER_DOWNLOAD } from '../../shared/downloads/store.ts';
import { connect, disconnect, message } from '../../shared/downloads/websocket-routes.ts';

const DOWNLOAD_ID = '5f0c2b1a-8d7e-4a6b-9c3d-2e1f0a9b8c7d';
const OTHER_ID = '11111111-2222-4333-8444-555555555555';
const UNKNOWN_ID = '99999999-8888-4777-8666-555555555555';
const EXECUTION_ARN = `arn:aws:states:us-east-1:123456789012:execution:Downloads:${DOWNLOAD_ID}`;
const logger = new Logger({ logLevel: 'SILENT' });
const { token: TOKEN, tokenHash: TOKEN_HASH } = createDownloadToken();
const { token: OTHER_TOKEN, tokenHash: OTHER_TOKEN_HASH } = createDownloadToken();
/** The query a `webSocketUrl` carries. */
const BY_URL = { downloadId: DOWNLOAD_ID, token: TOKEN };

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
    tokenHash: TOKEN_HASH,
    connections: {},
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
 * An in-memory store with the methods the routes use, keeping a connection set per download as
 * the real one does (see download-store.test.ts for the real one against dynalite). `attachConnection`
 * fails (returns undefined) when `expiresBeforeAttach` is set, as the real conditional update does
 * for a download that expired between the read and the write.
 */
function fakeStore(records: DownloadRecord[], options: { expiresBeforeAttach?: boolean } = {}) {
  const byId = new Map(
    records.map((item) => [item.downloadId, { ...item, connections: { ...item.connections } }]),
  );
  const bindings = new Map<string, string>();
  let clock = 1_000;
  const fake = {
    get: vi.fn(async (downloadId: string) => byId.get(downloadId)),
    attachConnection: vi.fn(async (downloadId: string, connectionId: string) => {
      const item = byId.get(downloadId);
      if (!item || options.expiresBeforeAttach) return undefined;
      item.connections[connectionId] = clock++;
      bindings.set(connectionId, downloadId);
      const evicted = Object.entries(item.connections)
        .filter(([id]) => id !== connectionId)
        .sort(([, a], [, b]) => a - b)
        .slice(0, Math.max(0, Object.keys(item.connections).length - MAX_CONNECTIONS_PER_DOWNLOAD))
        .map(([id]) => id);
      for (const id of evicted) delete item.connections[id];
      return { record: { ...item, connections: { ...item.connections } }, evicted };
    }),
    downloadIdOf: vi.fn(async (connectionId: string) => bindings.get(connectionId)),
    detachConnection: vi.fn(async (connectionId: string) => {
      const downloadId = bindings.get(connectionId);
      const item = downloadId ? byId.get(downloadId) : undefined;
      if (item) delete item.connections[connectionId];
      bindings.delete(connectionId);
    }),
  } satisfies Partial<Record<keyof DownloadStore, unknown>>;
  const connectionsOf = (downloadId = DOWNLOAD_ID) => Object.keys(byId.get(downloadId)?.connections ?? {});
  return { fake, store: fake as unknown as DownloadStore, byId, bindings, connectionsOf };
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
  options: { invokeFails?: Error; expiresBeforeAttach?: boolean; webSocketAuth?: WebSocketAuth } = {},
) {
  const store = fakeStore(records, options);
  const lambda = fakeLambda(options.invokeFails);
  const deps = {
    store: store.store,
    lambda: lambda.lambda,
    notifierFunctionName: 'notifier',
    webSocketAuth: options.webSocketAuth ?? ('token' as const),
    logger,
  };
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

describe('connect: naming the download, with its token', () => {
  it.each([
    [
      'the headers as sent by wscat',
      { 'X-StateMachine-ExecutionArn': EXECUTION_ARN, 'X-Download-Token': TOKEN },
    ],
    ['the lower-case headers', { 'x-statemachine-executionarn': EXECUTION_ARN, 'x-download-token': TOKEN }],
    ['the upper-case headers', { 'X-STATEMACHINE-EXECUTIONARN': EXECUTION_ARN, 'X-DOWNLOAD-TOKEN': TOKEN }],
  ])('binds the connection named by %s', async (_label, headers) => {
    const { deps, connectionsOf } = setup([record('RUNNING')]);

    const result = await connect(deps, { connectionId: 'conn-1', headers, query: undefined });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toEqual(['conn-1']);
  });

  it('binds the connection named by the ARN header with the token in the query', async () => {
    const { deps, connectionsOf } = setup([record('RUNNING')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'X-StateMachine-ExecutionArn': EXECUTION_ARN },
      query: { token: TOKEN },
    });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toEqual(['conn-1']);
  });

  it('binds the connection named by ?executionArn=&token=', async () => {
    const { deps, connectionsOf } = setup([record('RUNNING')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: {},
      query: { executionArn: EXECUTION_ARN, token: TOKEN },
    });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toEqual(['conn-1']);
  });

  it('binds the connection named by the webSocketUrl query (?downloadId=&token=)', async () => {
    const { deps, connectionsOf, bindings } = setup([record('PENDING')]);

    const result = await connect(deps, { connectionId: 'conn-1', headers: undefined, query: BY_URL });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toEqual(['conn-1']);
    expect(bindings.get('conn-1')).toBe(DOWNLOAD_ID);
  });

  it.each([
    ['an empty', ''],
    ['a blank', '  '],
  ])(
    'binds the connection named by ?downloadId= next to %s X-StateMachine-ExecutionArn header',
    async (_label, value) => {
      const { deps, connectionsOf } = setup([record('PENDING')]);

      const result = await connect(deps, {
        connectionId: 'conn-1',
        headers: { 'X-StateMachine-ExecutionArn': value },
        query: BY_URL,
      });

      expect(result.statusCode).toBe(200);
      expect(connectionsOf()).toEqual(['conn-1']);
    },
  );

  it('binds the connection named by ?executionArn= next to an empty header', async () => {
    const { deps, connectionsOf } = setup([record('RUNNING')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'x-statemachine-executionarn': '' },
      query: { executionArn: EXECUTION_ARN, token: TOKEN },
    });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toEqual(['conn-1']);
  });

  it('prefers the execution ARN over ?downloadId=', async () => {
    const { deps, fake } = setup([record('RUNNING'), record('RUNNING', { downloadId: OTHER_ID })]);

    await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'X-StateMachine-ExecutionArn': EXECUTION_ARN },
      query: { downloadId: OTHER_ID, token: TOKEN },
    });

    expect(fake.attachConnection).toHaveBeenCalledWith(DOWNLOAD_ID, 'conn-1');
  });
});

type Refusal = [
  string,
  number,
  string,
  Record<string, string> | undefined,
  Record<string, string> | undefined,
];

const REFUSED_WHATEVER_THE_MODE: Refusal[] = [
  ['no handle at all', 400, 'MissingDownload', undefined, undefined],
  ['a token but no handle', 400, 'MissingDownload', { 'X-Download-Token': TOKEN }, undefined],
  ['an unrelated header only', 400, 'MissingDownload', { 'x-other': EXECUTION_ARN }, {}],
  ['an empty header only', 400, 'MissingDownload', { 'X-StateMachine-ExecutionArn': '' }, undefined],
  ['a malformed download id', 400, 'InvalidDownloadId', {}, { downloadId: 'not-a-uuid', token: TOKEN }],
  ['a malformed download id without a token', 400, 'InvalidDownloadId', {}, { downloadId: 'not-a-uuid' }],
  [
    'an upper-case download id',
    400,
    'InvalidDownloadId',
    {},
    { downloadId: DOWNLOAD_ID.toUpperCase(), token: TOKEN },
  ],
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
    { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:Downloads:my-run', token: TOKEN },
  ],
  ['the download id alone', 401, 'DownloadTokenRequired', {}, { downloadId: DOWNLOAD_ID }],
  [
    'the download id with an empty token',
    401,
    'DownloadTokenRequired',
    {},
    { downloadId: DOWNLOAD_ID, token: '' },
  ],
  [
    'the download id with a blank token header',
    401,
    'DownloadTokenRequired',
    { 'X-Download-Token': '  ' },
    { downloadId: DOWNLOAD_ID },
  ],
  [
    'the execution ARN alone, in the query',
    401,
    'DownloadTokenRequired',
    {},
    { executionArn: EXECUTION_ARN },
  ],
  ['an unknown download id', 404, 'DownloadNotFound', {}, { downloadId: UNKNOWN_ID, token: TOKEN }],
  [
    'the download id with the token of another download',
    403,
    'InvalidDownloadToken',
    {},
    { downloadId: DOWNLOAD_ID, token: OTHER_TOKEN },
  ],
  [
    'the download id with a token that is not one',
    403,
    'InvalidDownloadToken',
    {},
    { downloadId: DOWNLOAD_ID, token: TOKEN_HASH },
  ],
  [
    'the ARN header with a wrong token',
    403,
    'InvalidDownloadToken',
    { 'X-StateMachine-ExecutionArn': EXECUTION_ARN, 'X-Download-Token': OTHER_TOKEN },
    undefined,
  ],
  [
    'an ARN naming the download on another state machine',
    404,
    'DownloadNotFound',
    {
      'x-statemachine-executionarn': EXECUTION_ARN.replace(':Downloads:', ':Other:'),
      'x-download-token': TOKEN,
    },
    undefined,
  ],
  [
    'an ARN naming the download in another account',
    404,
    'DownloadNotFound',
    undefined,
    { executionArn: EXECUTION_ARN.replace('123456789012', '999999999999'), token: TOKEN },
  ],
];

describe.each<WebSocketAuth>(['token', 'execution-arn-header'])(
  'connect: refusals store nothing (webSocketAuth %s)',
  (webSocketAuth) => {
    it.each(REFUSED_WHATEVER_THE_MODE)(
      'refuses %s with %i %s',
      async (_label, status, code, headers, query) => {
        const { deps, fake, invocations, connectionsOf, bindings } = setup(
          [record('READY'), record('READY', { downloadId: OTHER_ID, tokenHash: OTHER_TOKEN_HASH })],
          { webSocketAuth },
        );

        const result = await connect(deps, { connectionId: 'conn-1', headers, query });

        expect(result.statusCode).toBe(status);
        expect(problemCode(result.body)).toBe(code);
        expect(result.body).not.toContain('https://bucket.example.com');
        expect(fake.attachConnection).not.toHaveBeenCalled();
        expect(connectionsOf()).toEqual([]);
        expect(bindings.size).toBe(0);
        expect(invocations).toEqual([]);
      },
    );

    it('looks nothing up for a request without a token', async () => {
      const { deps, fake } = setup([record('READY')], { webSocketAuth });

      await connect(deps, { connectionId: 'conn-1', headers: {}, query: { downloadId: DOWNLOAD_ID } });

      expect(fake.get).not.toHaveBeenCalled();
    });
  },
);

describe('connect: the execution ARN header alone', () => {
  it('is refused with 401 by default', async () => {
    const { deps, fake, connectionsOf } = setup([record('READY')]);

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'X-StateMachine-ExecutionArn': EXECUTION_ARN },
      query: undefined,
    });

    expect(result.statusCode).toBe(401);
    expect(problemCode(result.body)).toBe('DownloadTokenRequired');
    expect(fake.get).not.toHaveBeenCalled();
    expect(connectionsOf()).toEqual([]);
  });

  it('binds the connection when webSocketAuth is execution-arn-header (the original flow, opt-in)', async () => {
    const { deps, connectionsOf, invocations } = setup([record('READY')], {
      webSocketAuth: 'execution-arn-header',
    });

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'X-StateMachine-ExecutionArn': EXECUTION_ARN },
      query: undefined,
    });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toEqual(['conn-1']);
    expect(payloadOf(invocations[0])).toEqual({ downloadId: DOWNLOAD_ID, connectionId: 'conn-1' });
  });

  it('still needs a matching ARN in that mode', async () => {
    const { deps, connectionsOf } = setup([record('READY')], { webSocketAuth: 'execution-arn-header' });

    const result = await connect(deps, {
      connectionId: 'conn-1',
      headers: { 'X-StateMachine-ExecutionArn': EXECUTION_ARN.replace('123456789012', '999999999999') },
      query: undefined,
    });

    expect(result.statusCode).toBe(404);
    expect(connectionsOf()).toEqual([]);
  });
});

describe('connect: delivery of a settled download', () => {
  it.each(['READY', 'FAILED'] as const)(
    'asks the notifier, asynchronously, to deliver a %s download to the new connection',
    async (status) => {
      const { deps, invocations } = setup([record(status)]);

      const result = await connect(deps, { connectionId: 'conn-7', headers: {}, query: BY_URL });

      expect(result.statusCode).toBe(200);
      expect(invocations).toHaveLength(1);
      expect(invocations[0]?.FunctionName).toBe('notifier');
      expect(invocations[0]?.InvocationType).toBe('Event');
      expect(payloadOf(invocations[0])).toEqual({ downloadId: DOWNLOAD_ID, connectionId: 'conn-7' });
    },
  );

  it.each(['PENDING', 'RUNNING'] as const)(
    'does not invoke the notifier for a %s download',
    async (status) => {
      const { deps, invocations } = setup([record(status)]);

      const result = await connect(deps, { connectionId: 'conn-7', headers: {}, query: BY_URL });

      expect(result.statusCode).toBe(200);
      expect(invocations).toEqual([]);
    },
  );

  it('decides on the status the bind returned, not the one read before it', async () => {
    // The workflow may mark the download READY between findDownload and attachConnection.
    const { deps, fake, invocations } = setup([record('RUNNING')]);
    fake.attachConnection.mockImplementationOnce(async (_downloadId: string, connectionId: string) => ({
      record: record('READY', { connections: { [connectionId]: 1 } }),
      evicted: [],
    }));

    await connect(deps, { connectionId: 'conn-7', headers: {}, query: BY_URL });

    expect(invocations).toHaveLength(1);
  });

  it('refuses the handshake with a 500 that hides the cause when the notifier cannot be invoked', async () => {
    const { deps, invocations } = setup([record('READY')], {
      invokeFails: new Error('AccessDeniedException: arn:aws:iam::123456789012:role/secret-role'),
    });

    const result = await connect(deps, { connectionId: 'conn-7', headers: {}, query: BY_URL });

    expect(invocations).toHaveLength(1);
    expect(result.statusCode).toBe(500);
    expect(problemCode(result.body)).toBe('InternalError');
    expect(result.body).not.toContain('secret-role');
    expect(result.body).not.toContain('123456789012');
  });

  it('answers 500 when the store fails', async () => {
    const { deps, fake } = setup([record('RUNNING')]);
    fake.get.mockRejectedValueOnce(new Error('DynamoDB is down'));

    const result = await connect(deps, { connectionId: 'conn-7', headers: {}, query: BY_URL });

    expect(result.statusCode).toBe(500);
    expect(result.body).not.toContain('DynamoDB is down');
  });
});

describe('connect: several connections for one download', () => {
  it('keeps every connection bound: a second one does not replace the first', async () => {
    const { deps, connectionsOf, invocations } = setup([record('RUNNING')]);

    await connect(deps, { connectionId: 'conn-first', headers: {}, query: BY_URL });
    await connect(deps, { connectionId: 'conn-second', headers: {}, query: BY_URL });

    expect(connectionsOf().sort()).toEqual(['conn-first', 'conn-second']);
    expect(invocations).toEqual([]);
  });

  it(`asks the notifier to close the oldest when connection ${MAX_CONNECTIONS_PER_DOWNLOAD + 1} arrives`, async () => {
    const { deps, connectionsOf, invocations } = setup([record('RUNNING')]);
    for (let i = 1; i <= MAX_CONNECTIONS_PER_DOWNLOAD; i++) {
      await connect(deps, { connectionId: `conn-${i}`, headers: {}, query: BY_URL });
    }
    expect(invocations).toEqual([]);

    const result = await connect(deps, { connectionId: 'conn-new', headers: {}, query: BY_URL });

    expect(result.statusCode).toBe(200);
    expect(connectionsOf()).toHaveLength(MAX_CONNECTIONS_PER_DOWNLOAD);
    expect(connectionsOf()).toContain('conn-new');
    expect(connectionsOf()).not.toContain('conn-1');
    expect(invocations.map(payloadOf)).toEqual([{ downloadId: DOWNLOAD_ID, close: ['conn-1'] }]);
  });

  it('delivers a settled download and closes the oldest in one notifier request', async () => {
    const full = Object.fromEntries(
      Array.from({ length: MAX_CONNECTIONS_PER_DOWNLOAD }, (_, i) => [`conn-${i}`, i]),
    );
    const { deps, invocations } = setup([record('READY', { connections: full })]);

    await connect(deps, { connectionId: 'conn-new', headers: {}, query: BY_URL });

    expect(invocations.map(payloadOf)).toEqual([
      { downloadId: DOWNLOAD_ID, connectionId: 'conn-new', close: ['conn-0'] },
    ]);
  });
});

describe('disconnect', () => {
  it('unbinds the connection from its download', async () => {
    const { deps, connectionsOf, fake } = setup([record('RUNNING')]);
    await connect(deps, { connectionId: 'conn-1', headers: {}, query: BY_URL });

    const result = await disconnect(deps, 'conn-1');

    expect(result.statusCode).toBe(200);
    expect(fake.detachConnection).toHaveBeenCalledWith('conn-1');
    expect(connectionsOf()).toEqual([]);
  });

  it('leaves the other connections of the same download bound, older and newer', async () => {
    const { deps, connectionsOf } = setup([record('RUNNING')]);
    for (const connectionId of ['conn-old', 'conn-mid', 'conn-new']) {
      await connect(deps, { connectionId, headers: {}, query: BY_URL });
    }

    await disconnect(deps, 'conn-mid');

    expect(connectionsOf().sort()).toEqual(['conn-new', 'conn-old']);
  });
});

describe('message', () => {
  async function bound(status: DownloadStatus) {
    const context = setup([record(status)]);
    await connect(context.deps, { connectionId: 'conn-1', headers: {}, query: BY_URL });
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

  it('includes the URL in the status of a READY download, but never the connection id or the token hash', async () => {
    const { deps } = await bound('READY');

    const result = await message(deps, { connectionId: 'conn-1', body: '{"action":"status"}' });

    expect(parsed(result.body)).toMatchObject({
      type: 'status',
      status: 'READY',
      url: 'https://bucket.example.com/big.bin?sig=1',
      expiresAt: '2025-06-01T12:15:00.000Z',
    });
    expect(result.body).not.toContain('conn-1');
    expect(result.body).not.toContain(TOKEN_HASH);
    expect(result.body).not.toContain('tokenHash');
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
