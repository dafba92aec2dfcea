import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/** What a client saw: status, headers, bytes, and whether the transfer ended cleanly. */
export interface Download {
  status: number;
  headers: IncomingHttpHeaders;
  bytes: number;
  sha256: string;
  body: Buffer | undefined;
  /** Set when the connection broke before the response was complete. */
  error: Error | undefined;
  /** Milliseconds from the request to the first body byte. */
  firstByteMs: number | undefined;
  totalMs: number;
}

/**
 * GETs a URL with node:http, hashing the body as it arrives (never buffering large files), and
 * reports an incomplete transfer as `error` instead of throwing.
 */
export function download(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    keepBody?: boolean;
    abortAfterBytes?: number;
    /** Give up (close the connection) after this long, answered or not. */
    timeoutMs?: number;
  } = {},
): Promise<Download> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let onResponseError: ((error: Error) => void) | undefined;
    // Send the path exactly as written: `new URL` would resolve `%2e%2e` segments client-side.
    const [, origin = '', path = '/'] = /^(https?:\/\/[^/]+)(.*)$/.exec(url) ?? [];
    const { hostname, port } = new URL(origin);
    const requestOptions = {
      hostname,
      port,
      path,
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: false,
    };
    const req = httpRequest(requestOptions, (res) => {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let bytes = 0;
      let firstByteMs: number | undefined;
      let settled = false;
      const finish = (error: Error | undefined) => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          sha256: hash.digest('hex'),
          body: options.keepBody ? Buffer.concat(chunks) : undefined,
          error,
          firstByteMs,
          totalMs: performance.now() - started,
        });
      };
      onResponseError = (error) => finish(error);
      res.on('data', (chunk: Buffer) => {
        firstByteMs ??= performance.now() - started;
        bytes += chunk.length;
        hash.update(chunk);
        if (options.keepBody) chunks.push(chunk);
        if (options.abortAfterBytes !== undefined && bytes >= options.abortAfterBytes) {
          req.destroy();
          finish(new Error('aborted by the client'));
        }
      });
      res.on('end', () => finish(res.complete ? undefined : new Error('incomplete response')));
      res.on('error', (error) => finish(error));
      res.on('close', () =>
        finish(res.complete ? undefined : new Error('connection closed before the response was complete')),
      );
    });
    const giveUp = new Error('timed out by the client');
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => req.destroy(giveUp), options.timeoutMs);
    req.on('close', () => clearTimeout(timer));
    // Once the response has started, a broken connection is an outcome to report, not a failure.
    req.on('error', (error) => {
      if (onResponseError) onResponseError(error);
      else if (error === giveUp) {
        resolve({
          status: 0,
          headers: {},
          bytes: 0,
          sha256: '',
          body: undefined,
          error,
          firstByteMs: undefined,
          totalMs: performance.now() - started,
        });
      } else reject(error);
    });
    req.end();
  });
}

/** GETs a URL and parses its JSON body. */
export async function getJson(url: string, headers: Record<string, string> = {}) {
  const result = await download(url, { headers, keepBody: true });
  return { ...result, json: JSON.parse(result.body?.toString() || 'null') as Record<string, unknown> };
}

/** The 202 answer of the router for an async download. */
export interface AcceptedDownload {
  downloadId: string;
  executionArn: string;
  token: string;
  webSocketEndpoint: string;
  webSocketUrl: string;
  statusUrl: string;
  expiresAt: string;
  reason: string;
  status: string;
}

/** GETs a router URL that must start an async download: 202, `Location` = `statusUrl`. */
export async function startAsyncDownload(
  url: string,
  headers: Record<string, string> = {},
): Promise<AcceptedDownload> {
  const response = await getJson(url, headers);
  if (response.status !== 202 || response.headers.location !== response.json.statusUrl) {
    throw new Error(
      `expected a 202 with Location = statusUrl, got ${response.status} ${JSON.stringify(response.json)}`,
    );
  }
  return response.json as unknown as AcceptedDownload;
}
