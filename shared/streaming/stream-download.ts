import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StreamConfig, UpstreamConfig } from '../config.ts';
import { attachmentDisposition } from '../content-disposition.ts';
import { type DownloadKey, parseDownloadKey } from '../download-key.ts';
import { HttpError, PayloadTooLargeError, PROBLEM_CONTENT_TYPE, toProblem } from '../errors.ts';
import { startHttpResponse } from '../http/awslambda.ts';
import type { HttpRequest } from '../http/request.ts';
import type { Logger } from '../logger.ts';
import { cancelBody, openUpstream, toUpstreamError, type UpstreamResponse } from '../upstream.ts';
import { LengthGuard } from './length-guard.ts';

/** Query parameters that steer this API and are not forwarded upstream. */
export const RESERVED_QUERY_PARAMETERS = ['mode'] as const;

/** Upstream headers passed on to the client as they are. */
const PASSED_HEADERS = [
  'content-type',
  'content-length',
  'content-range',
  'etag',
  'last-modified',
  'accept-ranges',
  'cache-control',
] as const;

/** A download request once its key is valid and upstream has answered with status and headers. */
export interface OpenedDownload {
  key: DownloadKey;
  upstream: UpstreamResponse;
}

/** The client closed the connection mid-body; upstream was cancelled. Not a failure of ours. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
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

/** The headers the client gets for a streamed download. */
export function toStreamHeaders(download: OpenedDownload): Record<string, string> {
  const { headers } = download.upstream;
  const result: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const value = headers[name];
    if (value !== undefined) result[name] = value;
  }
  result['content-type'] ??= 'application/octet-stream';
  result['content-disposition'] =
    headers['content-disposition'] ?? attachmentDisposition(download.key.fileName);
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

/**
 * Pipes upstream's body to the client with backpressure. Status and headers go out first; once the
 * first byte is sent, any failure rejects (the runtime then aborts the response) instead of ending
 * the response cleanly.
 */
export async function pipeDownload(
  download: OpenedDownload,
  responseStream: Writable,
  options: { method: string; maxBytes: number; signal: AbortSignal },
): Promise<void> {
  const { upstream } = download;
  const httpStream = startHttpResponse(responseStream, {
    statusCode: upstream.statusCode,
    headers: toStreamHeaders(download),
  });
  if (options.method === 'HEAD' || upstream.contentLength === 0) {
    cancelBody(upstream.body);
    // An `end()` with no `write()` has produced 502s on API Gateway: always write a chunk.
    httpStream.write('');
    await endStream(httpStream);
    return;
  }
  try {
    await pipeline(upstream.body, new LengthGuard(upstream.contentLength, options.maxBytes), httpStream);
  } catch (error) {
    // The response side broke first: the client left (pipeline already cancelled upstream).
    if (responseStream.destroyed && !upstream.body.errored)
      throw new ClientGoneError('The client closed the connection');
    throw toUpstreamError(error, options.signal);
  }
}

function endStream(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}

/** Writes a problem document as the whole response. Only valid before any body byte was sent. */
export async function writeProblem(
  responseStream: Writable,
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
  const httpStream = startHttpResponse(responseStream, {
    statusCode: problem.status,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' },
  });
  httpStream.write(method === 'HEAD' ? '' : JSON.stringify(problem));
  await endStream(httpStream);
}

/**
 * The whole streaming path: open upstream, refuse what is too large, pipe the rest.
 * Used by the stream function and by the router for files that fit.
 */
export async function streamDownload(
  request: HttpRequest,
  responseStream: Writable,
  deps: { config: StreamConfig; logger: Logger; signal: AbortSignal },
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

/** Streams an opened download and logs the outcome; rethrows mid-stream failures so the response aborts. */
export async function sendDownload(
  download: OpenedDownload,
  request: HttpRequest,
  responseStream: Writable,
  deps: { config: StreamConfig; logger: Logger; signal: AbortSignal },
): Promise<void> {
  const started = Date.now();
  deps.logger.info('streaming download', {
    key: download.key.path,
    status: download.upstream.statusCode,
    contentLength: download.upstream.contentLength,
  });
  try {
    await pipeDownload(download, responseStream, {
      method: request.method,
      maxBytes: deps.config.streamMaxBytes,
      signal: deps.signal,
    });
    deps.logger.info('download streamed', { key: download.key.path, durationMs: Date.now() - started });
  } catch (error) {
    if (error instanceof ClientGoneError) {
      deps.logger.warn('client went away; upstream cancelled', {
        key: download.key.path,
        durationMs: Date.now() - started,
      });
    } else {
      deps.logger.error('stream aborted mid-body', { key: download.key.path, error: error as Error });
    }
    throw error;
  }
}
