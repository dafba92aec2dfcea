import type { Context } from 'aws-lambda';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { loadTableConfig, type TableConfig } from '../../shared/config.ts';
import type { CopiedObject } from '../../shared/downloads/copy-to-s3.ts';
import { toConnectionList } from '../../shared/downloads/notify.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('mark-ready');
const metrics = createMetrics('mark-ready');
const documentClient = createDocumentClient();
let config: TableConfig | undefined;

/**
 * Step Functions task `MarkReady`: one UpdateItem that returns the connections already bound, for
 * `Notify` (comma-separated in `connectionId`, `null` for none). A client connecting later sees
 * READY in its own `$connect` update and is served by the notifier, so nothing is missed and no
 * connection gets the URL twice.
 */
export function handler(input: MarkReadyInput, context?: Context): Promise<{ connectionId: string | null }> {
  return observeInvocation({ logger, metrics }, { context, correlationId: input.downloadId }, () =>
    markReady(input),
  );
}

interface MarkReadyInput {
  downloadId: string;
  object: CopiedObject;
  presigned: { url: string; expiresAt: string };
}

async function markReady(input: MarkReadyInput): Promise<{ connectionId: string | null }> {
  config ??= loadTableConfig();
  const store = new DownloadStore(documentClient, config.downloadTable);
  const record = await store.markReady(input.downloadId, {
    url: input.presigned.url,
    urlExpiresAt: input.presigned.expiresAt,
    size: input.object.size,
    contentType: input.object.contentType,
    fileName: input.object.fileName,
    objectKey: input.object.objectKey,
    checksum: input.object.checksum,
  });
  if (!record) throw new Error(`download ${input.downloadId} has no record`);
  const connectionIds = Object.keys(record.connections ?? {});
  logger.info('download ready', { downloadId: input.downloadId, connections: connectionIds.length });
  return { connectionId: toConnectionList(connectionIds) };
}
