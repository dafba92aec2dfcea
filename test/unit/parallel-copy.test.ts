import { Readable } from 'node:stream';
import { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SampleUpstream, sampleBytes, startSampleUpstream } from '../../local/sample-upstream.ts';
import { Crc64Nvme, crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';
import type { CopyRangeConfig } from '../../shared/config.ts';
import { DeadlineExceededError } from '../../shared/deadline.ts';
import { combineRangeCrcs, completeCopy, toCompletedParts } from '../../shared/downloads/complete-copy.ts';
import { checkRangeAnswer, copyRange, type RangeTaskResult } from '../../shared/downloads/copy-range.ts';
import {
  choosePartSize,
  MAX_PARALLEL_PART_BYTES,
  partCount,
  partNumberAt,
  planRanges,
  S3_LIMITS,
} from '../../shared/downloads/copy-ranges.ts';
import { type CopySource, chooseCopyMode, planCopy, strongEtag } from '../../shared/downloads/plan-copy.ts';
import type { RangeProgress, RangeState } from '../../shared/downloads/range-progress.ts';
import type { DownloadStore } from '../../shared/downloads/store.ts';
import { FileTooLargeError } from '../../shared/errors.ts';
import type { UpstreamResponse } from '../../shared/upstream.ts';
import { testCopyBase, testUpstreamConfig } from '../helpers/copy-config.ts';
import { recordingS3 } from '../helpers/recording-s3.ts';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;
const DOWNLOAD_ID = '6f1d2c3b-4a59-4e87-9d6c-5b4a39281706';

describe('part size and ranges', () => {
  it('keeps the configured part size while 10,000 parts hold the file', () => {
    expect(choosePartSize(1 * GIB, 8 * MIB)).toBe(8 * MIB);
    expect(choosePartSize(10_000 * 8 * MIB, 8 * MIB)).toBe(8 * MIB);
  });

  it('grows the part to whole MiB when 10,000 parts of the configured size would not hold the file', () => {
    const size = 10_000 * 8 * MIB + 1;
    const partSize = choosePartSize(size, 8 * MIB);

    expect(partSize).toBe(9 * MIB);
    expect(partCount(size, partSize)).toBeLessThanOrEqual(S3_LIMITS.maxParts);
  });

  it('fits the largest S3 object, 5 TiB, in at most 10,000 parts of at most 5 GiB', () => {
    const partSize = choosePartSize(5 * TIB, 8 * MIB);

    expect(partSize).toBe(525 * MIB);
    expect(partSize).toBeLessThanOrEqual(S3_LIMITS.maxPartBytes);
    expect(partCount(5 * TIB, partSize)).toBe(9_987);
    expect(partNumberAt((partCount(5 * TIB, partSize) - 1) * partSize, partSize)).toBeLessThanOrEqual(10_000);
  });

  it('uses parts of at most 525 MiB whatever the configured size, so that a worker can hold two', () => {
    expect(MAX_PARALLEL_PART_BYTES).toBe(525 * MIB);
    expect(choosePartSize(1 * TIB, 5 * GIB)).toBe(525 * MIB);
    expect(choosePartSize(100 * MIB, 1 * GIB)).toBe(525 * MIB);
  });

  it('refuses a file above 5 TiB as too large', () => {
    expect(() => choosePartSize(5 * TIB + 1, 8 * MIB)).toThrow(FileTooLargeError);
  });

  it('never goes below S3’s 5 MiB part minimum', () => {
    expect(choosePartSize(100 * MIB, 1 * MIB)).toBe(5 * MIB);
  });

  it.each([
    [1 * GIB, 8 * MIB, 8],
    [5 * TIB, 525 * MIB, 40],
    [20 * MIB + 3, 5 * MIB, 8],
    [7 * MIB, 5 * MIB, 1],
  ])(
    'tiles %d bytes in parts of %d with at most %d ranges of whole parts, as even as parts allow',
    (size, partSize, concurrency) => {
      const ranges = planRanges(size, partSize, concurrency);
      const parts = partCount(size, partSize);

      expect(ranges).toHaveLength(Math.min(concurrency, parts));
      expect(ranges[0]?.offset).toBe(0);
      expect(ranges.at(-1)?.end).toBe(size);
      ranges.forEach((range, index) => {
        expect(range.index).toBe(index);
        expect(range.offset % partSize).toBe(0);
        if (index > 0) expect(range.offset).toBe(ranges[index - 1]?.end);
      });
      const partsPerRange = ranges.map((range) => partCount(range.end - range.offset, partSize));
      expect(Math.max(...partsPerRange) - Math.min(...partsPerRange)).toBeLessThanOrEqual(1);
      expect(partsPerRange.reduce((a, b) => a + b, 0)).toBe(parts);
    },
  );

  it('refuses a part number for an offset that is not a part boundary', () => {
    expect(partNumberAt(16 * MIB, 8 * MIB)).toBe(3);
    expect(() => partNumberAt(16 * MIB + 1, 8 * MIB)).toThrow(RangeError);
  });
});

describe('chooseCopyMode', () => {
  const headers = { 'accept-ranges': 'bytes', etag: '"v1"' };
  const facts = (overrides: Partial<Parameters<typeof chooseCopyMode>[0]> = {}) => ({
    contentLength: 1 * GIB,
    headers,
    rangeRequested: false,
    ...overrides,
  });

  it('copies a large file with a length, byte ranges and a validator in parallel', () => {
    expect(chooseCopyMode(facts(), 256 * MIB, undefined)).toBe('parallel');
    expect(
      chooseCopyMode(
        facts({ headers: { 'accept-ranges': 'bytes', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' } }),
        256 * MIB,
        undefined,
      ),
    ).toBe('parallel');
    expect(
      chooseCopyMode(facts(), 256 * MIB, { algorithm: 'CRC64NVME', value: 'AAAAAAAAAAA=', header: 'x' }),
    ).toBe('parallel');
  });

  it.each([
    ['range-requested', facts({ rangeRequested: true })],
    ['unknown-length', facts({ contentLength: undefined })],
    ['below-threshold', facts({ contentLength: 256 * MIB - 1 })],
    ['no-range-support', facts({ headers: { etag: '"v1"' } })],
    ['no-range-support', facts({ headers: { 'accept-ranges': 'none', etag: '"v1"' } })],
    ['encoded', facts({ headers: { ...headers, 'content-encoding': 'gzip' } })],
    ['no-validator', facts({ headers: { 'accept-ranges': 'bytes', etag: 'W/"weak"' } })],
  ])('keeps the single-stream copy: %s', (reason, given) => {
    expect(chooseCopyMode(given, 256 * MIB, undefined)).toBe(reason);
  });

  it('keeps the single-stream copy when upstream announced a digest that does not combine across ranges', () => {
    expect(
      chooseCopyMode(facts(), 256 * MIB, { algorithm: 'SHA256', value: 'x', header: 'repr-digest' }),
    ).toBe('digest-not-combinable');
  });

  it('pins only strong entity tags', () => {
    expect(strongEtag(' "abc" ')).toBe('"abc"');
    expect(strongEtag('W/"abc"')).toBeNull();
    expect(strongEtag(undefined)).toBeNull();
  });
});

function copySource(overrides: Partial<CopySource> = {}): CopySource {
  return {
    downloadId: DOWNLOAD_ID,
    key: 'sample/20MB',
    query: null,
    bucket: 'downloads',
    objectKey: `downloads/${DOWNLOAD_ID}/sample-20MB.bin`,
    uploadId: 'upload-1',
    size: 20_000_000,
    partSize: 5 * MIB,
    contentType: 'application/octet-stream',
    fileName: 'sample-20MB.bin',
    etag: '"sample-20000000"',
    lastModified: null,
    advertisedCrc64Nvme: null,
    advertisedHeader: null,
    ...overrides,
  };
}

describe('checkRangeAnswer', () => {
  const answer = (statusCode: 200 | 206, headers: Record<string, string>) =>
    ({
      statusCode,
      headers,
      contentLength: undefined,
      url: new URL('http://x'),
      body: Readable.from([]),
    }) as UpstreamResponse;

  it('accepts the asked-for range of the pinned version', () => {
    expect(() =>
      checkRangeAnswer(
        answer(206, { etag: '"sample-20000000"', 'content-range': 'bytes 0-5242879/20000000' }),
        copySource(),
        0,
        5 * MIB,
      ),
    ).not.toThrow();
  });

  it('fails with UpstreamChanged on another ETag, another Last-Modified or another size', () => {
    expect(() =>
      checkRangeAnswer(
        answer(206, { etag: '"other"', 'content-range': 'bytes 0-9/20000000' }),
        copySource(),
        0,
        10,
      ),
    ).toThrow(expect.objectContaining({ name: 'UpstreamChangedError', code: 'UpstreamChanged' }));
    const byDate = copySource({ etag: null, lastModified: 'Mon, 01 Jan 2024 00:00:00 GMT' });
    expect(() =>
      checkRangeAnswer(
        answer(206, {
          'last-modified': 'Tue, 02 Jan 2024 00:00:00 GMT',
          'content-range': 'bytes 0-9/20000000',
        }),
        byDate,
        0,
        10,
      ),
    ).toThrow(expect.objectContaining({ name: 'UpstreamChangedError' }));
    expect(() =>
      checkRangeAnswer(answer(206, { 'content-range': 'bytes 0-9/30000000' }), copySource(), 0, 10),
    ).toThrow(expect.objectContaining({ name: 'UpstreamChangedError' }));
  });

  it('refuses a whole-file answer to a range request, and a range other than the one asked for', () => {
    expect(() => checkRangeAnswer(answer(200, {}), copySource(), 0, 10)).toThrow(
      expect.objectContaining({ name: 'UpstreamRejectedError', code: 'RangeIgnored' }),
    );
    expect(() =>
      checkRangeAnswer(answer(206, { 'content-range': 'bytes 0-19/20000000' }), copySource(), 0, 10),
    ).toThrow(expect.objectContaining({ name: 'UpstreamRejectedError', code: 'RangeMismatch' }));
  });
});

describe('combining the ranges', () => {
  const bytes = sampleBytes(0, 3_000_000);
  const crcOf = (from: number, to: number) => {
    const crc = new Crc64Nvme();
    crc.update(bytes.subarray(from, to));
    return crc64NvmeToBase64(crc.digest());
  };
  const result = (index: number, offset: number, end: number): RangeTaskResult => ({
    downloadId: DOWNLOAD_ID,
    copy: copySource({ size: bytes.length }),
    range: { index, offset, end },
    next: end,
    crc: crcOf(offset, end),
    done: true,
  });

  it("gives the whole file's CRC64NVME from the ranges' CRCs, whatever order they come in", () => {
    const ranges = [
      result(2, 2_000_000, 3_000_000),
      result(0, 0, 1_000_000),
      result(1, 1_000_000, 2_000_000),
    ];

    expect(crc64NvmeToBase64(combineRangeCrcs(ranges, bytes.length))).toBe(crcOf(0, bytes.length));
  });

  it('refuses ranges that are not done or do not tile the file', () => {
    const unfinished = { ...result(1, 1_000_000, 2_000_000), next: 1_500_000, done: false };

    expect(() => combineRangeCrcs([result(0, 0, 1_000_000), unfinished], 2_000_000)).toThrow(/not complete/);
    expect(() => combineRangeCrcs([result(0, 0, 1_000_000)], 2_000_000)).toThrow(/cover/);
  });

  it('completes only with every part, numbered from 1, of its planned size', () => {
    const copy = copySource({ size: 12 * MIB, partSize: 5 * MIB });
    const parts: { PartNumber: number; ETag: string; Size: number; ChecksumCRC64NVME: string }[] = [
      { PartNumber: 1, ETag: '"a"', Size: 5 * MIB, ChecksumCRC64NVME: 'AAAAAAAAAAE=' },
      { PartNumber: 2, ETag: '"b"', Size: 5 * MIB, ChecksumCRC64NVME: 'AAAAAAAAAAI=' },
      { PartNumber: 3, ETag: '"c"', Size: 2 * MIB, ChecksumCRC64NVME: 'AAAAAAAAAAM=' },
    ];

    expect(toCompletedParts(parts, copy)).toEqual([
      { PartNumber: 1, ETag: '"a"', ChecksumCRC64NVME: 'AAAAAAAAAAE=' },
      { PartNumber: 2, ETag: '"b"', ChecksumCRC64NVME: 'AAAAAAAAAAI=' },
      { PartNumber: 3, ETag: '"c"', ChecksumCRC64NVME: 'AAAAAAAAAAM=' },
    ]);
    expect(() =>
      toCompletedParts(
        parts.map(({ ChecksumCRC64NVME: _, ...part }) => part),
        copy,
      ),
    ).toThrow(/part 1 has no CRC64NVME/);
    expect(() => toCompletedParts(parts.slice(0, 2), copy)).toThrow(/2 of 3 parts/);
    expect(() =>
      toCompletedParts(
        parts.map((part) => (part.PartNumber === 2 ? { ...part, Size: 1 } : part)),
        copy,
      ),
    ).toThrow(/part 2/);
  });
});

describe('completeCopy', () => {
  const bytes = sampleBytes(0, 6 * MIB);
  const crc = new Crc64Nvme();
  crc.update(bytes);
  const fullCrc = crc64NvmeToBase64(crc.digest());
  const crcOfBytes = (from: number, to: number) => crc64NvmeToBase64(crc64Nvme(bytes.subarray(from, to)));
  const ranges: RangeTaskResult[] = [
    {
      downloadId: DOWNLOAD_ID,
      copy: copySource({ size: bytes.length }),
      range: { index: 0, offset: 0, end: bytes.length },
      next: bytes.length,
      crc: fullCrc,
      done: true,
    },
  ];

  function fakeS3() {
    const sent: string[] = [];
    const s3 = {
      send: vi.fn(async (command: { input: Record<string, unknown> }) => {
        sent.push(command.constructor.name);
        if (command.constructor.name === 'ListPartsCommand') {
          return {
            Parts: [
              { PartNumber: 1, ETag: '"p1"', Size: 5 * MIB, ChecksumCRC64NVME: crcOfBytes(0, 5 * MIB) },
              { PartNumber: 2, ETag: '"p2"', Size: MIB, ChecksumCRC64NVME: crcOfBytes(5 * MIB, 6 * MIB) },
            ],
          };
        }
        return {};
      }),
    };
    return { s3: s3 as unknown as S3Client, sent };
  }
  const store = (status: string) => ({ get: async () => ({ status }) }) as unknown as DownloadStore;
  const logger = new Logger({ logLevel: 'SILENT' });

  it('completes the upload and returns the object with its CRC64NVME when the announced one matches', async () => {
    const { s3, sent } = fakeS3();
    const copy = copySource({
      size: bytes.length,
      advertisedCrc64Nvme: fullCrc,
      advertisedHeader: 'x-amz-checksum-crc64nvme',
    });

    const object = await completeCopy(
      { downloadId: DOWNLOAD_ID, copy, ranges },
      { s3, store: store('RUNNING'), logger },
    );

    expect(sent).toEqual(['ListPartsCommand', 'CompleteMultipartUploadCommand']);
    expect(object).toEqual({
      bucket: copy.bucket,
      objectKey: copy.objectKey,
      size: bytes.length,
      contentType: copy.contentType,
      fileName: copy.fileName,
      checksum: { algorithm: 'CRC64NVME', value: fullCrc },
    });
  });

  it('aborts the upload and fails with ChecksumMismatch when the announced CRC64NVME differs', async () => {
    const { s3, sent } = fakeS3();
    const copy = copySource({
      size: bytes.length,
      advertisedCrc64Nvme: 'AAAAAAAAAAA=',
      advertisedHeader: 'repr-digest',
    });

    const failure = await completeCopy(
      { downloadId: DOWNLOAD_ID, copy, ranges },
      { s3, store: store('RUNNING'), logger },
    ).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'ChecksumMismatchError', code: 'ChecksumMismatch' });
    expect(sent).toEqual(['AbortMultipartUploadCommand']);
  });

  it('aborts the upload and stops when the download was settled elsewhere', async () => {
    const { s3, sent } = fakeS3();

    const failure = await completeCopy(
      { downloadId: DOWNLOAD_ID, copy: copySource({ size: bytes.length }), ranges },
      { s3, store: store('FAILED'), logger },
    ).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'CopyCancelledError' });
    expect(sent).toEqual(['AbortMultipartUploadCommand']);
  });
});

