/**
 * Throughput of the checksums the async copy computes as bytes stream past, on one core:
 * CRC64NVME (`shared/checksum/crc64nvme.ts`, always), and the digests upstream may announce
 * (Node's crypto for SHA-256 and MD5). 256 MiB in 64 KiB chunks (about what undici hands over);
 * the best of five runs, so a busy machine shows its least disturbed figure.
 *
 *   npx tsx bench/checksum-throughput.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { Crc64Nvme } from '../shared/checksum/crc64nvme.ts';

const TOTAL = 256 * 1024 * 1024;
const CHUNK = 64 * 1024;
const RUNS = 5;
const source = randomBytes(4 * 1024 * 1024);

function measure(name: string, update: () => (chunk: Buffer) => void): void {
  let best = 0;
  for (let run = 0; run < RUNS; run++) {
    const feed = update();
    const started = performance.now();
    for (let offset = 0; offset < TOTAL; offset += CHUNK) {
      const at = offset % source.length;
      feed(source.subarray(at, at + CHUNK));
    }
    const seconds = (performance.now() - started) / 1000;
    best = Math.max(best, TOTAL / seconds);
  }
  console.log(`| ${name} | ${(best / 1e6).toFixed(0)} MB/s |`);
}

console.log('| checksum (256 MiB, 64 KiB chunks, best of 5) | throughput |');
console.log('|---|---|');
measure('CRC64NVME (slicing-by-16, WebAssembly)', () => {
  const crc = new Crc64Nvme();
  return (chunk) => crc.update(chunk);
});
measure('SHA-256 (node:crypto)', () => {
  const hash = createHash('sha256');
  return (chunk) => hash.update(chunk);
});
measure('MD5 (node:crypto)', () => {
  const hash = createHash('md5');
  return (chunk) => hash.update(chunk);
});
