import type { Context } from 'aws-lambda';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { loadPresignConfig, type PresignConfig } from '../../shared/config.ts';
import type { CopiedObject } from '../../shared/downloads/copy-to-s3.ts';
import { presignDownload } from '../../shared/downloads/presign.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('presign');
const metrics = createMetrics('presign');
const s3 = createS3Client();
let config: PresignConfig | undefined;

/** Step Functions task `Presign`: a GET URL that saves under the original file name. */
export function handler(
  input: { downloadId: string; object: CopiedObject },
  context?: Context,
): Promise<{ url: string; expiresAt: string }> {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, async () => {
    config ??= loadPresignConfig();
    const presigned = await presignDownload(s3, input.object, config.presignTtlSeconds);
    logger.info('presigned', {
      downloadId: input.downloadId,
      objectKey: input.object.objectKey,
      expiresAt: presigned.expiresAt,
    });
    return presigned;
  });
}
