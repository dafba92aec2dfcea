import { createHash, getHashes } from 'node:crypto';
import { CliError } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import type { Checksum, PartialFile } from './partial-file.ts';

/** `SHA-256`, `sha256`, `SHA256` → `sha256` (Node's name), if Node knows the algorithm. */
function toNodeAlgorithm(algorithm: string): string | undefined {
  const name = algorithm.toLowerCase().replace(/[-_]/g, '');
  return getHashes().includes(name) ? name : undefined;
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
 * API announced, and the checksum when the API gave one (sha256, hex or base64; any algorithm
 * Node knows). A mismatch is a CliError with the verification exit code.
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
  const algorithm = toNodeAlgorithm(checksum.algorithm);
  if (!algorithm) return { ...result, skipped: `unknown checksum algorithm "${checksum.algorithm}"` };
  const hash = createHash(algorithm);
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
