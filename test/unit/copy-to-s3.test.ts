import { gunzipSync } from 'node:zlib';
import { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SampleUpstream, startSampleUpstream } from '../../local/sample-upstream.ts';
import { removeDownloadLeftovers } from '../../shared/downloads/cleanup.ts';
import type { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { copyToS3 } from '../../shared/downloads/copy-to-s3.ts';
import { toObjectKey, toObjectPrefix } from '../../shared/downloads/object-key.ts';
import type { DownloadStore } from '../../shared/downloads/store.ts';
import { testFetchConfig } from '../helpers/copy-config.ts';

const DOWNLOAD_ID = '3c2b1a09-8f7e-4d6c-b5a4-938271605f4e';

describe('toObjectKey and toObjectPrefix', () => {
  it("puts a download's object under its own prefix", () => {
    const key = toObjectKey(DOWNLOAD_ID, 'report 2024.csv');

    expect(key).toBe(`downloads/${DOWNLOAD_ID}/report 2024.csv`);
    expect(key.startsWith(toObjectPrefix(DOWNLOAD_ID))).toBe(true);
  });

  it('ends the prefix with a slash, so one id never matches the objects of a longer id', () => {
    expect(toObjectPrefix('abc')).toBe('downloads/abc/');
    expect(toObjectKey('abcd', 'file.bin').startsWith(toObjectPrefix('abc'))).toBe(false);
  });
});

describe('removeDownloadLeftovers', () => {
  it('lists and removes only under the prefix of the object key the copy used', async () => {
    const objectKey = toObjectKey(DOWNLOAD_ID, 'big.bin');
    const prefixes: unknown[] = [];
    const deleted: unknown[] = [];
    const s3 = {
      send: vi.fn(async (command: { input: Record<string, unknown> }) => {
        const name = command.constructor.name;
        if (name.startsWith('List')) prefixes.push(command.input.Prefix);
        if (name === 'ListMultipartUploadsCommand') return { Uploads: [{ Key: objectKey, UploadId: 'u-1' }] };
        if (name === 'ListObjectsV2Command') return { Contents: [{ Key: objectKey }] };
        deleted.push({ name, key: command.input.Key });
        return {};
      }),
    } as unknown as S3Client;

    const removed = await removeDownloadLeftovers(s3, 'bucket', DOWNLOAD_ID);

    expect(removed).toEqual({ abortedUploads: 1, deletedObjects: 1 });
    expect(prefixes).toEqual([`downloads/${DOWNLOAD_ID}/`, `downloads/${DOWNLOAD_ID}/`]);
    expect(deleted).toEqual([
      { name: 'AbortMultipartUploadCommand', key: objectKey },
      { name: 'DeleteObjectCommand', key: objectKey },
    ]);
  });
});

describe('copyToS3', () => {
  // The upstream is the sample upstream on a loopback port: resets and encodings need a real socket.
  let upstream: SampleUpstream;
  beforeAll(async () => {
    upstream = await startSampleUpstream({ port: 0 });
  });
  afterAll(async () => {
    await upstream?.close();
  });

  /** An S3 client that records what a single-part upload sends, or fails every command. */
  function fakeS3(failure?: Error) {
    const puts: Array<Record<string, unknown>> = [];
    const s3 = {
      config: {
        endpoint: async () => ({ protocol: 'http:', hostname: 's3.local', port: undefined, path: '/' }),
        forcePathStyle: true,
        requestChecksumCalculation: async () => 'WHEN_REQUIRED',
      },
      send: vi.fn(async (command: { input: Record<string, unknown> }) => {
        if (failure) throw failure;
        if (command.constructor.name === 'PutObjectCommand') puts.push(command.input);
        return { ETag: '"etag"' };
      }),
    };
    return { s3: s3 as unknown as S3Client, puts };
  }

  /** A store whose record says an earlier attempt reached `reachedBefore` bytes; records progress. */
  function fakeStore(reachedBefore = 0) {
    const progress: number[] = [];
    const store = {
      get: async () => ({ bytes: reachedBefore }),
      recordProgress: async (_id: string, bytes: number) => {
        progress.push(bytes);
        return undefined;
      },
    };
    return { store: store as unknown as DownloadStore, progress };
  }

  function copy(key: string, deps: { s3: S3Client; store: DownloadStore }) {
    const config = testFetchConfig(upstream.url, { partSizeBytes: 5 * 1024 * 1024, queueSize: 1 });
    const [path, query] = key.split('?');
    return copyToS3(
      { downloadId: DOWNLOAD_ID, key: path as string, ...(query ? { query } : {}) },
      {
        ...deps,
        config,
        poster: {} as ConnectionPoster,
        logger: new Logger({ logLevel: 'SILENT' }),
        signal: new AbortController().signal,
        progressIntervalMs: 0,
      },
    );
  }

  it('names an upstream that resets the connection mid-body after upstream (retryable), not after storage', async () => {
    const { s3 } = fakeS3();

    const failure = await copy('sample/1MB?failAfter=100000&reset=1', { s3, store: fakeStore().store }).catch(
      (error: unknown) => error,
    );

    expect(failure).toMatchObject({ name: 'UpstreamUnavailableError', statusCode: 502 });
    expect((failure as Error).cause).toMatchObject({ code: 'ECONNRESET' });
  });

  it('names an upstream that closes the connection mid-body after upstream too', async () => {
    const failure = await copy('sample/1MB?failAfter=100000', {
      s3: fakeS3().s3,
      store: fakeStore().store,
    }).catch((error: unknown) => error);

    expect(failure).toMatchObject({ name: 'UpstreamUnavailableError' });
  });

  it('names a failure of S3 itself S3UploadError', async () => {
    const { s3 } = fakeS3(
      Object.assign(new Error('We encountered an internal error'), { name: 'InternalError' }),
    );

    const failure = await copy('sample/1MB', { s3, store: fakeStore().store }).catch(
      (error: unknown) => error,
    );

    expect(failure).toMatchObject({ name: 'S3UploadError' });
  });

  it('stores a body upstream encoded with its Content-Encoding, byte for byte', async () => {
    const { s3, puts } = fakeS3();

    const copied = await copy('sample/report.csv?rows=500&gzip=1', { s3, store: fakeStore().store });

    const put = puts[0] as { Body: Buffer; ContentEncoding?: string; ContentType?: string };
    expect(put.ContentEncoding).toBe('gzip');
    expect(put.ContentType).toBe('text/csv; charset=utf-8');
    expect(copied.size).toBe(put.Body.length);
    expect(gunzipSync(put.Body).toString().split('\n')[0]).toBe('id,date,customer,amount,currency');
  });

  it('sets no Content-Encoding for a body upstream did not encode', async () => {
    const { s3, puts } = fakeS3();

    await copy('sample/report.csv?rows=5', { s3, store: fakeStore().store });

    expect(puts[0]).not.toHaveProperty('ContentEncoding');
  });

  it('never reports less progress than an earlier attempt reached', async () => {
    const { store, progress } = fakeStore(400_000);

    await copy('sample/1MB', { s3: fakeS3().s3, store });

    expect(progress[0]).toBe(400_000);
    expect(Math.min(...progress)).toBe(400_000);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });
});
