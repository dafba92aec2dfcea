import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalS3, startS3 } from '../../local/s3.ts';
import { type SampleUpstream, startSampleUpstream } from '../../local/sample-upstream.ts';
import { ConnectionPoster } from '../../shared/downloads/connections.ts';
import { CopyCancelledError, copyToS3 } from '../../shared/downloads/copy-to-s3.ts';
import { toObjectPrefix } from '../../shared/downloads/object-key.ts';
import type { DownloadRecord, DownloadStatus } from '../../shared/downloads/record.ts';
import type { DownloadStore } from '../../shared/downloads/store.ts';
import { localS3Client } from '../helpers/aws.ts';
import { testFetchConfig } from '../helpers/copy-config.ts';

// A copy outlives its execution when the execution is stopped or times out (Lambda does not stop
// the invocation). The watcher marks the download FAILED and cleans S3; the copy must then stop and
// leave nothing behind, also when it creates its upload only after that cleanup.
const BUCKET = 'downloads';
const MiB = 1024 * 1024;

describe('copyToS3 for a download settled elsewhere', () => {
  let upstream: SampleUpstream;
  let s3Server: LocalS3;
  let directory: string;
  let s3: S3Client;

  beforeAll(async () => {
    upstream = await startSampleUpstream({ port: 0 });
    directory = await mkdtemp(join(tmpdir(), 'copy-cancelled-'));
    s3Server = await startS3({ port: 0, directory, buckets: [BUCKET] });
    s3 = localS3Client(s3Server.endpoint);
  });

  afterAll(async () => {
    s3?.destroy();
    await s3Server?.close();
    await upstream?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  /**
   * A record store whose download is RUNNING until `settle()`; then, as the real store does, it
   * refuses progress and reads FAILED.
   */
  function storeSettledLater() {
    let status: DownloadStatus = 'RUNNING';
    const record = () =>
      ({ downloadId: 'x', status, bytes: 0, connections: {} }) as unknown as DownloadRecord;
    const store = {
      get: async () => record(),
      recordProgress: async () => (status === 'RUNNING' ? record() : undefined),
    };
    return {
      store: store as unknown as DownloadStore,
      settle: () => {
        status = 'FAILED';
      },
    };
  }

  async function leftovers(downloadId: string) {
    const prefix = toObjectPrefix(downloadId);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    return {
      uploads: (uploads.Uploads ?? []).map((upload) => upload.Key),
      objects: (objects.Contents ?? []).map((object) => object.Key),
    };
  }

  function copy(downloadId: string, key: string, store: DownloadStore, progressIntervalMs: number) {
    const [path, query] = key.split('?');
    const config = testFetchConfig(upstream.url, {
      partSizeBytes: 5 * MiB,
      queueSize: 2,
      downloadBucket: BUCKET,
    });
    const management = { send: async () => ({}) } as unknown as ApiGatewayManagementApiClient;
    return copyToS3(
      { downloadId, key: path as string, ...(query ? { query } : {}) },
      {
        config,
        s3,
        store,
        poster: new ConnectionPoster(management),
        logger: new Logger({ logLevel: 'SILENT' }),
        signal: new AbortController().signal,
        progressIntervalMs,
      },
    );
  }

  it('stops mid-copy and aborts the multipart upload it opened after the cleanup', async () => {
    const downloadId = crypto.randomUUID();
    const { store, settle } = storeSettledLater();
    // 30 MB at 10 MB/s: parts of 5 MiB are on their way when the download is settled.
    const copying = copy(downloadId, 'sample/30MB?rate=10000000', store, 100);
    const outcome = copying.then(
      () => 'completed',
      (error: unknown) => error,
    );
    for (let waited = 0; (await leftovers(downloadId)).uploads.length === 0; waited += 50) {
      if (waited > 10_000) throw new Error('no multipart upload started');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    settle();
    const error = await outcome;

    expect(error).toBeInstanceOf(CopyCancelledError);
    // Aborted before the copy's promise settled: nothing depends on a later cleanup.
    expect(await leftovers(downloadId)).toEqual({ uploads: [], objects: [] });
  });

  it('does not complete the upload of a download settled just before the last byte', async () => {
    const downloadId = crypto.randomUUID();
    const { store, settle } = storeSettledLater();
    // No progress report in between (an hour's interval): only the check before completing sees it.
    const copying = copy(downloadId, 'sample/12MB?rate=12000000', store, 3_600_000);
    const outcome = copying.then(
      () => 'completed',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    settle();

    expect(await outcome).toBeInstanceOf(CopyCancelledError);
    expect(await leftovers(downloadId)).toEqual({ uploads: [], objects: [] });
  });

  it('still completes a download nobody settled', async () => {
    const downloadId = crypto.randomUUID();
    const { store } = storeSettledLater();

    const copied = await copy(downloadId, 'sample/6MB', store, 100);

    expect(copied.size).toBe(6_000_000);
    expect((await leftovers(downloadId)).objects).toHaveLength(1);
  });
});
