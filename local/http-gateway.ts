import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, LambdaFunctionURLEvent } from 'aws-lambda';
import { HTTP_INTEGRATION_CONTENT_TYPE } from '../shared/http/awslambda.ts';
import { createLocalContext } from './lambda-service.ts';
import { listen } from './listen.ts';
import type { InvokeStreaming, StreamingInvocation } from './runtime-response.ts';
import { type RequestAuthorizer, sendAuthDenial } from './sigv4-auth.ts';
import { createStreamThrottle, type StreamCap } from './stream-caps.ts';
import {
  type AnyStreamingHandler,
  invokeInProcess,
  isStreamingHandler,
  type ParsedPrelude,
  PRELUDE_DELIMITER,
  parsePrelude,
} from './streaming-runtime.ts';

/** API Gateway refuses request payloads above 10 MB; so does the local gateway, without buffering past it. */
export const MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024;

/** A prelude larger than this is not a prelude. */
const MAX_PRELUDE_BYTES = 64 * 1024;

/** A handler module's export: a streamified handler or a buffered one. */
// biome-ignore lint/suspicious/noExplicitAny: handlers of any event shape are loaded dynamically.
export type AnyHandler = (...args: any[]) => Promise<unknown>;

/** A function behind a route: its handler, run in this process unless `invokeStreaming` is given. */
export interface StreamingTarget {
  functionName: string;
  handler: AnyHandler;
  timeoutMs: number;
  /** Runs the function elsewhere (e.g. under the real Lambda runtime client) instead of in-process. */
  invokeStreaming?: InvokeStreaming;
}

/** One REST API route, e.g. `GET /stream/{key+}`. */
export interface RestRoute extends StreamingTarget {
  methods: readonly string[];
  /** Resource path with `{name}` and greedy `{name+}` parameters. */
  resource: string;
}

/** What the gateway translates requests into. */
export type GatewayMode =
  | { kind: 'rest'; routes: readonly RestRoute[] }
  | ({ kind: 'function-url' } & StreamingTarget);

export interface HttpGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The request target as sent: no dot-segment resolution (a `URL` would turn `%2e%2e` into `..`). */
export interface RawTarget {
  pathname: string;
  search: string;
  searchParams: URLSearchParams;
}

/** Splits `req.url` into path and query without normalising the path. */
export function toRawTarget(requestUrl: string | undefined): RawTarget {
  const raw = requestUrl ?? '/';
  const queryStart = raw.indexOf('?');
  const pathname = queryStart === -1 ? raw : raw.slice(0, queryStart);
  const search = queryStart === -1 ? '' : raw.slice(queryStart);
  return { pathname: pathname || '/', search, searchParams: new URLSearchParams(search) };
}

interface MatchedRoute {
  route: RestRoute;
  pathParameters: Record<string, string>;
}

/**
 * Matches a path against `{name}` / `{name+}` resources, the way REST APIs do. Parameter values
 * stay percent-encoded, exactly as the client sent them: REST APIs decode query parameters but
 * neither `path` nor `pathParameters`. What they do with an invalid escape (`%zz`) is not
 * documented; passing it on, as here, is the case the handlers must refuse.
 */
export function matchRoute(
  routes: readonly RestRoute[],
  method: string,
  rawPath: string,
): MatchedRoute | undefined {
  const segments = rawPath.split('/').slice(1);
  for (const route of routes) {
    if (!route.methods.includes(method)) continue;
    // The root resource matches `/` alone.
    if (route.resource === '/') {
      if (rawPath === '/') return { route, pathParameters: {} };
      continue;
    }
    const pattern = route.resource.split('/').slice(1);
    const pathParameters: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < pattern.length; i++) {
      const part = pattern[i] as string;
      const greedy = /^\{(.+)\+\}$/.exec(part);
      if (greedy) {
        const rest = segments.slice(i);
        if (rest.length === 0 || rest.join('/') === '') matched = false;
        else pathParameters[greedy[1] as string] = rest.join('/');
        break;
      }
      const segment = segments[i];
      if (segment === undefined || segment === '') {
        matched = false;
        break;
      }
      const param = /^\{(.+)\}$/.exec(part);
      if (param) pathParameters[param[1] as string] = segment;
      else if (part !== segment) {
        matched = false;
        break;
      }
      if (i === pattern.length - 1 && segments.length !== pattern.length) matched = false;
    }
    if (matched) return { route, pathParameters };
  }
  return undefined;
}

