import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StreamConfig, UpstreamConfig } from '../config.ts';
import { attachmentDisposition, toDownloadFileName } from '../content-disposition.ts';
import { type DownloadKey, parseDownloadKey } from '../download-key.ts';
import { HttpError, PayloadTooLargeError, PROBLEM_CONTENT_TYPE, toProblem } from '../errors.ts';
import type { LambdaResponseStream } from '../http/awslambda.ts';
import type { HttpRequest } from '../http/request.ts';
import { ResponseStreamClosedError, ResponseWriter, sendResponse } from '../http/response-writer.ts';
import type { Logger } from '../logger.ts';
import { emitMetric, type Metrics, MetricUnit } from '../observability.ts';
import { cancelBody, openUpstream, toUpstreamError, type UpstreamResponse } from '../upstream.ts';
import { LengthGuard } from './length-guard.ts';

/** Names of the metrics the streaming path emits (namespace `POWERTOOLS_METRICS_NAMESPACE`). */
export const STREAM_METRICS = {
  /** Bytes of one streamed response's body, dimension `outcome` (see `PipeOutcome`). */
  bytesStreamed: 'BytesStreamed',
} as const;

/** What streaming a download needs; without `metrics` nothing is measured. */
export interface StreamDeps {
  config: StreamConfig;
  logger: Logger;
  signal: AbortSignal;
  metrics?: Metrics;
}

/** Query parameters that steer this API and are not forwarded upstream. */
export const RESERVED_QUERY_PARAMETERS = ['mode'] as const;

/** Upstream headers passed on to the client as they are. */
const PASSED_HEADERS = [
  'content-length',
  // The body is passed on byte for byte: if upstream encoded it (despite `Accept-Encoding:
  // identity`), the client must learn how, or it gets gzip bytes labelled e.g. text/csv.
  'content-encoding',
  'content-range',
  'etag',
  'last-modified',
  'accept-ranges',
  'cache-control',
] as const;

/** Media types a browser renders as a document that can run script (XML can carry XHTML or XSLT). */
const ACTIVE_CONTENT_TYPES = new Set([
  'text/html',
  'application/xhtml+xml',
  'image/svg+xml',
  'text/xml',
  'application/xml',
  'text/xsl',
  'application/xslt+xml',
]);

/**
 * Upstream's `Content-Type`, unless it is one a browser would render as an active document; then
 * (and when it is missing) `application/octet-stream`. `attachment` and `nosniff` already keep
 * browsers from rendering a download, but `attachment` is advice that not every client (embedded
 * web views, proxies that rewrite headers) follows, and the API's origin must never run upstream's
 * script. Nothing is lost: the bytes and the file name (with its extension) are the same.
 */
export function toInertContentType(contentType: string | undefined): string {
  if (!contentType?.trim()) return 'application/octet-stream';
  // A repeated header arrives joined with `, `; browsers then use the last type in the list.
  const types = contentType.split(',').map((type) => (type.split(';')[0] ?? '').trim().toLowerCase());
  const active = types.some((type) => ACTIVE_CONTENT_TYPES.has(type) || type.endsWith('+xml'));
  return active ? 'application/octet-stream' : contentType;
}

/** A download request once its key is valid and upstream has answered with status and headers. */
export interface OpenedDownload {
  key: DownloadKey;
  upstream: UpstreamResponse;
}

class MethodNotAllowedError extends HttpError {
  override readonly name = 'MethodNotAllowedError';
  constructor(method: string) {
    super(405, 'MethodNotAllowed', `${method} is not supported here; use GET or HEAD`);
  }
}

/** Query forwarded upstream: the client's, minus this API's own parameters. */
export function toForwardedQuery(query: URLSearchParams): URLSearchParams | undefined {
  const forwarded = new URLSearchParams(query);
  for (const name of RESERVED_QUERY_PARAMETERS) forwarded.delete(name);
  return forwarded.size > 0 ? forwarded : undefined;
}

/**
 * Validates the key and opens upstream: one request, status and headers only. Throws an
 * `HttpError` for anything the client must be told (bad key, upstream 404, 5xx, timeout).
 */
export async function openDownload(
  request: HttpRequest,
  config: UpstreamConfig,
  signal: AbortSignal,
): Promise<OpenedDownload> {
  if (request.method !== 'GET' && request.method !== 'HEAD') throw new MethodNotAllowedError(request.method);
  const key = parseDownloadKey(request.pathParameters.key);
  const upstream = await openUpstream(
    {
      key,
      method: request.method,
      query: toForwardedQuery(request.query),
      range: request.headers.range,
      signal,
    },
    config,
  );
  return { key, upstream };
}

/**
 * The headers the client gets for a streamed download: always a download (`attachment` with a
 * sanitised file name, `nosniff`, no active content type), never a page on the API's origin.
 */
export function toStreamHeaders(download: OpenedDownload): Record<string, string> {
  const { headers } = download.upstream;
  const result: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = headers[name];
    if (value !== undefined) result[name] = value;
  }
  result['content-type'] = toInertContentType(headers['content-type']);
  result['content-disposition'] = attachmentDisposition(
    toDownloadFileName(headers['content-disposition'], download.key.fileName),
  );
  result['x-content-type-options'] = 'nosniff';
  result['x-download-mode'] = 'stream';
  return result;
}

/** The 413 for a file that does not fit the streaming path; names the async alternative. */
export function tooLargeForStreaming(download: OpenedDownload, maxBytes: number): HttpError {
  const asyncPath = `/download/${download.key.segments.map(encodeURIComponent).join('/')}?mode=async`;
  return new PayloadTooLargeError(
    `The file is ${download.upstream.contentLength} bytes; the streaming path serves up to ${maxBytes}. Use the async download instead.`,
    { maxBytes, size: download.upstream.contentLength, asyncAlternative: { method: 'GET', path: asyncPath } },
  );
}

