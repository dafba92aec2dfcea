import type { Context } from 'aws-lambda';
import { createManagementClient } from '../../shared/aws-clients/api-gateway-management.ts';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { loadMarkFailedConfig, type MarkFailedConfig } from '../../shared/config.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import type { CaughtError } from '../../shared/downloads/failure.ts';
import { markDownloadFailed } from '../../shared/downloads/mark-failed.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('mark-failed');
const metrics = createMetrics('mark-failed');
const s3 = createS3Client();
const documentClient = createDocumentClient();
let config: MarkFailedConfig | undefined;
let poster: ConnectionPoster | undefined;

/** Step Functions task `MarkFailed`: clean S3, record the failure, tell the client. */
export function handler(input: { downloadId: string; error?: CaughtError }, context?: Context) {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, () => {
    config ??= loadMarkFailedConfig();
    poster ??= new ConnectionPoster(createManagementClient(config.webSocketManagementUrl));
    const store = new DownloadStore(documentClient, config.downloadTable);
    return markDownloadFailed(input, { store, poster, s3, bucket: config.downloadBucket, logger, metrics });
  });
}
