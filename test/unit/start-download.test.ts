import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SFNClient, StartExecutionCommandInput } from '@aws-sdk/client-sfn';
import type { DynamoDBDocumentClient, PutCommandInput, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseDownloadKey } from '../../shared/download-key.ts';
import { hashDownloadToken, isTokenOf } from '../../shared/downloads/download-token.ts';
import {
  type DownloadRecord,
  downloadIdFromExecutionArn,
  isDownloadId,
  toExecutionArn,
} from '../../shared/downloads/record.ts';
import { AsyncDownloadStarter, type WorkflowInput } from '../../shared/downloads/start-download.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { ServiceUnavailableError } from '../../shared/errors.ts';

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Downloads';
const SETTINGS = {
  stateMachineArn: STATE_MACHINE_ARN,
  webSocketUrl: 'wss://ws.example.com/prod',
  recordTtlSeconds: 3600,
};
const NOW = new Date('2025-06-01T12:00:00.000Z');

interface SentCommand {
  service: 'dynamodb' | 'sfn';
  name: string;
  input: unknown;
}

/** A real DownloadStore over a fake document client, and a fake SFN client, logging every call in order. */
function setup(failures: { put?: Error; start?: Error; update?: Error } = {}) {
  const sent: SentCommand[] = [];
  const documentClient = {
    send: vi.fn(async (command: { input: unknown }) => {
      const name = command.constructor.name;
      sent.push({ service: 'dynamodb', name, input: command.input });
      if (name === 'PutCommand' && failures.put) throw failures.put;
      if (name === 'UpdateCommand') {
        if (failures.update) throw failures.update;
        return { Attributes: {} };
      }
      return {};
    }),
  };
  const sfn = {
    send: vi.fn(async (command: { input: unknown }) => {
      sent.push({ service: 'sfn', name: command.constructor.name, input: command.input });
      if (failures.start) throw failures.start;
      return { executionArn: 'ignored', startDate: new Date() };
    }),
  };
  const store = new DownloadStore(documentClient as unknown as DynamoDBDocumentClient, 'downloads');
  const starter = new AsyncDownloadStarter(
    store,
    sfn as unknown as SFNClient,
    SETTINGS,
    new Logger({ logLevel: 'SILENT' }),
  );
  return { starter, sent, sfn };
}

const REQUEST = {
  key: parseDownloadKey('exports/Q1%202024/r%C3%A9sum%C3%A9.csv'),
  query: new URLSearchParams('version=3&sig=a%2Bb'),
  range: 'bytes=100-',
  baseUrl: 'https://api.example.com/prod',
  reason: 'too-large-to-stream' as const,
  size: 500_000_000,
};