/** Headers API Gateway and Function URLs add; locally the scheme is plain HTTP. */
function forwardedHeaders(req: IncomingMessage): Record<string, string> {
  return {
    'X-Forwarded-For': req.socket.remoteAddress ?? '127.0.0.1',
    'X-Forwarded-Port': String(req.socket.localPort ?? ''),
    'X-Forwarded-Proto': 'http',
  };
}

function headerMaps(req: IncomingMessage) {
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(forwardedHeaders(req))) {
    single[name] = value;
    multi[name] = [value];
  }
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    const value = req.rawHeaders[i + 1] as string;
    single[name] = value;
    const existing = multi[name];
    if (existing) existing.push(value);
    else multi[name] = [value];
  }
  return { single, multi };
}

/** The request body was larger than API Gateway accepts. */
class RequestTooLargeError extends Error {
  override readonly name = 'RequestTooLargeError';
}

/** Reads the request body, refusing (without buffering further) one above `MAX_REQUEST_BODY_BYTES`. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_REQUEST_BODY_BYTES) throw new RequestTooLargeError();
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_REQUEST_BODY_BYTES) throw new RequestTooLargeError();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A REST API proxy (v1) event, as API Gateway builds it (no stage prefix locally). */
export function toRestEvent(
  req: IncomingMessage,
  url: RawTarget,
  matched: MatchedRoute,
  body: Buffer,
): APIGatewayProxyEvent {
  const { single, multi } = headerMaps(req);
  const query: Record<string, string> = {};
  const multiQuery: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    query[name] = value;
    multiQuery[name] = [...(multiQuery[name] ?? []), value];
  }
  const hasQuery = url.searchParams.size > 0;
  const now = Date.now();
  return {
    resource: matched.route.resource,
    path: url.pathname,
    httpMethod: req.method ?? 'GET',
    headers: single,
    multiValueHeaders: multi,
    queryStringParameters: hasQuery ? query : null,
    multiValueQueryStringParameters: hasQuery ? multiQuery : null,
    pathParameters: Object.keys(matched.pathParameters).length > 0 ? matched.pathParameters : null,
    stageVariables: null,
    body: body.length > 0 ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      authorizer: undefined,
      protocol: `HTTP/${req.httpVersion}`,
      httpMethod: req.method ?? 'GET',
      path: url.pathname,
      stage: 'local',
      requestId: randomUUID(),
      requestTimeEpoch: now,
      resourceId: 'local',
      resourcePath: matched.route.resource,
      domainName: req.headers.host,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        user: null,
        userAgent: req.headers['user-agent'] ?? null,
        userArn: null,
      },
    },
  };
}

/** A Function URL (payload v2) event. */
export function toFunctionUrlEvent(
  req: IncomingMessage,
  url: RawTarget,
  body: Buffer,
): LambdaFunctionURLEvent {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(forwardedHeaders(req))) headers[name.toLowerCase()] = value;
  const cookies: string[] = [];
  for (const [name, value] of Object.entries(req.headersDistinct)) {
    if (!value) continue;
    if (name === 'cookie') cookies.push(...value.flatMap((v) => v.split(/;\s*/)));
    else headers[name] = value.join(',');
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  const now = new Date();
  const domainName = req.headers.host ?? 'localhost';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    cookies: cookies.length > 0 ? cookies : undefined,
    headers,
    queryStringParameters: url.searchParams.size > 0 ? query : undefined,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName,
      domainPrefix: domainName.split('.')[0] ?? domainName,
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: req.headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: body.length > 0 ? body.toString('base64') : undefined,
    isBase64Encoded: body.length > 0,
  };
}

