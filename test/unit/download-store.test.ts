import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  type GetCommandInput,
  type PutCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { LOCAL_CREDENTIALS, type LocalDynamoDb, startDynamoDb } from '../../local/dynamodb.ts';
import type { DownloadRecord } from '../../shared/downloads/record.ts';
import {
  DownloadStore,
  MAX_CONNECTIONS_PER_DOWNLOAD,
  type ReadyDetails,
} from '../../shared/downloads/store.ts';

const NOW = new Date('2025-06-01T12:00:00.000Z');
const NOW_SECONDS = NOW.getTime() / 1000;
const DOWNLOAD_ID = '0b7e6a3c-2f1d-4c5e-9a8b-7c6d5e4f3a2b';

interface SentCommand {
  name: string;
  input: Record<string, unknown>;
}

type Responder = (name: string, input: Record<string, unknown>) => unknown;

/** A document client that records every command and answers with `respond` (a thrown error fails the send). */
function fakeClient(respond: Responder = () => ({})) {
  const sent: SentCommand[] = [];
  const client = {
    send: async (command: { input: Record<string, unknown> }) => {
      const name = command.constructor.name;
      sent.push({ name, input: command.input });
      return respond(name, command.input);
    },
  };
  return { store: new DownloadStore(client as unknown as DynamoDBDocumentClient, 'downloads'), sent };
}

/** The input of the `index`th command sent (fails the test if there is none). */
function inputAt<T>(sent: SentCommand[], index: number): T {
  const call = sent[index];
  if (!call) throw new Error(`expected a command at position ${index}, got ${sent.length} commands`);
  return call.input as T;
}

function conditionFailed(): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
}

function record(overrides: Partial<DownloadRecord> = {}): DownloadRecord {
  return {
    downloadId: DOWNLOAD_ID,
    key: 'exports/big.bin',
    status: 'RUNNING',
    executionArn: `arn:aws:states:us-east-1:123456789012:execution:Downloads:${DOWNLOAD_ID}`,
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    expiresAt: NOW_SECONDS + 3600,
    bytes: 0,
    tokenHash: 'f'.repeat(64),
    connections: {},
    ...overrides,
  };
}

const READY_DETAILS: ReadyDetails = {
  url: 'https://bucket.s3.amazonaws.com/downloads/x/big.bin?X-Amz-Signature=abc',
  urlExpiresAt: '2025-06-01T12:15:00.000Z',
  size: 300,
  contentType: 'application/octet-stream',
  fileName: 'big.bin',
  objectKey: `downloads/${DOWNLOAD_ID}/big.bin`,
};

