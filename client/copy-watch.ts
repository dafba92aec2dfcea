import {
  type CopyFailureReport,
  type DownloadStatus,
  type ReadyFile,
  toReadyFile,
} from './download-status.ts';

/** What a client's WebSocket reports to the watcher. Events come after `connect` has returned. */
export interface SocketHandlers {
  onOpen(): void;
  /** A text frame. */
  onMessage(text: string): void;
  /** The connection closed, or could not be opened (an error is always followed by this). */
  onClose(): void;
  /**
   * The handshake was answered with an HTTP status instead of an upgrade (401, 403, 404, 410).
   * Only where the environment can see it (`ws` can; a browser's WebSocket just closes).
   */
  onRefused(httpStatus: number): void;
}

/** The part of a WebSocket the watcher uses. `close` ends it and silences its handlers. */
export interface SocketLike {
  send(text: string): void;
  close(): void;
}

/** Opens a WebSocket: `ws` in the CLI, the browser's `WebSocket` in the page. */
export type ConnectSocket = (url: string, handlers: SocketHandlers) => SocketLike;

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

export const DEFAULT_COPY_WATCH_TIMINGS: Readonly<CopyWatchTimings> = {
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 10_000,
  maxReconnects: 5,
  idleCheckMs: 15_000,
  pollIntervalMs: 1_000,
  maxPollFailures: 8,
};

/** Polling grows by half each time, up to this. */
const MAX_POLL_INTERVAL_MS = 5_000;

/** Why the watcher gave up the WebSocket for the status URL. */
export type PollingCause =
  | { cause: 'dropping' }
  /** The service sent `closed`: a newer connection for the same download took over. */
  | { cause: 'closed-by-service'; code: string | undefined }
  | { cause: 'refused'; httpStatus: number };

/** How the watch follows the copy now; each client words it its own way. */
export type CopyWatchEvent =
  | { channel: 'connecting' }
  | { channel: 'live' }
  | { channel: 'reconnecting'; delayMs: number; attempt: number; maxReconnects: number }
  | ({ channel: 'polling' } & PollingCause);

export interface CopyWatch {
  /** As the 202 gave it: it carries the download's token. */
  webSocketUrl: string;
  signal: AbortSignal;
  connect: ConnectSocket;
  /** Reads the status URL once (as the 202 gave it); rejects when it cannot. */
  readStatus(signal: AbortSignal): Promise<Partial<DownloadStatus>>;
  /** True for a failed status read that asking again will not mend (401, 403, 404): the watch fails with it. */
  isLastingFailure(error: unknown): boolean;
  /** The error the watch rejects with when the copy failed. */
  toCopyFailure(report: CopyFailureReport | undefined): unknown;
  onProgress(bytes: number, totalBytes: number | undefined): void;
  onChange(event: CopyWatchEvent): void;
  timings?: Partial<CopyWatchTimings>;
}

/**
 * Follows an async download's copy to S3: the WebSocket (progress, then `ready` or `failed`),
 * reconnecting with doubling backoff when it drops, and polling the status URL when it keeps
 * dropping, is refused, or is taken over by a newer connection. A socket silent for
 * `idleCheckMs` is checked with one status read, in case a message was lost. Resolves with the
 * ready file; rejects with `toCopyFailure(…)`, a lasting or repeated status-read failure, or the
 * signal's reason when it aborts.
 */
export function watchCopy(watch: CopyWatch): Promise<ReadyFile> {
  const timings = { ...DEFAULT_COPY_WATCH_TIMINGS, ...watch.timings };
  return new Promise<ReadyFile>((resolve, reject) => {
    let settled = false;
    let socket: SocketLike | undefined;
    let reconnects = 0;
    let polling = false;
    let pollFailures = 0;
    let pollDelay = timings.pollIntervalMs;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let idlePolling = false;

    const drop = () => {
      const open = socket;
      socket = undefined;
      open?.close();
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
        const ready = toReadyFile(status as Record<string, unknown>);
        if (ready) finish(undefined, ready);
      } else if (status.status === 'FAILED') finish(watch.toCopyFailure(status.error));
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
          const ready = toReadyFile(message);
          if (ready) finish(undefined, ready);
          break;
        }
        case 'failed':
          finish(watch.toCopyFailure(message.error as CopyFailureReport | undefined));
          break;
        case 'status':
          onStatus(message as Partial<DownloadStatus>);
          break;
        case 'closed': {
          const reason = message.reason as { code?: unknown } | undefined;
          startPolling({
            cause: 'closed-by-service',
            code: typeof reason?.code === 'string' ? reason.code : undefined,
          });
          break;
        }
      }
    };

    const pollOnce = async (): Promise<void> => {
      try {
        const status = await watch.readStatus(watch.signal);
        pollFailures = 0;
        onStatus(status);
      } catch (error) {
        if (settled) return;
        pollFailures++;
        if (watch.isLastingFailure(error) || pollFailures > timings.maxPollFailures) finish(error);
      }
    };

    const armIdleCheck = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => {
        if (idlePolling) return;
        idlePolling = true;
        void pollOnce().finally(() => {
          idlePolling = false;
          if (!settled && !polling && socket) armIdleCheck();
        });
      }, timings.idleCheckMs);
    };

    const startPolling = (cause: PollingCause) => {
      if (polling || settled) return;
      polling = true;
      clearTimeout(idleTimer);
      clearTimeout(retryTimer);
      drop();
      watch.onChange({ channel: 'polling', ...cause });
      const loop = async () => {
        while (!settled) {
          await pollOnce();
          if (settled) return;
          await new Promise((wake) => {
            retryTimer = setTimeout(wake, pollDelay);
          });
          pollDelay = Math.min(pollDelay * 1.5, MAX_POLL_INTERVAL_MS);
        }
      };
      void loop();
    };

    const connect = () => {
      const ws: SocketLike = watch.connect(watch.webSocketUrl, {
        onOpen: () => {
          if (socket !== ws || settled) return;
          reconnects = 0;
          watch.onChange({ channel: 'live' });
          // The current status at once: bytes copied so far, or the outcome if it is settled.
          ws.send(JSON.stringify({ action: 'status' }));
          armIdleCheck();
        },
        onMessage: (text) => {
          if (socket !== ws || settled) return;
          armIdleCheck();
          let message: unknown;
          try {
            message = JSON.parse(text);
          } catch {
            return;
          }
          if (typeof message === 'object' && message !== null) onMessage(message as Record<string, unknown>);
        },
        onRefused: (httpStatus) => {
          // Reconnecting would be refused again; the status URL says why.
          if (socket !== ws || settled) return;
          startPolling({ cause: 'refused', httpStatus });
        },
        onClose: () => {
          if (socket !== ws || settled || polling) return;
          socket = undefined;
          clearTimeout(idleTimer);
          reconnects++;
          if (reconnects > timings.maxReconnects) {
            startPolling({ cause: 'dropping' });
            return;
          }
          const delay = Math.min(
            timings.reconnectDelayMs * 2 ** (reconnects - 1),
            timings.maxReconnectDelayMs,
          );
          const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
          watch.onChange({
            channel: 'reconnecting',
            delayMs: jittered,
            attempt: reconnects,
            maxReconnects: timings.maxReconnects,
          });
          retryTimer = setTimeout(connect, jittered);
        },
      });
      socket = ws;
    };

    watch.onChange({ channel: 'connecting' });
    connect();
  });
}
