import { createHash, getHashes } from 'node:crypto';
import type { DigestAlgorithm } from '../shared/checksum/advertised-digest.ts';
import { createRunningDigest } from '../shared/checksum/running-digest.ts';
import { CliError } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import type { Checksum, PartialFile } from './partial-file.ts';

/** The CRCs S3 computes that Node's `crypto` does not: `CRC64NVME` (what the API announces), `CRC32`, `CRC32C`. */
const S3_CRCS: readonly DigestAlgorithm[] = ['CRC64NVME', 'CRC32', 'CRC32C'];

/** A running digest of the algorithm the API named (`CRC64NVME`, `SHA-256`, `sha256`, …), if it is one we know. */
function digestFor(algorithm: string): { update(chunk: Uint8Array): void; digest(): Buffer } | undefined {
  const name = algorithm.toLowerCase().replace(/[-_]/g, '');
  const crc = S3_CRCS.find((candidate) => candidate.toLowerCase() === name);
  if (crc) {
    const running = createRunningDigest(crc);
    return {
      update: (chunk) => running.update(chunk),
      digest: () => Buffer.from(running.digestBase64(), 'base64'),
    };
  }
  if (!getHashes().includes(name)) return undefined;
  const hash = createHash(name);
  return { update: (chunk) => hash.update(chunk), digest: () => hash.digest() };
}

/** The expected digest, whether the API gave it in hex or base64; undefined if it is neither. */
export function decodeDigest(value: string, digestBytes: number): Buffer | undefined {
  const trimmed = value.trim();
  if (/^[0-9a-f]+$/i.test(trimmed) && trimmed.length === digestBytes * 2) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    const decoded = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (decoded.length === digestBytes) return decoded;
  }
  return undefined;
}

export interface Verification {
  size: number;
  /** What was checked, for the summary: `size`, `sha256`. */
  checked: string[];
  /** Why a checksum that was given could not be checked. */
  skipped?: string;
}

/**
 * Checks a finished download before it gets its final name: every byte present, the size the
 * API announced, and the checksum when the API gave one (the service's CRC64NVME, or sha256, CRC32,
 * CRC32C and any hash Node knows; hex or base64). A mismatch is a CliError with the verification
 * exit code.
 */
export async function verifyDownload(
  file: PartialFile,
  expected: { size: number | undefined; checksum: Checksum | undefined },
): Promise<Verification> {
  const size = file.facts.size ?? file.done.contiguousEnd;
  if (!file.done.covers(size)) {
    throw new CliError(
      EXIT.verificationFailed,
      'the download is incomplete',
      `${file.done.bytes} of ${size} bytes present`,
    );
  }
  const onDisk = await file.diskSize();
  if (onDisk !== size) {
    throw new CliError(
      EXIT.verificationFailed,
      'size mismatch',
      `${file.partPath} has ${onDisk} bytes, expected ${size}`,
    );
  }
  if (expected.size !== undefined && expected.size !== size) {
    throw new CliError(
      EXIT.verificationFailed,
      'size mismatch',
      `the API announced ${expected.size} bytes, the download has ${size}`,
    );
  }
  const result: Verification = { size, checked: ['size'] };
  const { checksum } = expected;
  if (!checksum) return result;
  const hash = digestFor(checksum.algorithm);
  if (!hash) return { ...result, skipped: `unknown checksum algorithm "${checksum.algorithm}"` };
  // One pass over the finished file: ranges arrive out of order over several connections and runs.
  for await (const chunk of file.read()) hash.update(chunk);
  const actual = hash.digest();
  const wanted = decodeDigest(checksum.value, actual.length);
  if (!wanted)
    return {
      ...result,
      skipped: `a ${checksum.algorithm} checksum in an unknown form ("${checksum.value}")`,
    };
  if (!wanted.equals(actual)) {
    throw new CliError(
      EXIT.verificationFailed,
      `${checksum.algorithm} checksum mismatch`,
      `expected ${wanted.toString('hex')}, got ${actual.toString('hex')}`,
    );
  }
  return { ...result, checked: ['size', checksum.algorithm.toLowerCase()] };
}
