import { finished, PassThrough, type Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import type { UpstreamConfig } from './config.ts';
import { DeadlineExceededError } from './deadline.ts';
import { type DownloadKey, toUpstreamUrl } from './download-key.ts';
import {
  HttpError,
  NotFoundError,
  RangeNotSatisfiableError,
  UpstreamChangedError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from './errors.ts';

/** What to ask upstream for. */
export interface UpstreamRequest {
  key: DownloadKey;
  method: 'GET' | 'HEAD';
  /** Forwarded query parameters. */
  query?: URLSearchParams;
  /** The client's `Range` header, forwarded as is. */
  range?: string;
  /** Cancels the request and its body (client gone, deadline reached). */
  signal?: AbortSignal;
  /**
   * Preconditions that pin the file's version (`if-match`, `if-unmodified-since`, lower case); a
   * 412 answer becomes `UpstreamChangedError`.
   */
  preconditions?: Readonly<Partial<Record<'if-match' | 'if-unmodified-since', string>>>;
}

/** Upstream's answer once status and headers are in; the body has not been read. */
export interface UpstreamResponse {
  /** The final URL, after allowed redirects. */
  url: URL;
  statusCode: 200 | 206;
  /** Lower-case header names; repeated headers joined with `, `. */
  headers: Readonly<Record<string, string>>;
  /** `Content-Length`, when upstream sent a valid one. */
  contentLength: number | undefined;
  /** The body stream. For HEAD it is empty. Destroy it to cancel the transfer. */
  body: Readable;
}

const MAX_REDIRECTS = 5;

// One connection pool per container, reused across invocations.
let sharedDispatcher: Dispatcher | undefined;
function defaultDispatcher(): Dispatcher {
  sharedDispatcher ??= new Agent({ keepAliveTimeout: 10_000, connections: 64 });
  return sharedDispatcher;
}

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Parses a `Content-Length` value; `undefined` if absent or not a plain non-negative integer. */
export function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,16}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/**
 * Cancels a response body we will not read. undici emits an abort error on a destroyed body; with
 * no listener that error would crash the process, so one is attached first.
 */
export function cancelBody(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

/**
 * Upstream's body, with every failure of its own (reset, broken connection, body timeout, abort)
 * mapped to an upstream error by {@link toUpstreamError} before anything reading it sees it. A
 * consumer that passes on the error of the stream it reads (lib-storage does) then names upstream,
 * whatever the error's message; everything it throws that is not an `HttpError` is its own.
 */
export function withUpstreamErrors(body: Readable, signal?: AbortSignal): Readable {
  const tagged = new PassThrough();
  finished(body, (error) => {
    if (error) tagged.destroy(toUpstreamError(error, signal));
  });
  // The reader failed or went away: stop the transfer.
  finished(tagged, (error) => {
    if (error) cancelBody(body);
  });
  body.pipe(tagged);
  return tagged;
}

/** Maps a transport-level failure (connection, timeout, abort) to the error the client sees. */
export function toUpstreamError(error: unknown, signal?: AbortSignal): Error {
  if (error instanceof HttpError) return error;
  const reason: unknown = signal?.aborted ? signal.reason : undefined;
  if (reason instanceof DeadlineExceededError) {
    return new UpstreamTimeoutError('Upstream did not finish before the function deadline', { cause: error });
  }
  if (reason !== undefined) return reason instanceof Error ? reason : new Error(String(reason));
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new UpstreamTimeoutError('Upstream did not answer in time', { cause: error });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new UpstreamTimeoutError('Upstream stopped sending data', { cause: error });
  }
  return new UpstreamUnavailableError('UpstreamUnreachable', 'Upstream failed to deliver the file', {
    cause: error,
  });
}

function statusError(statusCode: number, headers: Record<string, string>): Error {
  if (statusCode === 404 || statusCode === 410) {
    return new NotFoundError('UpstreamNotFound', 'Upstream has no file at this key');
  }
  if (statusCode === 416) return new RangeNotSatisfiableError(headers['content-range']);
  // Only requests with preconditions (`UpstreamRequest.preconditions`) can get a 412.
  if (statusCode === 412)
    return new UpstreamChangedError('Upstream changed the file while it was being copied');
  if (statusCode === 429 || statusCode >= 500) {
    return new UpstreamUnavailableError('UpstreamFailed', `Upstream answered ${statusCode}`);
  }
  return new UpstreamRejectedError('UpstreamRejected', `Upstream answered ${statusCode}`);
}

/**
 * Sends one request upstream and returns once status and headers are in. Follows redirects only
 * to allowed origins; maps every non-2xx answer and transport failure to an `HttpError`.
 * The only way the functions reach upstream: no caller-supplied absolute URL gets here.
 */
export async function openUpstream(
  req: UpstreamRequest,
  config: UpstreamConfig,
  dispatcher: Dispatcher = defaultDispatcher(),
): Promise<UpstreamResponse> {
  let url = toUpstreamUrl(config.baseUrl, req.key, req.query);
  const requestHeaders: Record<string, string> = { 'accept-encoding': 'identity' };
  if (req.range) requestHeaders.range = req.range;
  Object.assign(requestHeaders, req.preconditions);
  for (let hop = 0; ; hop++) {
    let answer: Dispatcher.ResponseData;
    try {
      answer = await request(url, {
        method: req.method,
        headers: requestHeaders,
        signal: req.signal,
        dispatcher,
        headersTimeout: config.headersTimeoutMs,
        bodyTimeout: config.bodyTimeoutMs,
      });
    } catch (error) {
      throw toUpstreamError(error, req.signal);
    }
    const headers = flattenHeaders(answer.headers);
    const { statusCode } = answer;
    if (statusCode >= 300 && statusCode < 400 && headers.location) {
      cancelBody(answer.body);
      if (hop >= MAX_REDIRECTS)
        throw new UpstreamRejectedError('TooManyRedirects', 'Upstream redirected too often');
      const next = new URL(headers.location, url);
      if (!config.allowedOrigins.has(next.origin)) {
        throw new UpstreamRejectedError(
          'RedirectNotAllowed',
          'Upstream redirected to an origin that is not allowed',
        );
      }
      url = next;
      continue;
    }
    if (statusCode !== 200 && statusCode !== 206) {
      cancelBody(answer.body);
      throw statusError(statusCode, headers);
    }
    return {
      url,
      statusCode,
      headers,
      contentLength: parseContentLength(headers['content-length']),
      body: answer.body,
    };
  }
}
