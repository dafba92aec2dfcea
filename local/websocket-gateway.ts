import { randomBytes, randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { createLocalContext, detailedLog, type LocalHandler, type LocalLog } from './lambda-service.ts';
import { listen } from './listen.ts';

/** The function behind one route, as the template's route → integration → function names it. */
export interface WebSocketRouteTarget {
  handler: LocalHandler;
  /** The function name and timeout its context reports. */
  functionName: string;
  timeoutMs: number;
  /** The route has a route response: a `{ body }` the handler returns is sent back to the client. */
  returnResponse?: boolean;
}

export interface WebSocketGatewayOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** `requestContext.stage`, and the path of `url`; default 'local'. */
  stage?: string;
  /** `requestContext.apiId`; default 'localwsapi'. */
  apiId?: string;
  /**
   * By route key: `$connect` (absent: every handshake is accepted), `$disconnect`, `$default` and
   * the custom routes chosen by `$request.body.action` (e.g. `status`).
   */
  routes: Readonly<Record<string, WebSocketRouteTarget>>;
  log?: LocalLog;
}

export interface WebSocketGateway {
  /** `ws://127.0.0.1:PORT/{stage}` (any path is accepted). */
  url: string;
  /** `http://127.0.0.1:PORT/{stage}`: the `@connections` management API (also served without the stage). */
  managementUrl: string;
  port: number;
  /** Ids of the established connections. */
  connectionIds(): string[];
  close(): Promise<void>;
}

/** API Gateway's WebSocket message quota (a larger message closes the connection with 1009). */
export const MAX_MESSAGE_BYTES = 128 * 1024;

interface Connection {
  id: string;
  socket: WebSocket;
  connectedAt: Date;
  sourceIp: string;
  userAgent: string;
  domainName: string;
}

interface HandlerResult {
  statusCode?: unknown;
  body?: unknown;
  headers?: unknown;
}

/**
 * The `@connections` operations served, by HTTP method: exactly those the product sends with
 * `@aws-sdk/client-apigatewaymanagementapi` (`test/unit/emulated-operations.test.ts` keeps it so).
 */
export const CONNECTIONS_OPERATIONS = { POST: 'PostToConnection', DELETE: 'DeleteConnection' } as const;

/**
 * Emulates an API Gateway WebSocket API in front of the functions of its routes: `$connect`
 * decides whether the handshake completes, messages are routed by `$request.body.action`,
 * `$disconnect` follows a close, and `POST|DELETE /@connections/{id}` (`CONNECTIONS_OPERATIONS`)
 * answers the real `@aws-sdk/client-apigatewaymanagementapi` (410 `GoneException` for unknown
 * connections and for those still inside `$connect`). SigV4 signatures are not checked.
 */