beforeEach(() => {
  vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('DownloadStore.get', () => {
  it('returns a live record, read consistently', async () => {
    const live = record();
    const { store, sent } = fakeClient(() => ({ Item: live }));

    await expect(store.get(DOWNLOAD_ID)).resolves.toEqual(live);
    const get = inputAt<GetCommandInput>(sent, 0);
    expect(get).toMatchObject({
      TableName: 'downloads',
      Key: { downloadId: DOWNLOAD_ID },
      ConsistentRead: true,
    });
  });

  it.each([
    ['expires this very second', 0],
    ['expired a second ago', -1],
    ['expired long ago', -86_400],
  ])('treats a record that %s as absent (TTL deletion is lazy)', async (_label, offset) => {
    const { store } = fakeClient(() => ({ Item: record({ expiresAt: NOW_SECONDS + offset }) }));

    await expect(store.get(DOWNLOAD_ID)).resolves.toBeUndefined();
  });

  it('returns a record that expires in a second', async () => {
    const { store } = fakeClient(() => ({ Item: record({ expiresAt: NOW_SECONDS + 1 }) }));

    await expect(store.get(DOWNLOAD_ID)).resolves.toBeDefined();
  });

  it('returns undefined for an unknown id', async () => {
    const { store } = fakeClient(() => ({}));

    await expect(store.get(DOWNLOAD_ID)).resolves.toBeUndefined();
  });
});

describe('DownloadStore.attachConnection', () => {
  it('adds the connection to the set of a download that exists and has not expired, in one update', async () => {
    const bound = record({ connections: { 'conn-1': NOW.getTime() } });
    const { store, sent } = fakeClient((name) => (name === 'UpdateCommand' ? { Attributes: bound } : {}));

    await expect(store.attachConnection(DOWNLOAD_ID, 'conn-1')).resolves.toEqual({
      record: bound,
      evicted: [],
    });

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(sent[0]?.name).toBe('UpdateCommand');
    expect(update.Key).toEqual({ downloadId: DOWNLOAD_ID });
    expect(update.UpdateExpression).toMatch(/^SET #connections\.#connection = :boundAt\b/);
    expect(update.ExpressionAttributeNames).toEqual({
      '#connections': 'connections',
      '#connection': 'conn-1',
    });
    expect(update.ConditionExpression).toBe('attribute_exists(downloadId) AND expiresAt > :now');
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':boundAt': NOW.getTime(),
      ':now': NOW_SECONDS,
    });
    expect(update.ReturnValues).toBe('ALL_NEW');
  });

  it('writes a mapping item from the connection to its download, expiring with the download', async () => {
    const bound = record({ connections: { 'conn-1': 1 }, expiresAt: NOW_SECONDS + 42 });
    const { store, sent } = fakeClient((name) => (name === 'UpdateCommand' ? { Attributes: bound } : {}));

    await store.attachConnection(DOWNLOAD_ID, 'conn-1');

    expect(sent.map((call) => call.name)).toEqual(['UpdateCommand', 'PutCommand']);
    expect(inputAt<PutCommandInput>(sent, 1).Item).toEqual({
      downloadId: 'connection#conn-1',
      target: DOWNLOAD_ID,
      expiresAt: NOW_SECONDS + 42,
    });
  });

  it('returns undefined and writes no mapping item when the condition fails', async () => {
    const { store, sent } = fakeClient(() => {
      throw conditionFailed();
    });

    await expect(store.attachConnection(DOWNLOAD_ID, 'conn-1')).resolves.toBeUndefined();

    expect(sent.map((call) => call.name)).toEqual(['UpdateCommand']);
  });

  it('recognises a condition failure by name too (another copy of the SDK)', async () => {
    const { store, sent } = fakeClient(() => {
      throw Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
      });
    });

    await expect(store.attachConnection(DOWNLOAD_ID, 'conn-1')).resolves.toBeUndefined();
    expect(sent).toHaveLength(1);
  });

  it('passes on other DynamoDB errors', async () => {
    const { store, sent } = fakeClient(() => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'ProvisionedThroughputExceededException' });
    });

    await expect(store.attachConnection(DOWNLOAD_ID, 'conn-1')).rejects.toThrow('Rate exceeded');
    expect(sent).toHaveLength(1);
  });
});

describe('DownloadStore.downloadIdOf', () => {
  it('reads the mapping item of the connection', async () => {
    const { store, sent } = fakeClient(() => ({ Item: { downloadId: 'connection#c', target: DOWNLOAD_ID } }));

    await expect(store.downloadIdOf('c')).resolves.toBe(DOWNLOAD_ID);
    expect(inputAt<GetCommandInput>(sent, 0).Key).toEqual({ downloadId: 'connection#c' });
  });

  it('returns undefined for an unknown connection or a malformed item', async () => {
    await expect(fakeClient(() => ({})).store.downloadIdOf('c')).resolves.toBeUndefined();
    await expect(
      fakeClient(() => ({ Item: { target: 7 } })).store.downloadIdOf('c'),
    ).resolves.toBeUndefined();
  });
});