/** How piping a download's body ended, with the bytes that passed to the response stream. */
export type PipeOutcome =
  /** Every byte went out (also a HEAD or an empty body: 0 bytes). */
  | { outcome: 'complete'; bytes: number }
  /** Failed before the first body byte: status and headers are unsent, a problem document can answer. */
  | { outcome: 'failed-before-body'; bytes: 0; error: Error }
  /** The response stream closed under the writes: the client left. Not upstream's fault. */
  | { outcome: 'client-closed'; bytes: number }
  /** Upstream (or the length guard) failed after the first body byte. */
  | { outcome: 'failed-mid-body'; bytes: number; error: Error };

/**
 * Pipes upstream's body to the client with backpressure. Status and headers go out with the first
 * body byte. Never rejects: it says how it ended. Upstream is cancelled whatever the ending. The
 * response stream itself is never destroyed: after a mid-body failure the caller rejects, and the
 * runtime aborts the response with error trailers.
 */
export async function pipeDownload(
  download: OpenedDownload,
  responseStream: LambdaResponseStream,
  options: { method: string; maxBytes: number; signal: AbortSignal },
): Promise<PipeOutcome> {
  const { upstream } = download;
  const writer = new ResponseWriter(responseStream, {
    statusCode: upstream.statusCode,
    headers: toStreamHeaders(download),
  });
  if (options.method === 'HEAD' || upstream.contentLength === 0) {
    cancelBody(upstream.body);
    await pipeline(Readable.from([]), writer);
    return { outcome: 'complete', bytes: 0 };
  }
  const guard = new LengthGuard(upstream.contentLength, options.maxBytes);
  try {
    await pipeline(upstream.body, guard, writer);
    return { outcome: 'complete', bytes: guard.bytes };
  } catch (error) {
    // Only seen where the runtime reports it (the local stack): on AWS a client that leaves is
    // invisible to the function, whose writes keep succeeding until the body ends.
    if (error instanceof ResponseStreamClosedError) return { outcome: 'client-closed', bytes: guard.bytes };
    const failure = toUpstreamError(error, options.signal);
    if (!writer.headersSent) return { outcome: 'failed-before-body', bytes: 0, error: failure };
    return { outcome: 'failed-mid-body', bytes: guard.bytes, error: failure };
  }
}

/** Writes a problem document as the whole response. Only valid before any body byte was sent. */
export async function writeProblem(
  responseStream: LambdaResponseStream,
  error: unknown,
  logger: Logger,
  method = 'GET',
): Promise<void> {
  const problem = toProblem(error);
  if (problem.status >= 500) logger.error('request failed', { problem, error: error as Error });
  else
    logger.warn('request refused', {
      problem,
      error: error instanceof HttpError ? error.message : undefined,
    });
  await sendResponse(
    responseStream,
    {
      statusCode: problem.status,
      headers: { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' },
    },
    method === 'HEAD' ? '' : JSON.stringify(problem),
  );
}

/**
 * The whole streaming path: open upstream, refuse what is too large, pipe the rest.
 * Used by the stream function and by the router for files that fit.
 */
export async function streamDownload(
  request: HttpRequest,
  responseStream: LambdaResponseStream,
  deps: StreamDeps,
): Promise<void> {
  let download: OpenedDownload;
  try {
    download = await openDownload(request, deps.config.upstream, deps.signal);
    const size = download.upstream.contentLength;
    if (size !== undefined && size > deps.config.streamMaxBytes) {
      cancelBody(download.upstream.body);
      throw tooLargeForStreaming(download, deps.config.streamMaxBytes);
    }
  } catch (error) {
    await writeProblem(responseStream, error, deps.logger, request.method);
    return;
  }
  await sendDownload(download, request, responseStream, deps);
}

/**
 * Streams an opened download, logs the outcome and emits `BytesStreamed` (dimension `outcome`:
 * `complete`, `client-closed`, `failed-before-body`, `failed-mid-body`). Upstream failing before the
 * first body byte becomes a problem document; after it, the error is logged once at ERROR and
 * rethrown so that the response aborts. A client that left is logged at INFO, not as a failure.
 */
export async function sendDownload(
  download: OpenedDownload,
  request: HttpRequest,
  responseStream: LambdaResponseStream,
  deps: StreamDeps,
): Promise<void> {
  const started = Date.now();
  const key = download.key.path;
  deps.logger.info('streaming download', {
    key,
    status: download.upstream.statusCode,
    contentLength: download.upstream.contentLength,
  });
  const piped = await pipeDownload(download, responseStream, {
    method: request.method,
    maxBytes: deps.config.streamMaxBytes,
    signal: deps.signal,
  });
  emitMetric(deps.metrics, {
    name: STREAM_METRICS.bytesStreamed,
    unit: MetricUnit.Bytes,
    value: piped.bytes,
    dimensions: { outcome: piped.outcome },
  });
  const durationMs = Date.now() - started;
  switch (piped.outcome) {
    case 'complete':
      deps.logger.info('download streamed', { key, bytes: piped.bytes, durationMs });
      return;
    case 'client-closed':
      deps.logger.info('client closed the response', { key, bytes: piped.bytes, durationMs });
      return;
    case 'failed-before-body':
      await writeProblem(responseStream, piped.error, deps.logger, request.method);
      return;
    case 'failed-mid-body':
      deps.logger.error('stream aborted mid-body', {
        key,
        bytes: piped.bytes,
        durationMs,
        errorName: piped.error.name,
        error: piped.error,
      });
      throw piped.error;
  }
}
