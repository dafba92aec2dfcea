import type { Context } from 'aws-lambda';
import { createManagementClient } from '../../shared/aws-clients/api-gateway-management.ts';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { loadMarkFailedConfig, type MarkFailedConfig } from '../../shared/config.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import type { ExecutionStatusChangeEvent } from '../../shared/downloads/execution-events.ts';
import { isDownloadId } from '../../shared/downloads/record.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { settleEndedWorkflow, type WorkflowEndedOutcome } from '../../shared/downloads/workflow-ended.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('workflow-ended');
const metrics = createMetrics('workflow-ended');
const s3 = createS3Client();
const documentClient = createDocumentClient();
// The same settings as `MarkFailed`: it does the same job for the endings the workflow cannot catch.
let config: MarkFailedConfig | undefined;
let poster: ConnectionPoster | undefined;

/**
 * EventBridge target for the workflow's "Step Functions Execution Status Change" events
 * (TIMED_OUT, ABORTED, FAILED): settles a download its execution left unsettled. Throwing makes
 * Lambda retry the event, then send it to the dead-letter queue.
 */
export function handler(event: ExecutionStatusChangeEvent, context?: Context): Promise<WorkflowEndedOutcome> {
  // Executions are named after their download.
  const correlationId = isDownloadId(event.detail.name) ? event.detail.name : undefined;
  return observeInvocation({ logger, metrics }, { context, correlationId }, () => {
    config ??= loadMarkFailedConfig();
    poster ??= new ConnectionPoster(createManagementClient(config.webSocketManagementUrl));
    const store = new DownloadStore(documentClient, config.downloadTable);
    logger.appendKeys({ executionArn: event.detail.executionArn, eventId: event.id });
    return settleEndedWorkflow(event.detail, {
      store,
      poster,
      s3,
      bucket: config.downloadBucket,
      logger,
      metrics,
    });
  });
}
