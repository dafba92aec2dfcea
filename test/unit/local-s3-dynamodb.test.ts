import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDynamoDb, startDynamoDb } from '../../local/dynamodb.ts';
import { LOCAL_CREDENTIALS, type LocalS3, startS3 } from '../../local/s3.ts';
import { localS3Client } from '../helpers/aws.ts';

const BUCKET = 'downloads';
const MiB = 1024 * 1024;

/** ~12 MB in 64 KiB chunks with no declared length, like a chunked upstream response. */
function unknownLengthStream(totalBytes: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  let seed = 1;
  const stream = new Readable({
    read() {
      if (sent >= totalBytes) {
        this.push(null);
        return;
      }
      const chunk = Buffer.alloc(Math.min(64 * 1024, totalBytes - sent));
      for (let i = 0; i < chunk.length; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        chunk[i] = seed & 0xff;
      }
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

describe('startS3', () => {
  let directory: string;
  let s3: LocalS3;
  let client: S3Client;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'local-s3-'));
    s3 = await startS3({ port: 0, directory, buckets: [BUCKET] });
    client = localS3Client(s3.endpoint);
  });

  afterAll(async () => {
    client.destroy();
    await s3.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('stores a multipart upload of a stream of unknown length byte for byte', async () => {
    const source = unknownLengthStream(12 * MiB + 12_345);

    await new Upload({
      client,
      params: {
        Bucket: BUCKET,
        Key: 'big/file.bin',
        Body: source.stream,
        ContentType: 'application/octet-stream',
      },
      partSize: 5 * MiB,
      queueSize: 2,
    }).done();
    const object = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'big/file.bin' }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());

    expect(object.ContentLength).toBe(12 * MiB + 12_345);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(source.sha256());
  });

  it('lists and aborts an unfinished multipart upload; the aborted upload is then unknown', async () => {
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'partial.bin' }),
    );
    const part = (uploadId: string | undefined) =>
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: 'partial.bin',
        UploadId: uploadId,
        PartNumber: 1,
        Body: Buffer.alloc(1024, 1),
      });
    await client.send(part(UploadId));

    const before = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    const otherPrefix = await client.send(
      new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'big/' }),
    );
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'partial.bin', UploadId }));
    const after = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    const partAfterAbort = await client.send(part(UploadId)).catch((e: unknown) => e);
    const abortAgain = await client
      .send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'partial.bin', UploadId }))
      .catch((e: unknown) => e);

    expect(before.Uploads?.map((upload) => [upload.Key, upload.UploadId])).toEqual([
      ['partial.bin', UploadId],
    ]);
    expect(before.Uploads?.[0]?.Initiated).toBeInstanceOf(Date);
    expect(otherPrefix.Uploads ?? []).toEqual([]);
    expect(after.Uploads ?? []).toEqual([]);
    expect((partAfterAbort as Error).name).toBe('NoSuchUpload');
    expect((abortAgain as Error).name).toBe('NoSuchUpload');
  });

  it('leaves no multipart upload behind when lib-storage fails mid-stream (it aborts the upload)', async () => {
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent >= 6 * MiB) {
          this.destroy(new Error('upstream connection reset'));
          return;
        }
        sent += MiB;
        this.push(Buffer.alloc(MiB, 7));
      },
    });

    const upload = new Upload({
      client,
      params: { Bucket: BUCKET, Key: 'broken.bin', Body: failing },
      partSize: 5 * MiB,
    });

    await expect(upload.done()).rejects.toThrow('upstream connection reset');
    const left = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'broken' }));
    expect(left.Uploads ?? []).toEqual([]);
  });

  describe('presigned GET URLs', () => {
    const key = 'reports/report (1).txt';
    // The shape the download flow presigns with: `filename*=UTF-8''…` holds quotes and parentheses.
    const disposition = `attachment; filename="report (1).txt"; filename*=UTF-8''report%20%281%29.txt`;

    beforeAll(async () => {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'hello, presigned world' }));
    });

    const presign = (expiresIn: number) =>
      getSignedUrl(
        client,
        new GetObjectCommand({ Bucket: BUCKET, Key: key, ResponseContentDisposition: disposition }),
        {
          expiresIn,
        },
      );

    it('serves the object with the requested Content-Disposition', async () => {
      const response = await fetch(await presign(60));

      expect(response.status).toBe(200);
      expect(response.headers.get('content-disposition')).toBe(disposition);
      expect(await response.text()).toBe('hello, presigned world');
    });

    it('refuses the URL with one character of the signature changed', async () => {
      const url = new URL(await presign(60));
      const signature = url.searchParams.get('X-Amz-Signature')!;
      url.searchParams.set(
        'X-Amz-Signature',
        `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`,
      );

      const response = await fetch(url);

      expect(response.status).toBe(403);
      expect(await response.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    });

    it.each([
      ['a query parameter', (url: URL) => url.searchParams.set('response-content-disposition', 'inline')],
      ['the expiry', (url: URL) => url.searchParams.set('X-Amz-Expires', '3600')],
      [
        'the key',
        (url: URL) => {
          url.pathname = url.pathname.replace('report', 'other');
        },
      ],
      ['the date', (url: URL) => url.searchParams.set('X-Amz-Date', '20990101T000000Z')],
    ])('refuses the URL with %s changed', async (_what, tamper) => {
      const url = new URL(await presign(60));
      tamper(url);

      const response = await fetch(url);

      expect(response.status).toBe(403);
      expect(await response.text()).toMatch(/<Code>(SignatureDoesNotMatch|AccessDenied)<\/Code>/);
    });

    it('refuses an expired URL', async () => {
      const url = await presign(1);
      await new Promise((resolve) => setTimeout(resolve, 2_000));

      const response = await fetch(url);

      expect(response.status).toBe(403);
      expect(await response.text()).toContain('Request has expired');
    });

    it('refuses an unsigned request, like a private bucket', async () => {
      const response = await fetch(
        `${s3.endpoint}/${BUCKET}/${encodeURIComponent(key).replaceAll('%2F', '/')}`,
      );

      expect(response.status).toBe(403);
      expect(await response.text()).toContain('<Code>AccessDenied</Code>');
    });
  });

  it('accepts bucket-level requests and queries with characters SigV4 encodes (s3rver alone refuses both)', async () => {
    const head = await client.send(new HeadBucketCommand({ Bucket: BUCKET }));
    const all = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'big/' }));
    const quoted = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "reports/report (1)'" }),
    );
    const parenthesized = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'reports/report (1)' }),
    );

    expect(head.$metadata.httpStatusCode).toBe(200);
    expect(all.Contents?.map((object) => object.Key)).toEqual(['big/file.bin']);
    expect(quoted.KeyCount).toBe(0);
    expect(parenthesized.Contents?.map((object) => object.Key)).toEqual(['reports/report (1).txt']);
  });

  it('refuses requests signed with another secret', async () => {
    const forger = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: LOCAL_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });

    const list = await forger.send(new ListObjectsV2Command({ Bucket: BUCKET })).catch((e: unknown) => e);
    const put = await forger
      .send(new PutObjectCommand({ Bucket: BUCKET, Key: 'forged.txt', Body: 'x' }))
      .catch((e: unknown) => e);
    forger.destroy();

    expect((list as Error).name).toBe('SignatureDoesNotMatch');
    expect((put as Error).name).toBe('SignatureDoesNotMatch');
  });
});

