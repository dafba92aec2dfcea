import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { DownloadMessage } from './messages.ts';

/** Outcome of one post: delivered, or the connection is gone (not an error). */
export type PostOutcome = 'sent' | 'gone';

/**
 * How long a connection may still be inside `$connect` after it was bound to its download. Until
 * then `@connections` answers 410 for it although it is about to open: the notifier retries a 410
 * that long, and a 410 counts as "gone for good" only after it.
 */
export const CONNECT_DELIVERY_WAIT_MS = 10_000;

/** What one message to every connection of a download came to, by connection id. */
export interface Broadcast {
  sent: string[];
  /** Answered 410 although bound longer than `CONNECT_DELIVERY_WAIT_MS` ago: closed; drop it. */
  gone: string[];
  /** Answered 410 while it may still be inside `$connect`: keep it. */
  connecting: string[];
  failed: Array<{ connectionId: string; error: Error }>;
}

/** Posts messages to WebSocket connections through the `@connections` API. */
export class ConnectionPoster {
  constructor(private readonly client: ApiGatewayManagementApiClient) {}

  /** Sends one JSON message; a 410 (gone, or not yet established) is `'gone'`, not a failure. */
  async post(connectionId: string, message: DownloadMessage): Promise<PostOutcome> {
    try {
      await this.client.send(
        new PostToConnectionCommand({
          ConnectionId: connectionId,
          Data: Buffer.from(JSON.stringify(message)),
        }),
      );
      return 'sent';
    } catch (error) {
      if (isGone(error)) return 'gone';
      throw error;
    }
  }

  /**
   * Sends a message to a connection that may still be inside `$connect` (which answers 410 until
   * it returns): retries a 410 every `intervalMs` until `waitMs` has passed.
   */
  async postWhenConnected(
    connectionId: string,
    message: DownloadMessage,
    waitMs: number,
    intervalMs = 200,
  ): Promise<PostOutcome> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const outcome = await this.post(connectionId, message);
      if (outcome === 'sent' || Date.now() + intervalMs > deadline) return outcome;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  /**
   * Sends one message to every connection, in parallel; one failing connection does not stop the
   * others. With `waitForNew`, a connection bound less than `CONNECT_DELIVERY_WAIT_MS` ago that
   * answers 410 is retried until that time is up (the outcome must not be lost to a `$connect`
   * still running); progress does not wait, the next report reaches it.
   */
  async postToAll(
    connections: Readonly<Record<string, number>>,
    message: DownloadMessage,
    options: { waitForNew?: boolean } = {},
  ): Promise<Broadcast> {
    const broadcast: Broadcast = { sent: [], gone: [], connecting: [], failed: [] };
    const started = Date.now();
    await Promise.all(
      Object.entries(connections).map(async ([connectionId, boundAt]) => {
        const mayBeConnecting = Math.max(0, boundAt + CONNECT_DELIVERY_WAIT_MS - started);
        try {
          const outcome =
            options.waitForNew && mayBeConnecting > 0
              ? await this.postWhenConnected(connectionId, message, mayBeConnecting)
              : await this.post(connectionId, message);
          if (outcome === 'sent') broadcast.sent.push(connectionId);
          else if (Date.now() - boundAt >= CONNECT_DELIVERY_WAIT_MS) broadcast.gone.push(connectionId);
          else broadcast.connecting.push(connectionId);
        } catch (error) {
          broadcast.failed.push({ connectionId, error: error as Error });
        }
      }),
    );
    return broadcast;
  }

  /**
   * Closes a connection (`DELETE @connections/{id}`); a 410 is `'gone'`. API Gateway closes it with
   * code 1000 and cannot send another code or a reason, so send a message saying why first.
   */
  async close(connectionId: string): Promise<'closed' | 'gone'> {
    try {
      await this.client.send(new DeleteConnectionCommand({ ConnectionId: connectionId }));
      return 'closed';
    } catch (error) {
      if (isGone(error)) return 'gone';
      throw error;
    }
  }
}

function isGone(error: unknown): boolean {
  return (error as Error | null)?.name === 'GoneException';
}
