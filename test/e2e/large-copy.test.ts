/**
 * A file whose single-stream copy would outlast a copy worker many times over: 6 GB at 25 MB/s per
 * connection takes 240 s over one connection, while each worker hands its range back after 10 s
 * (the deployed 14 minutes scaled down with `PARALLEL_COPY_WORKER_SECONDS`, as 25 MB/s × 15 min is
 * 22.5 GB). It completes only if the workflow keeps invoking each range's worker until the range is
 * done, and the bytes at the URL must be the file's. The copy writes 12 GB to the stack's data
 * directory (the parts, then the object), which the stack removes when it stops.
 */
import { describe, expect, it } from 'vitest';
import { copyLargeFile } from '../helpers/large-copy.ts';

const CONCURRENCY = 8;
const WORKER_SECONDS = 10;
const RATE = 25_000_000;

describe('a copy larger than one worker can carry', () => {
  it(
    'copies 6 GB at 25 MB/s per connection in 8 ranges whose workers hand back after 10 s, with the right sha256',
    async () => {
      const result = await copyLargeFile({
        size: '6GB',
        rate: RATE,
        workerSeconds: WORKER_SECONDS,
        concurrency: CONCURRENCY,
      });

      expect(result.outcome).toMatchObject({ type: 'ready', size: 6_000_000_000 });
      // Every range was handed back and invoked again, at least once.
      expect(result.rangedGets).toBeGreaterThan(CONCURRENCY);
      expect(result.sha256?.served).toBe(result.sha256?.expected);
    },
    15 * 60_000,
  );
});
