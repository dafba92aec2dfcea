import { describe, expect, it, vi } from 'vitest';
import {
  createDownloadToken,
  downloadTokenOf,
  hashDownloadToken,
  isTokenOf,
  toStatusUrl,
  toWebSocketUrl,
} from '../../shared/downloads/download-token.ts';
import { findAuthorizedDownload } from '../../shared/downloads/lookup.ts';
import type { DownloadRecord } from '../../shared/downloads/record.ts';
import type { DownloadStore } from '../../shared/downloads/store.ts';
import { HttpError } from '../../shared/errors.ts';

const DOWNLOAD_ID = '3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
const EXECUTION_ARN = `arn:aws:states:us-east-1:123456789012:execution:Downloads:${DOWNLOAD_ID}`;
const { token: TOKEN, tokenHash: TOKEN_HASH } = createDownloadToken();

function record(overrides: Partial<DownloadRecord> = {}): DownloadRecord {
  return {
    downloadId: DOWNLOAD_ID,
    key: 'exports/big.bin',
    status: 'READY',
    executionArn: EXECUTION_ARN,
    createdAt: '2025-06-01T12:00:00.000Z',
    updatedAt: '2025-06-01T12:01:00.000Z',
    expiresAt: 4_102_444_800,
    bytes: 100,
    tokenHash: TOKEN_HASH,
    connections: {},
    url: 'https://bucket.example.com/big.bin?sig=1',
    ...overrides,
  };
}

describe('createDownloadToken', () => {
  it('makes 256-bit base64url tokens, each new, with their SHA-256 as the hash', () => {
    const tokens = Array.from({ length: 100 }, () => createDownloadToken());

    for (const { token, tokenHash } of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
      expect(tokenHash).toBe(hashDownloadToken(token));
      expect(tokenHash).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(new Set(tokens.map(({ token }) => token)).size).toBe(100);
  });
});

describe('isTokenOf', () => {
  it('accepts the token whose hash the record keeps', () => {
    expect(isTokenOf(record(), TOKEN)).toBe(true);
  });

  it.each([
    ['another token', createDownloadToken().token],
    ['the stored hash itself', TOKEN_HASH],
    ['the token with one character changed', `${TOKEN.slice(0, -1)}${TOKEN.endsWith('A') ? 'B' : 'A'}`],
    ['a prefix of the token', TOKEN.slice(0, 42)],
    ['the token with padding', `${TOKEN}=`],
    ['an empty string', ''],
  ])('refuses %s', (_label, candidate) => {
    expect(isTokenOf(record(), candidate)).toBe(false);
  });

  it('refuses every token for a record without a (well-formed) hash', () => {
    expect(isTokenOf({ tokenHash: undefined as unknown as string }, TOKEN)).toBe(false);
    expect(isTokenOf({ tokenHash: 'abc' }, TOKEN)).toBe(false);
  });
});

describe('downloadTokenOf', () => {
  it.each<[string, Record<string, string> | null, Record<string, string> | null, string | undefined]>([
    ['the header as sent by wscat', { 'X-Download-Token': TOKEN }, null, TOKEN],
    ['the lower-case header', { 'x-download-token': TOKEN }, null, TOKEN],
    ['?token=', null, { token: TOKEN }, TOKEN],
    ['the header before ?token=', { 'X-Download-Token': TOKEN }, { token: 'other' }, TOKEN],
    ['?token= next to a blank header', { 'X-Download-Token': ' ' }, { token: TOKEN }, TOKEN],
    ['nothing', {}, {}, undefined],
    ['an empty ?token=', null, { token: '' }, undefined],
    ['a token under another name', { Authorization: TOKEN }, { downloadToken: TOKEN }, undefined],
  ])('reads %s', (_label, headers, query, expected) => {
    expect(downloadTokenOf(headers, query)).toBe(expected);
  });
});

describe('the URLs a 202 hands out', () => {
  it('carry the download id and the token, so each is one paste long', () => {
    const webSocketUrl = new URL(toWebSocketUrl('wss://ws.example.com/live', DOWNLOAD_ID, TOKEN));
    const statusUrl = new URL(toStatusUrl('https://api.example.com/prod', DOWNLOAD_ID, TOKEN));

    expect(webSocketUrl.origin + webSocketUrl.pathname).toBe('wss://ws.example.com/live');
    expect(Object.fromEntries(webSocketUrl.searchParams)).toEqual({ downloadId: DOWNLOAD_ID, token: TOKEN });
    expect(statusUrl.origin + statusUrl.pathname).toBe(
      `https://api.example.com/prod/downloads/${DOWNLOAD_ID}`,
    );
    expect(Object.fromEntries(statusUrl.searchParams)).toEqual({ token: TOKEN });
  });
});

function fakeStore(found: DownloadRecord | undefined) {
  const fake = { get: vi.fn(async (_downloadId: string) => found) };
  return { fake, store: fake as unknown as DownloadStore };
}

async function refusalOf(promise: Promise<unknown>): Promise<{ statusCode: number; code: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(HttpError);
    return { statusCode: (error as HttpError).statusCode, code: (error as HttpError).code };
  }
  throw new Error('expected a refusal');
}

describe('findAuthorizedDownload (GET /downloads/{id} and $connect)', () => {
  it('returns the download to the holder of its token', async () => {
    const { store } = fakeStore(record());

    await expect(findAuthorizedDownload(store, { downloadId: DOWNLOAD_ID }, TOKEN)).resolves.toMatchObject({
      downloadId: DOWNLOAD_ID,
      url: expect.any(String),
    });
  });

  it('refuses the download id alone with 401, without looking it up', async () => {
    const { store, fake } = fakeStore(record());

    expect(await refusalOf(findAuthorizedDownload(store, { downloadId: DOWNLOAD_ID }, undefined))).toEqual({
      statusCode: 401,
      code: 'DownloadTokenRequired',
    });
    expect(fake.get).not.toHaveBeenCalled();
  });

  it('refuses the execution ARN alone with 401 too', async () => {
    const { store } = fakeStore(record());

    expect(
      await refusalOf(findAuthorizedDownload(store, { executionArn: EXECUTION_ARN }, undefined)),
    ).toEqual({
      statusCode: 401,
      code: 'DownloadTokenRequired',
    });
  });

  it('refuses a wrong token with 403', async () => {
    const { store } = fakeStore(record());

    expect(
      await refusalOf(
        findAuthorizedDownload(store, { downloadId: DOWNLOAD_ID }, createDownloadToken().token),
      ),
    ).toEqual({ statusCode: 403, code: 'InvalidDownloadToken' });
  });

  it('answers 400 for a malformed id before asking for the token, and 404 for an unknown one', async () => {
    const { store } = fakeStore(undefined);

    expect(await refusalOf(findAuthorizedDownload(store, { downloadId: 'nope' }, undefined))).toMatchObject({
      statusCode: 400,
    });
    expect(await refusalOf(findAuthorizedDownload(store, { downloadId: DOWNLOAD_ID }, TOKEN))).toEqual({
      statusCode: 404,
      code: 'DownloadNotFound',
    });
  });
});