describe('DownloadStore.detachConnection', () => {
  it('removes only this connection from the set, then expires the mapping', async () => {
    const { store, sent } = fakeClient((name) =>
      name === 'GetCommand' ? { Item: { downloadId: 'connection#conn-1', target: DOWNLOAD_ID } } : {},
    );

    await store.detachConnection('conn-1');

    expect(sent.map((call) => call.name)).toEqual(['GetCommand', 'UpdateCommand', 'UpdateCommand']);
    const remove = inputAt<UpdateCommandInput>(sent, 1);
    expect(remove).toMatchObject({
      Key: { downloadId: DOWNLOAD_ID },
      UpdateExpression: 'REMOVE #connections.#c0',
      ConditionExpression: 'attribute_exists(downloadId)',
      ExpressionAttributeNames: { '#connections': 'connections', '#c0': 'conn-1' },
    });
    const expire = inputAt<UpdateCommandInput>(sent, 2);
    expect(expire).toMatchObject({
      Key: { downloadId: 'connection#conn-1' },
      UpdateExpression: 'SET expiresAt = :now',
      ExpressionAttributeValues: { ':now': NOW_SECONDS },
    });
  });

  it('ignores a condition failure (the download is gone) and still expires the mapping', async () => {
    let updates = 0;
    const { store, sent } = fakeClient((name) => {
      if (name === 'GetCommand') return { Item: { target: DOWNLOAD_ID } };
      updates++;
      if (updates === 1) throw conditionFailed();
      return {};
    });

    await expect(store.detachConnection('conn-old')).resolves.toBeUndefined();

    expect(sent.map((call) => call.name)).toEqual(['GetCommand', 'UpdateCommand', 'UpdateCommand']);
    expect(inputAt<UpdateCommandInput>(sent, 2).Key).toEqual({ downloadId: 'connection#conn-old' });
  });

  it('does nothing for a connection that was never bound', async () => {
    const { store, sent } = fakeClient(() => ({}));

    await store.detachConnection('conn-unknown');

    expect(sent.map((call) => call.name)).toEqual(['GetCommand']);
  });

  it('passes on errors other than a condition failure', async () => {
    const { store, sent } = fakeClient((name) => {
      if (name === 'GetCommand') return { Item: { target: DOWNLOAD_ID } };
      throw new Error('InternalServerError');
    });

    await expect(store.detachConnection('conn-1')).rejects.toThrow('InternalServerError');
    expect(sent).toHaveLength(2);
  });
});

describe('DownloadStore.removeConnections', () => {
  it('sends nothing for no connections', async () => {
    const { store, sent } = fakeClient();

    await store.removeConnections(DOWNLOAD_ID, []);

    expect(sent).toEqual([]);
  });
});

