import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ObjectChecksum } from '../checksum/object-checksum.ts';
import type { DownloadError, DownloadRecord } from './record.ts';

/** Prefix of the items that map a WebSocket connection to its download (same table, no scans). */
const CONNECTION_ITEM_PREFIX = 'connection#';

/**
 * Most WebSocket connections one download delivers to. A client that reconnects, or opens a few
 * tabs, stays well below it; past it the oldest connection is closed, so a flood of connections
 * cannot make every progress report cost hundreds of posts.
 */
export const MAX_CONNECTIONS_PER_DOWNLOAD = 10;

/** What the copy step writes once the object is in S3 and presigned. */
export interface ReadyDetails {
  url: string;
  urlExpiresAt: string;
  size: number;
  contentType: string;
  fileName: string;
  objectKey: string;
  /** The object's checksum; `null` or absent when the copy reported none. */
  checksum?: ObjectChecksum | null;
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
   * Records copy progress; returns the record (with its connections), or `undefined` if
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

  /** Marks the download ready; returns the record so the caller sees the connections already there. */
  markReady(downloadId: string, details: ReadyDetails): Promise<DownloadRecord | undefined> {
    return this.update(
      downloadId,
      `SET #status = :ready, #url = :url, urlExpiresAt = :urlExpiresAt, #size = :size, bytes = :size, contentType = :contentType, fileName = :fileName, objectKey = :objectKey${details.checksum ? ', checksum = :checksum' : ''}`,
      {
        ...(details.checksum ? { ':checksum': details.checksum } : {}),
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
   * Marks a download FAILED only while it is still PENDING or RUNNING, so a failure recorded
   * earlier keeps its own error; returns the record, or `undefined` if it is settled or unknown.
   */
  markFailedIfUnsettled(downloadId: string, error: DownloadError): Promise<DownloadRecord | undefined> {
    return this.update(
      downloadId,
      'SET #status = :failed, #error = :error',
      { ':failed': 'FAILED', ':error': error, ':pending': 'PENDING', ':running': 'RUNNING' },
      'attribute_exists(downloadId) AND (#status = :pending OR #status = :running)',
      { '#status': 'status', '#error': 'error' },
    );
  }

  /**
   * Adds a connection to a live download's set and remembers which download the connection is for.
   * One UpdateItem with `ALL_NEW`, so the caller sees the status as of its own write: a download
   * that became READY just before is delivered by the caller, one that becomes READY after sees
   * this connection. When the set grows past `MAX_CONNECTIONS_PER_DOWNLOAD`, the oldest others
   * leave it and are returned in `evicted` (the caller closes them).
   * Returns `undefined` if the download is unknown or expired.
   */
  async attachConnection(
    downloadId: string,
    connectionId: string,
    boundAt = Date.now(),
  ): Promise<{ record: DownloadRecord; evicted: string[] } | undefined> {
    const record = await this.update(
      downloadId,
      'SET #connections.#connection = :boundAt',
      { ':boundAt': boundAt, ':now': nowSeconds() },
      'attribute_exists(downloadId) AND expiresAt > :now',
      { '#connections': 'connections', '#connection': connectionId },
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
    const evicted = oldestBeyondCap(record.connections, connectionId);
    if (evicted.length > 0) {
      await this.removeConnections(downloadId, evicted);
      const connections = { ...record.connections };
      for (const id of evicted) delete connections[id];
      return { record: { ...record, connections }, evicted };
    }
    return { record, evicted };
  }

  /**
   * Takes connections out of a download's set (gone, evicted or disconnected); others are untouched,
   * whoever added them. Does nothing for an unknown download (and never creates one).
   */
  async removeConnections(downloadId: string, connectionIds: readonly string[]): Promise<void> {
    if (connectionIds.length === 0) return;
    const names: Record<string, string> = { '#connections': 'connections' };
    connectionIds.forEach((id, index) => {
      names[`#c${index}`] = id;
    });
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { downloadId },
          UpdateExpression: `REMOVE ${connectionIds.map((_id, index) => `#connections.#c${index}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(downloadId)',
          ExpressionAttributeNames: names,
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
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

  /** Unbinds a connection: removes it, and only it, from its download's set. */
  async detachConnection(connectionId: string): Promise<void> {
    const downloadId = await this.downloadIdOf(connectionId);
    if (!downloadId) return;
    await this.removeConnections(downloadId, [connectionId]);
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

/**
 * The connections to evict so that at most `MAX_CONNECTIONS_PER_DOWNLOAD` remain: the oldest
 * (then by id, so concurrent `$connect`s agree), never `keep`, the one just added.
 */
function oldestBeyondCap(connections: Readonly<Record<string, number>>, keep: string): string[] {
  const excess = Object.keys(connections).length - MAX_CONNECTIONS_PER_DOWNLOAD;
  if (excess <= 0) return [];
  return Object.entries(connections)
    .filter(([id]) => id !== keep)
    .sort(([a, aAt], [b, bAt]) => aAt - bAt || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, excess)
    .map(([id]) => id);
}
