import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ConnectSocket,
  type CopyWatch,
  type CopyWatchEvent,
  type SocketHandlers,
  type SocketLike,
  watchCopy,
} from '../../client/copy-watch.ts';
import type { CopyFailureReport, DownloadStatus } from '../../client/download-status.ts';

const WEBSOCKET_URL = 'wss://ws.example/live?downloadId=d-1&token=t';
const READY = {
  url: 'https://bucket.s3.example/d-1?X-Amz-Signature=abc',
  size: 42,
  expiresAt: '2030-01-01T00:00:00Z',
};

/** A WebSocket the test drives: it opens, speaks, closes or is refused when the test says so. */
class FakeSocket implements SocketLike {
  readonly sent: string[] = [];
  closed = false;
  constructor(
    readonly url: string,
    readonly handlers: SocketHandlers,
  ) {}
  send(text: string): void {
    this.sent.push(text);
  }
  close(): void {
    this.closed = true;
  }
  message(body: unknown): void {
    this.handlers.onMessage(JSON.stringify(body));
  }
}

class CopyFailed extends Error {
  constructor(readonly report: CopyFailureReport | undefined) {
    super('the copy failed');
  }
}

class LastingFailure extends Error {}

/** A watch over fake sockets and a scripted status URL, recording what it reports. */
function watch(
  statuses: Array<Partial<DownloadStatus> | Error> = [],
  timings: CopyWatch['timings'] = {},
  signal = new AbortController().signal,
) {
  const sockets: FakeSocket[] = [];
  const events: CopyWatchEvent[] = [];
  const progress: Array<[number, number | undefined]> = [];
  const connect: ConnectSocket = (url, handlers) => {
    const socket = new FakeSocket(url, handlers);
    sockets.push(socket);
    return socket;
  };
  const readStatus = vi.fn(async (): Promise<Partial<DownloadStatus>> => {
    const next = statuses.shift() ?? { status: 'RUNNING' };
    if (next instanceof Error) throw next;
    return next;
  });
  const result = watchCopy({
    webSocketUrl: WEBSOCKET_URL,
    signal,
    connect,
    readStatus,
    isLastingFailure: (error) => error instanceof LastingFailure,
    toCopyFailure: (report) => new CopyFailed(report),
    onProgress: (bytes, total) => progress.push([bytes, total]),
    onChange: (event) => events.push(event),
    timings: { reconnectDelayMs: 100, maxReconnectDelayMs: 1_000, maxReconnects: 3, ...timings },
  });
  // Settled or not, the test reads the outcome when it wants it.
  const outcome = result.then(
    (ready) => ({ ready }),
    (error: unknown) => ({ error }),
  );
  return { sockets, events, progress, readStatus, result, outcome };
}

/** The last socket the watch opened. */
function latest(sockets: FakeSocket[]): FakeSocket {
  const socket = sockets.at(-1);
  if (!socket) throw new Error('no socket was opened');
  return socket;
}