function sendJson(res: ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** What API Gateway and Function URLs answer when the function failed before its response started. */
function sendIntegrationFailure(res: ServerResponse): void {
  if (!res.headersSent && !res.destroyed) sendJson(res, 502, { message: 'Internal server error' });
}

/**
 * Cuts the client's connection so that it sees an incomplete transfer, also over HTTP/1.0 where a
 * plain close would look like a clean end: a TCP reset, as the gateways do when a function fails
 * mid-stream.
 */
function abortResponse(res: ServerResponse): void {
  const socket = res.socket;
  if (socket && !socket.destroyed) socket.resetAndDestroy();
  else res.destroy();
}

/**
 * Reads a posted body to its end, writing what `toClient` makes of each chunk to the client and
 * pausing while the client is full. Once the client has gone, the rest is read and dropped (the
 * function is not told). Rejects when the body breaks, or, after reading it all, with the first
 * error `toClient` threw (the body is never cut short: that would break the runtime's request).
 */
function forwardBody(
  body: Readable,
  res: ServerResponse,
  toClient: (chunk: Buffer) => Buffer | undefined,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let refused: Error | undefined;
    const resume = () => body.resume();
    res.on('drain', resume);
    res.on('close', resume);
    const settle = (error?: Error) => {
      res.off('drain', resume);
      res.off('close', resume);
      if (error) reject(error);
      else resolve();
    };
    body.on('data', (data: Buffer) => {
      if (refused) return;
      let chunk: Buffer | undefined;
      try {
        chunk = toClient(data);
      } catch (error) {
        refused = error as Error;
        return;
      }
      if (chunk && chunk.length > 0 && !res.destroyed && !res.write(chunk)) body.pause();
    });
    body.once('end', () => settle(refused));
    body.once('error', (error) => settle(error));
    body.once('close', () => {
      if (!body.readableEnded) settle(new Error('the response stream closed before its end'));
    });
  });
}

/**
 * Turns what a function's runtime posts into the client's response, as API Gateway (STREAM) and
 * Function URLs do: the HTTP-integration prelude becomes status and headers, the rest is piped with
 * backpressure; error trailers, a crash or a timeout after the response started abort the client's
 * connection; before it, the client gets a 502. A client that leaves is not reported to the
 * function (on AWS no event reaches the handler either): the rest of the body is read and dropped.
 */
export async function sendStreamedResponse(
  invocation: StreamingInvocation,
  req: IncomingMessage,
  res: ServerResponse,
  report: (message: string) => void,
  cap?: StreamCap,
): Promise<void> {
  const response = await invocation.response;
  if (!response) {
    const outcome = await invocation.outcome;
    if (!outcome.ok) report(`${outcome.errorType}: ${outcome.errorMessage}`);
    sendIntegrationFailure(res);
    return;
  }
  const withPrelude = response.contentType === HTTP_INTEGRATION_CONTENT_TYPE;
  let started = false;
  let pending: Buffer = Buffer.alloc(0);
  const begin = (prelude: ParsedPrelude) => {
    started = true;
    if (res.destroyed) return;
    res.writeHead(prelude.statusCode, prelude.headers);
    // A HEAD answer has headers only, whatever the function writes.
    if (req.method === 'HEAD') res.flushHeaders();
  };
  let bodyFailed = false;
  try {
    // With a cap (`LOCAL_STREAM_CAPS=aws`), what the runtime posts reaches the client as slowly as on AWS.
    const body = cap ? pipeline(response.body, createStreamThrottle(cap), () => {}) : response.body;
    await forwardBody(body, res, (chunk) => {
      if (started) return chunk;
      if (!withPrelude) {
        begin({ statusCode: 200, headers: { 'content-type': response.contentType } });
        return chunk;
      }
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf(PRELUDE_DELIMITER);
      if (end === -1) {
        if (pending.length > MAX_PRELUDE_BYTES) throw new Error('HTTP prelude larger than 64 KiB');
        return undefined;
      }
      begin(parsePrelude(pending.subarray(0, end).toString('utf8')));
      return pending.subarray(end + PRELUDE_DELIMITER.length);
    });
  } catch (error) {
    bodyFailed = true;
    report(`response stream broke: ${(error as Error).message}`);
  }
  const outcome = await invocation.outcome;
  if (!outcome.ok) report(`${outcome.errorType}: ${outcome.errorMessage}`);
  if (!started) {
    if (outcome.ok && !bodyFailed && !withPrelude) {
      begin({ statusCode: 200, headers: { 'content-type': response.contentType } });
    } else {
      if (outcome.ok && !bodyFailed) {
        report('the response ended without its HTTP prelude: write a chunk before end()');
      }
      sendIntegrationFailure(res);
      return;
    }
  }
  if (!outcome.ok || bodyFailed) abortResponse(res);
  else if (!res.destroyed) await new Promise<void>((resolve) => res.end(resolve));
}

