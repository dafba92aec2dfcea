import WebSocket from 'ws';

/** A WebSocket client that records every message, for assertions. */
export interface RecordingSocket {
  socket: WebSocket;
  messages: Array<Record<string, unknown>>;
  /** Resolves with the first message of that type (already received or still to come). */
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  send(message: unknown): void;
  close(): Promise<void>;
}

/** Opens a connection; rejects with `{ statusCode }` if the handshake is refused. */
export function openSocket(url: string, headers: Record<string, string> = {}): Promise<RecordingSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const messages: Array<Record<string, unknown>> = [];
    const waiters: Array<() => void> = [];
    socket.on('message', (data) => {
      messages.push(JSON.parse(data.toString()) as Record<string, unknown>);
      for (const wake of waiters.splice(0)) wake();
    });
    socket.once('unexpected-response', (_req, res) => {
      reject(
        Object.assign(new Error(`handshake refused with ${res.statusCode}`), { statusCode: res.statusCode }),
      );
      socket.terminate();
    });
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        messages,
        next(type, timeoutMs = 30_000) {
          return new Promise((resolveMessage, rejectMessage) => {
            const timer = setTimeout(
              () =>
                rejectMessage(
                  new Error(`no "${type}" message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`),
                ),
              timeoutMs,
            );
            const check = () => {
              const found = messages.find((message) => message.type === type);
              if (found) {
                clearTimeout(timer);
                resolveMessage(found);
              } else waiters.push(check);
            };
            check();
          });
        },
        send(message) {
          socket.send(JSON.stringify(message));
        },
        close() {
          return new Promise((resolveClose) => {
            if (socket.readyState === WebSocket.CLOSED) return resolveClose();
            socket.once('close', () => resolveClose());
            socket.close();
          });
        },
      }),
    );
  });
}
