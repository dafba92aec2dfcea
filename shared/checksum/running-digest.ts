import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ChecksumMismatchError } from '../errors.ts';
import type { AdvertisedDigest, DigestAlgorithm } from './advertised-digest.ts';
import { Crc64Nvme, crc64NvmeToBase64 } from './crc64nvme.ts';

/** A checksum computed chunk by chunk as bytes stream past. */
export interface RunningDigest {
  update(chunk: Uint8Array): void;
  /** The digest of everything so far, in base64 (the form of `x-amz-checksum-*`). */
  digestBase64(): string;
}

/** CRC-32C (Castagnoli, reflected 0x82f63b78), table-driven; Node has no built-in one. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    table[i] = crc >>> 0;
  }
  return table;
})();

function uint32ToBase64(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('base64');
}

const HASH_NAMES: Partial<Record<DigestAlgorithm, string>> = {
  SHA1: 'sha1',
  SHA256: 'sha256',
  SHA512: 'sha512',
  MD5: 'md5',
};

/**
 * A running digest of `algorithm`: Node's `crypto` for SHA-* and MD5 (native, faster than the
 * copy), `zlib.crc32` for CRC32, a table for CRC32C, `Crc64Nvme` for CRC64NVME.
 */
export function createRunningDigest(algorithm: DigestAlgorithm): RunningDigest {
  switch (algorithm) {
    case 'CRC64NVME': {
      const crc = new Crc64Nvme();
      return { update: (chunk) => crc.update(chunk), digestBase64: () => crc64NvmeToBase64(crc.digest()) };
    }
    case 'CRC32': {
      let value = 0;
      return {
        update: (chunk) => {
          value = crc32(chunk, value);
        },
        digestBase64: () => uint32ToBase64(value),
      };
    }
    case 'CRC32C': {
      let value = 0xffffffff;
      return {
        update: (chunk) => {
          let crc = value;
          for (let i = 0; i < chunk.length; i++) crc = (crc >>> 8) ^ CRC32C_TABLE[(crc ^ chunk[i]!) & 0xff]!;
          value = crc;
        },
        digestBase64: () => uint32ToBase64(value ^ 0xffffffff),
      };
    }
    default: {
      const hash = createHash(HASH_NAMES[algorithm]!);
      return { update: (chunk) => hash.update(chunk), digestBase64: () => hash.copy().digest('base64') };
    }
  }
}

/**
 * Compares the digest computed over the copied bytes with the one upstream announced.
 *
 * @throws ChecksumMismatchError when they differ.
 */
export function verifyAdvertisedDigest(advertised: AdvertisedDigest, computedBase64: string): void {
  if (computedBase64 === advertised.value) return;
  throw new ChecksumMismatchError(
    `The file's ${advertised.algorithm} is ${computedBase64}, but upstream's ${advertised.header} header announced ${advertised.value}`,
  );
}
