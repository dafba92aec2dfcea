import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Logger } from '../logger.ts';
import type { ConnectionPoster } from './connections.ts';
import { toProgressMessage } from './messages.ts';
import type { DownloadRecord } from './record.ts';
import type { DownloadStore } from './store.ts';

/**
 * Where one range of a parallel copy stands, kept in the download record under
 * `copyRanges.r<index>` so that a retried worker resumes instead of starting the range over.
 */
export interface RangeState {
  /** The first byte not yet stored in a completed part (a part boundary). */
  next: number;
  /** CRC64NVME (base64) of the range's bytes before `next`; `null` while `next` is the range's start. */
  crc: string | null;
  /** The furthest byte read from upstream, stored or not: what `bytes` counts for this range. */
  reached: number;
}

/** The fields a parallel copy adds to the download record. */
interface ParallelCopyFields {
  copyRanges?: Record<string, RangeState>;
  /** Epoch ms of the last progress message any worker posted (one a second for all of them). */
  progressPostedAt?: number;
}

type CopyRecord = DownloadRecord & ParallelCopyFields;

function isConditionFailure(error: unknown): boolean {
  return (error as Error | null)?.name === 'ConditionalCheckFailedException';
}

function isSettled(record: CopyRecord | undefined): boolean {
  return !record || (record.status !== 'PENDING' && record.status !== 'RUNNING');
}

/**
 * The progress of one range, written to the download record. Every worker adds the bytes it
 * reads beyond the furthest point its range reached before (`ADD bytes`, one atomic update with
 * the range's own state), so the record's `bytes` sums all workers, never counts a byte twice
 * (a retry re-reads from its last stored part, below that point) and never goes down. The first
 * worker to see that no progress message went out for a second claims the next one with a
 * conditional update and posts the record's total: clients get one message a second, not one
 * per worker.
 */
export class RangeProgress {
  #saved: RangeState | undefined;
  #writing: Promise<void> | undefined;
  #lastWrite = 0;
  #settled = false;

  constructor(
    private readonly deps: {
      client: DynamoDBDocumentClient;
      tableName: string;
      downloadId: string;
      rangeIndex: number;
      store: DownloadStore;
      poster: ConnectionPoster;
      logger: Logger;
      /** Called once when a write finds the download settled (READY, FAILED or gone). */
      onSettled: () => void;
      intervalMs?: number;
    },
  ) {}

  private get intervalMs(): number {
    return this.deps.intervalMs ?? 1000;
  }

  private get attribute(): string {
    return `r${this.deps.rangeIndex}`;
  }

  /** The record's state of this range, and whether the download is still wanted. */
  async load(): Promise<{ settled: boolean; stored: RangeState | undefined }> {
    const record = await this.read();
    this.#saved = record?.copyRanges?.[this.attribute];
    this.#settled = isSettled(record);
    return { settled: this.#settled, stored: this.#saved };
  }

  /** Writes `state` unless a write is under way or one went out less than a second ago. */
  report(state: RangeState): void {
    if (this.#writing || this.#settled || Date.now() - this.#lastWrite < this.intervalMs) return;
    this.#writing = this.write(state).finally(() => {
      this.#writing = undefined;
    });
  }

  /** Waits for a write under way, then writes `state`. */
  async flush(state: RangeState): Promise<void> {
    await this.#writing;
    if (!this.#settled) await this.write(state);
  }

  private async read(): Promise<CopyRecord | undefined> {
    const { Item } = await this.deps.client.send(
      new GetCommand({
        TableName: this.deps.tableName,
        Key: { downloadId: this.deps.downloadId },
        ConsistentRead: true,
      }),
    );
    return Item as CopyRecord | undefined;
  }

  private async write(state: RangeState): Promise<void> {
    this.#lastWrite = Date.now();
    const saved = this.#saved;
    const toSave: RangeState = { ...state, reached: Math.max(state.reached, saved?.reached ?? 0) };
    const delta = toSave.reached - (saved?.reached ?? 0);
    try {
      const { Attributes } = await this.deps.client.send(
        new UpdateCommand({
          TableName: this.deps.tableName,
          Key: { downloadId: this.deps.downloadId },
          UpdateExpression: 'SET copyRanges.#range = :state, updatedAt = :updatedAt ADD bytes :delta',
          ConditionExpression: `(#status = :running OR #status = :pending) AND ${
            saved ? 'copyRanges.#range.reached = :before' : 'attribute_not_exists(copyRanges.#range)'
          }`,
          ExpressionAttributeNames: { '#status': 'status', '#range': this.attribute },
          ExpressionAttributeValues: {
            ':state': toSave,
            ':delta': delta,
            ':running': 'RUNNING',
            ':pending': 'PENDING',
            ':updatedAt': new Date().toISOString(),
            ...(saved ? { ':before': saved.reached } : {}),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      this.#saved = toSave;
      await this.postIfDue(Attributes as CopyRecord);
    } catch (error) {
      if (!isConditionFailure(error)) {
        this.deps.logger.warn('range progress update failed', { error: error as Error });
        return;
      }
      // Settled, or the range's state moved under us (an earlier attempt's late write): re-read.
      const record = await this.read().catch(() => undefined);
      if (isSettled(record)) {
        this.#settled = true;
        this.deps.onSettled();
        return;
      }
      this.#saved = record?.copyRanges?.[this.attribute];
    }
  }

  /** Posts the record's total if no worker did for a second, claiming the slot first. */
  private async postIfDue(record: CopyRecord): Promise<void> {
    const seen = record.progressPostedAt;
    const now = Date.now();
    if (seen !== undefined && now - seen < this.intervalMs) return;
    let claimed: CopyRecord;
    try {
      const { Attributes } = await this.deps.client.send(
        new UpdateCommand({
          TableName: this.deps.tableName,
          Key: { downloadId: this.deps.downloadId },
          UpdateExpression: 'SET progressPostedAt = :now',
          ConditionExpression: `#status = :running AND ${
            seen === undefined ? 'attribute_not_exists(progressPostedAt)' : 'progressPostedAt = :seen'
          }`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':now': now,
            ':running': 'RUNNING',
            ...(seen === undefined ? {} : { ':seen': seen }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      claimed = Attributes as CopyRecord;
    } catch (error) {
      // Another worker posts this one.
      if (isConditionFailure(error)) return;
      throw error;
    }
    const { downloadId, logger } = this.deps;
    const broadcast = await this.deps.poster.postToAll(
      claimed.connections ?? {},
      toProgressMessage(downloadId, claimed.bytes, claimed.totalBytes),
    );
    for (const { connectionId, error } of broadcast.failed) {
      logger.warn('progress post failed', { connectionId, error });
    }
    // Closed without their $disconnect reaching the table: stop posting to them.
    if (broadcast.gone.length > 0) await this.deps.store.removeConnections(downloadId, broadcast.gone);
  }
}