describe('copyRange', () => {
  // The upstream is the sample upstream on a loopback port; S3 and the record are fakes.
  let upstream: SampleUpstream;
  beforeAll(async () => {
    upstream = await startSampleUpstream({ port: 0 });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  const SIZE = 20 * MIB;
  const config = (): CopyRangeConfig => ({ ...testCopyBase(upstream.url), workerSeconds: 60 });

  /** Reads each part's body and answers, or fails the part numbers in `failing` with that error. */
  function fakeS3(failing: Record<number, Error> = {}, onPart?: (partNumber: number) => void) {
    const parts = new Map<number, number>();
    const s3 = {
      send: vi.fn(async (command: { input: { PartNumber: number; Body: Buffer } }) => {
        const { PartNumber, Body } = command.input;
        const length = Body.length;
        onPart?.(PartNumber);
        const failure = failing[PartNumber];
        if (failure) throw failure;
        parts.set(PartNumber, length);
        return { ETag: `"p${PartNumber}"` };
      }),
    };
    return { s3: s3 as unknown as S3Client, parts };
  }

  function fakeProgress(stored?: RangeState, settled = false) {
    const flushed: RangeState[] = [];
    const progress = {
      load: async () => ({ settled, stored }),
      report: () => {},
      flush: async (state: RangeState) => {
        flushed.push(state);
      },
    };
    return { progress: progress as unknown as RangeProgress, flushed };
  }

  function run(
    s3: S3Client,
    progress: RangeProgress,
    options: { key?: string; signal?: AbortSignal; softStopAt?: number; etag?: string; offset?: number } = {},
  ) {
    const [key, query] = (options.key ?? `sample/${SIZE}`).split('?');
    return copyRange(
      {
        downloadId: DOWNLOAD_ID,
        copy: copySource({
          key: key as string,
          query: query ?? null,
          size: SIZE,
          etag: options.etag ?? `"sample-${SIZE}"`,
        }),
        range: { index: 0, offset: options.offset ?? 0, end: SIZE },
      },
      {
        config: config(),
        s3,
        progress,
        logger: new Logger({ logLevel: 'SILENT' }),
        signal: options.signal ?? new AbortController().signal,
        softStopAt: options.softStopAt ?? Date.now() + 60_000,
        cancellation: new AbortController().signal,
      },
    );
  }

  it('copies the range part by part, each part read into memory and uploaded whole, and returns its CRC64NVME', async () => {
    const { s3, parts } = fakeS3();
    const { progress, flushed } = fakeProgress();

    const result = await run(s3, progress);

    expect([...parts]).toEqual([
      [1, 5 * MIB],
      [2, 5 * MIB],
      [3, 5 * MIB],
      [4, 5 * MIB],
    ]);
    const crc = new Crc64Nvme();
    crc.update(sampleBytes(0, SIZE));
    expect(result).toMatchObject({ next: SIZE, done: true, crc: crc64NvmeToBase64(crc.digest()) });
    expect(flushed.at(-1)).toEqual({ next: SIZE, crc: result.crc, reached: SIZE });
  });

  it('resumes where the record says an earlier attempt got, not where the task began', async () => {
    const { s3, parts } = fakeS3();
    const first = new Crc64Nvme();
    first.update(sampleBytes(0, 10 * MIB));
    const { progress } = fakeProgress({
      next: 10 * MIB,
      crc: crc64NvmeToBase64(first.digest()),
      reached: 12 * MIB,
    });

    const result = await run(s3, progress);

    expect([...parts.keys()]).toEqual([3, 4]);
    const whole = new Crc64Nvme();
    whole.update(sampleBytes(0, SIZE));
    expect(result.crc).toBe(crc64NvmeToBase64(whole.digest()));
  });

  it('hands the range back after a part once its time is up, to be invoked again', async () => {
    const { s3, parts } = fakeS3();

    const result = await run(s3, fakeProgress().progress, { softStopAt: Date.now() - 1 });

    expect([...parts.keys()]).toEqual([1]);
    expect(result).toMatchObject({ next: 5 * MIB, done: false });
  });

  it('returns where it stopped when the function deadline cuts a part short, after a part got through', async () => {
    const deadline = new AbortController();
    const { s3, parts } = fakeS3({}, (partNumber) => {
      if (partNumber === 1) setImmediate(() => deadline.abort(new DeadlineExceededError('late')));
    });

    const result = await run(s3, fakeProgress().progress, {
      key: `sample/${SIZE}?rate=20000000`,
      signal: deadline.signal,
    });

    expect([...parts.keys()]).toEqual([1]);
    expect(result).toMatchObject({ next: 5 * MIB, done: false });
  });

  it('fails with CopyTimeout when the deadline comes before a single part got through', async () => {
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(new DeadlineExceededError('late')), 100);

    const failure = await run(fakeS3().s3, fakeProgress().progress, {
      key: `sample/${SIZE}?rate=1000000`,
      signal: deadline.signal,
    }).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'CopyTimeoutError' });
  });

  it('fails with UpstreamChanged when upstream answers 412 to If-Match', async () => {
    const failure = await run(fakeS3().s3, fakeProgress().progress, { etag: '"an-older-version"' }).catch(
      (error: unknown) => error,
    );

    expect(failure).toMatchObject({ name: 'UpstreamChangedError', code: 'UpstreamChanged' });
  });

  it('fails with UpstreamChanged when the file got shorter than planned (416, or another total size)', async () => {
    const shorter = await run(fakeS3().s3, fakeProgress().progress, {
      key: 'sample/4MB',
      etag: '"sample-4000000"',
    }).catch((error: unknown) => error);
    const gone = await run(fakeS3().s3, fakeProgress().progress, {
      key: 'sample/4MB',
      etag: '"sample-4000000"',
      offset: 5 * MIB,
    }).catch((error: unknown) => error);

    expect(shorter).toMatchObject({ name: 'UpstreamChangedError' });
    expect(gone).toMatchObject({ name: 'UpstreamChangedError' });
  });

  it('names an upstream that breaks mid-range after upstream (retryable), and records where the range stands', async () => {
    const { progress, flushed } = fakeProgress();

    const failure = await run(fakeS3().s3, progress, { key: `sample/${SIZE}?failAfter=7000000` }).catch(
      (error: unknown) => error,
    );

    expect(failure).toMatchObject({ name: 'UpstreamUnavailableError' });
    expect(flushed.at(-1)).toMatchObject({ next: 5 * MIB });
  });

  it('names a failing UploadPart S3UploadError (retryable), and an aborted upload CopyCancelled', async () => {
    const s3Failure = await run(fakeS3({ 2: new Error('InternalError') }).s3, fakeProgress().progress).catch(
      (error: unknown) => error,
    );
    const noSuchUpload = Object.assign(new Error('gone'), { name: 'NoSuchUpload' });
    const aborted = await run(fakeS3({ 1: noSuchUpload }).s3, fakeProgress().progress).catch(
      (error: unknown) => error,
    );

    expect(s3Failure).toMatchObject({ name: 'S3UploadError' });
    expect(aborted).toMatchObject({ name: 'CopyCancelledError' });
  });

  it('stops before reading upstream when the download is already settled', async () => {
    const { s3 } = fakeS3();

    const failure = await run(s3, fakeProgress(undefined, true).progress).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'CopyCancelledError' });
    expect(s3.send).not.toHaveBeenCalled();
  });
});

