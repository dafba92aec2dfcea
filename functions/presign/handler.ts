import { createS3Client } from '../../shared/aws-clients.ts';
import { loadPresignConfig, type PresignConfig } from '../../shared/config.ts';
import type { CopiedObject } from '../../shared/downloads/copy-to-s3.ts';
import { presignDownload } from '../../shared/downloads/presign.ts';
import { createLogger } from '../../shared/logger.ts';

const logger = createLogger('presign');
const s3 = createS3Client();
let config: PresignConfig | undefined;

/** Step Functions task `Presign`: a GET URL that saves under the original file name. */
export async function handler(input: {
  downloadId: string;
  object: CopiedObject;
}): Promise<{ url: string; expiresAt: string }> {
  config ??= loadPresignConfig();
  const presigned = await presignDownload(s3, input.object, config.presignTtlSeconds);
  logger.info('presigned', {
    downloadId: input.downloadId,
    objectKey: input.object.objectKey,
    expiresAt: presigned.expiresAt,
  });
  return presigned;
}
