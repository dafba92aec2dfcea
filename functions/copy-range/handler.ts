import type { Context } from 'aws-lambda';
import { createManagementClient } from '../../shared/aws-clients/api-gateway-management.ts';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { type CopyRangeConfig, loadCopyRangeConfig } from '../../shared/config.ts';
import { deadlineSignal } from '../../shared/deadline.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { copyRange, type RangeTask, type RangeTaskResult } from '../../shared/downloads/copy-range.ts';
import { RangeProgress } from '../../shared/downloads/range-progress.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('copy-range');
const metrics = createMetrics('copy-range');
const s3 = createS3Client();
const documentClient = createDocumentClient();
let config: CopyRangeConfig | undefined;
let poster: ConnectionPoster | undefined;

/** Step Functions task `CopyRange` (inside the `CopyRanges` Map): copies a range until done or out of time. */
export function handler(task: RangeTask, context: Context): Promise<RangeTaskResult> {
  return observeInvocation({ logger, metrics }, { context, correlationId: task.downloadId }, () => {
    config ??= loadCopyRangeConfig();
    poster ??= new ConnectionPoster(createManagementClient(config.webSocketManagementUrl));
    logger.appendKeys({ downloadId: task.downloadId, range: task.range.index });
    const cancellation = new AbortController();
    const progress = new RangeProgress({
      client: documentClient,
      tableName: config.downloadTable,
      downloadId: task.downloadId,
      rangeIndex: task.range.index,
      store: new DownloadStore(documentClient, config.downloadTable),
      poster,
      logger,
      onSettled: () => cancellation.abort(),
    });
    // Stop 20 s early: enough to record where the range stands and return it.
    const signal = deadlineSignal(context, 20_000);
    const softStopAt = Date.now() + config.workerSeconds * 1000;
    return copyRange(task, {
      config,
      s3,
      progress,
      logger,
      signal,
      softStopAt,
      cancellation: cancellation.signal,
    });
  });
}