export async function startWebSocketGateway(options: WebSocketGatewayOptions): Promise<WebSocketGateway> {
  const log = detailedLog(options.log);
  const stage = options.stage ?? 'local';
  const apiId = options.apiId ?? 'localwsapi';
  const routes = new Map(Object.entries(options.routes));
  const customRoutes = new Set([...routes.keys()].filter((key) => !key.startsWith('$')));
  const connections = new Map<string, Connection>();
  const inflight = new Set<Promise<unknown>>();
  const rawSockets = new Set<Duplex>();
  const selectedProtocols = new WeakMap<IncomingMessage, string>();
  let closing = false;

  /** Runs the route's function; a route without one (no `$connect`, `$disconnect`) answers nothing. */
  const invoke = (routeKey: string, event: unknown): Promise<unknown> => {
    const target = routes.get(routeKey);
    if (!target) return Promise.resolve(undefined);
    const call = target.handler(event, createLocalContext(target.functionName, target.timeoutMs));
    const tracked = call.catch(() => {}).finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    return call;
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    handleProtocols: (_protocols, request) => selectedProtocols.get(request) ?? false,
  });

  const requestContext = (
    connection: Pick<Connection, 'id' | 'connectedAt' | 'sourceIp' | 'userAgent' | 'domainName'>,
    routeKey: string,
    eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
  ) => {
    const now = new Date();
    const requestId = randomId();
    return {
      routeKey,
      eventType,
      extendedRequestId: requestId,
      requestTime: formatRequestTime(now),
      messageDirection: 'IN',
      stage,
      connectedAt: connection.connectedAt.getTime(),
      requestTimeEpoch: now.getTime(),
      identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
      requestId,
      domainName: connection.domainName,
      connectionId: connection.id,
      apiId,
    };
  };

  const onUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    socket.on('error', () => socket.destroy());
    if (closing || !isWebSocketHandshake(req)) {
      refuseHandshake(socket, 400);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const { headers, multiValueHeaders } = headersOf(req);
    const pending = {
      id: randomId(),
      connectedAt: new Date(),
      sourceIp: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
      userAgent: req.headers['user-agent'] ?? '',
      domainName: req.headers.host ?? '',
    };
    const event = {
      headers,
      multiValueHeaders,
      queryStringParameters: queryOf(url).single,
      multiValueQueryStringParameters: queryOf(url).multi,
      requestContext: requestContext(pending, '$connect', 'CONNECT'),
      isBase64Encoded: false,
    };
    let status: number;
    try {
      const result = (await invoke('$connect', event)) as HandlerResult | undefined;
      // A $connect integration that answers without a status code accepts the connection.
      status = typeof result?.statusCode === 'number' ? result.statusCode : 200;
      const protocol = headerOf(result?.headers, 'sec-websocket-protocol');
      if (protocol) selectedProtocols.set(req, protocol);
    } catch (error) {
      log('websocket: $connect handler failed', { connectionId: pending.id, error: String(error) });
      status = 500;
    }
    if (status < 200 || status > 299) {
      refuseHandshake(socket, status);
      return;
    }
    if (closing || socket.destroyed) {
      // The client left while $connect ran: the connection existed for the handler, so it hears of its end.
      if (!closing) await disconnect({ ...pending, socket: undefined }, 1006, 'Going away');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const connection: Connection = { ...pending, socket: ws };
      connections.set(connection.id, connection);
      // When ws closes the connection over a protocol error (e.g. 1009, message too big) it stops
      // reading, so its 'close' event reports 1006; $disconnect reports the code actually sent.
      let protocolCloseCode: number | undefined;
      ws.on('message', (data, isBinary) => onMessage(connection, data, isBinary));
      ws.on('close', (code, reason) => {
        if (connections.get(connection.id) === connection) connections.delete(connection.id);
        if (!closing) void disconnect(connection, protocolCloseCode ?? code, reason.toString('utf8'));
      });
      ws.on('error', (error) => {
        protocolCloseCode = closeCodeFor(error);
        log('websocket: socket error', { connectionId: connection.id, error: String(error) });
      });
    });
  };

  const onMessage = (connection: Connection, data: RawData, isBinary: boolean): void => {
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    const body = isBinary ? buffer.toString('base64') : buffer.toString('utf8');
    const routeKey = isBinary ? '$default' : selectRoute(body, customRoutes);
    const context = requestContext(connection, routeKey, 'MESSAGE');
    const event = {
      requestContext: { ...context, messageId: randomId() },
      body,
      isBase64Encoded: isBinary,
    };
    if (!routes.has(routeKey)) {
      // No route for the message and no `$default`: what API Gateway sends the client then.
      sendIfOpen(
        connection.socket,
        JSON.stringify({ message: 'Forbidden', connectionId: connection.id, requestId: context.requestId }),
      );
      return;
    }
    invoke(routeKey, event).then(
      (result) => {
        const responseBody = (result as HandlerResult | undefined)?.body;
        if (routes.get(routeKey)?.returnResponse && typeof responseBody === 'string') {
          sendIfOpen(connection.socket, responseBody);
        }
      },
      (error: unknown) => {
        log('websocket: message handler failed', {
          connectionId: connection.id,
          routeKey,
          error: String(error),
        });
        // What API Gateway sends the client when the integration fails.
        sendIfOpen(
          connection.socket,
          JSON.stringify({
            message: 'Internal server error',
            connectionId: connection.id,
            requestId: context.requestId,
          }),
        );
      },
    );
  };

  const disconnect = async (
    connection: Omit<Connection, 'socket'> & { socket: WebSocket | undefined },
    code: number,
    reason: string,
  ): Promise<void> => {
    const context = requestContext(connection, '$disconnect', 'DISCONNECT');
    const event = {
      headers: { Host: connection.domainName },
      multiValueHeaders: { Host: [connection.domainName] },
      requestContext: {
        ...context,
        disconnectStatusCode: code,
        disconnectReason: reason || (code === 1005 ? 'Client-side close frame status not set' : ''),
      },
      isBase64Encoded: false,
    };
    try {
      await invoke('$disconnect', event);
    } catch (error) {
      log('websocket: $disconnect handler failed', { connectionId: connection.id, error: String(error) });
    }
  };

  const onManagementRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = /^(?:\/.*)?\/@connections\/([^/]+)\/?$/.exec(url.pathname);
    if (!match?.[1]) {
      req.resume();
      sendError(res, 403, 'ForbiddenException', 'Forbidden');
      return;
    }
    const connectionId = decodeURIComponent(match[1]);
    const operation = Object.hasOwn(CONNECTIONS_OPERATIONS, req.method ?? '')
      ? CONNECTIONS_OPERATIONS[req.method as keyof typeof CONNECTIONS_OPERATIONS]
      : undefined;
    switch (operation) {
      case 'PostToConnection': {
        const data = await readBody(req, MAX_MESSAGE_BYTES);
        if (!data) {
          sendError(res, 413, 'PayloadTooLargeException', 'Message too long');
          return;
        }
        const connection = connections.get(connectionId);
        if (!connection || !(await sendFrame(connection.socket, data))) {
          sendGone(res);
          return;
        }
        res.writeHead(200, { 'content-length': '0' }).end();
        return;
      }
      case 'DeleteConnection': {
        req.resume();
        const connection = connections.get(connectionId);
        if (!connection) return sendGone(res);
        connections.delete(connectionId);
        connection.socket.close(1000);
        res.writeHead(204).end();
        return;
      }
      default:
        req.resume();
        sendError(res, 403, 'ForbiddenException', 'Forbidden');
    }
  };

  const server: Server = createServer((req, res) => {
    onManagementRequest(req, res).catch((error: unknown) => {
      log('websocket: management request failed', { error: String(error) });
      if (!res.headersSent) sendError(res, 500, 'InternalServerErrorException', 'Internal server error');
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    rawSockets.add(socket);
    socket.on('close', () => rawSockets.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch((error: unknown) => {
      log('websocket: upgrade failed', { error: String(error) });
      socket.destroy();
    });
  });

  const port = await listen(server, options.port, options.host);

  return {
    url: `ws://127.0.0.1:${port}/${stage}`,
    managementUrl: `http://127.0.0.1:${port}/${stage}`,
    port,
    connectionIds: () => [...connections.keys()],
    async close() {
      // Shutting down is not a client leaving: no $disconnect.
      closing = true;
      for (const connection of connections.values()) connection.socket.terminate();
      connections.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of rawSockets) socket.destroy();
      wss.close();
      let timer: NodeJS.Timeout | undefined;
      const cap = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 5_000);
      });
      await Promise.race([Promise.allSettled([...inflight]), cap]);
      clearTimeout(timer);
      await closed;
    },
  };
}

