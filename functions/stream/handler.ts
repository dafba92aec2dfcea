import { loadStreamConfig, type StreamConfig } from '../../shared/config.ts';
import { deadlineSignal } from '../../shared/deadline.ts';
import { streamify } from '../../shared/http/awslambda.ts';
import { type HttpEvent, toHttpRequest } from '../../shared/http/request.ts';
import { createLogger } from '../../shared/logger.ts';
import { createMetrics, observeInvocation } from '../../shared/observability.ts';
import { streamDownload } from '../../shared/streaming/stream-download.ts';

const logger = createLogger('stream');
const metrics = createMetrics('stream');
let config: StreamConfig | undefined;

/** `GET|HEAD /stream/{key+}` on the REST API (v1 events) and `/{key+}` on the Function URL (v2). */
export const handler = streamify<HttpEvent>((event, responseStream, context) =>
  observeInvocation({ logger, metrics }, { context }, async () => {
    config ??= loadStreamConfig();
    const request = toHttpRequest(event);
    // No download id on this path: the API's request id correlates, as in the access log.
    logger.setCorrelationId(request.requestId);
    const signal = deadlineSignal(context, 5_000);
    await streamDownload(request, responseStream, { config, logger, signal, metrics });
  }),
);