describe('startDynamoDb', () => {
  let dynamo: LocalDynamoDb;
  let documents: DynamoDBDocumentClient;

  beforeAll(async () => {
    dynamo = await startDynamoDb({ port: 0, tables: [{ name: 'downloads', partitionKey: 'downloadId' }] });
    documents = DynamoDBDocumentClient.from(
      new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }),
    );
  });

  afterAll(async () => {
    documents.destroy();
    await dynamo.close();
  });

  it('applies a conditional UpdateItem with ReturnValues ALL_NEW, and refuses it once the condition fails', async () => {
    await documents.send(
      new PutCommand({ TableName: 'downloads', Item: { downloadId: 'd-1', status: 'RUNNING' } }),
    );
    const update = new UpdateCommand({
      TableName: 'downloads',
      Key: { downloadId: 'd-1' },
      UpdateExpression: 'SET #status = :ready, #url = :url',
      ConditionExpression: 'attribute_exists(downloadId) AND #status = :running',
      ExpressionAttributeNames: { '#status': 'status', '#url': 'url' },
      ExpressionAttributeValues: { ':ready': 'READY', ':running': 'RUNNING', ':url': 'http://s3/x' },
      ReturnValues: 'ALL_NEW',
    });

    const updated = await documents.send(update);
    const second = await documents.send(update).catch((e: unknown) => e);

    expect(updated.Attributes).toEqual({ downloadId: 'd-1', status: 'READY', url: 'http://s3/x' });
    expect((second as Error).name).toBe('ConditionalCheckFailedException');
  });

  it('keeps tables and items in a directory across restarts', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'local-dynamodb-'));
    try {
      const tables = [{ name: 'downloads', partitionKey: 'downloadId' }];
      const first = await startDynamoDb({ port: 0, directory, tables });
      const firstClient = DynamoDBDocumentClient.from(
        new DynamoDBClient({ endpoint: first.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS }),
      );
      await firstClient.send(new PutCommand({ TableName: 'downloads', Item: { downloadId: 'kept' } }));
      firstClient.destroy();
      await first.close();

      const second = await startDynamoDb({ port: 0, directory, tables });
      const secondClient = DynamoDBDocumentClient.from(
        new DynamoDBClient({
          endpoint: second.endpoint,
          region: 'us-east-1',
          credentials: LOCAL_CREDENTIALS,
        }),
      );
      const { Item } = await secondClient.send(
        new GetCommand({ TableName: 'downloads', Key: { downloadId: 'kept' } }),
      );
      secondClient.destroy();
      await second.close();

      expect(Item).toEqual({ downloadId: 'kept' });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
