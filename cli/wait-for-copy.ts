import WebSocket from 'ws';
import {
  type ConnectSocket,
  type CopyWatchEvent,
  type CopyWatchTimings,
  watchCopy,
} from '../client/copy-watch.ts';
import { type ApiClient, type ReadyFile, toCopyFailure } from './api.ts';
import { CliError } from './errors.ts';
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

/** A `ws` WebSocket, as the shared watcher uses it; unlike a browser's, it tells a refused handshake. */
export const connectNodeSocket: ConnectSocket = (url, handlers) => {
  const ws = new WebSocket(url, { handshakeTimeout: 10_000 });
  let closed = false;
  const link = {
    send: (text: string) => ws.send(text),
    close: () => {
      if (closed) return;
      closed = true;
      ws.terminate();
    },
  };
  ws.on('open', () => {
    if (!closed) handlers.onOpen();
  });
  ws.on('message', (data) => {
    if (!closed) handlers.onMessage(data.toString());
  });
  ws.on('unexpected-response', (_request, response) => {
    // Refused (401/403/404/410): nothing more comes on this connection.
    const current = !closed;
    link.close();
    if (current) handlers.onRefused(response.statusCode ?? 0);
  });
  ws.on('error', () => {
    // `close` follows and decides.
  });
  ws.on('close', () => {
    if (!closed) handlers.onClose();
  });
  return link;
};

/** The line the CLI prints when the way it follows the copy changes (none while all goes well). */
function noteOf(event: CopyWatchEvent): string | undefined {
  switch (event.channel) {
    case 'reconnecting':
      return `the WebSocket closed; reconnecting in ${formatDuration(event.delayMs / 1000)} (${event.attempt}/${event.maxReconnects})`;
    case 'polling':
      switch (event.cause) {
        case 'dropping':
          return 'the WebSocket keeps dropping: polling the status URL instead';
        case 'closed-by-service':
          return `the service closed the WebSocket (${event.code ?? 'no reason'}): polling the status instead`;
        case 'refused':
          return `the WebSocket was refused (HTTP ${event.httpStatus}): polling the status instead`;
      }
      return undefined;
    default:
      return undefined;
  }
}

/**
 * Waits for an async download's copy to S3 with the watcher the browser page uses too
 * (client/copy-watch.ts): its WebSocket, reconnecting with backoff, then polling the status URL.
 * Resolves with the presigned URL; rejects with the copy's failure (a CliError with its exit code).
 */
export function waitForCopy(watch: CopyWatch): Promise<ReadyFile> {
  const statusUrl = new URL(watch.statusUrl);
  return watchCopy({
    webSocketUrl: watch.webSocketUrl,
    signal: watch.signal,
    connect: connectNodeSocket,
    readStatus: (signal) => watch.api.getStatus(statusUrl, { signal }),
    // Unreachable and upstream failures may pass; any other CliError (refused, unknown id) will not.
    isLastingFailure: (error) =>
      error instanceof CliError &&
      error.exitCode !== EXIT.unreachable &&
      error.exitCode !== EXIT.upstreamFailed,
    toCopyFailure,
    onProgress: watch.onProgress,
    onChange: (event) => {
      const line = noteOf(event);
      if (line !== undefined) watch.note(line);
    },
    ...(watch.timings ? { timings: watch.timings } : {}),
  });
}
