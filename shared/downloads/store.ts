import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DownloadError, DownloadRecord } from './record.ts';

/** Prefix of the items that map a WebSocket connection to its download (same table, no scans). */
const CONNECTION_ITEM_PREFIX = 'connection#';

/** What the copy step writes once the object is in S3 and presigned. */
export interface ReadyDetails {
  url: string;
  urlExpiresAt: string;
  size: number;
  contentType: string;
  fileName: string;
  objectKey: string;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as Error | null)?.name === 'ConditionalCheckFailedException'
  );
}

/**
 * The download records in DynamoDB. Every write is one conditional UpdateItem/PutItem, so the
 * workflow and the WebSocket routes can race without losing a delivery.
 */
export class DownloadStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Writes a new record; fails if the id exists. */
  async create(record: DownloadRecord): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: record,
        ConditionExpression: 'attribute_not_exists(downloadId)',
      }),
    );
  }

  /** The record, or `undefined` if unknown or expired (TTL deletion is lazy). */
  async get(downloadId: string): Promise<DownloadRecord | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { downloadId }, ConsistentRead: true }),
    );
    const record = Item as DownloadRecord | undefined;
    if (!record || record.expiresAt <= nowSeconds()) return undefined;
    return record;
  }

  private async update(
    downloadId: string,
    expression: string,
    values: Record<string, unknown>,
    condition = 'attribute_exists(downloadId)',
    names: Record<string, string> = {},
  ): Promise<DownloadRecord | undefined> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { downloadId },
          UpdateExpression: `${expression}, updatedAt = :updatedAt`,
          ConditionExpression: condition,
          ExpressionAttributeValues: { ...values, ':updatedAt': new Date().toISOString() },
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes as DownloadRecord;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /**
   * Records copy progress; returns the record (with the current connection id), or `undefined` if
   * the download is settled or `bytes` would go down: a retried copy starts over from the first
   * byte, and clients are promised that `bytes` never decreases.
   */
  recordProgress(
    downloadId: string,
    bytes: number,
    totalBytes: number | undefined,
  ): Promise<DownloadRecord | undefined> {
    return this.update(
      downloadId,
      totalBytes === undefined
        ? 'SET bytes = :bytes, #status = :running'
        : 'SET bytes = :bytes, totalBytes = :total, #status = :running',
      {
        ':bytes': bytes,
        ':running': 'RUNNING',
        ':pending': 'PENDING',
        ...(totalBytes === undefined ? {} : { ':total': totalBytes }),
      },
      'attribute_exists(downloadId) AND (#status = :running OR #status = :pending) AND bytes <= :bytes',
      { '#status': 'status' },
    );
  }

  /** Marks the download ready; returns the record so the caller sees a connection that is already there. */
  markReady(downloadId: string, details: ReadyDetails): Promise<DownloadRecord | undefined> {
    return this.update(
      downloadId,
      'SET #status = :ready, #url = :url, urlExpiresAt = :urlExpiresAt, #size = :size, bytes = :size, contentType = :contentType, fileName = :fileName, objectKey = :objectKey',
      {
        ':ready': 'READY',
        ':url': details.url,
        ':urlExpiresAt': details.urlExpiresAt,
        ':size': details.size,
        ':contentType': details.contentType,
        ':fileName': details.fileName,
        ':objectKey': details.objectKey,
      },
      'attribute_exists(downloadId)',
      { '#status': 'status', '#url': 'url', '#size': 'size' },
    );
  }

  /** Marks the download failed (never a ready one); returns the record. */
  markFailed(downloadId: string, error: DownloadError): Promise<DownloadRecord | undefined> {
    return this.update(
      downloadId,
      'SET #status = :failed, #error = :error',
      { ':failed': 'FAILED', ':error': error, ':ready': 'READY' },
      'attribute_exists(downloadId) AND #status <> :ready',
      { '#status': 'status', '#error': 'error' },
    );
  }

  /**
   * Binds a connection to a live download and remembers which download the connection is for.
   * Returns the updated record, or `undefined` if the download is unknown or expired.
   */
  async attachConnection(downloadId: string, connectionId: string): Promise<DownloadRecord | undefined> {
    const now = nowSeconds();
    const record = await this.update(
      downloadId,
      'SET connectionId = :connectionId',
      { ':connectionId': connectionId, ':now': now },
      'attribute_exists(downloadId) AND expiresAt > :now',
    );
    if (!record) return undefined;
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          downloadId: `${CONNECTION_ITEM_PREFIX}${connectionId}`,
          target: downloadId,
          expiresAt: record.expiresAt,
        },
      }),
    );
    return record;
  }

  /** The download a connection was bound to at `$connect`. */
  async downloadIdOf(connectionId: string): Promise<string | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { downloadId: `${CONNECTION_ITEM_PREFIX}${connectionId}` },
      }),
    );
    return typeof Item?.target === 'string' ? Item.target : undefined;
  }

  /** Unbinds a connection, only if it is still the download's current one. */
  async detachConnection(connectionId: string): Promise<void> {
    const downloadId = await this.downloadIdOf(connectionId);
    if (!downloadId) return;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { downloadId },
          UpdateExpression: 'REMOVE connectionId',
          ConditionExpression: 'connectionId = :connectionId',
          ExpressionAttributeValues: { ':connectionId': connectionId },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // The mapping item expires with the download; removing it now keeps the table small.
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { downloadId: `${CONNECTION_ITEM_PREFIX}${connectionId}` },
        UpdateExpression: 'SET expiresAt = :now',
        ExpressionAttributeValues: { ':now': nowSeconds() },
      }),
    );
  }
}
