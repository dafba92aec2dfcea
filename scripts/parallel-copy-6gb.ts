/**
 * `npm run check:large-copy`: `test/e2e/large-copy.test.ts` on its own, printing as it goes: a
 * 6 GB file through the local stack's parallel ranged copy at 25 MB/s per connection in 8 ranges,
 * each worker handing its range back after 10 s (14 minutes deployed). Sizes and times can be
 * changed with `LARGE_COPY_SIZE`, `LARGE_COPY_RATE` and `LARGE_COPY_WORKER_SECONDS`.
 */
import { copyLargeFile } from '../test/helpers/large-copy.ts';

const started = performance.now();
const concurrency = 8;
const result = await copyLargeFile({
  size: process.env.LARGE_COPY_SIZE ?? '6GB',
  rate: Number(process.env.LARGE_COPY_RATE ?? 25_000_000),
  workerSeconds: Number(process.env.LARGE_COPY_WORKER_SECONDS ?? 10),
  concurrency,
  log: (line) => console.log(`large copy: ${line}`),
});
const problems = [
  result.outcome.type !== 'ready' ? `the download failed: ${JSON.stringify(result.outcome)}` : undefined,
  result.rangedGets <= concurrency ? 'no range was handed back and invoked again' : undefined,
  result.sha256 && result.sha256.served !== result.sha256.expected
    ? `sha256 ${result.sha256.served}, expected ${result.sha256.expected}`
    : undefined,
].filter((problem) => problem !== undefined);
if (problems.length > 0) {
  console.error(`large copy: FAILED: ${problems.join('; ')}`);
  process.exit(1);
}
console.log(`large copy: ok in ${((performance.now() - started) / 1000).toFixed(1)} s, stack start included`);
