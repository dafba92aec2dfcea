import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, UnauthorizedError } from '../errors.ts';
import type { DownloadRecord } from './record.ts';

/**
 * The download token: the proof that a caller is the one who started a download. 32 random bytes
 * (256 bits) in base64url, handed out once, in the 202 answer (`token`, and inside `webSocketUrl`
 * and `statusUrl`). The record keeps only its SHA-256, so a copy of the table hands out nothing.
 */
const TOKEN_BYTES = 32;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The header that carries the token (`wscat -H`, `curl -H`), for clients that keep it out of URLs. */
export const DOWNLOAD_TOKEN_HEADER = 'x-download-token';

/** The query parameter that carries the token (browsers cannot set WebSocket headers). */
export const DOWNLOAD_TOKEN_PARAMETER = 'token';

/**
 * The token a request carries, in the `X-Download-Token` header (any case) or `?token=`; a blank
 * value counts as absent.
 */
export function downloadTokenOf(
  headers: Readonly<Record<string, string | undefined>> | null | undefined,
  query: Readonly<Record<string, string | undefined>> | null | undefined,
): string | undefined {
  let fromHeader: string | undefined;
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() === DOWNLOAD_TOKEN_HEADER) fromHeader = value;
  }
  for (const value of [fromHeader, query?.[DOWNLOAD_TOKEN_PARAMETER]]) {
    if (value?.trim()) return value.trim();
  }
  return undefined;
}

/** A new token and the hash the record stores. */
export function createDownloadToken(): { token: string; tokenHash: string } {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, tokenHash: hashDownloadToken(token) };
}

/** SHA-256 of the token, hex. A token has 256 bits of entropy, so no salt or slow hash is needed. */
export function hashDownloadToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `token` is the download's token; compares the hashes in constant time. */
export function isTokenOf(record: Pick<DownloadRecord, 'tokenHash'>, token: string): boolean {
  if (!TOKEN_PATTERN.test(token) || typeof record.tokenHash !== 'string') return false;
  const expected = Buffer.from(record.tokenHash, 'hex');
  const actual = Buffer.from(hashDownloadToken(token), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** 401 without a token: checked before any lookup, so an id alone learns nothing, not even whether it exists. */
export function requireDownloadToken(token: string | undefined): string {
  if (token === undefined) {
    throw new UnauthorizedError(
      'DownloadTokenRequired',
      'This needs the download token from the 202 answer (?token= or the X-Download-Token header)',
    );
  }
  return token;
}

/** 403 unless `token` is the download's token. */
export function authorizeDownload(record: Pick<DownloadRecord, 'tokenHash'>, token: string): void {
  if (!isTokenOf(record, token)) {
    throw new ForbiddenError('InvalidDownloadToken', 'The download token does not match this download');
  }
}

/** The WebSocket URL that needs nothing else: `wscat -c "$webSocketUrl"`. */
export function toWebSocketUrl(endpoint: string, downloadId: string, token: string): string {
  const query = new URLSearchParams({ downloadId, [DOWNLOAD_TOKEN_PARAMETER]: token });
  return `${endpoint}?${query}`;
}

/** The status URL that needs nothing else: `curl "$statusUrl"`. */
export function toStatusUrl(baseUrl: string, downloadId: string, token: string): string {
  const query = new URLSearchParams({ [DOWNLOAD_TOKEN_PARAMETER]: token });
  return `${baseUrl}/downloads/${downloadId}?${query}`;
}
