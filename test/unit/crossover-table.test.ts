import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AWS_STREAM_CAPS } from '../../local/stream-caps.ts';
import {
  ASYNC_PATH_ASSUMPTIONS,
  asyncSeconds,
  CLIENT_SPEEDS,
  crossoverBytes,
  README_PATH,
  renderCrossoverTable,
  streamSeconds,
  withCrossoverTable,
} from '../../scripts/crossover-table.ts';

const MB = 1_000_000;

describe('the crossover table', () => {
  it('is what README.md shows (run `npm run docs:crossover` after changing its inputs)', () => {
    const readme = readFileSync(README_PATH, 'utf8');

    expect(withCrossoverTable(readme)).toBe(readme);
  });

  it('refuses a README without its markers', () => {
    expect(() => withCrossoverTable('# no table here')).toThrow(/lacks the markers/);
  });

  it('streams the uncapped prefix at the client’s speed and the rest at the cap', () => {
    // REST: 10 MB at 200 MB/s, then 190 MB at 2 MB/s.
    expect(streamSeconds(200 * MB, 200 * MB, AWS_STREAM_CAPS.restApi)).toBeCloseTo(0.05 + 95, 9);
    // A client slower than the cap is its own limit.
    expect(streamSeconds(20 * MB, 1 * MB, AWS_STREAM_CAPS.functionUrl)).toBeCloseTo(20, 9);
    expect(streamSeconds(5 * MB, 10 * MB, AWS_STREAM_CAPS.functionUrl)).toBeCloseTo(0.5, 9);
  });

  it('charges the async path its fixed cost, the copy and the download', () => {
    const { fixedSeconds, copyBytesPerSecond } = ASYNC_PATH_ASSUMPTIONS;

    expect(asyncSeconds(200 * MB, 50 * MB)).toBeCloseTo(
      fixedSeconds + (200 * MB) / copyBytesPerSecond + 4,
      9,
    );
  });

  it.each(CLIENT_SPEEDS)(
    'puts the crossover where both paths take equally long (client %d B/s)',
    (client) => {
      for (const cap of Object.values(AWS_STREAM_CAPS)) {
        const bytes = crossoverBytes(client, cap) as number;

        expect(bytes).toBeGreaterThan(cap.uncappedBytes);
        expect(streamSeconds(bytes, client, cap)).toBeCloseTo(asyncSeconds(bytes, client), 6);
        expect(streamSeconds(bytes * 1.1, client, cap)).toBeGreaterThan(asyncSeconds(bytes * 1.1, client));
        expect(streamSeconds(bytes * 0.9, client, cap)).toBeLessThan(asyncSeconds(bytes * 0.9, client));
      }
    },
  );

  it('has no crossover for a client no faster than the cap', () => {
    expect(crossoverBytes(2 * MB, AWS_STREAM_CAPS.restApi)).toBeUndefined();
    expect(renderCrossoverTable()).toContain('| 2 MB/s | never');
  });

  it('shows no stream for a file above the 200 MB a response can carry', () => {
    expect(renderCrossoverTable()).toContain('| 1 GB | 10 MB/s | — | — |');
  });
});
