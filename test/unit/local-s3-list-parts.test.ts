import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalS3, startS3 } from '../../local/s3.ts';
import { fullObjectChecksumBody, fullObjectChecksumUpload } from '../../shared/checksum/copy-checksums.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';
import { localS3Client } from '../helpers/aws.ts';

const BUCKET = 'downloads';
const MIB = 1024 * 1024;

/** ListParts and AbortMultipartUpload, which s3rver lacks, and its CompleteMultipartUpload, replaced and the parallel copy's completing step calls (`local/s3.ts`). */
describe('the local S3 multipart operations', () => {
  let directory: string;
  let s3Server: LocalS3;
  let s3: S3Client;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'list-parts-'));
    s3Server = await startS3({ port: 0, directory, buckets: [BUCKET] });
    s3 = localS3Client(s3Server.endpoint);
  });
  afterAll(async () => {
    s3?.destroy();
    await s3Server?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('lists the uploaded parts in order, in pages, with the ETags UploadPart answered and their sizes', async () => {
    const Key = 'downloads/x/file.bin';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
    const sizes = { 2: 5 * MIB, 1: 5 * MIB, 3: 1000 };
    const etags: Record<number, string | undefined> = {};
    for (const [number, size] of Object.entries(sizes)) {
      const answer = await s3.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key,
          UploadId,
          PartNumber: Number(number),
          Body: Buffer.alloc(size, Number(number)),
        }),
      );
      etags[Number(number)] = answer.ETag;
    }

    const first = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key, UploadId, MaxParts: 2 }));
    const rest = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key, UploadId, PartNumberMarker: first.NextPartNumberMarker }),
    );

    expect(first.IsTruncated).toBe(true);
    expect(rest.IsTruncated).toBe(false);
    const listed = [...(first.Parts ?? []), ...(rest.Parts ?? [])].map(({ PartNumber, ETag, Size }) => ({
      PartNumber,
      ETag,
      Size,
    }));
    expect(listed).toEqual([
      { PartNumber: 1, ETag: etags[1], Size: 5 * MIB },
      { PartNumber: 2, ETag: etags[2], Size: 5 * MIB },
      { PartNumber: 3, ETag: etags[3], Size: 1000 },
    ]);
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key,
        UploadId,
        MultipartUpload: { Parts: listed.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
      }),
    );
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    expect(object.ContentLength).toBe(10 * MIB + 1000);
  });

  it("lists each part's ChecksumCRC64NVME as its UploadPart carried it, and none for a part sent without", async () => {
    const Key = 'downloads/z/file.bin';
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key, ...fullObjectChecksumUpload() }),
    );
    const first = Buffer.alloc(5 * MIB, 1);
    const checksum = crc64NvmeToBase64(crc64Nvme(first));
    await s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key,
        UploadId,
        PartNumber: 1,
        Body: first,
        ...fullObjectChecksumBody(checksum),
      }),
    );
    await s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: 2, Body: Buffer.alloc(10, 2) }),
    );

    const { Parts } = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key, UploadId }));

    expect(Parts?.map(({ PartNumber, ChecksumCRC64NVME }) => ({ PartNumber, ChecksumCRC64NVME }))).toEqual([
      { PartNumber: 1, ChecksumCRC64NVME: checksum },
      { PartNumber: 2, ChecksumCRC64NVME: undefined },
    ]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId }));
  });

  it("completes an upload with the listed parts joined in order and S3's multipart ETag, and forgets the upload", async () => {
    const Key = 'downloads/w/file.bin';
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key, ContentType: 'application/zip' }),
    );
    // Parts sent out of order; the object is joined in part-number order.
    const parts = [Buffer.alloc(5 * MIB + 7, 1), Buffer.alloc(5 * MIB, 2), Buffer.from('the end')];
    const etags = new Map<number, string | undefined>();
    for (const number of [3, 1, 2]) {
      const answer = await s3.send(
        new UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber: number, Body: parts[number - 1] }),
      );
      etags.set(number, answer.ETag);
    }

    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key,
        UploadId,
        MultipartUpload: {
          Parts: [1, 2, 3].map((PartNumber) => ({ PartNumber, ETag: etags.get(PartNumber) })),
        },
      }),
    );

    // S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then "-" and the count.
    const ofEtags = createHash('md5');
    for (const part of parts) ofEtags.update(createHash('md5').update(part).digest());
    const expectedEtag = `"${ofEtags.digest('hex')}-3"`;
    expect(completed.ETag).toBe(expectedEtag);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key }));
    expect(head).toMatchObject({
      ETag: expectedEtag,
      ContentLength: 10 * MIB + 14,
      ContentType: 'application/zip',
    });
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    const body = Buffer.from(
      await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    expect(body.equals(Buffer.concat(parts))).toBe(true);
    const again = await s3
      .send(new ListPartsCommand({ Bucket: BUCKET, Key, UploadId }))
      .catch((error: unknown) => error);
    expect(again).toMatchObject({ name: 'NoSuchUpload' });
  });

  it('refuses a completion naming a part never uploaded or with another ETag (InvalidPart), or out of order (InvalidPartOrder), and keeps the upload', async () => {
    const Key = 'downloads/v/file.bin';
    const { UploadId, etags } = await uploadTwoParts(Key);
    const complete = (Parts: { PartNumber: number; ETag: string }[]) =>
      s3
        .send(
          new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, MultipartUpload: { Parts } }),
        )
        .catch((error: unknown) => error);

    const missing = await complete([
      { PartNumber: 1, ETag: etags[0] as string },
      { PartNumber: 3, ETag: etags[1] as string },
    ]);
    const otherEtag = await complete([
      { PartNumber: 1, ETag: etags[1] as string },
      { PartNumber: 2, ETag: etags[1] as string },
    ]);
    const outOfOrder = await complete([
      { PartNumber: 2, ETag: etags[1] as string },
      { PartNumber: 1, ETag: etags[0] as string },
    ]);

    expect(missing).toMatchObject({ name: 'InvalidPart', $metadata: { httpStatusCode: 400 } });
    expect(otherEtag).toMatchObject({ name: 'InvalidPart' });
    expect(outOfOrder).toMatchObject({ name: 'InvalidPartOrder', $metadata: { httpStatusCode: 400 } });
    const { Parts } = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key, UploadId }));
    expect(Parts?.map((part) => part.PartNumber)).toEqual([1, 2]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId }));
  });

  it('leaves no object when joining the parts fails half-way, and keeps one already at the key', async () => {
    const Key = 'downloads/u/file.bin';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'the object before' }));
    const { UploadId, etags } = await uploadTwoParts(Key);
    // Part 2's bytes become unreadable (a directory where the file was: EISDIR on read), after
    // part 1 is already joined.
    const part2 = join(directory, BUCKET, '._S3rver_uploads', UploadId, '2');
    await rm(part2);
    await mkdir(part2);

    const failure = await s3
      .send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ PartNumber: index + 1, ETag })) },
        }),
      )
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({ $metadata: { httpStatusCode: 500 } });
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
    expect(await (object.Body as { transformToString(): Promise<string> }).transformToString()).toBe(
      'the object before',
    );
    const leftovers = (await readdir(join(directory, BUCKET, 'downloads', 'u'))).filter((name) =>
      name.includes('joining'),
    );
    expect(leftovers).toEqual([]);
  });

  /** A new upload of `Key` with parts 1 and 2 (5 MiB each) uploaded, and their ETags. */
  async function uploadTwoParts(Key: string): Promise<{ UploadId: string; etags: string[] }> {
    const { UploadId = '' } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
    const etags: string[] = [];
    for (const PartNumber of [1, 2]) {
      const answer = await s3.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key,
          UploadId,
          PartNumber,
          Body: Buffer.alloc(5 * MIB, PartNumber),
        }),
      );
      etags.push(answer.ETag ?? '');
    }
    return { UploadId, etags };
  }

  it('answers NoSuchUpload for an aborted upload, as S3 does', async () => {
    const Key = 'downloads/y/file.bin';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId }));

    const failure = await s3
      .send(new ListPartsCommand({ Bucket: BUCKET, Key, UploadId }))
      .catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'NoSuchUpload' });
  });
});
