import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { combinableDigest, readAdvertisedDigest } from '../../shared/checksum/advertised-digest.ts';
import { crc64Nvme, crc64NvmeToBase64 } from '../../shared/checksum/crc64nvme.ts';
import { createRunningDigest, verifyAdvertisedDigest } from '../../shared/checksum/running-digest.ts';
import { ChecksumMismatchError, UpstreamRejectedError } from '../../shared/errors.ts';

const BODY = Buffer.from('123456789');
const SHA256 = createHash('sha256').update(BODY).digest('base64');
const SHA512 = createHash('sha512').update(BODY).digest('base64');
const SHA1 = createHash('sha1').update(BODY).digest('base64');
const MD5 = createHash('md5').update(BODY).digest('base64');
const CRC64NVME = crc64NvmeToBase64(crc64Nvme(BODY));

describe('readAdvertisedDigest', () => {
  it('reads an RFC 9530 Repr-Digest', () => {
    expect(readAdvertisedDigest({ 'repr-digest': `sha-256=:${SHA256}:` })).toEqual({
      algorithm: 'SHA256',
      value: SHA256,
      header: 'repr-digest',
    });
  });

  it('takes the strongest of several Repr-Digest members, ignores unknown ones and parameters', () => {
    const digest = readAdvertisedDigest({
      'repr-digest': `unixsum=:AAAA:, sha-256=:${SHA256}:;x=1, sha-512=:${SHA512}:`,
    });
    expect(digest).toMatchObject({ algorithm: 'SHA512', value: SHA512 });
  });

  it('reads an RFC 3230 Digest, whatever the case of the algorithm', () => {
    expect(readAdvertisedDigest({ digest: `SHA-256=${SHA256}` })).toMatchObject({ algorithm: 'SHA256' });
    expect(readAdvertisedDigest({ digest: `md5=${MD5}, SHA=${SHA1}` })).toMatchObject({
      algorithm: 'SHA1',
      value: SHA1,
    });
  });

  it('reads Content-MD5', () => {
    expect(readAdvertisedDigest({ 'Content-MD5': MD5 })).toEqual({
      algorithm: 'MD5',
      value: MD5,
      header: 'content-md5',
    });
  });

  it.each([
    ['x-amz-checksum-crc64nvme', 'CRC64NVME', CRC64NVME],
    ['x-amz-checksum-crc32', 'CRC32', 'y/Q5Jg=='],
    ['x-amz-checksum-crc32c', 'CRC32C', '4waSgw=='],
    ['x-amz-checksum-sha256', 'SHA256', SHA256],
    ['x-amz-checksum-sha1', 'SHA1', SHA1],
  ])('reads %s', (header, algorithm, value) => {
    expect(readAdvertisedDigest({ [header]: value })).toEqual({ algorithm, value, header });
  });

  it('prefers CRC64NVME over any hash (the copy computes it anyway)', () => {
    const digest = readAdvertisedDigest({
      'repr-digest': `sha-512=:${SHA512}:`,
      'x-amz-checksum-crc64nvme': CRC64NVME,
    });
    expect(digest).toMatchObject({ algorithm: 'CRC64NVME', value: CRC64NVME });
  });

  it("skips S3's composite checksum of a multipart object (a checksum of part checksums)", () => {
    expect(readAdvertisedDigest({ 'x-amz-checksum-sha256': `${SHA256}-3` })).toBeUndefined();
  });

  it('is undefined when nothing is announced, or only algorithms it cannot compute', () => {
    expect(readAdvertisedDigest({ 'content-type': 'text/plain' })).toBeUndefined();
    expect(readAdvertisedDigest({ 'repr-digest': 'unixsum=:AAAA:' })).toBeUndefined();
    expect(readAdvertisedDigest({ digest: 'UNIXsum=30637' })).toBeUndefined();
  });

  it.each([
    ['repr-digest', 'sha-256=not-a-byte-sequence', /repr-digest header is malformed/],
    ['repr-digest', 'sha-256=:bm90IDMyIGJ5dGVz:', /SHA256 value is not 32 bytes of base64/],
    ['repr-digest', `sha-256=:${SHA256.slice(1)}:`, /SHA256 value is not 32 bytes/],
    ['repr-digest', '', /it is empty/],
    ['digest', 'SHA-256', /is not an algorithm=value member/],
    ['digest', `SHA-256=${Buffer.from(SHA256, 'base64').toString('hex')}`, /not 32 bytes of base64/],
    ['content-md5', 'abc', /content-md5 header is malformed/],
    ['x-amz-checksum-crc64nvme', 'AAAA', /CRC64NVME value is not 8 bytes/],
  ])('refuses a malformed %s (%s) with a clear error', (header, value, message) => {
    const read = () => readAdvertisedDigest({ [header]: value });
    expect(read).toThrow(UpstreamRejectedError);
    expect(read).toThrow(message);
    try {
      read();
    } catch (error) {
      expect(error).toMatchObject({ code: 'MalformedDigest', statusCode: 502 });
    }
  });

  it('accepts a header given as a list of values', () => {
    expect(readAdvertisedDigest({ 'repr-digest': ['unixsum=:AAAA:', `sha-256=:${SHA256}:`] })).toMatchObject({
      algorithm: 'SHA256',
    });
  });
});

describe('combinableDigest', () => {
  it('is true only for CRC64NVME', () => {
    expect(combinableDigest({ algorithm: 'CRC64NVME' })).toBe(true);
    for (const algorithm of ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'SHA512', 'MD5'] as const) {
      expect(combinableDigest({ algorithm })).toBe(false);
    }
  });
});

describe('createRunningDigest and verifyAdvertisedDigest', () => {
  it.each([
    ['CRC64NVME', CRC64NVME],
    ['CRC32', 'y/Q5Jg=='],
    ['CRC32C', '4waSgw=='],
    ['SHA1', SHA1],
    ['SHA256', SHA256],
    ['SHA512', SHA512],
    ['MD5', MD5],
  ] as const)('computes %s over chunks as over the whole', (algorithm, expected) => {
    const digest = createRunningDigest(algorithm);
    digest.update(BODY.subarray(0, 4));
    digest.update(BODY.subarray(4));
    expect(digest.digestBase64()).toBe(expected);
  });

  it('passes on a match and fails with ChecksumMismatch naming both values on a mismatch', () => {
    const advertised = { algorithm: 'SHA256', value: SHA256, header: 'repr-digest' } as const;
    expect(() => verifyAdvertisedDigest(advertised, SHA256)).not.toThrow();
    const mismatch = () => verifyAdvertisedDigest(advertised, SHA1);
    expect(mismatch).toThrow(ChecksumMismatchError);
    expect(mismatch).toThrow(`announced ${SHA256}`);
  });
});
