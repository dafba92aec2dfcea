import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  ListPartsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { fullObjectChecksumCompletion, toObjectChecksum } from '../checksum/copy-checksums.ts';
import { combineCrc64Nvme, crc64NvmeFromBase64, crc64NvmeToBase64 } from '../checksum/crc64nvme.ts';
import { verifyAdvertisedDigest } from '../checksum/running-digest.ts';
import type { Logger } from '../logger.ts';
import { CopyCancelledError, S3UploadError } from './copy-errors.ts';
import type { RangeTaskResult } from './copy-range.ts';
import { partCount } from './copy-ranges.ts';
import type { CopiedObject } from './object-key.ts';
import type { CopySource } from './plan-copy.ts';
import type { DownloadStore } from './store.ts';

/** The completing step's input: the plan's shared part and every range's last worker answer. */
export interface CompleteCopyInput {
  downloadId: string;
  copy: CopySource;
  ranges: RangeTaskResult[];
}

/** What the completing step returns into `$.object`: the same shape as `FetchToS3`'s answer. */
export type CompletedCopy = CopiedObject;

/** The whole file's CRC64NVME from the ranges' CRCs, in file order; throws if they do not tile the file. */
export function combineRangeCrcs(ranges: readonly RangeTaskResult[], size: number): bigint {
  const ordered = [...ranges].sort((a, b) => a.range.index - b.range.index);
  let crc = 0n;
  let at = 0;
  for (const { range, next, crc: value, done } of ordered) {
    if (range.offset !== at || !done || next !== range.end) {
      throw new Error(`range ${range.index} (${range.offset}–${range.end}) is not complete at ${at}`);
    }
    const length = range.end - range.offset;
    const rangeCrc = value === null ? (length === 0 ? 0n : undefined) : crc64NvmeFromBase64(value);
    if (rangeCrc === undefined) throw new Error(`range ${range.index} has no checksum`);
    crc = at === 0 ? rangeCrc : combineCrc64Nvme(crc, rangeCrc, length);
    at = range.end;
  }
  if (at !== size) throw new Error(`the ranges cover ${at} of ${size} bytes`);
  return crc;
}

/** Every uploaded part, with its CRC64NVME as S3 received it, from `ListParts` (1,000 a page). */
async function listParts(s3: S3Client, copy: CopySource): Promise<CompletedPart[]> {
  const parts: CompletedPart[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListPartsCommand({
        Bucket: copy.bucket,
        Key: copy.objectKey,
        UploadId: copy.uploadId,
        ...(marker ? { PartNumberMarker: marker } : {}),
      }),
    );
    for (const part of page.Parts ?? []) {
      if (part.Size !== undefined && part.PartNumber !== undefined) {
        parts.push({
          PartNumber: part.PartNumber,
          ETag: part.ETag,
          ChecksumCRC64NVME: part.ChecksumCRC64NVME,
          Size: part.Size,
        } as CompletedPart);
      }
    }
    if (!page.IsTruncated || !page.NextPartNumberMarker) break;
    marker = page.NextPartNumberMarker;
  }
  return parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
}

/** A part as `CompleteMultipartUpload` takes it, with the CRC64NVME S3 holds for it. */
export interface ListedPart {
  PartNumber: number;
  ETag: string | undefined;
  ChecksumCRC64NVME: string;
}

/**
 * Checks that parts 1…N are all there with their planned sizes and each with its CRC64NVME;
 * returns them in order.
 */
export function toCompletedParts(
  listed: readonly (CompletedPart & { Size?: number })[],
  copy: CopySource,
): ListedPart[] {
  const expected = partCount(copy.size, copy.partSize);
  if (listed.length !== expected) throw new Error(`the upload holds ${listed.length} of ${expected} parts`);
  return listed.map((part, index) => {
    const number = index + 1;
    const size = number < expected ? copy.partSize : copy.size - copy.partSize * (expected - 1);
    if (part.PartNumber !== number || part.Size !== size) {
      throw new Error(`part ${number} is missing or has ${part.Size} bytes, not ${size}`);
    }
    if (!part.ChecksumCRC64NVME) throw new Error(`part ${number} has no CRC64NVME`);
    return { PartNumber: number, ETag: part.ETag, ChecksumCRC64NVME: part.ChecksumCRC64NVME };
  });
}