describe('the connection set, against a DynamoDB server (dynalite)', () => {
  let dynamo: LocalDynamoDb;
  let documents: DynamoDBDocumentClient;
  let store: DownloadStore;
  let downloadId: string;
  let counter = 0;

  beforeAll(async () => {
    dynamo = await startDynamoDb({ port: 0, tables: [{ name: 'downloads', partitionKey: 'downloadId' }] });
    documents = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
  });

  afterAll(async () => {
    documents?.destroy();
    await dynamo?.close();
  });

  beforeEach(async () => {
    // Real time: the SDK signs requests with it.
    vi.useRealTimers();
    store = new DownloadStore(documents, 'downloads');
    counter++;
    downloadId = `0b7e6a3c-2f1d-4c5e-9a8b-${String(counter).padStart(12, '0')}`;
    await store.create(
      record({ downloadId, status: 'PENDING', expiresAt: Math.floor(Date.now() / 1000) + 3600 }),
    );
  });

  const connectionsOf = async () => Object.keys((await store.get(downloadId))?.connections ?? {}).sort();

  it('keeps every connection: a second one does not replace the first', async () => {
    const first = await store.attachConnection(downloadId, 'conn-1', 1_000);
    const second = await store.attachConnection(downloadId, 'conn-2', 2_000);

    expect(first?.record.connections).toEqual({ 'conn-1': 1_000 });
    expect(second?.record.connections).toEqual({ 'conn-1': 1_000, 'conn-2': 2_000 });
    expect(await store.downloadIdOf('conn-1')).toBe(downloadId);
    expect(await store.downloadIdOf('conn-2')).toBe(downloadId);
    expect(await connectionsOf()).toEqual(['conn-1', 'conn-2']);
  });

  it('removes on $disconnect only the connection that left', async () => {
    for (const [index, id] of ['conn-a', 'conn-b', 'conn-c'].entries()) {
      await store.attachConnection(downloadId, id, index);
    }

    await store.detachConnection('conn-b');

    expect(await connectionsOf()).toEqual(['conn-a', 'conn-c']);
    expect(await store.downloadIdOf('conn-b')).toBe(downloadId); // expired mapping, read as is
  });

  it(`evicts the oldest when connection ${MAX_CONNECTIONS_PER_DOWNLOAD + 1} arrives, and returns it`, async () => {
    for (let i = 0; i < MAX_CONNECTIONS_PER_DOWNLOAD; i++) {
      const attached = await store.attachConnection(downloadId, `conn-${i}`, 10_000 + i);
      expect(attached?.evicted).toEqual([]);
    }

    const attached = await store.attachConnection(downloadId, 'conn-new', 20_000);

    expect(attached?.evicted).toEqual(['conn-0']);
    expect(Object.keys(attached?.record.connections ?? {})).toHaveLength(MAX_CONNECTIONS_PER_DOWNLOAD);
    expect(attached?.record.connections).not.toHaveProperty('conn-0');
    const stored = await connectionsOf();
    expect(stored).toHaveLength(MAX_CONNECTIONS_PER_DOWNLOAD);
    expect(stored).toContain('conn-new');
    expect(stored).not.toContain('conn-0');
  });

  it('never evicts the connection being added, even if its clock is behind', async () => {
    for (let i = 0; i < MAX_CONNECTIONS_PER_DOWNLOAD; i++) {
      await store.attachConnection(downloadId, `conn-${i}`, 10_000 + i);
    }

    const attached = await store.attachConnection(downloadId, 'conn-skewed', 1);

    expect(attached?.evicted).toEqual(['conn-0']);
    expect(await connectionsOf()).toContain('conn-skewed');
  });

  it('hands MarkReady every connection bound before it, and a later $connect the READY status', async () => {
    await store.attachConnection(downloadId, 'conn-early-1');
    await store.attachConnection(downloadId, 'conn-early-2');

    const ready = await store.markReady(downloadId, READY_DETAILS);
    const late = await store.attachConnection(downloadId, 'conn-late');

    expect(Object.keys(ready?.connections ?? {}).sort()).toEqual(['conn-early-1', 'conn-early-2']);
    expect(late?.record.status).toBe('READY');
    expect(late?.record.url).toBe(READY_DETAILS.url);
  });

  it('hands progress and failure every bound connection', async () => {
    await store.attachConnection(downloadId, 'conn-1');
    await store.attachConnection(downloadId, 'conn-2');

    const progress = await store.recordProgress(downloadId, 5, 10);
    const failed = await store.markFailed(downloadId, { code: 'X', message: 'x' });

    expect(Object.keys(progress?.connections ?? {}).sort()).toEqual(['conn-1', 'conn-2']);
    expect(Object.keys(failed?.connections ?? {}).sort()).toEqual(['conn-1', 'conn-2']);
  });

  it('removes gone connections, and creates nothing for an unknown download', async () => {
    await store.attachConnection(downloadId, 'conn-1');
    await store.attachConnection(downloadId, 'conn-2');
    const unknown = '0b7e6a3c-2f1d-4c5e-9a8b-ffffffffffff';

    await store.removeConnections(downloadId, ['conn-1', 'conn-never-bound']);
    await store.removeConnections(unknown, ['conn-1']);

    expect(await connectionsOf()).toEqual(['conn-2']);
    const { Item } = await documents.send(
      new GetCommand({ TableName: 'downloads', Key: { downloadId: unknown } }),
    );
    expect(Item).toBeUndefined();
  });

  it('refuses to bind to an expired download', async () => {
    const expired = '0b7e6a3c-2f1d-4c5e-9a8b-eeeeeeeeeeee';
    await store.create(record({ downloadId: expired, expiresAt: Math.floor(Date.now() / 1000) - 1 }));

    await expect(store.attachConnection(expired, 'conn-to-expired')).resolves.toBeUndefined();
    expect(await store.downloadIdOf('conn-to-expired')).toBeUndefined();
  });

  it('stores the token hash and never a token', async () => {
    const stored = await store.get(downloadId);

    expect(stored?.tokenHash).toBe('f'.repeat(64));
    expect(stored).not.toHaveProperty('token');
  });
});

