import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createS3Client } from '../../shared/aws-clients/s3.ts';
import { loadStatusConfig, type StatusConfig } from '../../shared/config.ts';
import { downloadTokenOf, toWebSocketUrl } from '../../shared/downloads/download-token.ts';
import { findAuthorizedDownload } from '../../shared/downloads/lookup.ts';
import { withFreshUrl } from '../../shared/downloads/presign.ts';
import { isDownloadId, toStatusView } from '../../shared/downloads/record.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { jsonResponse, problemResponse } from '../../shared/http/json-response.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('download-status');
const metrics = createMetrics('download-status');
const documentClient = createDocumentClient();
const s3 = createS3Client();
let config: StatusConfig | undefined;

/**
 * `GET /downloads/{downloadId}`: the download's status, for clients that poll. Only for the holder
 * of the download token (`?token=` as in `statusUrl`, or `X-Download-Token`): 401 without it.
 */
export function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  const downloadId = event.pathParameters?.downloadId;
  const correlationId = isDownloadId(downloadId) ? downloadId : event.requestContext?.requestId;
  return observeInvocation({ logger, metrics }, { context, correlationId }, () => status(event));
}

async function status(event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  try {
    config ??= loadStatusConfig();
    const store = new DownloadStore(documentClient, config.downloadTable);
    const token = downloadTokenOf(event.headers, event.queryStringParameters);
    const found = await findAuthorizedDownload(
      store,
      { downloadId: event.pathParameters?.downloadId },
      token,
    );
    const record = await withFreshUrl(found, {
      s3,
      bucket: config.downloadBucket,
      ttlSeconds: config.presignTtlSeconds,
    });
    return jsonResponse(200, {
      ...toStatusView(record),
      // The caller proved it holds the token (there is one: a request without is refused above);
      // the URL carries it, so it stays one paste long.
      webSocketUrl: toWebSocketUrl(config.webSocketUrl, record.downloadId, token as string),
    });
  } catch (error) {
    return problemResponse(error, logger);
  }
}
