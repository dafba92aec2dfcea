import type { Context } from 'aws-lambda';
import { createManagementClient } from '../../shared/aws-clients/api-gateway-management.ts';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { type DeliveryConfig, loadDeliveryConfig } from '../../shared/config.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { type NotifyRequest, notifyDownload } from '../../shared/downloads/notify.ts';
import { withFreshUrl } from '../../shared/downloads/presign.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('notify');
const metrics = createMetrics('notify');
const documentClient = createDocumentClient();
const s3 = createS3Client();
let config: DeliveryConfig | undefined;
let poster: ConnectionPoster | undefined;

/**
 * Delivers a settled download (`ready` or `failed`) to its connections. Runs as the `Notify` task
 * (the connections `MarkReady` saw) and, invoked asynchronously by `$connect`, for a connection that
 * arrives after the download settled and to close connections pushed out of the set.
 */
export function handler(input: NotifyRequest, context?: Context): Promise<{ delivered: boolean }> {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, () => {
    config ??= loadDeliveryConfig();
    const settings = config;
    poster ??= new ConnectionPoster(createManagementClient(settings.webSocketManagementUrl));
    const store = new DownloadStore(documentClient, settings.downloadTable);
    const refresh = (record: Parameters<typeof withFreshUrl>[0]) =>
      withFreshUrl(record, { s3, bucket: settings.downloadBucket, ttlSeconds: settings.presignTtlSeconds });
    return notifyDownload(input, { store, poster, logger, refresh });
  });
}
