import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import { startWebSocketGateway, type WebSocketGateway } from '../../local/websocket-gateway.ts';

interface GatewayEvent {
  requestContext: {
    routeKey: string;
    eventType: string;
    connectionId: string;
    stage: string;
    domainName: string;
    apiId: string;
    requestId: string;
    connectedAt: number;
    requestTimeEpoch: number;
    requestTime: string;
    identity: { sourceIp: string };
    disconnectStatusCode?: number;
  };
  headers?: Record<string, string>;
  multiValueHeaders?: Record<string, string[]>;
  queryStringParameters?: Record<string, string> | null;
  multiValueQueryStringParameters?: Record<string, string[]> | null;
  body?: string;
  isBase64Encoded: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/** A client that records what it receives; `opened` settles with the handshake. */
function connect(url: string, headers: Record<string, string> = {}) {
  const socket = new WebSocket(url, { headers });
  const messages: string[] = [];
  let closeCode: number | undefined;
  socket.on('message', (data) => messages.push(data.toString()));
  socket.on('close', (code) => {
    closeCode = code;
  });
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_req, res) =>
      reject(new Error(`handshake refused: ${res.statusCode}`)),
    );
    socket.once('error', reject);
  });
  return { socket, messages, opened, closeCode: () => closeCode };
}

