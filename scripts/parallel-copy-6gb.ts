/**
 * `npm run check:large-copy`: a 6 GB file through the local stack's parallel ranged copy, with
 * upstream throttled to 25 MB/s per connection and each worker handing its range back after
 * `PARALLEL_COPY_WORKER_SECONDS` (10 s here, for 14 minutes deployed). One connection would need
 * 240 s, 24 worker budgets; the copy succeeds only if the workflow keeps invoking each range's
 * worker until the range is done. Checks the bytes at the presigned URL by sha256.
 *
 * Too long for `npm test` on a 2-core machine (README, Tests, has the times it takes); run it
 * after changing the parallel copy. Sizes and times can be changed with `LARGE_COPY_SIZE`,
 * `LARGE_COPY_RATE` and `LARGE_COPY_WORKER_SECONDS`.
 */
import { sampleSha256 } from '../local/sample-upstream.ts';
import { download, startAsyncDownload } from '../test/helpers/http.ts';
import { startStack } from '../test/helpers/local-stack.ts';
import { openSocket } from '../test/helpers/ws.ts';

const size = process.env.LARGE_COPY_SIZE ?? '6GB';
const rate = process.env.LARGE_COPY_RATE ?? '25000000';
const workerSeconds = process.env.LARGE_COPY_WORKER_SECONDS ?? '10';
const concurrency = '8';

function fail(message: string): never {
  console.error(`large copy: FAILED: ${message}`);
  process.exit(1);
}

const started = performance.now();
const stack = await startStack({
  PARALLEL_COPY_WORKER_SECONDS: workerSeconds,
  PARALLEL_COPY_CONCURRENCY: concurrency,
});
const elapsed = (from: number) => `${((performance.now() - from) / 1000).toFixed(1)} s`;
try {
  const path = `/sample/${size}?rate=${rate}`;
  console.log(
    `large copy: ${size} at ${rate} B/s per connection, ${concurrency} ranges, workers hand back after ${workerSeconds} s`,
  );
  const requested = performance.now();
  const accepted = await startAsyncDownload(`${stack.endpoints.restApi}/download${path}`);
  const client = await openSocket(accepted.webSocketUrl);
  const outcome = await Promise.race([client.next('ready', 30 * 60_000), client.next('failed', 30 * 60_000)]);
  await client.close();
  if (outcome.type !== 'ready') fail(JSON.stringify(outcome));
  console.log(
    `large copy: ready after ${elapsed(requested)} (${client.messages.length - 1} progress messages)`,
  );
  const ranged = stack
    .logs()
    .split('\n')
    .filter((line) => line.includes(`GET ${path} → 206`)).length;
  console.log(`large copy: ${ranged} ranged GETs for ${concurrency} ranges`);
  if (ranged <= Number(concurrency)) fail('no range was handed back and invoked again');
  const verifying = performance.now();
  const fetched = await download(outcome.url as string);
  const expected = sampleSha256(outcome.size as number);
  if (fetched.sha256 !== expected) fail(`sha256 ${fetched.sha256}, expected ${expected}`);
  console.log(`large copy: the presigned URL serves the right sha256 (checked in ${elapsed(verifying)})`);
  console.log(`large copy: ok in ${elapsed(started)}, stack start included`);
} finally {
  await stack.stop();
}
