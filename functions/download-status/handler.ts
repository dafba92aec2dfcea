import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { createDocumentClient, createS3Client } from '../../shared/aws-clients.ts';
import { loadStatusConfig, type StatusConfig } from '../../shared/config.ts';
import { findDownload } from '../../shared/downloads/lookup.ts';
import { withFreshUrl } from '../../shared/downloads/presign.ts';
import { toStatusView } from '../../shared/downloads/record.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { jsonResponse, problemResponse } from '../../shared/http/json-response.ts';
import { createLogger } from '../../shared/logger.ts';

const logger = createLogger('download-status');
const documentClient = createDocumentClient();
const s3 = createS3Client();
let config: StatusConfig | undefined;

/** `GET /downloads/{downloadId}`: the download's status, for clients that poll. */
export async function handler(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  try {
    config ??= loadStatusConfig();
    const store = new DownloadStore(documentClient, config.downloadTable);
    const found = await findDownload(store, { downloadId: event.pathParameters?.downloadId });
    const record = await withFreshUrl(found, {
      s3,
      bucket: config.downloadBucket,
      ttlSeconds: config.presignTtlSeconds,
    });
    return jsonResponse(200, {
      ...toStatusView(record),
      webSocketUrl: `${config.webSocketUrl}?downloadId=${record.downloadId}`,
    });
  } catch (error) {
    return problemResponse(error, logger);
  }
}