describe('the copy watcher shared by the CLI and the browser page', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    // No jitter: each reconnect delay is exactly the doubled one.
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('asks for the status once open, reports progress and resolves with the ready file', async () => {
    const { sockets, events, progress, outcome } = watch();
    const socket = latest(sockets);
    expect(socket.url).toBe(WEBSOCKET_URL);

    socket.handlers.onOpen();
    socket.message({ type: 'progress', bytes: 10, totalBytes: 42 });
    socket.message({ type: 'status', status: 'RUNNING', bytes: 20, totalBytes: 42 });
    socket.handlers.onMessage('not json');
    socket.message({ type: 'ready', ...READY, checksum: { algorithm: 'sha256', value: 'q83v' } });

    expect(await outcome).toEqual({ ready: { ...READY, checksum: { algorithm: 'sha256', value: 'q83v' } } });
    expect(socket.sent).toEqual([JSON.stringify({ action: 'status' })]);
    expect(progress).toEqual([
      [10, 42],
      [20, 42],
    ]);
    expect(events).toEqual([{ channel: 'connecting' }, { channel: 'live' }]);
    expect(socket.closed).toBe(true);
  });

  it('reconnects with doubling delays, then polls the status URL once the WebSocket keeps dropping', async () => {
    const { sockets, events, progress, readStatus, outcome } = watch([
      { status: 'RUNNING', bytes: 30, totalBytes: 42 },
      { status: 'READY', ...READY },
    ]);

    // Three drops in a row are reconnected after 100, 200 and 400 ms; the fourth gives the socket up.
    for (const delay of [100, 200, 400]) {
      latest(sockets).handlers.onClose();
      await vi.advanceTimersByTimeAsync(delay - 1);
      const opened = sockets.length;
      await vi.advanceTimersByTimeAsync(1);
      expect(sockets.length).toBe(opened + 1);
    }
    latest(sockets).handlers.onClose();
    await vi.advanceTimersByTimeAsync(0);
    expect(readStatus).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1_000);

    expect(await outcome).toEqual({ ready: READY });
    expect(sockets).toHaveLength(4);
    expect(readStatus).toHaveBeenCalledTimes(2);
    expect(progress).toEqual([[30, 42]]);
    expect(events).toEqual([
      { channel: 'connecting' },
      { channel: 'reconnecting', delayMs: 100, attempt: 1, maxReconnects: 3 },
      { channel: 'reconnecting', delayMs: 200, attempt: 2, maxReconnects: 3 },
      { channel: 'reconnecting', delayMs: 400, attempt: 3, maxReconnects: 3 },
      { channel: 'polling', cause: 'dropping' },
    ]);
  });

  it('starts the reconnect count again after a connection opens', async () => {
    const { sockets, events } = watch();
    latest(sockets).handlers.onClose();
    await vi.advanceTimersByTimeAsync(100);
    latest(sockets).handlers.onOpen();
    latest(sockets).handlers.onClose();
    await vi.advanceTimersByTimeAsync(100);

    expect(sockets).toHaveLength(3);
    expect(events.slice(1)).toEqual([
      { channel: 'reconnecting', delayMs: 100, attempt: 1, maxReconnects: 3 },
      { channel: 'live' },
      { channel: 'reconnecting', delayMs: 100, attempt: 1, maxReconnects: 3 },
    ]);
  });

  it('polls instead of reconnecting when the service closes the socket for a newer connection', async () => {
    const { sockets, events, readStatus, outcome } = watch([{ status: 'READY', ...READY }]);
    const socket = latest(sockets);
    socket.handlers.onOpen();
    socket.message({ type: 'closed', reason: { code: 'ReplacedByNewerConnection' } });

    expect(await outcome).toEqual({ ready: READY });
    expect(socket.closed).toBe(true);
    expect(sockets).toHaveLength(1);
    expect(readStatus).toHaveBeenCalledTimes(1);
    expect(events.at(-1)).toEqual({
      channel: 'polling',
      cause: 'closed-by-service',
      code: 'ReplacedByNewerConnection',
    });
  });

  it('polls at once when the handshake is refused, and fails with a refusal the status URL repeats', async () => {
    const refused = new LastingFailure('403 from the status URL');
    const { sockets, events, readStatus, outcome } = watch([refused]);
    latest(sockets).handlers.onRefused(403);
    // The close that follows a refusal must not start a reconnect.
    latest(sockets).handlers.onClose();
    await vi.advanceTimersByTimeAsync(10_000);

    expect(await outcome).toEqual({ error: refused });
    expect(sockets).toHaveLength(1);
    expect(readStatus).toHaveBeenCalledTimes(1);
    expect(events).toEqual([
      { channel: 'connecting' },
      { channel: 'polling', cause: 'refused', httpStatus: 403 },
    ]);
  });

  it('fails after more than maxPollFailures passing failures in a row, not before', async () => {
    const flaky = Array.from({ length: 4 }, (_, n) => new Error(`unreachable ${n}`));
    const { sockets, readStatus, outcome } = watch([...flaky], { maxPollFailures: 3, pollIntervalMs: 100 });
    latest(sockets).handlers.onRefused(401);
    await vi.advanceTimersByTimeAsync(100 + 150 + 225);
    expect(readStatus).toHaveBeenCalledTimes(4);

    expect(await outcome).toEqual({ error: flaky[3] });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(readStatus).toHaveBeenCalledTimes(4);
  });

  it('rejects with the copy failure a `failed` message or a FAILED status reports', async () => {
    const byMessage = watch();
    latest(byMessage.sockets).handlers.onOpen();
    latest(byMessage.sockets).message({ type: 'failed', error: { code: 'UpstreamFailed', message: '502' } });
    expect(await byMessage.outcome).toEqual({
      error: new CopyFailed({ code: 'UpstreamFailed', message: '502' }),
    });

    const byStatus = watch([{ status: 'FAILED', error: { code: 'Timeout', message: 'too slow' } }]);
    latest(byStatus.sockets).handlers.onRefused(410);
    const { error } = (await byStatus.outcome) as { error: CopyFailed };
    expect(error.report).toEqual({ code: 'Timeout', message: 'too slow' });
  });

  it('reads the status once when an open socket stays silent, in case a message was lost', async () => {
    const { sockets, readStatus, outcome } = watch(
      [
        { status: 'RUNNING', bytes: 1 },
        { status: 'READY', ...READY },
      ],
      { idleCheckMs: 1_000 },
    );
    latest(sockets).handlers.onOpen();
    await vi.advanceTimersByTimeAsync(999);
    expect(readStatus).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(readStatus).toHaveBeenCalledTimes(1);
    // A message re-arms the check.
    await vi.advanceTimersByTimeAsync(500);
    latest(sockets).message({ type: 'progress', bytes: 2 });
    await vi.advanceTimersByTimeAsync(999);
    expect(readStatus).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);

    expect(await outcome).toEqual({ ready: READY });
    expect(readStatus).toHaveBeenCalledTimes(2);
  });

  it("rejects with the signal's reason when aborted, closes the socket and reconnects no more", async () => {
    const controller = new AbortController();
    const { sockets, outcome } = watch([], {}, controller.signal);
    latest(sockets).handlers.onClose();
    const stop = new Error('interrupted');
    controller.abort(stop);
    await vi.advanceTimersByTimeAsync(10_000);

    expect(await outcome).toEqual({ error: stop });
    expect(sockets).toHaveLength(1);
  });
});
