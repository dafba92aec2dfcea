import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3Client } from '../../shared/aws-clients.ts';
import { loadPresignConfig, type PresignConfig } from '../../shared/config.ts';
import { attachmentDisposition } from '../../shared/content-disposition.ts';
import type { CopiedObject } from '../../shared/downloads/copy-to-s3.ts';
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
  const { object } = input;
  const url = await getSignedUrl(
    s3,
    new GetObjectCommand({
      Bucket: object.bucket,
      Key: object.objectKey,
      ResponseContentDisposition: attachmentDisposition(object.fileName),
      ResponseContentType: object.contentType,
    }),
    { expiresIn: config.presignTtlSeconds },
  );
  const expiresAt = new Date(Date.now() + config.presignTtlSeconds * 1000).toISOString();
  logger.info('presigned', { downloadId: input.downloadId, objectKey: object.objectKey, expiresAt });
  return { url, expiresAt };
}
