import type { Context } from 'aws-lambda';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { type CompleteCopyConfig, loadCompleteCopyConfig } from '../../shared/config.ts';
import {
  type CompleteCopyInput,
  type CompletedCopy,
  completeCopy,
} from '../../shared/downloads/complete-copy.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('complete-copy');
const metrics = createMetrics('complete-copy');
const s3 = createS3Client();
const documentClient = createDocumentClient();
let config: CompleteCopyConfig | undefined;

/** Step Functions task `CompleteCopy`: checks the ranges' checksum and completes the multipart upload. */
export function handler(input: CompleteCopyInput, context: Context): Promise<CompletedCopy> {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, () => {
    config ??= loadCompleteCopyConfig();
    const store = new DownloadStore(documentClient, config.downloadTable);
    return completeCopy(input, { s3, store, logger });
  });
}
