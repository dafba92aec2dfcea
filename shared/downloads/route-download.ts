import type { RouterConfig } from '../config.ts';
import { BadRequestError } from '../errors.ts';
import type { LambdaResponseStream } from '../http/awslambda.ts';
import type { HttpRequest } from '../http/request.ts';
import { sendResponse } from '../http/response-writer.ts';
import type { Logger } from '../logger.ts';
import { emitMetric, type Metrics, MetricUnit } from '../observability.ts';
import {
  type OpenedDownload,
  openDownload,
  sendDownload,
  toForwardedQuery,
  tooLargeForStreaming,
  writeProblem,
} from '../streaming/stream-download.ts';
import { cancelBody } from '../upstream.ts';
import type { AcceptedDownload, AsyncDownloadStarter, AsyncReason } from './start-download.ts';

/** The path a request takes. */
export type RouteDecision =
  | { path: 'stream' }
  | { path: 'async'; reason: AsyncReason }
  | { path: 'too-large' };

/** Names of the metrics the router emits (namespace `POWERTOOLS_METRICS_NAMESPACE`). */
export const ROUTER_METRICS = {
  /**
   * One per request that reached a decision, dimension `decision` (`stream`, `async`, `too-large`)
   * and, for `async`, `reason` (`requested`, `unknown-length`, `too-large-to-stream`,
   * `above-router-threshold`).
   */
  routeDecision: 'RouteDecision',
} as const;

/** The client's `?mode=`, if any; 400 for anything but `stream` or `async`. */
export function parseMode(request: HttpRequest): 'stream' | 'async' | undefined {
  const mode = request.query.get('mode');
  if (mode === null) return undefined;
  if (mode !== 'stream' && mode !== 'async') {
    throw new BadRequestError('InvalidMode', 'mode must be "stream" or "async"');
  }
  return mode;
}

/** The two sizes the router decides by. */
export interface RouteLimits {
  /** What the streaming path can carry (`STREAM_MAX_BYTES`): above it, `?mode=stream` is refused. */
  streamMaxBytes: number;
  /**
   * Up to what size the router streams on its own (`ROUTER_STREAM_MAX_BYTES`, capped at
   * `streamMaxBytes`): above it, a presigned S3 URL is usually faster than a stream capped at 2 MB/s.
   */
  routerStreamMaxBytes: number;
}

/**
 * Chooses the path from upstream's headers alone: a file up to both limits is streamed; a larger
 * one, or one of unknown length, goes async, and the decision's `reason` names the rule that
 * applied. `?mode=stream|async` and `Prefer: respond-async` override; `?mode=stream` streams
 * anything the streaming path can carry, whatever the router's threshold.
 */
export function decideRoute(
  request: HttpRequest,
  contentLength: number | undefined,
  limits: RouteLimits,
): RouteDecision {
  const mode = parseMode(request);
  if (mode === 'stream') {
    return contentLength === undefined || contentLength <= limits.streamMaxBytes
      ? { path: 'stream' }
      : { path: 'too-large' };
  }
  if (mode === 'async' || /\brespond-async\b/i.test(request.headers.prefer ?? '')) {
    return { path: 'async', reason: 'requested' };
  }
  if (contentLength === undefined) return { path: 'async', reason: 'unknown-length' };
  if (contentLength > limits.streamMaxBytes) return { path: 'async', reason: 'too-large-to-stream' };
  if (contentLength > limits.routerStreamMaxBytes) return { path: 'async', reason: 'above-router-threshold' };
  return { path: 'stream' };
}

/**
 * The 202 headers of the async path: `x-download-reason` is the body's `reason`, so that a `HEAD`
 * says it too; `Location` only once a download exists to point to.
 */
function acceptedHeaders(reason: AsyncReason, statusUrl?: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    ...(statusUrl ? { location: statusUrl } : {}),
    'cache-control': 'no-store',
    'x-download-mode': 'async',
    'x-download-reason': reason,
  };
}

function writeAccepted(responseStream: LambdaResponseStream, body: AcceptedDownload): Promise<void> {
  return sendResponse(
    responseStream,
    { statusCode: 202, headers: acceptedHeaders(body.reason, body.statusUrl) },
    JSON.stringify(body),
  );
}

/**
 * `GET /download/{key+}`: one upstream request, then stream it or hand it to the async workflow.
 * `HEAD` answers what GET would (status and headers) and never starts an async download.
 */
export async function routeDownload(
  request: HttpRequest,
  responseStream: LambdaResponseStream,
  deps: {
    config: RouterConfig;
    logger: Logger;
    signal: AbortSignal;
    starter: AsyncDownloadStarter;
    metrics?: Metrics;
  },
): Promise<void> {
  const { config } = deps;
  let download: OpenedDownload;
  try {
    // Refuse a bad mode before anything reaches upstream.
    parseMode(request);
    download = await openDownload(request, config.upstream, deps.signal);
    const decision = decideRoute(request, download.upstream.contentLength, config);
    emitMetric(deps.metrics, {
      name: ROUTER_METRICS.routeDecision,
      unit: MetricUnit.Count,
      value: 1,
      dimensions: {
        decision: decision.path,
        ...(decision.path === 'async' ? { reason: decision.reason } : {}),
      },
    });
    if (decision.path === 'too-large') {
      cancelBody(download.upstream.body);
      throw tooLargeForStreaming(download, config.streamMaxBytes);
    }
    if (decision.path === 'async') {
      // Only the headers were needed: cancel the body before starting the copy.
      cancelBody(download.upstream.body);
      if (request.method === 'HEAD') {
        // What GET would answer, without starting anything: no record, no execution, hence no
        // download id and no `Location`.
        await sendResponse(
          responseStream,
          { statusCode: 202, headers: acceptedHeaders(decision.reason) },
          '',
        );
        return;
      }
      const accepted = await deps.starter.start({
        key: download.key,
        query: toForwardedQuery(request.query),
        range: request.headers.range,
        baseUrl: request.baseUrl,
        reason: decision.reason,
        size: download.upstream.contentLength,
      });
      // From here on the download has an id: the logs of the rest of this request carry it.
      deps.logger.setCorrelationId(accepted.downloadId);
      await writeAccepted(responseStream, accepted);
      return;
    }
  } catch (error) {
    await writeProblem(responseStream, error, deps.logger, request.method);
    return;
  }
  await sendDownload(download, request, responseStream, deps);
}
