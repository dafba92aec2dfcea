import type { APIGatewayProxyWebsocketEventV2, Context } from 'aws-lambda';
import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createLambdaClient } from '../../shared/aws-clients/lambda.ts';
import { loadWebSocketConfig, type WebSocketConfig } from '../../shared/config.ts';
import { isDownloadId } from '../../shared/downloads/record.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { connect, disconnect, message, type RouteResult } from '../../shared/downloads/websocket-routes.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

/** `$connect` events also carry the handshake's headers and query. */
type WebSocketEvent = APIGatewayProxyWebsocketEventV2 & {
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined> | null;
};

const logger = createLogger('websocket');
const metrics = createMetrics('websocket');
const documentClient = createDocumentClient();
const lambda = createLambdaClient();
let config: WebSocketConfig | undefined;

/** WebSocket API routes: `$connect`, `$disconnect`, `status` and `$default`. */
export function handler(event: WebSocketEvent, context?: Context): Promise<RouteResult> {
  // `$connect` may name the download (`?downloadId=`); other routes know only the connection.
  const downloadId = event.queryStringParameters?.downloadId;
  const correlationId = isDownloadId(downloadId) ? downloadId : event.requestContext.requestId;
  return observeInvocation({ logger, metrics }, { context, correlationId }, () => route(event));
}

async function route(event: WebSocketEvent): Promise<RouteResult> {
  config ??= loadWebSocketConfig();
  const store = new DownloadStore(documentClient, config.downloadTable);
  const { routeKey, connectionId } = event.requestContext;
  logger.appendKeys({ connectionId, routeKey });
  switch (routeKey) {
    case '$connect':
      return connect(
        {
          store,
          lambda,
          notifierFunctionName: config.notifierFunctionName,
          webSocketAuth: config.webSocketAuth,
          logger,
        },
        { connectionId, headers: event.headers, query: event.queryStringParameters ?? undefined },
      );
    case '$disconnect':
      return disconnect({ store, logger }, connectionId);
    default:
      return message({ store, logger }, { connectionId, body: event.body });
  }
}
