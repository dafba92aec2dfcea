import type { Context } from 'aws-lambda';
import { createManagementClient } from '../../shared/aws-clients/api-gateway-management.ts';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { type FetchConfig, loadFetchConfig } from '../../shared/config.ts';
import { deadlineSignal } from '../../shared/deadline.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { type CopiedObject, copyToS3 } from '../../shared/downloads/copy-to-s3.ts';
import type { WorkflowInput } from '../../shared/downloads/start-download.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('fetch-to-s3');
const metrics = createMetrics('fetch-to-s3');
const s3 = createS3Client();
const documentClient = createDocumentClient();
let config: FetchConfig | undefined;
let poster: ConnectionPoster | undefined;

/** Step Functions task `FetchToS3`: upstream → S3 multipart upload, with progress. */
export function handler(input: WorkflowInput, context: Context): Promise<CopiedObject> {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, () => {
    config ??= loadFetchConfig();
    poster ??= new ConnectionPoster(createManagementClient(config.webSocketManagementUrl));
    logger.appendKeys({ downloadId: input.downloadId });
    const store = new DownloadStore(documentClient, config.downloadTable);
    // Stop 20 s early: enough to abort the multipart upload and fail with a named error.
    const signal = deadlineSignal(context, 20_000);
    return copyToS3(input, { config, s3, store, poster, logger, signal, metrics });
  });
}
