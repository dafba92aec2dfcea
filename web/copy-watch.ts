import {
  type ConnectSocket,
  type CopyWatchEvent,
  type CopyWatchTimings,
  watchCopy as followCopy,
} from '../client/copy-watch.ts';
import type { CopyFailureReport, ReadyFile } from '../client/download-status.ts';
import { ProblemError, readStatus } from './api.ts';

export type { ReadyFile } from '../client/download-status.ts';

/** How the page currently follows the copy. */
export type WatchChannel = CopyWatchEvent['channel'];

export interface CopyWatch {
  /** As the 202 gave them: they carry the download's token. */
  webSocketUrl: string;
  statusUrl: string;
  signal: AbortSignal;
  onProgress(bytes: number, totalBytes: number | undefined): void;
  onChannel(channel: WatchChannel, note: string): void;
  timings?: Partial<CopyWatchTimings>;
}

/** The browser's WebSocket, as the shared watcher uses it. */
const connectBrowserSocket: ConnectSocket = (url, handlers) => {
  const ws = new WebSocket(url);
  ws.onopen = () => handlers.onOpen();
  ws.onmessage = (event: MessageEvent) => handlers.onMessage(String(event.data));
  ws.onclose = () => handlers.onClose();
  return {
    send: (text) => ws.send(text),
    close: () => {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.close();
    },
  };
};

/** The row's note for each way of following the copy. */
function noteOf(event: CopyWatchEvent): string {
  switch (event.channel) {
    case 'connecting':
      return 'connecting to the WebSocket';
    case 'live':
      return 'live updates over the WebSocket';
    case 'reconnecting':
      return `the WebSocket closed: reconnecting in ${(event.delayMs / 1000).toFixed(1)} s (${event.attempt}/${event.maxReconnects})`;
    case 'polling':
      switch (event.cause) {
        case 'dropping':
          return 'the WebSocket keeps dropping: polling the status';
        case 'closed-by-service':
          return 'the service closed the WebSocket for a newer connection: polling the status';
        case 'refused':
          return `the WebSocket was refused (HTTP ${event.httpStatus}): polling the status`;
      }
  }
}

function copyFailure(error: CopyFailureReport | undefined): ProblemError {
  const code = typeof error?.code === 'string' ? error.code : 'InternalError';
  return new ProblemError({
    title: `The copy to S3 failed (${code})`,
    code,
    detail: typeof error?.message === 'string' ? error.message : 'The download failed',
  });
}

/**
 * Follows an async download's copy to S3 with the watcher the CLI uses too (client/copy-watch.ts):
 * the WebSocket, reconnecting with backoff, then polling the status URL. A browser cannot see why
 * a handshake was refused; polling then tells (401, 403, 404 come back as problems).
 */
export function watchCopy(watch: CopyWatch): Promise<ReadyFile> {
  return followCopy({
    webSocketUrl: watch.webSocketUrl,
    signal: watch.signal,
    connect: connectBrowserSocket,
    readStatus: (signal) => readStatus(watch.statusUrl, signal),
    // A problem with a status below 500 (401, 403, 404) will not go away by asking again.
    isLastingFailure: (error) =>
      error instanceof ProblemError && error.problem.status !== undefined && error.problem.status < 500,
    toCopyFailure: copyFailure,
    onProgress: watch.onProgress,
    onChange: (event) => watch.onChannel(event.channel, noteOf(event)),
    ...(watch.timings ? { timings: watch.timings } : {}),
  });
}
