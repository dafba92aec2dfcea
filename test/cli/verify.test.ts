import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CliError } from '../../cli/errors.ts';
import { EXIT } from '../../cli/exit-codes.ts';
import { PartialFile } from '../../cli/partial-file.ts';
import { decodeDigest, verifyDownload } from '../../cli/verify.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';

const BYTES = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(1000));
const digest = createHash('sha256').update(BYTES).digest();
let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'verify-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A partial file holding `bytes` in full. */
async function completeFile(bytes: Buffer): Promise<PartialFile> {
  const { file } = await PartialFile.open(join(directory, 'file'), { key: 'k', api: 'a' }, { resume: true });
  await file.setSize(bytes.length);
  await file.write(bytes, 0);
  return file;
}

async function failure(promise: Promise<unknown>): Promise<CliError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(CliError);
  return error as CliError;
}

describe('decodeDigest', () => {
  it('reads hex, base64 and base64url digests of the right length', () => {
    expect(decodeDigest(digest.toString('hex'), 32)).toEqual(digest);
    expect(decodeDigest(digest.toString('hex').toUpperCase(), 32)).toEqual(digest);
    expect(decodeDigest(digest.toString('base64'), 32)).toEqual(digest);
    expect(decodeDigest(digest.toString('base64url'), 32)).toEqual(digest);
  });

  it('refuses values that are not a digest of that length', () => {
    expect(decodeDigest('abc', 32)).toBeUndefined();
    expect(decodeDigest(`${digest.toString('base64')}-3`, 32)).toBeUndefined();
  });
});

describe('verifyDownload', () => {
  it('checks the size, and a sha256 given in hex or base64', async () => {
    const file = await completeFile(BYTES);
    for (const value of [digest.toString('hex'), digest.toString('base64')]) {
      const result = await verifyDownload(file, {
        size: BYTES.length,
        checksum: { algorithm: 'sha256', value },
      });
      expect(result).toEqual({ size: BYTES.length, checked: ['size', 'sha256'] });
    }
    await file.discard();
  });

  it('fails with the verification exit code on a checksum mismatch, naming both digests', async () => {
    const file = await completeFile(BYTES);
    const other = createHash('sha256').update('something else').digest('hex');

    const error = await failure(
      verifyDownload(file, { size: BYTES.length, checksum: { algorithm: 'SHA-256', value: other } }),
    );

    expect(error.exitCode).toBe(EXIT.verificationFailed);
    expect(error.title).toBe('SHA-256 checksum mismatch');
    expect(error.detail).toBe(`expected ${other}, got ${digest.toString('hex')}`);
    await file.discard();
  });

  it('fails when the size differs from the announced one, or bytes are missing', async () => {
    const file = await completeFile(BYTES);
    expect(
      (await failure(verifyDownload(file, { size: BYTES.length + 1, checksum: undefined }))).exitCode,
    ).toBe(EXIT.verificationFailed);
    await file.discard();

    const { file: partial } = await PartialFile.open(
      join(directory, 'partial'),
      { key: 'k', api: 'a' },
      { resume: true },
    );
    await partial.setSize(100);
    await partial.write(Buffer.alloc(50), 0);
    const incomplete = await failure(verifyDownload(partial, { size: 100, checksum: undefined }));
    expect(incomplete.title).toBe('the download is incomplete');
    await partial.discard();
  });

  it("checks the service's CRC64NVME checksum (base64, as in the ready message)", async () => {
    const file = await completeFile(BYTES);

    const result = await verifyDownload(file, {
      size: BYTES.length,
      checksum: { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(crc64Nvme(BYTES)) },
    });

    expect(result).toEqual({ size: BYTES.length, checked: ['size', 'crc64nvme'] });
    await file.discard();
  });

  it('fails a tampered file (one byte changed, same size) against its CRC64NVME with the verification exit code', async () => {
    const checksum = { algorithm: 'CRC64NVME', value: crc64NvmeToBase64(crc64Nvme(BYTES)) };
    const tampered = Buffer.from(BYTES);
    tampered[12_345] = (tampered[12_345] ?? 0) ^ 0x01;
    const file = await completeFile(tampered);

    const error = await failure(verifyDownload(file, { size: BYTES.length, checksum }));

    expect(error.exitCode).toBe(EXIT.verificationFailed);
    expect(error.title).toBe('CRC64NVME checksum mismatch');
    expect(error.detail).toBe(
      `expected ${crc64Nvme(BYTES).toString(16).padStart(16, '0')}, got ${crc64Nvme(tampered).toString(16).padStart(16, '0')}`,
    );
    await file.discard();
  });

  it('says why a checksum it cannot check was skipped, without failing', async () => {
    const file = await completeFile(BYTES);
    expect(
      await verifyDownload(file, { size: undefined, checksum: { algorithm: 'xxhash3', value: 'x' } }),
    ).toEqual({
      size: BYTES.length,
      checked: ['size'],
      skipped: 'unknown checksum algorithm "xxhash3"',
    });
    await file.discard();
  });
});
