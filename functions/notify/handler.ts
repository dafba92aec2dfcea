import { createDocumentClient, createManagementClient, createS3Client } from '../../shared/aws-clients.ts';
import { type DeliveryConfig, loadDeliveryConfig } from '../../shared/config.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { notifyDownload } from '../../shared/downloads/notify.ts';
import { withFreshUrl } from '../../shared/downloads/presign.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import type { NotifyRequest } from '../../shared/downloads/websocket-routes.ts';
import { createLogger } from '../../shared/logger.ts';

const logger = createLogger('notify');
const documentClient = createDocumentClient();
const s3 = createS3Client();
let config: DeliveryConfig | undefined;
let poster: ConnectionPoster | undefined;

/**
 * Delivers a settled download (`ready` or `failed`) to a connection. Runs as the `Notify` task and,
 * invoked asynchronously, for connections that arrive after the download settled.
 */
export async function handler(input: NotifyRequest): Promise<{ delivered: boolean }> {
  config ??= loadDeliveryConfig();
  const settings = config;
  poster ??= new ConnectionPoster(createManagementClient(settings.webSocketManagementUrl));
  const store = new DownloadStore(documentClient, settings.downloadTable);
  const refresh = (record: Parameters<typeof withFreshUrl>[0]) =>
    withFreshUrl(record, { s3, bucket: settings.downloadBucket, ttlSeconds: settings.presignTtlSeconds });
  return notifyDownload(input, { store, poster, logger, refresh });
}
