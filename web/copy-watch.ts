import { type DownloadStatus, ProblemError, readStatus } from './api.ts';

/** The file is in S3: a presigned GET URL. */
export interface ReadyFile {
  url: string;
  expiresAt?: string;
  size?: number;
}

/** How the page currently follows the copy. */
export type WatchChannel = 'connecting' | 'live' | 'reconnecting' | 'polling';

export interface CopyWatch {
  /** As the 202 gave them: they carry the download's token. */
  webSocketUrl: string;
  statusUrl: string;
  signal: AbortSignal;
  onProgress(bytes: number, totalBytes: number | undefined): void;
  onChannel(channel: WatchChannel, note: string): void;
  timings?: Partial<CopyWatchTimings>;
}

export interface CopyWatchTimings {
  /** First reconnect delay; doubles each time, up to `maxReconnectDelayMs`. */
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  /** Reconnects in a row before falling back to polling. */
  maxReconnects: number;
  /** Silence on an open socket after which the status is read once, in case a message was lost. */
  idleCheckMs: number;
  /** Polling interval once the WebSocket is given up; grows to 5 s. */
  pollIntervalMs: number;
  /** Failed polls in a row before giving up. */
  maxPollFailures: number;
}

const DEFAULT_TIMINGS: CopyWatchTimings = {
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 10_000,
  maxReconnects: 5,
  idleCheckMs: 15_000,
  pollIntervalMs: 1_000,
  maxPollFailures: 8,
};

function copyFailure(error: { code?: unknown; message?: unknown } | undefined): ProblemError {
  const code = typeof error?.code === 'string' ? error.code : 'InternalError';
  return new ProblemError({
    title: `The copy to S3 failed (${code})`,
    code,
    detail: typeof error?.message === 'string' ? error.message : 'The download failed',
  });
}

function readyOf(message: Partial<DownloadStatus>): ReadyFile | undefined {
  if (typeof message.url !== 'string') return undefined;
  return {
    url: message.url,
    ...(typeof message.expiresAt === 'string' ? { expiresAt: message.expiresAt } : {}),
    ...(typeof message.size === 'number' ? { size: message.size } : {}),
  };
}

/**
 * Follows an async download's copy to S3, as the CLI does (cli/wait-for-copy.ts): the WebSocket
 * (progress, then `ready` or `failed`), reconnecting with backoff when it drops, and polling the
 * status URL when it keeps dropping or the service closes it. A browser cannot see why a
 * handshake was refused; polling then tells (401, 403, 404 come back as problems).
 */
export function watchCopy(watch: CopyWatch): Promise<ReadyFile> {
  const timings = { ...DEFAULT_TIMINGS, ...watch.timings };
  return new Promise<ReadyFile>((resolve, reject) => {
    let settled = false;
    let socket: WebSocket | undefined;
    let reconnects = 0;
    let polling = false;
    let pollFailures = 0;
    let pollDelay = timings.pollIntervalMs;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;

    const drop = () => {
      const open = socket;
      socket = undefined;
      if (open) {
        open.onclose = null;
        open.onmessage = null;
        open.close();
      }
    };
    const finish = (error: unknown, ready?: ReadyFile) => {
      if (settled) return;
      settled = true;
      clearTimeout(idleTimer);
      clearTimeout(retryTimer);
      watch.signal.removeEventListener('abort', onAbort);
      drop();
      if (ready) resolve(ready);
      else reject(error);
    };
    const onAbort = () => finish(watch.signal.reason);
    if (watch.signal.aborted) return onAbort();
    watch.signal.addEventListener('abort', onAbort, { once: true });

    const onStatus = (status: Partial<DownloadStatus>) => {
      if (status.status === 'READY') {
        const ready = readyOf(status);
        if (ready) finish(undefined, ready);
      } else if (status.status === 'FAILED') finish(copyFailure(status.error));
      else if (typeof status.bytes === 'number') watch.onProgress(status.bytes, status.totalBytes);
    };

    const onMessage = (message: Record<string, unknown>) => {
      switch (message.type) {
        case 'progress':
          if (typeof message.bytes === 'number') {
            watch.onProgress(
              message.bytes,
              typeof message.totalBytes === 'number' ? message.totalBytes : undefined,
            );
          }
          break;
        case 'ready': {
          const ready = readyOf(message as Partial<DownloadStatus>);
          if (ready) finish(undefined, ready);
          break;
        }
        case 'failed':
          finish(copyFailure(message.error as { code?: unknown; message?: unknown }));
          break;
        case 'status':
          onStatus(message as Partial<DownloadStatus>);
          break;
        case 'closed':
          startPolling('the service closed the WebSocket for a newer connection: polling the status');
          break;
      }
    };

    const pollOnce = async (): Promise<void> => {
      try {
        const status = await readStatus(watch.statusUrl, watch.signal);
        pollFailures = 0;
        onStatus(status);
      } catch (error) {
        if (settled) return;
        // A problem with a status below 500 (401, 403, 404) will not go away by asking again.
        const status = error instanceof ProblemError ? error.problem.status : undefined;
        pollFailures++;
        if ((status !== undefined && status < 500) || pollFailures > timings.maxPollFailures) finish(error);
      }
    };

    const armIdleCheck = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        void pollOnce().finally(() => {
          if (!settled && !polling && socket) armIdleCheck();
        });
      }, timings.idleCheckMs);
    };

    const startPolling = (note: string) => {
      if (polling || settled) return;
      polling = true;
      clearTimeout(idleTimer);
      clearTimeout(retryTimer);
      drop();
      watch.onChannel('polling', note);
      const loop = async () => {
        while (!settled) {
          await pollOnce();
          if (settled) return;
          await new Promise((wake) => {
            retryTimer = setTimeout(wake, pollDelay);
          });
          pollDelay = Math.min(pollDelay * 1.5, 5_000);
        }
      };
      void loop();
    };

    const connect = () => {
      const ws = new WebSocket(watch.webSocketUrl);
      socket = ws;
      ws.onopen = () => {
        reconnects = 0;
        watch.onChannel('live', 'live updates over the WebSocket');
        // The current status at once: bytes copied so far, or the outcome if it is settled.
        ws.send(JSON.stringify({ action: 'status' }));
        armIdleCheck();
      };
      ws.onmessage = (event: MessageEvent) => {
        armIdleCheck();
        let message: unknown;
        try {
          message = JSON.parse(String(event.data));
        } catch {
          return;
        }
        if (typeof message === 'object' && message !== null) onMessage(message as Record<string, unknown>);
      };
      ws.onclose = () => {
        if (socket !== ws || settled || polling) return;
        socket = undefined;
        clearTimeout(idleTimer);
        reconnects++;
        if (reconnects > timings.maxReconnects) {
          startPolling('the WebSocket keeps dropping: polling the status');
          return;
        }
        const delay = Math.min(timings.reconnectDelayMs * 2 ** (reconnects - 1), timings.maxReconnectDelayMs);
        const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
        watch.onChannel(
          'reconnecting',
          `the WebSocket closed: reconnecting in ${(jittered / 1000).toFixed(1)} s (${reconnects}/${timings.maxReconnects})`,
        );
        retryTimer = setTimeout(connect, jittered);
      };
    };

    watch.onChannel('connecting', 'connecting to the WebSocket');
    connect();
  });
}
