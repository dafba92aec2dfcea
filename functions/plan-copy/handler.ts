import type { Context } from 'aws-lambda';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { loadPlanCopyConfig, type PlanCopyConfig } from '../../shared/config.ts';
import { deadlineSignal } from '../../shared/deadline.ts';
import { type CopyPlan, planCopy } from '../../shared/downloads/plan-copy.ts';
import type { WorkflowInput } from '../../shared/downloads/start-download.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('plan-copy');
const metrics = createMetrics('plan-copy');
const s3 = createS3Client();
const documentClient = createDocumentClient();
let config: PlanCopyConfig | undefined;

/** Step Functions task `PlanCopy`: single-stream or parallel copy; for parallel, the upload and its ranges. */
export function handler(input: WorkflowInput, context: Context): Promise<CopyPlan> {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, () => {
    config ??= loadPlanCopyConfig();
    const signal = deadlineSignal(context, 5_000);
    return planCopy(input, { config, s3, documentClient, logger, signal });
  });
}
