import { createDocumentClient } from '../../shared/aws-clients.ts';
import { loadTableConfig, type TableConfig } from '../../shared/config.ts';
import type { CopiedObject } from '../../shared/downloads/copy-to-s3.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';

const logger = createLogger('mark-ready');
const documentClient = createDocumentClient();
let config: TableConfig | undefined;

/**
 * Step Functions task `MarkReady`: one UpdateItem that returns the connection already bound, if
 * any. A client connecting later sees READY in its own `$connect` update, so nothing is missed.
 */
export async function handler(input: {
  downloadId: string;
  object: CopiedObject;
  presigned: { url: string; expiresAt: string };
}): Promise<{ connectionId: string | null }> {
  config ??= loadTableConfig();
  const store = new DownloadStore(documentClient, config.downloadTable);
  const record = await store.markReady(input.downloadId, {
    url: input.presigned.url,
    urlExpiresAt: input.presigned.expiresAt,
    size: input.object.size,
    contentType: input.object.contentType,
    fileName: input.object.fileName,
    objectKey: input.object.objectKey,
  });
  if (!record) throw new Error(`download ${input.downloadId} has no record`);
  logger.info('download ready', { downloadId: input.downloadId, connectionId: record.connectionId });
  return { connectionId: record.connectionId ?? null };
}
