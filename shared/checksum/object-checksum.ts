import { crc64NvmeToBase64 } from './crc64nvme.ts';

/**
 * The checksum a copied object carries: S3's full-object CRC64NVME, base64 as in
 * `ChecksumCRC64NVME`. It is what `FetchToS3` returns in `$.object.checksum`, what the record,
 * the `ready` message and the status endpoint show, and what S3 returns for `ChecksumMode: ENABLED`.
 */
export interface ObjectChecksum {
  algorithm: 'CRC64NVME';
  value: string;
}

/** The object checksum of a CRC-64/NVME value. */
export function toObjectChecksum(crc: bigint): ObjectChecksum {
  return { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(crc) };
}