function only<T>(sent: SentCommand[], name: string): T {
  const matching = sent.filter((call) => call.name === name);
  expect(matching).toHaveLength(1);
  return matching[0]?.input as T;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

beforeEach(() => {
  vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('AsyncDownloadStarter.start', () => {
  it('writes the record before it starts the execution', async () => {
    const { starter, sent } = setup();

    await starter.start(REQUEST);

    expect(sent.map((call) => call.name)).toEqual(['PutCommand', 'StartExecutionCommand']);
  });

  it('writes a PENDING record with the key in wire form, only if the id is new', async () => {
    const { starter, sent } = setup();

    const accepted = await starter.start(REQUEST);

    const put = only<PutCommandInput>(sent, 'PutCommand');
    expect(put.TableName).toBe('downloads');
    expect(put.ConditionExpression).toBe('attribute_not_exists(downloadId)');
    expect(put.Item).toEqual({
      downloadId: accepted.downloadId,
      key: 'exports/Q1%202024/r%C3%A9sum%C3%A9.csv',
      status: 'PENDING',
      executionArn: accepted.executionArn,
      createdAt: NOW.toISOString(),
      updatedAt: NOW.toISOString(),
      expiresAt: NOW.getTime() / 1000 + 3600,
      bytes: 0,
      totalBytes: 500_000_000,
      fileName: 'résumé.csv',
      tokenHash: hashDownloadToken(accepted.token),
      connections: {},
    });
  });

  it('stores only the hash of the token it hands out, and a new token for every download', async () => {
    const { starter, sent } = setup();

    const first = await starter.start(REQUEST);
    const second = await starter.start(REQUEST);

    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url
    expect(second.token).not.toBe(first.token);
    const items = sent
      .filter((call) => call.name === 'PutCommand')
      .map((call) => call.input as PutCommandInput);
    expect(JSON.stringify(items)).not.toContain(first.token);
    expect(JSON.stringify(items)).not.toContain(second.token);
    expect(items[0]?.Item?.tokenHash).toBe(createHash('sha256').update(first.token).digest('hex'));
    expect(isTokenOf(items[0]?.Item as DownloadRecord, first.token)).toBe(true);
    expect(isTokenOf(items[0]?.Item as DownloadRecord, second.token)).toBe(false);
  });

  it('names the execution after the download id and passes key, query and range as input', async () => {
    const { starter, sent } = setup();

    const accepted = await starter.start(REQUEST);

    const start = only<StartExecutionCommandInput>(sent, 'StartExecutionCommand');
    expect(isDownloadId(accepted.downloadId)).toBe(true);
    expect(start.stateMachineArn).toBe(STATE_MACHINE_ARN);
    expect(start.name).toBe(accepted.downloadId);
    const input = JSON.parse(start.input ?? 'null') as WorkflowInput;
    expect(input).toEqual({
      downloadId: accepted.downloadId,
      key: 'exports/Q1%202024/r%C3%A9sum%C3%A9.csv',
      query: 'version=3&sig=a%2Bb',
      range: 'bytes=100-',
    });
    // The copy step validates the key again from the wire form.
    expect(parseDownloadKey(input.key).segments).toEqual(REQUEST.key.segments);
  });

  it('leaves query and range out of the input when the client sent none', async () => {
    const { starter, sent } = setup();

    await starter.start({ ...REQUEST, query: undefined, range: undefined, size: undefined });

    const start = only<StartExecutionCommandInput>(sent, 'StartExecutionCommand');
    expect(Object.keys(JSON.parse(start.input ?? '{}') as object).sort()).toEqual(['downloadId', 'key']);
  });

  it('answers with the handles a client needs', async () => {
    const { starter } = setup();

    const accepted = await starter.start(REQUEST);

    const { downloadId, token } = accepted;
    expect(accepted).toEqual({
      downloadId,
      status: 'PENDING',
      executionArn: toExecutionArn(STATE_MACHINE_ARN, downloadId),
      token,
      webSocketEndpoint: 'wss://ws.example.com/prod',
      webSocketUrl: `wss://ws.example.com/prod?downloadId=${downloadId}&token=${token}`,
      statusUrl: `https://api.example.com/prod/downloads/${downloadId}?token=${token}`,
      expiresAt: new Date(NOW.getTime() + 3600 * 1000).toISOString(),
      reason: 'too-large-to-stream',
      size: 500_000_000,
    });
    expect(accepted.executionArn).toBe(
      `arn:aws:states:eu-west-1:123456789012:execution:Downloads:${downloadId}`,
    );
    // `$connect` finds the download again from the ARN the client was given.
    expect(downloadIdFromExecutionArn(accepted.executionArn)).toBe(downloadId);
  });

  it('leaves size out of the answer when the length is unknown', async () => {
    const { starter } = setup();

    const accepted = await starter.start({ ...REQUEST, reason: 'unknown-length', size: undefined });

    expect(accepted).not.toHaveProperty('size');
    expect(accepted.reason).toBe('unknown-length');
  });

  it('gives every download its own id', async () => {
    const { starter } = setup();

    const first = await starter.start(REQUEST);
    const second = await starter.start(REQUEST);

    expect(first.downloadId).not.toBe(second.downloadId);
  });
});

describe('AsyncDownloadStarter.start when a dependency fails', () => {
  it('answers 503 and never starts an execution when the record cannot be written', async () => {
    const { starter, sent, sfn } = setup({ put: new Error('ProvisionedThroughputExceededException') });

    const error = await rejectionOf(starter.start(REQUEST));

    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ statusCode: 503, code: 'DownloadNotStarted' });
    expect((error as Error).message).not.toContain('ProvisionedThroughput');
    expect(sfn.send).not.toHaveBeenCalled();
    expect(sent.map((call) => call.name)).toEqual(['PutCommand']);
  });

  it('marks the record FAILED with DownloadNotStarted and answers 503 when StartExecution fails', async () => {
    const { starter, sent } = setup({ start: new Error('ExecutionLimitExceeded: account 123456789012') });

    const error = await rejectionOf(starter.start(REQUEST));

    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ statusCode: 503, code: 'DownloadNotStarted' });
    expect((error as Error).message).not.toContain('123456789012');
    expect(sent.map((call) => call.name)).toEqual(['PutCommand', 'StartExecutionCommand', 'UpdateCommand']);
    const put = only<PutCommandInput>(sent, 'PutCommand');
    const update = only<UpdateCommandInput>(sent, 'UpdateCommand');
    expect(update.Key).toEqual({ downloadId: put.Item?.downloadId });
    expect(update.ExpressionAttributeValues?.[':failed']).toBe('FAILED');
    expect(update.ExpressionAttributeValues?.[':error']).toEqual({
      code: 'DownloadNotStarted',
      message: 'The download could not be started',
    });
  });

  it('still answers 503 when marking the record failed fails too', async () => {
    const { starter, sent } = setup({
      start: new Error('ServiceUnavailable'),
      update: new Error('InternalServerError'),
    });

    const error = await rejectionOf(starter.start(REQUEST));

    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(sent.map((call) => call.name)).toEqual(['PutCommand', 'StartExecutionCommand', 'UpdateCommand']);
  });
});
