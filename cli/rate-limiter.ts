import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Caps the bytes per second shared by every connection of a download (`--limit-rate`): each reader
 * waits after a chunk until the total is back under the rate. Reading slower lets TCP push back on
 * the server, so memory stays bounded.
 */
export class RateLimiter {
  readonly #bytesPerSecond: number;
  // From the first byte: time spent before (waiting for the copy) is no credit.
  #started: number | undefined;
  #bytes = 0;

  constructor(bytesPerSecond: number) {
    this.#bytesPerSecond = bytesPerSecond;
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    this.#started ??= performance.now();
    this.#bytes += bytes;
    const due = (this.#bytes / this.#bytesPerSecond) * 1000;
    const wait = due - (performance.now() - this.#started);
    if (wait > 1) await sleep(wait, undefined, { signal });
  }
}
