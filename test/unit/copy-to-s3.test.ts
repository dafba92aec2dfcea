import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, vi } from 'vitest';
import { removeDownloadLeftovers } from '../../shared/downloads/cleanup.ts';
import { toObjectKey, toObjectPrefix } from '../../shared/downloads/copy-to-s3.ts';

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