describe("the parallel copy's S3 full-object CRC64NVME, as S3 receives it", () => {
  // A real S3Client whose transport records the requests; the upstream is the sample upstream.
  let upstream: SampleUpstream;
  beforeAll(async () => {
    upstream = await startSampleUpstream({ port: 0 });
  });
  afterAll(async () => {
    await upstream?.close();
  });
  const logger = new Logger({ logLevel: 'SILENT' });
  const crcOf = (from: number, to: number) => crc64NvmeToBase64(crc64Nvme(sampleBytes(from, to)));
  // Not a multiple of any network chunk size: every part boundary falls inside a chunk, and the
  // last part is shorter than the others.
  const SIZE = 350_000;
  const PART = 100_003;
  const partBounds = [
    [0, PART],
    [PART, 2 * PART],
    [2 * PART, 3 * PART],
    [3 * PART, SIZE],
  ] as const;

  function worker(s3: S3Client, key = `sample/${SIZE}`) {
    const flushed: RangeState[] = [];
    const progress = {
      load: async () => ({ settled: false, stored: undefined }),
      report: () => {},
      flush: async (state: RangeState) => {
        flushed.push(state);
      },
    } as unknown as RangeProgress;
    const [path, query] = key.split('?');
    const result = copyRange(
      {
        downloadId: DOWNLOAD_ID,
        copy: copySource({
          key: path as string,
          query: query ?? null,
          size: SIZE,
          partSize: PART,
          etag: `"sample-${SIZE}"`,
        }),
        range: { index: 0, offset: 0, end: SIZE },
      },
      {
        config: { ...testCopyBase(upstream.url), workerSeconds: 60 },
        s3,
        progress,
        logger,
        signal: new AbortController().signal,
        softStopAt: Date.now() + 60_000,
        cancellation: new AbortController().signal,
      },
    );
    return { result, flushed };
  }

  it('creates the multipart upload with ChecksumAlgorithm CRC64NVME and ChecksumType FULL_OBJECT', async () => {
    const { s3, of } = recordingS3();

    const plan = await planCopy(
      { downloadId: DOWNLOAD_ID, key: 'sample/20MB' },
      {
        config: {
          upstream: testUpstreamConfig(upstream.url),
          downloadBucket: 'downloads',
          downloadTable: 'downloads',
          partSizeBytes: 5 * MIB,
          minBytes: 5 * MIB,
          concurrency: 2,
        },
        s3,
        documentClient: { send: async () => ({}) } as unknown as DynamoDBDocumentClient,
        logger,
        signal: new AbortController().signal,
      },
    );

    expect(plan).toMatchObject({ mode: 'parallel', copy: { uploadId: 'upload-1' } });
    expect(of('CreateMultipartUpload')).toHaveLength(1);
    expect(of('CreateMultipartUpload')[0]?.headers).toMatchObject({
      'x-amz-checksum-algorithm': 'CRC64NVME',
      'x-amz-checksum-type': 'FULL_OBJECT',
    });
  });

  // WHEN_SUPPORTED is the SDK's default on Lambda; the local stack sets WHEN_REQUIRED.
  it.each(['WHEN_REQUIRED', 'WHEN_SUPPORTED'] as const)(
    'uploads each part whole, with its own CRC64NVME in a header, boundaries inside network chunks and a short last part (checksum calculation %s)',
    async (calculation) => {
      const { s3, of } = recordingS3({ requestChecksumCalculation: calculation });

      const result = await worker(s3).result;

      const parts = of('UploadPart');
      expect(parts.map((part) => part.query.partNumber)).toEqual(['1', '2', '3', '4']);
      for (const [index, [from, to]] of partBounds.entries()) {
        const part = parts[index]!;
        expect(part.bytes?.equals(sampleBytes(from, to))).toBe(true);
        expect(part.headers['content-length']).toBe(String(to - from));
        expect(part.headers['x-amz-checksum-crc64nvme']).toBe(crcOf(from, to));
        // Sent before the body: no other checksum, no trailer, no aws-chunked framing.
        expect(Object.keys(part.headers).filter((name) => name.startsWith('x-amz-checksum-'))).toEqual([
          'x-amz-checksum-crc64nvme',
        ]);
        expect(part.headers).not.toHaveProperty('x-amz-trailer');
        // Signed without a hash of the body (S3 checks the CRC64NVME): no SHA-256 of every part.
        expect(part.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
        expect(part.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
      }
      expect(result).toMatchObject({ next: SIZE, done: true, crc: crcOf(0, SIZE) });
    },
  );

  it('uploads nothing of the part upstream breaks in, keeps the parts before it, and fails as before', async () => {
    const { s3, of } = recordingS3();
    const { result, flushed } = worker(s3, `sample/${SIZE}?failAfter=250000`);

    const failure = await result.catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'UpstreamUnavailableError' });
    expect(of('UploadPart').map((part) => part.query.partNumber)).toEqual(['1', '2']);
    expect(flushed.at(-1)).toMatchObject({ next: 2 * PART, crc: crcOf(0, 2 * PART) });
  });

  function completeInput() {
    const copy = copySource({ size: SIZE, partSize: PART });
    return {
      downloadId: DOWNLOAD_ID,
      copy,
      ranges: [
        {
          downloadId: DOWNLOAD_ID,
          copy,
          range: { index: 0, offset: 0, end: 2 * PART },
          next: 2 * PART,
          crc: crcOf(0, 2 * PART),
          done: true,
        },
        {
          downloadId: DOWNLOAD_ID,
          copy,
          range: { index: 1, offset: 2 * PART, end: SIZE },
          next: SIZE,
          crc: crcOf(2 * PART, SIZE),
          done: true,
        },
      ],
    };
  }
  const listed = () =>
    partBounds.map(([from, to], index) => ({
      PartNumber: index + 1,
      ETag: `"part-${index + 1}"`,
      Size: to - from,
      ChecksumCRC64NVME: crcOf(from, to),
    }));
  const running = { get: async () => ({ status: 'RUNNING' }) } as unknown as DownloadStore;

  it("completes with every part's CRC64NVME, the whole file's, ChecksumType FULL_OBJECT and MpuObjectSize", async () => {
    const { s3, of } = recordingS3({ listParts: listed });

    const object = await completeCopy(completeInput(), { s3, store: running, logger });

    expect(object.checksum).toEqual({ algorithm: 'CRC64NVME', value: crcOf(0, SIZE) });
    const complete = of('CompleteMultipartUpload');
    expect(complete).toHaveLength(1);
    expect(complete[0]?.headers).toMatchObject({
      'x-amz-checksum-crc64nvme': crcOf(0, SIZE),
      'x-amz-checksum-type': 'FULL_OBJECT',
      'x-amz-mp-object-size': String(SIZE),
    });
    for (const [index, [from, to]] of partBounds.entries()) {
      expect(complete[0]?.body).toContain(
        `<Part><ETag>&quot;part-${index + 1}&quot;</ETag><ChecksumCRC64NVME>${crcOf(from, to)}</ChecksumCRC64NVME><PartNumber>${index + 1}</PartNumber></Part>`,
      );
    }
  });

  it("aborts the upload when the parts' CRC64NVME, as S3 lists them, do not combine into the ranges'", async () => {
    const { s3, of } = recordingS3({
      listParts: () =>
        listed().map((part) => (part.PartNumber === 3 ? { ...part, ChecksumCRC64NVME: crcOf(0, 10) } : part)),
    });

    const failure = await completeCopy(completeInput(), { s3, store: running, logger }).catch(
      (error: unknown) => error,
    );

    expect((failure as Error).message).toMatch(/do not combine/);
    expect(of('CompleteMultipartUpload')).toHaveLength(0);
    expect(of('AbortMultipartUpload')).toHaveLength(1);
  });
});
