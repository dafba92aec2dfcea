import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, LambdaFunctionURLEvent } from 'aws-lambda';
import { createLocalContext } from './lambda-service.ts';
import { listen } from './listen.ts';
import {
  GatewayResponseStream,
  isStreamingHandler,
  type ParsedPrelude,
  type ResponseSink,
} from './streaming-runtime.ts';

/** A handler module's export: a streamified handler or a buffered one. */
// biome-ignore lint/suspicious/noExplicitAny: handlers of any event shape are loaded dynamically.
export type AnyHandler = (...args: any[]) => Promise<unknown>;

/** One REST API route, e.g. `GET /stream/{key+}`. */
export interface RestRoute {
  methods: readonly string[];
  /** Resource path with `{name}` and greedy `{name+}` parameters. */
  resource: string;
  functionName: string;
  handler: AnyHandler;
  timeoutMs: number;
}

/** What the gateway translates requests into. */
export type GatewayMode =
  | { kind: 'rest'; routes: readonly RestRoute[] }
  | { kind: 'function-url'; functionName: string; handler: AnyHandler; timeoutMs: number };

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

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Matches a path against `{name}` / `{name+}` resources, the way REST APIs do. */
export function matchRoute(
  routes: readonly RestRoute[],
  method: string,
  rawPath: string,
): MatchedRoute | undefined {
  const segments = rawPath.split('/').slice(1);
  for (const route of routes) {
    if (!route.methods.includes(method)) continue;
    const pattern = route.resource.split('/').slice(1);
    const pathParameters: Record<string, string> = {};
    let matched = true;
    for (let i = 0; i < pattern.length; i++) {
      const part = pattern[i] as string;
      const greedy = /^\{(.+)\+\}$/.exec(part);
      if (greedy) {
        const rest = segments.slice(i);
        if (rest.length === 0 || rest.join('/') === '') matched = false;
        else pathParameters[greedy[1] as string] = rest.map(decodeSegment).join('/');
        break;
      }
      const segment = segments[i];
      if (segment === undefined || segment === '') {
        matched = false;
        break;
      }
      const param = /^\{(.+)\}$/.exec(part);
      if (param) pathParameters[param[1] as string] = decodeSegment(segment);
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

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
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

/** Sends a streamed response to the client with backpressure; aborting destroys the socket. */
function toSink(res: ServerResponse, method: string): ResponseSink {
  return {
    start(prelude: ParsedPrelude) {
      res.writeHead(prelude.statusCode, prelude.headers);
      // A HEAD answer has headers only, whatever the handler writes.
      if (method === 'HEAD') res.flushHeaders();
    },
    write(chunk) {
      if (res.destroyed) return Promise.reject(new Error('client disconnected'));
      if (method === 'HEAD') return Promise.resolve();
      if (res.write(chunk)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const onDrain = () => {
          res.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          res.off('drain', onDrain);
          reject(new Error('client disconnected'));
        };
        res.once('drain', onDrain);
        res.once('close', onClose);
      });
    },
    end() {
      return new Promise((resolve) => res.end(resolve));
    },
    abort() {
      // No clean end: the client sees a connection reset / incomplete chunked body.
      res.destroy();
    },
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

async function invokeStreaming(
  handler: AnyHandler,
  event: unknown,
  functionName: string,
  timeoutMs: number,
  req: IncomingMessage,
  res: ServerResponse,
  log: (message: string) => void,
): Promise<void> {
  const stream = new GatewayResponseStream(toSink(res, req.method ?? 'GET'));
  const onClientClose = () => {
    if (!res.writableFinished) stream.destroy(new Error('client disconnected'));
  };
  res.on('close', onClientClose);
  try {
    await handler(event, stream, createLocalContext(functionName, timeoutMs));
    if (!stream.writableFinished && !stream.destroyed) {
      await new Promise<void>((resolve, reject) => {
        stream.once('finish', resolve);
        stream.once('error', reject);
        stream.once('close', resolve);
      });
    }
  } catch (error) {
    log(`${functionName} failed: ${(error as Error).message}`);
    if (!stream.headersSent && !res.headersSent && !res.destroyed) {
      // What API Gateway answers when the integration fails before the response started.
      sendJson(res, 502, { message: 'Internal server error' });
    } else {
      stream.destroy(error as Error);
      res.destroy();
    }
  } finally {
    res.off('close', onClientClose);
  }
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
}): Promise<HttpGateway> {
  const log = options.log ?? (() => {});
  const { mode } = options;
  const server: Server = createServer((req, res) => {
    const url = toRawTarget(req.url);
    const method = req.method ?? 'GET';
    (async () => {
      const body = await readBody(req);
      if (mode.kind === 'function-url') {
        const event = toFunctionUrlEvent(req, url, body);
        if (isStreamingHandler(mode.handler)) {
          await invokeStreaming(mode.handler, event, mode.functionName, mode.timeoutMs, req, res, log);
        } else {
          await invokeBuffered(mode.handler, event, mode.functionName, mode.timeoutMs, res, log);
        }
        return;
      }
      const matched = matchRoute(mode.routes, method, url.pathname);
      if (!matched) {
        // What a REST API answers for a path or method it has no route for.
        sendJson(res, 403, { message: 'Missing Authentication Token' });
        return;
      }
      const event = toRestEvent(req, url, matched, body);
      const { handler, functionName, timeoutMs } = matched.route;
      if (isStreamingHandler(handler))
        await invokeStreaming(handler, event, functionName, timeoutMs, req, res, log);
      else await invokeBuffered(handler, event, functionName, timeoutMs, res, log);
    })().catch((error: unknown) => {
      log(`gateway error: ${(error as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal server error' });
      else res.destroy();
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
