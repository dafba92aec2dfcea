import { createDocumentClient } from '../../shared/aws-clients/dynamodb.ts';
import { createSfnClient } from '../../shared/aws-clients/sfn.ts';
import { loadRouterConfig, type RouterConfig } from '../../shared/config.ts';
import { deadlineSignal } from '../../shared/deadline.ts';
import { routeDownload } from '../../shared/downloads/route-download.ts';
import { AsyncDownloadStarter } from '../../shared/downloads/start-download.ts';
import { DownloadStore } from '../../shared/downloads/store.ts';
import { streamify } from '../../shared/http/awslambda.ts';
import { type HttpEvent, toHttpRequest } from '../../shared/http/request.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';

const logger = createLogger('router');
const metrics = createMetrics('router');
const documentClient = createDocumentClient();
const sfn = createSfnClient();
let config: RouterConfig | undefined;
let starter: AsyncDownloadStarter | undefined;

/** `GET|HEAD /download/{key+}`: streams what fits, starts the async workflow for the rest. */
export const handler = streamify<HttpEvent>((event, responseStream, context) =>
  observeInvocation({ logger, metrics }, { context }, async () => {
    config ??= loadRouterConfig();
    starter ??= new AsyncDownloadStarter(
      new DownloadStore(documentClient, config.downloadTable),
      sfn,
      config,
      logger,
    );
    const request = toHttpRequest(event);
    // The API's request id until a download starts; `routeDownload` then switches to its id.
    logger.setCorrelationId(request.requestId);
    logger.appendKeys({ requestId: request.requestId });
    const signal = deadlineSignal(context, 5_000);
    await routeDownload(request, responseStream, { config, logger, signal, starter, metrics });
  }),
);
