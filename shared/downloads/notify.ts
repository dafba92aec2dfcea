import type { Logger } from '../logger.ts';
import type { ConnectionPoster } from './connections.ts';
import { toOutcomeMessage, toTooManyConnectionsMessage } from './messages.ts';
import type { DownloadRecord } from './record.ts';
import { type DownloadStore, MAX_CONNECTIONS_PER_DOWNLOAD } from './store.ts';

/**
 * What the notifier function receives: from the workflow's `Notify` state (the connections
 * `MarkReady` saw), and, invoked asynchronously, from `$connect` (the new connection of a settled
 * download, and the connections it pushed out of the set).
 */
export interface NotifyRequest {
  downloadId: string;
  /**
   * The connections to send the outcome to, comma-separated (API Gateway connection ids never
   * contain commas; the workflow's field keeps its single-connection name). Without it, every
   * connection of the download gets the outcome, unless the request only closes connections.
   */
  connectionId?: string;
  /** Connections to tell why (`closed`) and then close. */
  close?: string[];
}

/** The `connectionId` of a `NotifyRequest` for these connections; `null` for none (the workflow's `HasConnection` tests for a string). */
export function toConnectionList(connectionIds: readonly string[]): string | null {
  return connectionIds.length > 0 ? connectionIds.join(',') : null;
}

function fromConnectionList(list: string): string[] {
  return list.split(',').filter((id) => id.length > 0);
}

/**
 * Sends the outcome of a settled download (`ready` or `failed`) to the named connections that are
 * still bound to it, waiting for any that may still be inside `$connect`; a gone connection is not
 * an error. Then closes the connections the request names in `close`, saying why first.
 */
export async function notifyDownload(
  input: NotifyRequest,
  deps: {
    store: DownloadStore;
    poster: ConnectionPoster;
    logger: Logger;
    /** Re-signs an expired URL before it is sent again. */
    refresh?: (record: DownloadRecord) => Promise<DownloadRecord>;
  },
): Promise<{ delivered: boolean }> {
  const closing = input.close ?? [];
  const closed = closing.length > 0 ? closeConnections(input.downloadId, closing, deps) : undefined;
  const stored = await deps.store.get(input.downloadId);
  const targets = deliveryTargets(input, stored?.connections ?? {});
  const record =
    stored && deps.refresh && Object.keys(targets).length > 0 ? await deps.refresh(stored) : stored;
  const message = record ? toOutcomeMessage(record) : undefined;
  let delivered = false;
  if (!message || Object.keys(targets).length === 0) {
    deps.logger.info('nothing to deliver', { downloadId: input.downloadId, status: record?.status });
  } else {
    const broadcast = await deps.poster.postToAll(targets, message, { waitForNew: true });
    delivered = broadcast.sent.length > 0;
    deps.logger.info('delivery', {
      downloadId: input.downloadId,
      type: message.type,
      sent: broadcast.sent.length,
      gone: broadcast.gone.length + broadcast.connecting.length,
    });
    for (const { connectionId, error } of broadcast.failed) {
      deps.logger.error('delivery failed', { downloadId: input.downloadId, connectionId, error });
    }
    // Gone connections stay in the set: this function may only read the table. $disconnect
    // removes them, or the cap pushes them out first (they are the oldest).
    if (broadcast.failed.length > 0) {
      await closed;
      // Fail the invocation, so that an asynchronous one is retried by Lambda (throttling, 5xx).
      throw new Error(`delivery failed for ${broadcast.failed.length} connection(s)`, {
        cause: broadcast.failed[0]?.error,
      });
    }
  }
  await closed;
  return { delivered };
}

/**
 * The bound connections a request delivers to: the named ones that are still bound (one that left,
 * or was pushed out, since it was named gets nothing); all of them when none is named, unless the
 * request only closes connections.
 */
function deliveryTargets(
  input: NotifyRequest,
  bound: Readonly<Record<string, number>>,
): Record<string, number> {
  if (input.connectionId === undefined) return input.close?.length ? {} : { ...bound };
  const named = new Set(fromConnectionList(input.connectionId));
  return Object.fromEntries(Object.entries(bound).filter(([id]) => named.has(id)));
}

/** Tells each connection why it is closed, then closes it; one that is gone already is skipped. */
async function closeConnections(
  downloadId: string,
  connectionIds: readonly string[],
  deps: { poster: ConnectionPoster; logger: Logger },
): Promise<void> {
  const message = toTooManyConnectionsMessage(downloadId, MAX_CONNECTIONS_PER_DOWNLOAD);
  await Promise.all(
    connectionIds.map(async (connectionId) => {
      try {
        if ((await deps.poster.post(connectionId, message)) === 'gone') return;
        await deps.poster.close(connectionId);
        deps.logger.info('connection closed', { downloadId, connectionId, reason: message.reason.code });
      } catch (error) {
        deps.logger.error('could not close a connection', {
          downloadId,
          connectionId,
          error: error as Error,
        });
      }
    }),
  );
}
