import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  type GetCommandInput,
  type PutCommandInput,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { LOCAL_CREDENTIALS, type LocalDynamoDb, startDynamoDb } from '../../local/dynamodb.ts';
import type { DownloadRecord } from '../../shared/downloads/record.ts';
import { DownloadStore, type ReadyDetails } from '../../shared/downloads/store.ts';

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
  it('binds the connection only to a download that exists and has not expired', async () => {
    const bound = record({ connectionId: 'conn-1' });
    const { store, sent } = fakeClient((name) => (name === 'UpdateCommand' ? { Attributes: bound } : {}));

    await expect(store.attachConnection(DOWNLOAD_ID, 'conn-1')).resolves.toEqual(bound);

    const update = inputAt<UpdateCommandInput>(sent, 0);
    expect(sent[0]?.name).toBe('UpdateCommand');
    expect(update.Key).toEqual({ downloadId: DOWNLOAD_ID });
    expect(update.UpdateExpression).toMatch(/^SET connectionId = :connectionId\b/);
    expect(update.ConditionExpression).toBe('attribute_exists(downloadId) AND expiresAt > :now');
    expect(update.ExpressionAttributeValues).toMatchObject({
      ':connectionId': 'conn-1',
      ':now': NOW_SECONDS,
    });
    expect(update.ReturnValues).toBe('ALL_NEW');
  });

  it('writes a mapping item from the connection to its download, expiring with the download', async () => {
    const bound = record({ connectionId: 'conn-1', expiresAt: NOW_SECONDS + 42 });
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
  it('removes the connection only if it is still the current one, then expires the mapping', async () => {
    const { store, sent } = fakeClient((name) =>
      name === 'GetCommand' ? { Item: { downloadId: 'connection#conn-1', target: DOWNLOAD_ID } } : {},
    );

    await store.detachConnection('conn-1');

    expect(sent.map((call) => call.name)).toEqual(['GetCommand', 'UpdateCommand', 'UpdateCommand']);
    const remove = inputAt<UpdateCommandInput>(sent, 1);
    expect(remove).toMatchObject({
      Key: { downloadId: DOWNLOAD_ID },
      UpdateExpression: 'REMOVE connectionId',
      ConditionExpression: 'connectionId = :connectionId',
      ExpressionAttributeValues: { ':connectionId': 'conn-1' },
    });
    const expire = inputAt<UpdateCommandInput>(sent, 2);
    expect(expire).toMatchObject({
      Key: { downloadId: 'connection#conn-1' },
      UpdateExpression: 'SET expiresAt = :now',
      ExpressionAttributeValues: { ':now': NOW_SECONDS },
    });
  });

  it('ignores a condition failure (a newer connection took over) and still expires the mapping', async () => {
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
    const failed = record({ status: 'FAILED', error: { code: 'X', message: 'x' }, connectionId: 'c' });
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

  it('stores every ready detail and returns the record with its connection', async () => {
    const ready = record({ status: 'READY', connectionId: 'conn-9' });
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
