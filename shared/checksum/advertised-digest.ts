import { UpstreamRejectedError } from '../errors.ts';

/** The checksum algorithms the copy can verify, named as S3 names them (`ChecksumAlgorithm`). */
export type DigestAlgorithm = 'CRC64NVME' | 'CRC32' | 'CRC32C' | 'SHA1' | 'SHA256' | 'SHA512' | 'MD5';

/** A digest of the whole file that upstream announced in its headers. */
export interface AdvertisedDigest {
  algorithm: DigestAlgorithm;
  /** The digest's bytes in base64, the form S3 uses in `x-amz-checksum-*` and `Checksum*`. */
  value: string;
  /** The header it came from, for messages (lower case). */
  header: string;
}

/** Length in bytes of each algorithm's digest. */
export const DIGEST_LENGTHS: Readonly<Record<DigestAlgorithm, number>> = {
  CRC64NVME: 8,
  CRC32: 4,
  CRC32C: 4,
  SHA1: 20,
  SHA256: 32,
  SHA512: 64,
  MD5: 16,
};

/**
 * Which digest wins when upstream announces several: CRC64NVME first (the copy computes it in any
 * case, and it combines across ranges), then the strongest hash.
 */
const PREFERENCE: readonly DigestAlgorithm[] = [
  'CRC64NVME',
  'SHA512',
  'SHA256',
  'SHA1',
  'MD5',
  'CRC32C',
  'CRC32',
];

/** RFC 9530 `Repr-Digest` algorithm keys (IANA "Hash Algorithms for HTTP Digest Fields"). */
const REPR_DIGEST_KEYS: Readonly<Record<string, DigestAlgorithm>> = {
  'sha-256': 'SHA256',
  'sha-512': 'SHA512',
  md5: 'MD5',
  sha: 'SHA1',
  crc32c: 'CRC32C',
};

/** RFC 3230 `Digest` algorithm tokens (case-insensitive); their values are base64. */
const LEGACY_DIGEST_KEYS: Readonly<Record<string, DigestAlgorithm>> = {
  'sha-256': 'SHA256',
  'sha-512': 'SHA512',
  md5: 'MD5',
  sha: 'SHA1',
};

/** The `x-amz-checksum-*` headers S3 and S3-compatible origins send. */
const AMZ_CHECKSUM_HEADERS: Readonly<Record<string, DigestAlgorithm>> = {
  'x-amz-checksum-crc64nvme': 'CRC64NVME',
  'x-amz-checksum-crc32': 'CRC32',
  'x-amz-checksum-crc32c': 'CRC32C',
  'x-amz-checksum-sha256': 'SHA256',
  'x-amz-checksum-sha1': 'SHA1',
};

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function malformed(header: string, detail: string): UpstreamRejectedError {
  return new UpstreamRejectedError('MalformedDigest', `Upstream's ${header} header is malformed: ${detail}`);
}

/** Checks that `value` is the base64 of exactly one digest of `algorithm`; returns it trimmed. */
function checkedBase64(header: string, algorithm: DigestAlgorithm, raw: string): string {
  const value = raw.trim();
  const expected = DIGEST_LENGTHS[algorithm];
  if (!BASE64.test(value) || value.length % 4 !== 0 || Buffer.from(value, 'base64').length !== expected) {
    throw malformed(header, `the ${algorithm} value is not ${expected} bytes of base64`);
  }
  return value;
}

/** Splits a comma-separated field value into members (no digest value contains a comma). */
function members(value: string): string[] {
  return value
    .split(',')
    .map((member) => member.trim())
    .filter((member) => member.length > 0);
}

/** RFC 9530: a Structured Field Dictionary of `algorithm=:base64:` members, with optional parameters. */
function parseReprDigest(header: string, value: string): AdvertisedDigest[] {
  const found: AdvertisedDigest[] = [];
  const list = members(value);
  if (list.length === 0) throw malformed(header, 'it is empty');
  for (const member of list) {
    const match = /^([a-z*][a-z0-9_\-.*]*)=:([^:]*):(;.*)?$/.exec(member);
    if (!match) throw malformed(header, `"${member.slice(0, 40)}" is not an algorithm=:base64: member`);
    const algorithm = REPR_DIGEST_KEYS[match[1]!];
    // Algorithms this service cannot compute are skipped, as RFC 9530 §3 lets a recipient do.
    if (algorithm) found.push({ algorithm, value: checkedBase64(header, algorithm, match[2]!), header });
  }
  return found;
}

/** RFC 3230: `algorithm=value` members, the algorithm case-insensitive. */
function parseLegacyDigest(header: string, value: string): AdvertisedDigest[] {
  const found: AdvertisedDigest[] = [];
  const list = members(value);
  if (list.length === 0) throw malformed(header, 'it is empty');
  for (const member of list) {
    const separator = member.indexOf('=');
    if (separator <= 0) throw malformed(header, `"${member.slice(0, 40)}" is not an algorithm=value member`);
    const algorithm = LEGACY_DIGEST_KEYS[member.slice(0, separator).toLowerCase()];
    if (algorithm) {
      found.push({ algorithm, value: checkedBase64(header, algorithm, member.slice(separator + 1)), header });
    }
  }
  return found;
}

function headerValue(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
  name: string,
): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    return typeof value === 'string' ? value : value.join(', ');
  }
  return undefined;
}

/**
 * The digest of the whole file that upstream's response headers announce, if any: RFC 9530
 * `Repr-Digest`, RFC 3230 `Digest`, `Content-MD5` and S3's `x-amz-checksum-*` (full-object values
 * only: a multipart object's composite checksum, `…-N`, is a checksum of part checksums and cannot
 * be checked against the bytes). When several are announced, CRC64NVME wins, then the strongest
 * hash. Algorithms this service cannot compute are ignored.
 *
 * These headers describe the whole representation (`Content-MD5`: the body), so only read them
 * from a response that carries the whole file (status 200), not from a 206.
 *
 * @throws UpstreamRejectedError (code `MalformedDigest`) when a digest header is present but
 *   malformed: a download whose announced checksum cannot be read is not silently unchecked.
 */
export function readAdvertisedDigest(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
): AdvertisedDigest | undefined {
  const found: AdvertisedDigest[] = [];
  for (const [header, algorithm] of Object.entries(AMZ_CHECKSUM_HEADERS)) {
    const value = headerValue(headers, header);
    if (value === undefined) continue;
    if (/-\d+$/.test(value.trim())) continue; // composite checksum of a multipart object
    found.push({ algorithm, value: checkedBase64(header, algorithm, value), header });
  }
  const reprDigest = headerValue(headers, 'repr-digest');
  if (reprDigest !== undefined) found.push(...parseReprDigest('repr-digest', reprDigest));
  const digest = headerValue(headers, 'digest');
  if (digest !== undefined) found.push(...parseLegacyDigest('digest', digest));
  const contentMd5 = headerValue(headers, 'content-md5');
  if (contentMd5 !== undefined) {
    found.push({
      algorithm: 'MD5',
      value: checkedBase64('content-md5', 'MD5', contentMd5),
      header: 'content-md5',
    });
  }
  for (const algorithm of PREFERENCE) {
    const digest = found.find((candidate) => candidate.algorithm === algorithm);
    if (digest) return digest;
  }
  return undefined;
}

/**
 * Whether per-range checksums of this digest's algorithm can be combined into the whole file's
 * (`combineCrc64Nvme`), so a parallel ranged copy can verify it without a second pass.
 */
export function combinableDigest(digest: Pick<AdvertisedDigest, 'algorithm'>): boolean {
  return digest.algorithm === 'CRC64NVME';
}
