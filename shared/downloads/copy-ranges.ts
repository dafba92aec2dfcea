import { FileTooLargeError } from '../errors.ts';

/**
 * The arithmetic of a parallel copy: how a file of known size is cut into S3 parts and the parts
 * into ranges, one per worker. Pure functions, no I/O.
 */

const MIB = 1024 * 1024;

/** S3 multipart limits (Amazon S3 User Guide, "Amazon S3 multipart upload limits"). */
export const S3_LIMITS = {
  /** Parts per upload, numbered 1 to 10,000. */
  maxParts: 10_000,
  /** Every part but the last is at least 5 MiB. */
  minPartBytes: 5 * MIB,
  maxPartBytes: 5 * 1024 * MIB,
  /** Largest object: 5 TiB. */
  maxObjectBytes: 5 * 1024 * 1024 * MIB,
} as const;

/** One worker's share of the file: bytes `[offset, end)`; `offset` is always a part boundary. */
export interface CopyRange {
  /** Position of the range in the file (0 first); the completing step combines in this order. */
  index: number;
  offset: number;
  /** Exclusive; a part boundary, or the file's size for the last range. */
  end: number;
}

/**
 * The largest part a parallel copy uses: the smallest whole number of MiB of which 10,000 hold
 * S3's largest object (5 TiB / 10,000 rounds up to 525 MiB). A worker holds two parts in memory
 * (one uploading, the next one reading), so this bounds its memory (`infra/async-path.ts`) whatever
 * `uploadPartSizeBytes` says (up to 5 GiB, which two parts of would not fit in a function).
 */
export const MAX_PARALLEL_PART_BYTES = Math.ceil(S3_LIMITS.maxObjectBytes / S3_LIMITS.maxParts / MIB) * MIB;

/**
 * The part size for a file of `size` bytes: the configured one, or, when 10,000 of those would
 * not hold the file, the smallest whole number of MiB that does; never above
 * {@link MAX_PARALLEL_PART_BYTES}, which still holds every file S3 can store. Throws
 * `FileTooLargeError` for a file above S3's 5 TiB.
 */
export function choosePartSize(size: number, configuredPartBytes: number): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid size ${size}`);
  if (size > S3_LIMITS.maxObjectBytes) {
    throw new FileTooLargeError(`The file has ${size} bytes; an S3 object holds at most 5 TiB`);
  }
  const fitting = Math.ceil(Math.ceil(size / S3_LIMITS.maxParts) / MIB) * MIB;
  const partSize = Math.max(Math.min(configuredPartBytes, MAX_PARALLEL_PART_BYTES), fitting);
  return Math.max(partSize, S3_LIMITS.minPartBytes);
}

/** Number of parts of `partSize` bytes that hold `size` bytes (at least one). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** The S3 part number (1-based) of the part that starts at `offset`, a part boundary. */
export function partNumberAt(offset: number, partSize: number): number {
  if (offset % partSize !== 0) throw new RangeError(`offset ${offset} is not a part boundary`);
  return offset / partSize + 1;
}

/** Where the part that starts at `offset` ends (exclusive): the next boundary, or the file's end. */
export function partEnd(offset: number, partSize: number, size: number): number {
  return Math.min(offset + partSize, size);
}

/**
 * Cuts the file's parts into at most `concurrency` ranges of whole parts, as even as whole parts
 * allow (their part counts differ by at most one).
 */
export function planRanges(size: number, partSize: number, concurrency: number): CopyRange[] {
  const parts = partCount(size, partSize);
  const count = Math.max(1, Math.min(concurrency, parts));
  const ranges: CopyRange[] = [];
  for (let index = 0; index < count; index++) {
    const firstPart = Math.floor((index * parts) / count);
    const endPart = Math.floor(((index + 1) * parts) / count);
    ranges.push({
      index,
      offset: firstPart * partSize,
      end: Math.min(endPart * partSize, size),
    });
  }
  return ranges;
}