/** Runs a streaming route: its own invoker (the real runtime client), else the in-process runtime. */
function invokeStreamingRoute(target: StreamingTarget, event: unknown, log: (message: string) => void) {
  if (target.invokeStreaming) return target.invokeStreaming(event);
  return invokeInProcess(
    target.handler as AnyStreamingHandler,
    event,
    createLocalContext(target.functionName, target.timeoutMs),
    { timeoutMs: target.timeoutMs, log },
  );
}

async function invokeBuffered(
  handler: AnyHandler,
  event: unknown,
  functionName: string,
  timeoutMs: number,
  res: ServerResponse,
  log: (message: string) => void,
): Promise<void> {
  try {
    const result = (await handler(
      event,
      createLocalContext(functionName, timeoutMs),
    )) as APIGatewayProxyResult;
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(result.headers ?? {}))
      headers[name.toLowerCase()] = String(value);
    for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) {
      headers[name.toLowerCase()] = values.map(String);
    }
    const body = Buffer.from(result.body ?? '', result.isBase64Encoded ? 'base64' : 'utf8');
    headers['content-length'] = String(body.length);
    res.writeHead(result.statusCode, headers);
    res.end(body);
  } catch (error) {
    log(`${functionName} failed: ${(error as Error).message}`);
    sendJson(res, 502, { message: 'Internal server error' });
  }
}

/**
 * Starts a local API Gateway: REST proxy (v1) routes, or a Function URL (v2) in front of one
 * function. Streaming handlers get a response stream whose prelude becomes the status line and
 * headers; the body is piped to the client with backpressure.
 */
export async function startHttpGateway(options: {
  mode: GatewayMode;
  port?: number;
  host?: string;
  log?: (message: string) => void;
  /** Checks each request before routing (`LOCAL_AUTH=iam`: SigV4, as AWS_IAM auth does); open when absent. */
  authorize?: RequestAuthorizer;
  /** The platform's throughput cap on streamed responses (`LOCAL_STREAM_CAPS=aws`); uncapped when absent. */
  streamCap?: StreamCap;
}): Promise<HttpGateway> {
  const log = options.log ?? (() => {});
  const { mode } = options;
  const invoke = async (
    target: StreamingTarget,
    event: unknown,
    req: IncomingMessage,
    res: ServerResponse,
  ) => {
    if (target.invokeStreaming || isStreamingHandler(target.handler)) {
      const invocation = invokeStreamingRoute(target, event, log);
      await sendStreamedResponse(
        invocation,
        req,
        res,
        (message) => log(`${target.functionName}: ${message}`),
        options.streamCap,
      );
    } else {
      await invokeBuffered(target.handler, event, target.functionName, target.timeoutMs, res, log);
    }
  };
  const server: Server = createServer((req, res) => {
    const url = toRawTarget(req.url);
    const method = req.method ?? 'GET';
    (async () => {
      const body = await readBody(req);
      const denial = await options.authorize?.(req, body);
      if (denial) {
        sendAuthDenial(res, denial);
        return;
      }
      if (mode.kind === 'function-url') {
        await invoke(mode, toFunctionUrlEvent(req, url, body), req, res);
        return;
      }
      const matched = matchRoute(mode.routes, method, url.pathname);
      if (!matched) {
        // What a REST API answers for a path or method it has no route for.
        sendJson(res, 403, { message: 'Missing Authentication Token' });
        return;
      }
      await invoke(matched.route, toRestEvent(req, url, matched, body), req, res);
    })().catch((error: unknown) => {
      if (error instanceof RequestTooLargeError) {
        // API Gateway's answer; the connection closes so the rest of the body is not read.
        res.shouldKeepAlive = false;
        if (!res.headersSent) sendJson(res, 413, { message: 'Request Too Long' });
        res.once('finish', () => req.destroy());
        return;
      }
      log(`gateway error: ${(error as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
      else abortResponse(res);
    });
  });
  server.keepAliveTimeout = 5_000;
  const port = await listen(server, options.port ?? 0, options.host);
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