describe('DownloadStore.markFailed', () => {
  it('never overwrites a READY download', async () => {
    const { store, sent } = fakeClient(() => ({ Attributes: record({ status: 'FAILED' }) }));

    await store.markFailed(DOWNLOAD_ID, { code: 'UpstreamFailed', message: 'Upstream answered 503' });

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(update.ConditionExpression).toContain('#status <> :ready');
    expect(update.ExpressionAttributeNames?.['#status']).toBe('status');
    expect(update.ExpressionAttributeValues?.[':ready']).toBe('READY');
    expect(update.ExpressionAttributeValues?.[':failed']).toBe('FAILED');
    expect(update.ExpressionAttributeValues?.[':error']).toEqual({
      code: 'UpstreamFailed',
      message: 'Upstream answered 503',
    });
  });

  it('returns undefined when the download is already READY (condition failed)', async () => {
    const { store } = fakeClient(() => {
      throw conditionFailed();
    });

    await expect(store.markFailed(DOWNLOAD_ID, { code: 'X', message: 'x' })).resolves.toBeUndefined();
  });

  it('returns the updated record', async () => {
    const failed = record({ status: 'FAILED', error: { code: 'X', message: 'x' }, connections: { c: 1 } });
    const { store } = fakeClient(() => ({ Attributes: failed }));

    await expect(store.markFailed(DOWNLOAD_ID, { code: 'X', message: 'x' })).resolves.toEqual(failed);
  });
});

describe('DownloadStore.markReady', () => {
  it('aliases the reserved words status, url and size', async () => {
    const { store, sent } = fakeClient(() => ({ Attributes: record({ status: 'READY' }) }));

    await store.markReady(DOWNLOAD_ID, READY_DETAILS);

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(update.UpdateExpression).toContain('#status = :ready');
    expect(update.UpdateExpression).toContain('#url = :url');
    expect(update.UpdateExpression).toContain('#size = :size');
    expect(update.ExpressionAttributeNames).toMatchObject({
      '#status': 'status',
      '#url': 'url',
      '#size': 'size',
    });
    expect(update.UpdateExpression).not.toMatch(/(^|[^#\w])(status|url|size)\s*=/);
  });

  it('stores every ready detail and returns the record with its connections', async () => {
    const ready = record({ status: 'READY', connections: { 'conn-9': 1, 'conn-10': 2 } });
    const { store, sent } = fakeClient(() => ({ Attributes: ready }));

    await expect(store.markReady(DOWNLOAD_ID, READY_DETAILS)).resolves.toEqual(ready);

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':ready': 'READY',
      ':url': READY_DETAILS.url,
      ':urlExpiresAt': READY_DETAILS.urlExpiresAt,
      ':size': 300,
      ':contentType': 'application/octet-stream',
      ':fileName': 'big.bin',
      ':objectKey': READY_DETAILS.objectKey,
    });
    expect(update.ReturnValues).toBe('ALL_NEW');
  });
});

describe('DownloadStore.recordProgress', () => {
  it('only moves a PENDING or RUNNING download, so it cannot undo READY or FAILED', async () => {
    const { store, sent } = fakeClient(() => ({ Attributes: record() }));

    await store.recordProgress(DOWNLOAD_ID, 10, 100);

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(update.ConditionExpression).toBe(
      'attribute_exists(downloadId) AND (#status = :running OR #status = :pending) AND bytes <= :bytes',
    );
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':bytes': 10,
      ':total': 100,
      ':running': 'RUNNING',
    });
  });

  it('leaves totalBytes alone when the length is unknown', async () => {
    const { store, sent } = fakeClient(() => ({ Attributes: record() }));

    await store.recordProgress(DOWNLOAD_ID, 10, undefined);

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(update.UpdateExpression).not.toContain('totalBytes');
    expect(update.ExpressionAttributeValues).not.toHaveProperty(':total');
  });

  it('returns undefined once the download is settled (condition failed)', async () => {
    const { store } = fakeClient(() => {
      throw conditionFailed();
    });

    await expect(store.recordProgress(DOWNLOAD_ID, 10, 100)).resolves.toBeUndefined();
  });

  describe('against a DynamoDB server (dynalite)', () => {
    let dynamo: LocalDynamoDb;
    let documents: DynamoDBDocumentClient;

    beforeAll(async () => {
      dynamo = await startDynamoDb({ port: 0, tables: [{ name: 'downloads', partitionKey: 'downloadId' }] });
      documents = DynamoDBDocumentClient.from(
        new DynamoDBClient({
          endpoint: dynamo.endpoint,
          region: 'us-east-1',
          credentials: LOCAL_CREDENTIALS,
        }),
      );
    });

    afterAll(async () => {
      documents?.destroy();
      await dynamo?.close();
    });

    beforeEach(() => {
      // Real time: the SDK signs requests with it.
      vi.useRealTimers();
    });

    it('never moves bytes backwards: a retried copy that starts over cannot lower them', async () => {
      const store = new DownloadStore(documents, 'downloads');
      await store.create(record({ status: 'PENDING', expiresAt: Math.floor(Date.now() / 1000) + 3600 }));

      const first = await store.recordProgress(DOWNLOAD_ID, 12_000_000, 30_000_000);
      const restarted = await store.recordProgress(DOWNLOAD_ID, 0, 30_000_000);
      const caughtUp = await store.recordProgress(DOWNLOAD_ID, 12_000_000, 30_000_000);
      const passed = await store.recordProgress(DOWNLOAD_ID, 16_000_000, 30_000_000);

      expect(first).toMatchObject({ bytes: 12_000_000, status: 'RUNNING' });
      expect(restarted).toBeUndefined();
      expect(caughtUp).toMatchObject({ bytes: 12_000_000 });
      expect(passed).toMatchObject({ bytes: 16_000_000 });
      expect((await store.get(DOWNLOAD_ID))?.bytes).toBe(16_000_000);
    });
  });
});

