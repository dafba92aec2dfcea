import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleCrc64Nvme, sampleSha256 } from '../../local/sample-upstream.ts';
import { readAdvertisedDigest } from '../../shared/checksum/advertised-digest.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';
import { localClients } from '../helpers/aws.ts';
import { type AcceptedDownload, download, getJson, startAsyncDownload } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { openSocket } from '../helpers/ws.ts';

const MB = 1_000_000;
let stack: RunningStack;
let aws: ReturnType<typeof localClients>;

beforeAll(async () => {
  stack = await startStack();
  aws = localClients(stack.endpoints);
});

afterAll(async () => {
  aws?.close();
  await stack?.stop();
});

/** Starts an async download of `path` and waits for its outcome on the WebSocket. */
async function outcomeOf(
  path: string,
): Promise<{ accepted: AcceptedDownload; message: Record<string, unknown> }> {
  const accepted = await startAsyncDownload(`${stack.endpoints.restApi}/download/${path}`);
  const client = await openSocket(accepted.webSocketUrl);
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const message = client.messages.find((m) => m.type === 'ready' || m.type === 'failed');
      if (message) return { accepted, message };
      if (Date.now() > deadline) throw new Error(`no outcome in 60 s: ${JSON.stringify(client.messages)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await client.close();
  }
}

/** What is left in S3 of a download: objects and open multipart uploads under its prefix. */
async function leftovers(downloadId: string) {
  const prefix = `downloads/${downloadId}/`;
  return { objects: await aws.objectsUnder(prefix), uploads: await aws.uploadsUnder(prefix) };
}

describe('the sample upstream ?digest=', () => {
  it('announces a correct Repr-Digest (1), a correct x-amz-checksum-crc64nvme (crc64nvme) and a wrong one (bad)', async () => {
    const base = `${stack.endpoints.upstream}sample/3MB`;
    const good = await download(`${base}?digest=1`);
    const crc = await download(`${base}?digest=crc64nvme`);
    const bad = await download(`${base}?digest=bad`);

    const sha256 = Buffer.from(sampleSha256(3 * MB), 'hex').toString('base64');
    expect(readAdvertisedDigest(good.headers)).toMatchObject({ algorithm: 'SHA256', value: sha256 });
    expect(readAdvertisedDigest(crc.headers)).toMatchObject({
      algorithm: 'CRC64NVME',
      value: crc64NvmeToBase64(sampleCrc64Nvme(3 * MB)),
    });
    expect(readAdvertisedDigest(bad.headers)?.value).not.toBe(sha256);
    // The bytes are the sample's whatever the digest says.
    for (const answer of [good, crc, bad]) expect(answer.sha256).toBe(sampleSha256(3 * MB));
  });

  it('refuses a digest mode it does not know with 400', async () => {
    const answer = await getJson(`${stack.endpoints.upstream}sample/3MB?digest=sha-1`);

    expect(answer.status).toBe(400);
    expect(JSON.stringify(answer.json)).toContain('digest must be one of');
  });
});

describe('checksums of async downloads', () => {
  it('verifies a correct Repr-Digest and shows the CRC64NVME of the bytes at the URL in ready, status and record', async () => {
    const { accepted, message: ready } = await outcomeOf('sample/20MB?digest=1&mode=async');

    const expected = { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(sampleCrc64Nvme(20 * MB)) };
    expect(ready).toMatchObject({ type: 'ready', size: 20 * MB, checksum: expected });
    const status = await getJson(accepted.statusUrl);
    expect(status.json).toMatchObject({ status: 'READY', checksum: expected });
    expect((await aws.record(accepted.downloadId))?.checksum).toEqual(expected);

    // The URL asks S3 for the stored checksum (S3 answers x-amz-checksum-crc64nvme; the local S3
    // server does not store checksums), and serves exactly the bytes the checksum describes.
    const url = ready.url as string;
    expect(new URL(url).searchParams.get('x-amz-checksum-mode')).toBe('ENABLED');
    const file = await download(url, { keepBody: true });
    expect(file.status).toBe(200);
    expect(file.sha256).toBe(sampleSha256(20 * MB));
    expect(crc64NvmeToBase64(crc64Nvme(file.body as Buffer))).toBe(expected.value);
  });

  it('ends a download whose bytes do not match its Repr-Digest in failed ChecksumMismatch, nothing left in S3', async () => {
    // 20 MB: two 8 MiB parts are uploaded before the end, so a multipart upload exists and is aborted.
    const { accepted, message: failed } = await outcomeOf('sample/20MB?digest=bad&mode=async');

    expect(failed).toMatchObject({ type: 'failed', error: { code: 'ChecksumMismatch' } });
    expect((failed.error as { message: string }).message).toMatch(/SHA256 .*repr-digest header announced/);
    const status = await getJson(accepted.statusUrl);
    expect(status.json).toMatchObject({ status: 'FAILED', error: { code: 'ChecksumMismatch' } });
    expect(status.json.url).toBeUndefined();
    expect(status.json.checksum).toBeUndefined();
    expect(await leftovers(accepted.downloadId)).toEqual({ objects: [], uploads: [] });
  });

  it('verifies an x-amz-checksum-crc64nvme on a body of unknown length, and fails a wrong one on a one-part file', async () => {
    const good = await outcomeOf('sample/12MB?digest=crc64nvme&chunked=1');
    const bad = await outcomeOf('sample/1MB?digest=bad-crc64nvme&mode=async');

    expect(good.message).toMatchObject({
      type: 'ready',
      checksum: { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(sampleCrc64Nvme(12 * MB)) },
    });
    expect(bad.message).toMatchObject({ type: 'failed', error: { code: 'ChecksumMismatch' } });
    expect(await leftovers(bad.accepted.downloadId)).toEqual({ objects: [], uploads: [] });
  });

  it('fails a download whose digest header is malformed as UpstreamRejected, naming the header', async () => {
    const { accepted, message: failed } = await outcomeOf('sample/2MB?digest=malformed&mode=async');

    expect(failed).toMatchObject({ type: 'failed', error: { code: 'UpstreamRejected' } });
    expect((failed.error as { message: string }).message).toMatch(/repr-digest header is malformed/);
    expect(await leftovers(accepted.downloadId)).toEqual({ objects: [], uploads: [] });
  });

  it('computes the checksum when upstream announces none', async () => {
    const { message: ready } = await outcomeOf('sample/3MB?mode=async');

    expect(ready).toMatchObject({
      type: 'ready',
      checksum: { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(sampleCrc64Nvme(3 * MB)) },
    });
    const file = await download(ready.url as string, { keepBody: true });
    expect(
      createHash('sha256')
        .update(file.body as Buffer)
        .digest('hex'),
    ).toBe(sampleSha256(3 * MB));
  });
});