/** The close code ws sends for one of its errors (see ws/lib/receiver.js). */
function closeCodeFor(error: Error): number {
  switch ((error as { code?: string }).code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return 1009;
    case 'WS_ERR_INVALID_UTF8':
      return 1007;
    default:
      return 1002;
  }
}

/** Route selection expression `$request.body.action`, falling back to `$default`. */
function selectRoute(body: string, routes: ReadonlySet<string>): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && 'action' in parsed) {
      const action = (parsed as { action: unknown }).action;
      if (typeof action === 'string' && routes.has(action)) return action;
    }
  } catch {
    // Not JSON: $default.
  }
  return '$default';
}

/** An id shaped like API Gateway's (`L0SM9cOFvHcCIhw=`), kept URL-path safe. */
function randomId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `${[...randomBytes(15)].map((byte) => alphabet[byte % alphabet.length]).join('')}=`;
}

/** `09/Feb/2024:18:00:00 +0000`, API Gateway's `requestTime`. */
function formatRequestTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${two(date.getUTCHours())}:${two(
    date.getUTCMinutes(),
  )}:${two(date.getUTCSeconds())} +0000`;
}

/** Header names as the client sent them (API Gateway keeps their case). */
function headersOf(req: IncomingMessage): {
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
} {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    headers[name] = value;
    const values = multiValueHeaders[name] ?? [];
    values.push(value);
    multiValueHeaders[name] = values;
  }
  return { headers, multiValueHeaders };
}

function queryOf(url: URL): {
  single: Record<string, string> | null;
  multi: Record<string, string[]> | null;
} {
  if ([...url.searchParams.keys()].length === 0) return { single: null, multi: null };
  const single: Record<string, string> = {};
  const multi: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    single[name] = value;
    const values = multi[name] ?? [];
    values.push(value);
    multi[name] = values;
  }
  return { single, multi };
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && typeof value === 'string') return value;
  }
  return undefined;
}

function isWebSocketHandshake(req: IncomingMessage): boolean {
  return (
    req.method === 'GET' &&
    (req.headers.upgrade ?? '').toLowerCase() === 'websocket' &&
    typeof req.headers['sec-websocket-key'] === 'string' &&
    req.headers['sec-websocket-version'] === '13'
  );
}

function refuseHandshake(socket: Duplex, status: number): void {
  if (socket.destroyed) return;
  const reason = STATUS_CODES[status] ?? 'Error';
  const body = JSON.stringify({ message: reason });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function sendIfOpen(socket: WebSocket, text: string): void {
  if (socket.readyState === socket.OPEN) socket.send(text);
}

/** Sends the bytes as one text frame; false if the socket is no longer open. */
function sendFrame(socket: WebSocket, data: Buffer): Promise<boolean> {
  if (socket.readyState !== socket.OPEN) return Promise.resolve(false);
  return new Promise((resolve) => socket.send(data, { binary: false }, (error) => resolve(!error)));
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size <= limit) chunks.push(buffer);
  }
  return size > limit ? undefined : Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, errorType: string, message: string): void {
  sendJson(res, status, { message }, errorType);
}

/** 410: the SDK turns it into `GoneException` through the `x-amzn-errortype` header. */
function sendGone(res: ServerResponse): void {
  sendJson(res, 410, { message: null }, 'GoneException');
}
