import { Logger } from '@aws-lambda-powertools/logger';
import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_CREDENTIALS, type LocalDynamoDb, startDynamoDb } from '../../local/dynamodb.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import type {
  ExecutionStatus,
  ExecutionStatusChangeDetail,
} from '../../shared/downloads/execution-events.ts';
import { toEndedExecutionError } from '../../shared/downloads/failure.ts';
import type { DownloadRecord } from '../../shared/downloads/record.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { settleEndedWorkflow } from '../../shared/downloads/workflow-ended.ts';

const TABLE = 'downloads';
const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:Downloads';
const logger = new Logger({ logLevel: 'SILENT' });

describe('toEndedExecutionError', () => {
  it.each([
    ['TIMED_OUT', undefined, 'Timeout'],
    ['ABORTED', undefined, 'DownloadStopped'],
    // MarkFailed failed (its Lambda timed out): nothing the client can act on.
    ['FAILED', 'Sandbox.Timedout', 'InternalError'],
    ['FAILED', null, 'InternalError'],
    // A named task error that escaped every Catch keeps its own code.
    ['FAILED', 'UpstreamTimeoutError', 'UpstreamTimeout'],
  ] as const)('maps %s (error %s) to %s', (status, error, code) => {
    expect(toEndedExecutionError({ status, error })).toEqual({ code, message: expect.any(String) });
  });
});

