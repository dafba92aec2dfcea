import { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type SampleUpstream,
  sampleBytes,
  sampleCrc64Nvme,
  startSampleUpstream,
} from '../../local/sample-upstream.ts';
import { CopyChecksums } from '../../shared/checksum/copy-checksums.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';
import type { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { copyToS3 } from '../../shared/downloads/copy-to-s3.ts';
import type { DownloadStore } from '../../shared/downloads/store.ts';
import { testFetchConfig } from '../helpers/copy-config.ts';
import { recordingS3 } from '../helpers/recording-s3.ts';

const DOWNLOAD_ID = '5d6e7f80-1a2b-4c3d-9e8f-0a1b2c3d4e5f';
const PART_SIZE = 5 * 1024 * 1024;

describe('copyToS3 checksums', () => {
  let upstream: SampleUpstream;
  beforeAll(async () => {
    upstream = await startSampleUpstream({ port: 0 });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  function copy(key: string, s3: S3Client, range?: string) {
    const config = testFetchConfig(upstream.url, { partSizeBytes: PART_SIZE, queueSize: 2 });
    const store = { get: async () => undefined, recordProgress: async () => undefined };
    const [path, query] = key.split('?');
    return copyToS3(
      {
        downloadId: DOWNLOAD_ID,
        key: path as string,
        ...(query ? { query } : {}),
        ...(range ? { range } : {}),
      },
      {
        config,
        s3,
        store: store as unknown as DownloadStore,
        poster: {} as ConnectionPoster,
        logger: new Logger({ logLevel: 'SILENT' }),
        signal: new AbortController().signal,
      },
    );
  }

  // WHEN_SUPPORTED is the SDK's default on Lambda; the local stack sets WHEN_REQUIRED.
  it.each(['WHEN_REQUIRED', 'WHEN_SUPPORTED'] as const)(
    'stores a multipart upload with S3 full-object CRC64NVME: each part, the whole object, the type (checksum calculation %s)',
    async (calculation) => {
      const size = 12_000_000; // three parts: 5 MiB, 5 MiB, the rest
      const { s3, sent, of } = recordingS3({ requestChecksumCalculation: calculation });

      const copied = await copy(`sample/${size}?digest=1`, s3);

      const whole = crc64NvmeToBase64(sampleCrc64Nvme(size));
      expect(copied.checksum).toEqual({ algorithm: 'CRC64NVME', value: whole });
      expect(sent.map((request) => request.operation).sort()).toEqual([
        'CompleteMultipartUpload',
        'CreateMultipartUpload',
        'UploadPart',
        'UploadPart',
        'UploadPart',
      ]);
      const create = of('CreateMultipartUpload')[0]!;
      expect(create.headers).toMatchObject({
        'x-amz-checksum-algorithm': 'CRC64NVME',
        'x-amz-checksum-type': 'FULL_OBJECT',
      });
      const partChecksums = [0, 1, 2].map((index) =>
        crc64NvmeToBase64(crc64Nvme(sampleBytes(index * PART_SIZE, Math.min(size, (index + 1) * PART_SIZE)))),
      );
      const parts = of('UploadPart');
      expect(parts.map((part) => part.headers['x-amz-checksum-crc64nvme']).sort()).toEqual(
        [...partChecksums].sort(),
      );
      // The value is sent in a header: the SDK neither computes another one nor switches to a trailer.
      for (const part of parts) {
        expect(Object.keys(part.headers).filter((name) => name.startsWith('x-amz-checksum-'))).toEqual([
          'x-amz-checksum-crc64nvme',
        ]);
        expect(part.headers).not.toHaveProperty('x-amz-trailer');
        // Signed without a hash of the body (S3 checks the CRC64NVME): no SHA-256 of every part.
        expect(part.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
        expect(part.headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
      }
      const complete = of('CompleteMultipartUpload')[0]!;
      expect(complete.headers).toMatchObject({
        'x-amz-checksum-crc64nvme': whole,
        'x-amz-checksum-type': 'FULL_OBJECT',
        'x-amz-mp-object-size': String(size),
      });
      for (const [index, checksum] of partChecksums.entries()) {
        expect(complete.body).toContain(
          `<Part><ETag>&quot;part-${index + 1}&quot;</ETag><ChecksumCRC64NVME>${checksum}</ChecksumCRC64NVME><PartNumber>${index + 1}</PartNumber></Part>`,
        );
      }
    },
  );

  it('stores a file smaller than a part with one PutObject carrying its CRC64NVME', async () => {
    const { s3, sent } = recordingS3();

    const copied = await copy('sample/1MB?digest=crc64nvme', s3);

    expect(sent.map((request) => request.operation)).toEqual(['PutObject']);
    expect(sent[0]!.headers['x-amz-checksum-crc64nvme']).toBe(copied.checksum.value);
    expect(copied.checksum.value).toBe(crc64NvmeToBase64(sampleCrc64Nvme(1_000_000)));
  });

  it('computes the checksum of a body with no announced digest too', async () => {
    const { s3 } = recordingS3();

    const copied = await copy('sample/100000?chunked=1', s3);

    expect(copied.checksum.value).toBe(crc64NvmeToBase64(sampleCrc64Nvme(100_000)));
  });

  it('fails with ChecksumMismatch on a wrong Repr-Digest, before completing, and aborts the upload', async () => {
    const { s3, of } = recordingS3();

    const failure = await copy('sample/12000000?digest=bad', s3).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'ChecksumMismatchError', code: 'ChecksumMismatch' });
    expect((failure as Error).message).toMatch(/SHA256 .* repr-digest header announced/);
    expect(of('CompleteMultipartUpload')).toHaveLength(0);
    expect(of('AbortMultipartUpload')).toHaveLength(of('CreateMultipartUpload').length);
  });

  it('fails with ChecksumMismatch on a wrong x-amz-checksum-crc64nvme, storing nothing', async () => {
    const { s3, sent } = recordingS3();

    const failure = await copy('sample/1MB?digest=bad-crc64nvme', s3).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'ChecksumMismatchError' });
    expect(sent.filter((request) => request.operation === 'PutObject')).toHaveLength(0);
  });

  it('fails a malformed digest header as UpstreamRejected before sending anything to S3', async () => {
    const { s3, sent } = recordingS3();

    const failure = await copy('sample/1MB?digest=malformed', s3).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'UpstreamRejectedError', code: 'MalformedDigest' });
    expect(sent).toHaveLength(0);
  });

  it('does not hold a range (206) to the digest of the whole file', async () => {
    const { s3 } = recordingS3();

    const copied = await copy('sample/1MB?digest=bad', s3, 'bytes=0-999');

    expect(copied.size).toBe(1000);
    expect(copied.checksum.value).toBe(crc64NvmeToBase64(crc64Nvme(sampleBytes(0, 1000))));
  });
});

describe('CopyChecksums', () => {
  it("cuts parts where lib-storage does and combines them into the whole object's CRC", () => {
    const bytes = sampleBytes(0, 3 * 1000 + 17);
    const checksums = new CopyChecksums(1000);
    for (let at = 0; at < bytes.length; at += 333) checksums.update(bytes.subarray(at, at + 333));

    expect(checksums.partChecksum(1)).toBe(crc64NvmeToBase64(crc64Nvme(bytes.subarray(0, 1000))));
    expect(checksums.partChecksum(4)).toBe(crc64NvmeToBase64(crc64Nvme(bytes.subarray(3000))));
    expect(checksums.objectCrc()).toBe(crc64Nvme(bytes));
    expect(() => checksums.partChecksum(5)).toThrow(RangeError);
  });

  it('keeps a last part of exactly one part size as a full part', () => {
    const bytes = sampleBytes(0, 2000);
    const checksums = new CopyChecksums(1000);
    checksums.update(bytes);

    expect(checksums.partChecksum(2)).toBe(crc64NvmeToBase64(crc64Nvme(bytes.subarray(1000))));
    expect(checksums.objectCrc()).toBe(crc64Nvme(bytes));
  });
});
