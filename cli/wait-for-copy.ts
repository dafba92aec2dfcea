import WebSocket from 'ws';
import { type ApiClient, type DownloadStatus, type ReadyFile, toCopyFailure, toReadyFile } from './api.ts';
import { CliError, interruptionOr } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import { formatDuration } from './format.ts';

export interface CopyWatch {
  api: ApiClient;
  /** As the 202 gave them: never rebuilt from the download id (they carry its token). */
  webSocketUrl: string;
  statusUrl: string;
  signal: AbortSignal;
  onProgress(bytes: number, totalBytes: number | undefined): void;
  note(line: string): void;
  timings?: Partial<CopyWatchTimings>;
}

export interface CopyWatchTimings {
  /** First reconnect delay; doubles each time, up to `maxReconnectDelayMs`. */
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  /** Reconnects in a row before falling back to polling. */
  maxReconnects: number;
  /** Silence on an open socket after which the status is polled once, in case a message was lost. */
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

/**
 * Waits for an async download's copy to S3: listens on its WebSocket (progress, then `ready` or
 * `failed`), reconnects with backoff when the connection drops, and falls back to polling the
 * status URL when the WebSocket keeps failing, is refused, or is taken over by a newer
 * connection. Resolves with the presigned URL; rejects with the copy's failure.
 */
export function waitForCopy(watch: CopyWatch): Promise<ReadyFile> {
  const timings = { ...DEFAULT_TIMINGS, ...watch.timings };
  const statusUrl = new URL(watch.statusUrl);
  return new Promise<ReadyFile>((resolve, reject) => {
    let settled = false;
    let socket: WebSocket | undefined;
    let reconnects = 0;
    let polling = false;
    let pollFailures = 0;
    let pollDelay = timings.pollIntervalMs;
    let idleTimer: NodeJS.Timeout | undefined;
    let retryTimer: NodeJS.Timeout | undefined;
    let idlePolling = false;

    const finish = (error: unknown, ready?: ReadyFile) => {
      if (settled) return;
      settled = true;
      clearTimeout(idleTimer);
      clearTimeout(retryTimer);
      watch.signal.removeEventListener('abort', onAbort);
      const open = socket;
      socket = undefined;
      open?.terminate();
      if (ready) resolve(ready);
      else reject(error);
    };
    const onAbort = () => finish(interruptionOr(new Error('aborted'), watch.signal));
    if (watch.signal.aborted) return onAbort();
    watch.signal.addEventListener('abort', onAbort, { once: true });

    const onStatus = (status: Partial<DownloadStatus>) => {
      if (status.status === 'READY') {
        const ready = toReadyFile(status as Record<string, unknown>);
        if (ready) finish(undefined, ready);
      } else if (status.status === 'FAILED') finish(toCopyFailure(status.error));
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
          finish(toCopyFailure(message.error as { code?: unknown; message?: unknown }));
          break;
        case 'status':
          onStatus(message as Partial<DownloadStatus>);
          break;
        case 'closed': {
          const reason = message.reason as { code?: string } | undefined;
          watch.note(
            `the service closed the WebSocket (${reason?.code ?? 'no reason'}): polling the status instead`,
          );
          startPolling();
          break;
        }
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

    const connect = () => {
      const ws = new WebSocket(watch.webSocketUrl, { handshakeTimeout: 10_000 });
      socket = ws;
      ws.on('open', () => {
        reconnects = 0;
        // The current status at once (bytes copied so far, or the outcome if it is settled).
        ws.send(JSON.stringify({ action: 'status' }));
        armIdleCheck();
      });
      ws.on('message', (data) => {
        armIdleCheck();
        let message: unknown;
        try {
          message = JSON.parse(data.toString());
        } catch {
          return;
        }
        if (typeof message === 'object' && message !== null) onMessage(message as Record<string, unknown>);
      });
      ws.on('unexpected-response', (_request, response) => {
        // Refused (401/403/404/410): reconnecting would be refused again; the status URL says why.
        socket = undefined;
        ws.terminate();
        if (settled) return;
        watch.note(`the WebSocket was refused (HTTP ${response.statusCode}): polling the status instead`);
        startPolling();
      });
      ws.on('error', () => {
        // `close` follows and decides.
      });
      ws.on('close', () => {
        if (socket !== ws || settled || polling) return;
        socket = undefined;
        clearTimeout(idleTimer);
        reconnects++;
        if (reconnects > timings.maxReconnects) {
          watch.note('the WebSocket keeps dropping: polling the status URL instead');
          startPolling();
          return;
        }
        const delay = Math.min(timings.reconnectDelayMs * 2 ** (reconnects - 1), timings.maxReconnectDelayMs);
        const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
        watch.note(
          `the WebSocket closed; reconnecting in ${formatDuration(jittered / 1000)} (${reconnects}/${timings.maxReconnects})`,
        );
        retryTimer = setTimeout(connect, jittered);
      });
    };

    const pollOnce = async (): Promise<void> => {
      try {
        const status = await watch.api.getStatus(statusUrl, { signal: watch.signal });
        pollFailures = 0;
        onStatus(status);
      } catch (error) {
        if (settled) return;
        const transient =
          !(error instanceof CliError) ||
          error.exitCode === EXIT.unreachable ||
          error.exitCode === EXIT.upstreamFailed;
        pollFailures++;
        if (!transient || pollFailures > timings.maxPollFailures) finish(error);
      }
    };

    const startPolling = () => {
      if (polling || settled) return;
      polling = true;
      clearTimeout(idleTimer);
      clearTimeout(retryTimer);
      const open = socket;
      socket = undefined;
      open?.terminate();
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

    connect();
  });
}
