import { Agent, type Dispatcher, EnvHttpProxyAgent, request } from 'undici';

/** A response whose status and headers are in; the body is still to be read (or dumped). */
export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  body: Dispatcher.ResponseData['body'];
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

// One pool for the whole run: connections are reused across range requests and status polls.
// `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` are honoured, as curl and the AWS CLI do.
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'];
let dispatcher: Dispatcher | undefined;

function getDispatcher(): Dispatcher {
  const timeouts = { headersTimeout: 60_000, bodyTimeout: 60_000, keepAliveTimeout: 10_000 };
  dispatcher ??= PROXY_VARIABLES.some((name) => process.env[name])
    ? new EnvHttpProxyAgent(timeouts)
    : new Agent(timeouts);
  return dispatcher;
}

/** Sends one request (no redirects followed) and resolves once status and headers are in. */
export async function send(url: URL, options: HttpOptions = {}): Promise<HttpResponse> {
  const response = await request(url, {
    method: (options.method ?? 'GET') as Dispatcher.HttpMethod,
    headers: options.headers,
    signal: options.signal,
    dispatcher: getDispatcher(),
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: response.statusCode, headers, body: response.body };
}

/** Reads a small body (error documents, JSON) as text, at most `limit` bytes. */
export async function readText(response: HttpResponse, limit = 256 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body) {
    bytes += (chunk as Buffer).length;
    if (bytes > limit) {
      response.body.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Lets go of a body that is not needed, without reading a large one to its end. */
export function discard(response: HttpResponse): void {
  response.body.destroy();
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** True for a failure of the connection (refused, reset, timed out, cut short), as opposed to an answer. */
export function isNetworkError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code && NETWORK_CODES.has(code)) return true;
    current = current.cause;
  }
  return error instanceof Error && /terminated|other side closed|socket/i.test(error.message);
}

/** A short description of a network failure: its code and message. */
export function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const code = (error as NodeJS.ErrnoException).code ?? (cause as NodeJS.ErrnoException | undefined)?.code;
  const message = cause && error.message === 'fetch failed' ? cause.message : error.message;
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
