import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { ApiClient } from '../../cli/api.ts';
import { CliError } from '../../cli/errors.ts';
import { EXIT } from '../../cli/exit-codes.ts';
import { RequestSigner } from '../../cli/signing.ts';
import { waitForCopy } from '../../cli/wait-for-copy.ts';
import type { CopyWatchTimings } from '../../client/copy-watch.ts';

const READY = { downloadId: 'd-1', status: 'READY', url: 'https://bucket.s3.example/d-1', size: 42 };

/**
 * A loopback server in place of the API: `GET /downloads/d-1` answers `status`; WebSocket upgrades
 * are refused as `refuseWith` says, or accepted and handed to `onSocket`.
 */
async function startServer(options: {
  status: () => { code: number; body: unknown };
  /** An HTTP status to answer upgrades with, or `hang-up` to close the connection without an answer. */
  refuseWith?: number | 'hang-up';
  onSocket?: (socket: import('ws').WebSocket) => void;
}): Promise<{ server: Server; base: string }> {
  const sockets = new WebSocketServer({ noServer: true });
  const server = createServer((_request, response) => {
    const { code, body } = options.status();
    response.writeHead(code, {
      'content-type': code === 200 ? 'application/json' : 'application/problem+json',
    });
    response.end(JSON.stringify(body));
  });
  server.on('upgrade', (request, socket, head) => {
    if (options.refuseWith === 'hang-up') {
      socket.destroy();
      return;
    }
    if (options.refuseWith) {
      socket.end(`HTTP/1.1 ${options.refuseWith} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => options.onSocket?.(ws));
  });
  server.on('close', () => sockets.close());
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function api(base: string): ApiClient {
  const url = new URL(base);
  return new ApiClient(
    url,
    false,
    new RequestSigner({ enabled: false, service: 'execute-api', apiUrl: url, env: {} }),
  );
}

/** Waits on the server's WebSocket and status URL (token and all, as a 202 gives them), recording what the CLI reports. */
function waitOn(base: string, timings?: Partial<CopyWatchTimings>) {
  const notes: string[] = [];
  const progress: number[] = [];
  const result = waitForCopy({
    api: api(base),
    webSocketUrl: `${base.replace('http', 'ws')}/live?downloadId=d-1&token=t`,
    statusUrl: `${base}/downloads/d-1?token=t`,
    signal: new AbortController().signal,
    onProgress: (bytes) => progress.push(bytes),
    note: (line) => notes.push(line),
    ...(timings ? { timings } : {}),
  });
  return { notes, progress, result };
}

describe('waitForCopy (the CLI over the shared copy watcher, with ws)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((closed) => server?.close(closed) ?? closed(undefined));
    server = undefined;
  });

  it('polls the status URL at once when the WebSocket handshake is refused, and says so', async () => {
    const started = await startServer({ status: () => ({ code: 200, body: READY }), refuseWith: 403 });
    server = started.server;

    const { notes, result } = waitOn(started.base);
    const ready = await result;

    expect(ready).toEqual({ url: READY.url, size: 42 });
    expect(notes).toEqual(['the WebSocket was refused (HTTP 403): polling the status instead']);
  });

  it('follows progress over the WebSocket and exits with the copy failure code on `failed`', async () => {
    const started = await startServer({
      status: () => ({ code: 500, body: {} }),
      onSocket: (ws) =>
        ws.on('message', (data) => {
          expect(JSON.parse(data.toString())).toEqual({ action: 'status' });
          ws.send(JSON.stringify({ type: 'progress', bytes: 7, totalBytes: 42 }));
          ws.send(
            JSON.stringify({ type: 'failed', error: { code: 'UpstreamFailed', message: 'upstream 502' } }),
          );
        }),
    });
    server = started.server;

    const { progress, result } = waitOn(started.base);
    const failure = await result.catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(CliError);
    expect((failure as CliError).exitCode).toBe(EXIT.upstreamFailed);
    expect((failure as CliError).title).toBe('the copy to S3 failed (UpstreamFailed)');
    expect(progress).toEqual([7]);
  });

  it('reconnects when the connection drops before it opens, then polls once it keeps dropping', async () => {
    let connections = 0;
    const started = await startServer({ status: () => ({ code: 200, body: READY }), refuseWith: 'hang-up' });
    started.server.on('upgrade', () => connections++);
    server = started.server;

    const { notes, result } = waitOn(started.base, { reconnectDelayMs: 10, maxReconnects: 2 });
    const ready = await result;

    expect(ready.url).toBe(READY.url);
    expect(connections).toBe(3);
    expect(notes).toEqual([
      expect.stringMatching(/^the WebSocket closed; reconnecting in 0s \(1\/2\)$/),
      expect.stringMatching(/^the WebSocket closed; reconnecting in 0s \(2\/2\)$/),
      'the WebSocket keeps dropping: polling the status URL instead',
    ]);
  });
});
