import type { Logger } from '../logger.ts';
import type { ConnectionPoster } from './connections.ts';
import { toOutcomeMessage } from './messages.ts';
import type { DownloadRecord } from './record.ts';
import type { DownloadStore } from './store.ts';
import type { NotifyRequest } from './websocket-routes.ts';

/** Sends the outcome of a settled download to the named (or current) connection; a gone one is not an error. */
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
  const stored = await deps.store.get(input.downloadId);
  const record = stored && deps.refresh ? await deps.refresh(stored) : stored;
  const message = record ? toOutcomeMessage(record) : undefined;
  const connectionId = input.connectionId ?? record?.connectionId;
  if (!message || !connectionId) {
    deps.logger.info('nothing to deliver', { downloadId: input.downloadId, status: record?.status });
    return { delivered: false };
  }
  const outcome = await deps.poster.postWhenConnected(connectionId, message, input.waitForConnectionMs ?? 0);
  deps.logger.info('delivery', { downloadId: input.downloadId, connectionId, type: message.type, outcome });
  return { delivered: outcome === 'sent' };
}
