import { randomUUID } from 'node:crypto';
import { type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { DownloadKey } from '../download-key.ts';
import { ServiceUnavailableError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { createDownloadToken, toStatusUrl, toWebSocketUrl } from './download-token.ts';
import { type DownloadRecord, toExecutionArn } from './record.ts';
import type { DownloadStore } from './store.ts';

/**
 * Why the router chose the async path: the file is above the router's threshold
 * (`ROUTER_STREAM_MAX_BYTES`) or above what the streaming path can carry (`STREAM_MAX_BYTES`), its
 * length is unknown, or the client asked (`?mode=async`, `Prefer: respond-async`).
 */
export type AsyncReason = 'above-router-threshold' | 'too-large-to-stream' | 'unknown-length' | 'requested';

/** The execution input of the async workflow. */
export interface WorkflowInput {
  downloadId: string;
  /** Key in wire form (percent-encoded segments), validated again by the copy step. */
  key: string;
  /** Forwarded query string, without `?`. */
  query?: string;
  range?: string;
}

/** What a client needs after a 202. The token is in it once, and nowhere else. */
export interface AcceptedDownload {
  downloadId: string;
  status: 'PENDING';
  executionArn: string;
  /**
   * The download token: the proof, for the WebSocket and the status endpoint, that the caller
   * started this download (`X-Download-Token` or `?token=`). A download id or execution ARN alone
   * gets nothing.
   */
  token: string;
  /** Connect here with the `X-StateMachine-ExecutionArn` and `X-Download-Token` headers… */
  webSocketEndpoint: string;
  /** …or here, as is (`?downloadId=…&token=…`; browsers cannot set headers). */
  webSocketUrl: string;
  /** `GET` it as is (`?token=…`). */
  statusUrl: string;
  /** When the download record (and the handle) expires. */
  expiresAt: string;
  reason: AsyncReason;
  size?: number;
}

/** Writes the download record first, then starts the execution named after it. */
export class AsyncDownloadStarter {
  constructor(
    private readonly store: DownloadStore,
    private readonly sfn: SFNClient,
    private readonly settings: { stateMachineArn: string; webSocketUrl: string; recordTtlSeconds: number },
    private readonly logger: Logger,
  ) {}

  async start(request: {
    key: DownloadKey;
    query: URLSearchParams | undefined;
    range: string | undefined;
    baseUrl: string;
    reason: AsyncReason;
    size: number | undefined;
  }): Promise<AcceptedDownload> {
    const downloadId = randomUUID();
    const { token, tokenHash } = createDownloadToken();
    const executionArn = toExecutionArn(this.settings.stateMachineArn, downloadId);
    const now = new Date();
    const expiresAt = Math.floor(now.getTime() / 1000) + this.settings.recordTtlSeconds;
    const wireKey = request.key.segments.map(encodeURIComponent).join('/');
    const record: DownloadRecord = {
      downloadId,
      key: wireKey,
      status: 'PENDING',
      executionArn,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      expiresAt,
      bytes: 0,
      totalBytes: request.size,
      fileName: request.key.fileName,
      tokenHash,
      connections: {},
    };
    try {
      await this.store.create(record);
    } catch (error) {
      this.logger.error('could not write the download record', { downloadId, error: error as Error });
      throw new ServiceUnavailableError(
        'DownloadNotStarted',
        'The download could not be started; try again',
        { cause: error },
      );
    }
    const input: WorkflowInput = {
      downloadId,
      key: wireKey,
      ...(request.query ? { query: request.query.toString() } : {}),
      ...(request.range ? { range: request.range } : {}),
    };
    try {
      await this.sfn.send(
        new StartExecutionCommand({
          stateMachineArn: this.settings.stateMachineArn,
          name: downloadId,
          input: JSON.stringify(input),
        }),
      );
    } catch (error) {
      this.logger.error('could not start the workflow', { downloadId, error: error as Error });
      // No orphan record: the client learns it failed, and so does anyone polling this id.
      await this.store
        .markFailed(downloadId, { code: 'DownloadNotStarted', message: 'The download could not be started' })
        .catch((markError: unknown) =>
          this.logger.error('could not mark the record failed', { error: markError as Error }),
        );
      throw new ServiceUnavailableError(
        'DownloadNotStarted',
        'The download could not be started; try again',
        { cause: error },
      );
    }
    this.logger.info('async download started', { downloadId, key: record.key, reason: request.reason });
    return {
      downloadId,
      status: 'PENDING',
      executionArn,
      token,
      webSocketEndpoint: this.settings.webSocketUrl,
      webSocketUrl: toWebSocketUrl(this.settings.webSocketUrl, downloadId, token),
      statusUrl: toStatusUrl(request.baseUrl, downloadId, token),
      expiresAt: new Date(expiresAt * 1000).toISOString(),
      reason: request.reason,
      ...(request.size === undefined ? {} : { size: request.size }),
    };
  }
}
