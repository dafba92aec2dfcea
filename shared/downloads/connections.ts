import {
  type ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { DownloadMessage } from './messages.ts';

/** Outcome of one post: delivered, or the connection is gone (not an error). */
export type PostOutcome = 'sent' | 'gone';

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
      if ((error as Error).name === 'GoneException') return 'gone';
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
}