/** The whole file's CRC64NVME from its parts' (as S3 holds them), in order. */
export function combinePartCrcs(parts: readonly ListedPart[], copy: CopySource): bigint {
  let crc = 0n;
  for (const part of parts) {
    const partCrc = crc64NvmeFromBase64(part.ChecksumCRC64NVME);
    if (partCrc === undefined) throw new Error(`part ${part.PartNumber} has a malformed CRC64NVME`);
    const length = Math.min(copy.partSize, copy.size - (part.PartNumber - 1) * copy.partSize);
    crc = part.PartNumber === 1 ? partCrc : combineCrc64Nvme(crc, partCrc, length);
  }
  return crc;
}

/**
 * The completing step of a parallel copy: combines the ranges' CRC64NVME into the file's, checks
 * it against the digest upstream announced (if any), lists the uploaded parts (with the CRC64NVME
 * each one's `UploadPart` carried, which must combine into the same value) and completes the
 * multipart upload with S3's full-object checksum: every part's ETag and `ChecksumCRC64NVME` in
 * order, the file's `ChecksumCRC64NVME`, `ChecksumType: FULL_OBJECT` and `MpuObjectSize` (the
 * fields `withObjectChecksums` gives the single-stream copy). A download settled elsewhere, a
 * checksum mismatch or parts that do not add up abort the upload (nothing is stored); a failure of
 * S3 itself is `S3UploadError`, which the workflow retries.
 */
export async function completeCopy(
  input: CompleteCopyInput,
  deps: { s3: S3Client; store: DownloadStore; logger: Logger },
): Promise<CompletedCopy> {
  const { copy } = input;
  const { s3, logger } = deps;
  const abort = async () => {
    await s3
      .send(
        new AbortMultipartUploadCommand({
          Bucket: copy.bucket,
          Key: copy.objectKey,
          UploadId: copy.uploadId,
        }),
      )
      .catch((error: unknown) => logger.warn('could not abort the upload', { error: error as Error }));
  };

  let crc: bigint;
  let parts: ListedPart[];
  try {
    const record = await deps.store.get(input.downloadId);
    if (!record || record.status === 'READY' || record.status === 'FAILED') {
      throw new CopyCancelledError('The download ended while its file was being copied');
    }
    crc = combineRangeCrcs(input.ranges, copy.size);
    if (copy.advertisedCrc64Nvme) {
      verifyAdvertisedDigest(
        {
          algorithm: 'CRC64NVME',
          value: copy.advertisedCrc64Nvme,
          header: copy.advertisedHeader ?? 'digest',
        },
        crc64NvmeToBase64(crc),
      );
    }
    let listed: CompletedPart[];
    try {
      listed = await listParts(s3, copy);
    } catch (error) {
      throw new S3UploadError(`Listing the parts failed: ${(error as Error).message}`, { cause: error });
    }
    parts = toCompletedParts(listed, copy);
    if (combinePartCrcs(parts, copy) !== crc) {
      throw new Error("the parts' CRC64NVME do not combine into the ranges' CRC64NVME");
    }
  } catch (error) {
    if (!(error instanceof S3UploadError)) await abort();
    throw error;
  }

  try {
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: copy.bucket,
        Key: copy.objectKey,
        UploadId: copy.uploadId,
        ...fullObjectChecksumCompletion(
          parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })),
          (partNumber) => parts[partNumber - 1]?.ChecksumCRC64NVME ?? '',
          { checksum: crc64NvmeToBase64(crc), size: copy.size },
        ),
      }),
    );
  } catch (error) {
    throw new S3UploadError(`Completing the upload failed: ${(error as Error).message}`, { cause: error });
  }
  const checksum = toObjectChecksum(crc);
  logger.info('parallel copy completed', {
    downloadId: input.downloadId,
    objectKey: copy.objectKey,
    size: copy.size,
    parts: parts.length,
    ranges: input.ranges.length,
    checksum,
    verified: copy.advertisedCrc64Nvme ? `CRC64NVME from ${copy.advertisedHeader}` : 'nothing announced',
  });
  return {
    bucket: copy.bucket,
    objectKey: copy.objectKey,
    size: copy.size,
    contentType: copy.contentType,
    fileName: copy.fileName,
    checksum,
  };
}