describe('startWebSocketGateway', () => {
  let gateway: WebSocketGateway;
  let management: ApiGatewayManagementApiClient;
  const events: GatewayEvent[] = [];
  let onConnect: (event: GatewayEvent) => Promise<unknown>;

  beforeAll(async () => {
    const handler = async (raw: unknown): Promise<unknown> => {
      const event = raw as GatewayEvent;
      events.push(event);
      switch (event.requestContext.routeKey) {
        case '$connect':
          return onConnect(event);
        case 'status':
          return { statusCode: 200, body: JSON.stringify({ type: 'status', state: 'RUNNING' }) };
        case 'ping':
          return { statusCode: 200, body: 'pong (not sent: no route response)' };
        case '$default':
          if (event.body === 'explode') throw new Error('handler bug');
          return { statusCode: 200, body: `default:${event.body}` };
        default:
          return { statusCode: 200 };
      }
    };
    const target = (returnResponse: boolean) => ({
      handler,
      functionName: 'websocket',
      timeoutMs: 29_000,
      returnResponse,
    });
    gateway = await startWebSocketGateway({
      port: 0,
      routes: {
        $connect: target(false),
        $disconnect: target(false),
        $default: target(true),
        status: target(true),
        ping: target(false),
      },
    });
    management = new ApiGatewayManagementApiClient({
      endpoint: gateway.managementUrl,
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
    });
  });

  afterAll(async () => {
    management.destroy();
    await gateway.close();
  });

  beforeEach(() => {
    events.length = 0;
    onConnect = async () => ({ statusCode: 200 });
  });

  // A $disconnect of an earlier test's client may still arrive: filter by connection where it matters.
  const eventsFor = (routeKey: string, connectionId?: string) =>
    events.filter(
      (event) =>
        event.requestContext.routeKey === routeKey &&
        (connectionId === undefined || event.requestContext.connectionId === connectionId),
    );
  const connectionIdOf = (index = 0) => eventsFor('$connect')[index]!.requestContext.connectionId;

  it('sends a $connect event shaped like API Gateway’s, keeping header case and the query', async () => {
    const client = connect(`${gateway.url}/local?downloadId=d-1&tag=a&tag=b`, {
      'X-StateMachine-ExecutionArn': 'arn:aws:states:us-east-1:000000000000:execution:sm:d-1',
    });
    await client.opened;

    const [event] = eventsFor('$connect');
    expect(event).toBeDefined();
    expect(event!.requestContext).toMatchObject({
      routeKey: '$connect',
      eventType: 'CONNECT',
      stage: 'local',
      domainName: new URL(gateway.url).host,
      identity: { sourceIp: '127.0.0.1' },
    });
    expect(event!.requestContext.connectionId).toMatch(/^[A-Za-z0-9]{15}=$/);
    expect(event!.requestContext.requestTime).toMatch(/^\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    expect(event!.headers?.['X-StateMachine-ExecutionArn']).toBe(
      'arn:aws:states:us-east-1:000000000000:execution:sm:d-1',
    );
    expect(event!.multiValueHeaders?.['X-StateMachine-ExecutionArn']).toHaveLength(1);
    expect(event!.queryStringParameters).toEqual({ downloadId: 'd-1', tag: 'b' });
    expect(event!.multiValueQueryStringParameters).toEqual({ downloadId: ['d-1'], tag: ['a', 'b'] });
    expect(event!.isBase64Encoded).toBe(false);
    expect(gateway.connectionIds()).toContain(event!.requestContext.connectionId);
    client.socket.close();
  });

  it('gives null query parameters when there are none', async () => {
    const client = connect(gateway.url);
    await client.opened;

    expect(eventsFor('$connect')[0]!.queryStringParameters).toBeNull();
    expect(eventsFor('$connect')[0]!.multiValueQueryStringParameters).toBeNull();
    client.socket.close();
  });

  it('answers 410 GoneException for a connection still inside $connect, and delivers once established', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    onConnect = async () => {
      await gate;
      return { statusCode: 200 };
    };

    const client = connect(gateway.url);
    await until(() => eventsFor('$connect').length === 1);
    const connectionId = eventsFor('$connect')[0]!.requestContext.connectionId;
    const early = await management
      .send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from('too early') }))
      .catch((e: unknown) => e);
    release();
    await client.opened;
    await management.send(
      new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from('{"type":"ready"}') }),
    );
    await until(() => client.messages.length === 1);

    expect((early as Error).name).toBe('GoneException');
    expect((early as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(410);
    expect(client.messages).toEqual(['{"type":"ready"}']);
    client.socket.close();
  });

  it('refuses the handshake with the status $connect answers, and keeps no connection', async () => {
    onConnect = async () => ({ statusCode: 403 });

    const client = connect(gateway.url);

    await expect(client.opened).rejects.toThrow('handshake refused: 403');
    const connectionId = eventsFor('$connect')[0]!.requestContext.connectionId;
    expect(gateway.connectionIds()).not.toContain(connectionId);
    const gone = await management
      .send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from('x') }))
      .catch((e: unknown) => e);
    expect((gone as Error).name).toBe('GoneException');
    await sleep(30);
    expect(eventsFor('$disconnect', connectionId)).toHaveLength(0);
  });

  it('refuses the handshake with 500 when $connect throws', async () => {
    onConnect = async () => {
      throw new Error('table unavailable');
    };

    await expect(connect(gateway.url).opened).rejects.toThrow('handshake refused: 500');
  });

  it('routes by body.action, sends route responses back, and falls back to $default', async () => {
    const client = connect(gateway.url);
    await client.opened;

    client.socket.send(JSON.stringify({ action: 'status' }));
    await until(() => client.messages.length === 1);
    client.socket.send(JSON.stringify({ action: 'unknown-route' }));
    await until(() => client.messages.length === 2);
    client.socket.send('not json');
    await until(() => client.messages.length === 3);
    client.socket.send(JSON.stringify({ action: 'ping' }));
    await until(() => eventsFor('ping').length === 1);
    await sleep(30);

    expect(JSON.parse(client.messages[0]!)).toEqual({ type: 'status', state: 'RUNNING' });
    expect(client.messages[1]).toBe('default:{"action":"unknown-route"}');
    expect(client.messages[2]).toBe('default:not json');
    expect(client.messages).toHaveLength(3);
    const status = eventsFor('status')[0]!;
    expect(status.requestContext.eventType).toBe('MESSAGE');
    expect(status.body).toBe('{"action":"status"}');
    expect(status.requestContext.connectionId).toBe(eventsFor('$connect')[0]!.requestContext.connectionId);
    client.socket.close();
  });

  it('tells the client when the message handler fails, as API Gateway does', async () => {
    const client = connect(gateway.url);
    await client.opened;

    client.socket.send('explode');
    await until(() => client.messages.length === 1);

    expect(JSON.parse(client.messages[0]!)).toMatchObject({
      message: 'Internal server error',
      connectionId: eventsFor('$connect')[0]!.requestContext.connectionId,
    });
    client.socket.close();
  });

  it('closes with 1009 on a message over 128 KB, then sends $disconnect', async () => {
    const client = connect(gateway.url);
    await client.opened;

    const connectionId = connectionIdOf();

    client.socket.send('x'.repeat(128 * 1024 + 1));
    await until(() => eventsFor('$disconnect', connectionId).length === 1);

    expect(client.closeCode()).toBe(1009);
    expect(eventsFor('$default')).toHaveLength(0);
    expect(eventsFor('$disconnect', connectionId)[0]!.requestContext.disconnectStatusCode).toBe(1009);
  });

  it('sends $disconnect when the client leaves; the connection is then gone', async () => {
    const client = connect(gateway.url);
    await client.opened;
    const connectionId = eventsFor('$connect')[0]!.requestContext.connectionId;

    client.socket.close(1000);
    await until(() => eventsFor('$disconnect', connectionId).length === 1);
    const gone = await management
      .send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from('late') }))
      .catch((e: unknown) => e);

    const disconnect = eventsFor('$disconnect', connectionId)[0]!;
    expect(disconnect.requestContext).toMatchObject({ eventType: 'DISCONNECT', connectionId });
    expect(disconnect.body).toBeUndefined();
    expect((gone as Error).name).toBe('GoneException');
  });

  it('serves DeleteConnection and the 128 KB PostToConnection limit, with or without the stage', async () => {
    const client = connect(gateway.url, { 'User-Agent': 'vitest-client' });
    await client.opened;
    const connectionId = eventsFor('$connect')[0]!.requestContext.connectionId;
    const withoutStage = new ApiGatewayManagementApiClient({
      endpoint: gateway.managementUrl.replace(/\/local$/, ''),
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
    });

    const tooLarge = await management
      .send(
        new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.alloc(128 * 1024 + 1, 120) }),
      )
      .catch((e: unknown) => e);
    await management.send(
      new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.alloc(128 * 1024, 121) }),
    );
    await until(() => client.messages.length === 1);
    await withoutStage.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
    await until(() => client.closeCode() !== undefined);
    await until(() => eventsFor('$disconnect', connectionId).length === 1);
    withoutStage.destroy();

    expect((tooLarge as Error).name).toBe('PayloadTooLargeException');
    expect(client.messages[0]).toHaveLength(128 * 1024);
    expect(gateway.connectionIds()).not.toContain(connectionId);
  });

  it('refuses GetConnection, which nothing in the product sends', async () => {
    const client = connect(gateway.url);
    await client.opened;
    const connectionId = eventsFor('$connect')[0]!.requestContext.connectionId;

    const error = await management
      .send(new GetConnectionCommand({ ConnectionId: connectionId }))
      .catch((e: unknown) => e);

    expect((error as Error).name).toBe('ForbiddenException');
    client.socket.close();
  });
});

describe('startWebSocketGateway without $connect and $default routes', () => {
  it('accepts every handshake and tells the client a message has no route, as API Gateway does', async () => {
    const gateway = await startWebSocketGateway({ port: 0, routes: {} });
    const client = connect(gateway.url);
    await client.opened;

    client.socket.send('hello');
    await until(() => client.messages.length === 1);

    expect(JSON.parse(client.messages[0]!)).toMatchObject({ message: 'Forbidden' });
    client.socket.close();
    await gateway.close();
  });
});

describe('startWebSocketGateway close()', () => {
  it('closes open client connections and the server', async () => {
    const gateway = await startWebSocketGateway({
      port: 0,
      routes: {
        $connect: { handler: async () => ({ statusCode: 200 }), functionName: 'websocket', timeoutMs: 1_000 },
      },
    });
    const client = connect(gateway.url);
    await client.opened;

    await gateway.close();
    await until(() => client.closeCode() !== undefined);

    expect(client.socket.readyState).toBe(WebSocket.CLOSED);
    await expect(connect(gateway.url).opened).rejects.toThrow(/ECONNREFUSED/);
  });
});
