import { createDocumentClient, createManagementClient } from '../../shared/aws-clients.ts';
import { loadNotifyConfig, type NotifyConfig } from '../../shared/config.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { notifyDownload } from '../../shared/downloads/notify.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import type { NotifyRequest } from '../../shared/downloads/websocket-routes.ts';
import { createLogger } from '../../shared/logger.ts';

const logger = createLogger('notify');
const documentClient = createDocumentClient();
let config: NotifyConfig | undefined;
let poster: ConnectionPoster | undefined;

/**
 * Delivers a settled download (`ready` or `failed`) to a connection. Runs as the `Notify` task and,
 * invoked asynchronously, for connections that arrive after the download settled.
 */
export async function handler(input: NotifyRequest): Promise<{ delivered: boolean }> {
  config ??= loadNotifyConfig();
  poster ??= new ConnectionPoster(createManagementClient(config.webSocketManagementUrl));
  const store = new DownloadStore(documentClient, config.downloadTable);
  return notifyDownload(input, { store, poster, logger });
}