// Subset of https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html
// that names like ours could hit.
const RESERVED = new Set(
  'BYTE CONNECTION COUNT DATA DATE ERROR FILE KEY LENGTH NAME OBJECT PATH QUERY RANGE SIZE SOURCE STATE STATUS TIME TIMESTAMP TOTAL TTL TYPE URL USER VALUE'.split(
    ' ',
  ),
);
const SYNTAX = new Set(['SET', 'REMOVE', 'ADD', 'DELETE', 'AND', 'OR', 'NOT', 'IN', 'BETWEEN']);

/** Every DynamoDB expression a store method sends, with its placeholders. */
async function expressionsOf(act: (store: DownloadStore) => Promise<unknown>) {
  const { store, sent } = fakeClient((name) =>
    name === 'GetCommand' ? { Item: { target: DOWNLOAD_ID } } : { Attributes: record() },
  );
  await act(store);
  return sent
    .filter((call) => call.name === 'UpdateCommand' || call.input.ConditionExpression !== undefined)
    .map((call) => {
      const input = call.input as UpdateCommandInput;
      return {
        text: [input.UpdateExpression, input.ConditionExpression].filter(Boolean).join(' ; '),
        names: Object.keys(input.ExpressionAttributeNames ?? {}),
        values: Object.keys(input.ExpressionAttributeValues ?? {}),
      };
    });
}

describe('the expressions DownloadStore sends', () => {
  it.each<[string, (store: DownloadStore) => Promise<unknown>]>([
    ['create', (store) => store.create(record())],
    ['recordProgress (known length)', (store) => store.recordProgress(DOWNLOAD_ID, 1, 2)],
    ['recordProgress (unknown length)', (store) => store.recordProgress(DOWNLOAD_ID, 1, undefined)],
    ['markReady', (store) => store.markReady(DOWNLOAD_ID, READY_DETAILS)],
    ['markFailed', (store) => store.markFailed(DOWNLOAD_ID, { code: 'X', message: 'x' })],
    ['attachConnection', (store) => store.attachConnection(DOWNLOAD_ID, 'c')],
    ['detachConnection', (store) => store.detachConnection('c')],
    ['removeConnections', (store) => store.removeConnections(DOWNLOAD_ID, ['a', 'b'])],
  ])('%s: no bare reserved word, every placeholder declared and used', async (_label, act) => {
    const expressions = await expressionsOf(act);

    expect(expressions.length).toBeGreaterThan(0);
    for (const { text, names, values } of expressions) {
      const tokens = [...text.matchAll(/([#:]?[A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g)];
      const bare = tokens
        .filter(([, token, call]) => !call && !token?.startsWith('#') && !token?.startsWith(':'))
        .map(([, token]) => token ?? '')
        .filter((token) => !SYNTAX.has(token.toUpperCase()));
      expect(
        bare.filter((token) => RESERVED.has(token.toUpperCase())),
        text,
      ).toEqual([]);
      // DynamoDB refuses a request whose names or values are declared but unused, or used but undeclared.
      const usedNames = new Set(
        tokens.map(([, token]) => token ?? '').filter((token) => token.startsWith('#')),
      );
      const usedValues = new Set(
        tokens.map(([, token]) => token ?? '').filter((token) => token.startsWith(':')),
      );
      expect(new Set(names), text).toEqual(usedNames);
      expect(new Set(values), text).toEqual(usedValues);
    }
  });
});