describe('settleEndedWorkflow', () => {
  let dynamoDb: LocalDynamoDb;
  let documentClient: DynamoDBDocumentClient;
  let store: DownloadStore;

  beforeAll(async () => {
    dynamoDb = await startDynamoDb({ port: 0, tables: [{ name: TABLE, partitionKey: 'downloadId' }] });
    documentClient = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: dynamoDb.endpoint,
        region: 'us-east-1',
        credentials: LOCAL_CREDENTIALS,
      }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
    store = new DownloadStore(documentClient, TABLE);
  });

  afterAll(async () => {
    documentClient?.destroy();
    await dynamoDb?.close();
  });

  /** A download record in the table, with one WebSocket connection bound to it. */
  async function existingDownload(status: DownloadRecord['status'], extra: Partial<DownloadRecord> = {}) {
    const downloadId = crypto.randomUUID();
    const now = new Date().toISOString();
    await store.create({
      downloadId,
      key: 'sample/1GB',
      status,
      executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${downloadId}`,
      createdAt: now,
      updatedAt: now,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
      bytes: 12_345,
      tokenHash: 'not-used-here',
      connections: {},
      ...extra,
    } as unknown as DownloadRecord);
    await store.attachConnection(downloadId, 'conn-1');
    return downloadId;
  }

  function ended(
    downloadId: string,
    status: ExecutionStatus,
    more: Partial<ExecutionStatusChangeDetail> = {},
  ) {
    return {
      executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${downloadId}`,
      stateMachineArn: STATE_MACHINE_ARN,
      name: downloadId,
      status,
      startDate: Date.now() - 5_000,
      stopDate: status === 'RUNNING' ? null : Date.now(),
      input: JSON.stringify({ downloadId, key: 'sample/1GB' }),
      output: null,
      ...more,
    } satisfies ExecutionStatusChangeDetail;
  }

  /** The watcher's dependencies: the real store, a poster over a recording client, a recording S3. */
  function deps(downloadId: string) {
    const posts: Array<{ connectionId: string; message: Record<string, unknown> }> = [];
    const management = {
      send: vi.fn(async (command: { input: { ConnectionId: string; Data: Uint8Array } }) => {
        if (command.constructor.name === 'PostToConnectionCommand') {
          posts.push({
            connectionId: command.input.ConnectionId,
            message: JSON.parse(Buffer.from(command.input.Data).toString()) as Record<string, unknown>,
          });
        }
        return {};
      }),
    };
    const s3Calls: string[] = [];
    const objectKey = `downloads/${downloadId}/1GB`;
    const s3 = {
      send: vi.fn(async (command: { input: Record<string, unknown> }) => {
        const name = command.constructor.name;
        s3Calls.push(name);
        if (name === 'ListMultipartUploadsCommand') return { Uploads: [{ Key: objectKey, UploadId: 'u-1' }] };
        if (name === 'ListObjectsV2Command') return { Contents: [{ Key: objectKey }] };
        return {};
      }),
    };
    return {
      deps: {
        store,
        poster: new ConnectionPoster(management as unknown as ApiGatewayManagementApiClient),
        s3: s3 as unknown as S3Client,
        bucket: 'bucket',
        logger,
      },
      posts,
      s3Calls,
    };
  }

  it.each([
    ['ABORTED', { code: 'DownloadStopped', message: 'The download was stopped' }],
    ['TIMED_OUT', { code: 'Timeout', message: 'The download did not finish in time' }],
  ] as const)(
    'marks a RUNNING download of an execution that ended %s FAILED, tells its client and cleans S3',
    async (status, error) => {
      const downloadId = await existingDownload('RUNNING');
      const { deps: watcher, posts, s3Calls } = deps(downloadId);

      const result = await settleEndedWorkflow(ended(downloadId, status), watcher);

      expect(result).toEqual({ outcome: 'marked-failed', downloadId, error, delivered: true });
      expect(await store.get(downloadId)).toMatchObject({ status: 'FAILED', error });
      expect(posts).toEqual([{ connectionId: 'conn-1', message: { type: 'failed', downloadId, error } }]);
      expect(s3Calls).toEqual([
        'ListMultipartUploadsCommand',
        'AbortMultipartUploadCommand',
        'ListObjectsV2Command',
        'DeleteObjectCommand',
      ]);
    },
  );

  it('settles a download whose MarkFailed itself failed (execution FAILED, record still RUNNING)', async () => {
    const downloadId = await existingDownload('RUNNING');
    const { deps: watcher, posts } = deps(downloadId);

    const result = await settleEndedWorkflow(
      ended(downloadId, 'FAILED', { error: 'ProvisionedThroughputExceededException', cause: '{}' }),
      watcher,
    );

    expect(result).toMatchObject({ outcome: 'marked-failed', error: { code: 'InternalError' } });
    expect((await store.get(downloadId))?.status).toBe('FAILED');
    expect(posts.map((post) => post.message.type)).toEqual(['failed']);
  });

  it('also settles a download whose execution never got to record progress (PENDING)', async () => {
    const downloadId = await existingDownload('PENDING');
    const { deps: watcher } = deps(downloadId);

    await settleEndedWorkflow(ended(downloadId, 'ABORTED'), watcher);

    expect(await store.get(downloadId)).toMatchObject({
      status: 'FAILED',
      error: { code: 'DownloadStopped' },
    });
  });

  it('keeps the error MarkFailed recorded and does not tell the client twice, but cleans S3 again', async () => {
    const error = { code: 'UpstreamNotFound', message: 'Upstream has no such file' };
    const downloadId = await existingDownload('FAILED', { error });
    const { deps: watcher, posts, s3Calls } = deps(downloadId);

    const result = await settleEndedWorkflow(
      ended(downloadId, 'FAILED', { error: 'DownloadFailed', cause: 'see the download record' }),
      watcher,
    );

    expect(result).toEqual({ outcome: 'already-settled', downloadId, status: 'FAILED' });
    expect(await store.get(downloadId)).toMatchObject({ status: 'FAILED', error });
    expect(posts).toEqual([]);
    expect(s3Calls).toContain('DeleteObjectCommand');
  });

  it('leaves a READY download and its object alone when the execution times out after MarkReady', async () => {
    const downloadId = await existingDownload('READY', { url: 'https://example.com/x', urlExpiresAt: 'x' });
    const { deps: watcher, posts, s3Calls } = deps(downloadId);

    const result = await settleEndedWorkflow(ended(downloadId, 'TIMED_OUT'), watcher);

    expect(result).toEqual({ outcome: 'already-settled', downloadId, status: 'READY' });
    expect((await store.get(downloadId))?.status).toBe('READY');
    expect(posts).toEqual([]);
    expect(s3Calls).toEqual([]);
  });

  it('handles the same event twice (EventBridge and Lambda retry) with one message', async () => {
    const downloadId = await existingDownload('RUNNING');
    const { deps: watcher, posts } = deps(downloadId);

    await settleEndedWorkflow(ended(downloadId, 'ABORTED'), watcher);
    const again = await settleEndedWorkflow(ended(downloadId, 'ABORTED'), watcher);

    expect(again).toMatchObject({ outcome: 'already-settled', status: 'FAILED' });
    expect(posts).toHaveLength(1);
  });

  it.each(['RUNNING', 'SUCCEEDED'] as const)('ignores a %s status change', async (status) => {
    const downloadId = await existingDownload('RUNNING');
    const { deps: watcher, posts, s3Calls } = deps(downloadId);

    const result = await settleEndedWorkflow(ended(downloadId, status), watcher);

    expect(result).toEqual({ outcome: 'ignored', reason: `status ${status}` });
    expect((await store.get(downloadId))?.status).toBe('RUNNING');
    expect([...posts, ...s3Calls]).toEqual([]);
  });

  it('ignores an execution that is not named after a download, or whose ARN names another', async () => {
    const downloadId = await existingDownload('RUNNING');
    const { deps: watcher, s3Calls } = deps(downloadId);

    const notADownload = await settleEndedWorkflow(
      { ...ended(downloadId, 'ABORTED'), name: 'manual-test-run', executionArn: 'x:manual-test-run' },
      watcher,
    );
    const mismatched = await settleEndedWorkflow(
      { ...ended(downloadId, 'ABORTED'), executionArn: ended(crypto.randomUUID(), 'ABORTED').executionArn },
      watcher,
    );

    expect(notADownload).toMatchObject({ outcome: 'ignored' });
    expect(mismatched).toMatchObject({ outcome: 'ignored' });
    expect((await store.get(downloadId))?.status).toBe('RUNNING');
    expect(s3Calls).toEqual([]);
  });
});
