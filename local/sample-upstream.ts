/**
 * The sample upstream: a small `node:http` server that plays the file origin for the local stack,
 * the tests and the benchmarks. Every sample is deterministic (its bytes depend only on the
 * offset), so a client can check a download of any size against `sampleSha256(size)` without
 * storing the file. Query parameters make it misbehave on purpose: throttle, fail mid-body,
 * answer late.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Crc64Nvme, crc64NvmeToBase64 } from '../shared/checksum/crc64nvme.ts';

/** Options for {@link startSampleUpstream}. */
export interface SampleUpstreamOptions {
  /** `0` (the default) picks a free port. */
  port?: number;
  /** Defaults to `127.0.0.1`. */
  host?: string;
  /** Receives one line per finished, failed or abandoned response. Silent when absent. */
  log?: (msg: string) => void;
}

/** A running sample upstream. */
export interface SampleUpstream {
  /** Base URL with a trailing slash, e.g. `http://127.0.0.1:3002/`. */
  url: string;
  port: number;
  /** Stops listening and destroys every open connection, in-flight responses included. */
  close(): Promise<void>;
}

/** The largest sample served: 100 GiB. */
export const MAX_SAMPLE_SIZE = 100 * 1024 ** 3;
/** The most rows `/sample/report.csv` serves. */
export const MAX_REPORT_ROWS = 10_000_000;
const DEFAULT_REPORT_ROWS = 1000;
/** The most rows `/sample/report.csv?gzip=1` serves (it is compressed in memory, for its length). */
export const MAX_GZIP_REPORT_ROWS = 1_000_000;
const MAX_DELAY_MS = 10 * 60_000;
// Fixed so that `Last-Modified` (and any `If-Range` built from it) never changes between runs.
const LAST_MODIFIED = new Date(Date.UTC(2024, 0, 1)).toUTCString();
/** `Last-Modified` of a sample after `changeAfter` made it change. */
const CHANGED_LAST_MODIFIED = new Date(Date.UTC(2024, 0, 2)).toUTCString();

// ---------------------------------------------------------------------------------------------
// Deterministic sample bytes
// ---------------------------------------------------------------------------------------------

const BLOCK_SIZE = 64 * 1024;

/** 64 KiB of xorshift32 output, stored twice in a row so any rotation of it is one subarray. */
const DOUBLED_BLOCK = ((): Buffer => {
  const block = Buffer.alloc(BLOCK_SIZE);
  let state = 0x9e3779b9;
  for (let i = 0; i < BLOCK_SIZE; i += 4) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    block.writeUInt32LE(state >>> 0, i);
  }
  return Buffer.concat([block, block]);
})();

/**
 * Each 64 KiB block of a sample is the base block rotated by an amount derived from the block
 * index (murmur3's finalizer), so a repeated, skipped or shifted chunk changes the sha256.
 */
function blockRotation(blockIndex: number): number {
  let h = (blockIndex + 0x7f4a7c15) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) & (BLOCK_SIZE - 1);
}

/**
 * The sample bytes at `offset`, as a zero-copy view of at most `maxLength` bytes that stops at
 * the next block boundary. The view shares memory with every other sample: never modify it.
 */
function samplePiece(offset: number, maxLength: number): Buffer {
  const inBlock = offset % BLOCK_SIZE;
  const from = blockRotation(Math.floor(offset / BLOCK_SIZE)) + inBlock;
  return DOUBLED_BLOCK.subarray(from, from + Math.min(maxLength, BLOCK_SIZE - inBlock));
}

/** Read-only views covering the sample bytes at `[start, end)`, in order. */
function* samplePieces(start: number, end: number): Generator<Buffer> {
  for (let offset = start; offset < end; ) {
    const piece = samplePiece(offset, end - offset);
    offset += piece.length;
    yield piece;
  }
}

function assertOffsets(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid sample offsets [${start}, ${end})`);
  }
}

/** The bytes at absolute offsets `[start, end)` of every sample (a fresh copy). */
export function sampleBytes(start: number, end: number): Buffer {
  assertOffsets(start, end);
  const out = Buffer.allocUnsafe(end - start);
  let at = 0;
  for (const piece of samplePieces(start, end)) at += piece.copy(out, at);
  return out;
}

const sha256Cache = new Map<number, string>();

/** Hex sha256 of the first `size` sample bytes, i.e. of a full `GET /sample/{size}`. Cached. */
export function sampleSha256(size: number): string {
  assertOffsets(0, size);
  const cached = sha256Cache.get(size);
  if (cached) return cached;
  const hash = createHash('sha256');
  for (const piece of samplePieces(0, size)) hash.update(piece);
  const hex = hash.digest('hex');
  sha256Cache.set(size, hex);
  return hex;
}

const crc64NvmeCache = new Map<number, bigint>();

/** CRC-64/NVME of the first `size` sample bytes (S3's `CRC64NVME`). Cached. */
export function sampleCrc64Nvme(size: number): bigint {
  assertOffsets(0, size);
  const cached = crc64NvmeCache.get(size);
  if (cached !== undefined) return cached;
  const crc = new Crc64Nvme();
  for (const piece of samplePieces(0, size)) crc.update(piece);
  const value = crc.digest();
  crc64NvmeCache.set(size, value);
  return value;
}

/** What `?digest=` may ask for. */
const DIGEST_MODES = ['1', 'crc64nvme', 'bad', 'bad-crc64nvme', 'malformed'] as const;
type DigestMode = (typeof DIGEST_MODES)[number];

/** A digest that matches no sample: the sha-256 of an empty string. */
const WRONG_SHA256 = createHash('sha256').update('').digest('base64');

/**
 * The digest header `?digest=` asks for, for a sample of `size` bytes: `1` a correct RFC 9530
 * `Repr-Digest: sha-256=:…:` (it describes the whole file, so a 206 carries it too), `crc64nvme`
 * a correct `x-amz-checksum-crc64nvme` (as S3 sends it: full responses only), `bad` and
 * `bad-crc64nvme` the same headers with a wrong value, `malformed` a `Repr-Digest` no parser accepts.
 */
function digestHeaders(mode: DigestMode | undefined, size: number, partial: boolean): Record<string, string> {
  switch (mode) {
    case undefined:
      return {};
    case '1':
      return { 'Repr-Digest': `sha-256=:${Buffer.from(sampleSha256(size), 'hex').toString('base64')}:` };
    case 'bad':
      return { 'Repr-Digest': `sha-256=:${WRONG_SHA256}:` };
    case 'crc64nvme':
      return partial ? {} : { 'x-amz-checksum-crc64nvme': crc64NvmeToBase64(sampleCrc64Nvme(size)) };
    case 'bad-crc64nvme':
      return partial ? {} : { 'x-amz-checksum-crc64nvme': crc64NvmeToBase64(sampleCrc64Nvme(size) ^ 1n) };
    case 'malformed':
      return { 'Repr-Digest': 'sha-256=not-a-byte-sequence' };
  }
}

function readDigestMode(query: URLSearchParams): DigestMode | undefined {
  const raw = query.get('digest');
  if (raw === null) return undefined;
  if (!(DIGEST_MODES as readonly string[]).includes(raw)) {
    throw new InvalidParameterError(`digest must be one of ${DIGEST_MODES.join(', ')}, got "${raw}"`);
  }
  return raw as DigestMode;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const SIZE_TOKEN = /^(\d{1,15})(?:\.(\d{1,15}))?(?:([kmgt])(i)?)?b?$/i;
const UNIT_EXPONENT: Readonly<Record<string, number>> = { k: 1, m: 2, g: 3, t: 4 };

/**
 * Parses a size such as `12345`, `10kB`, `5MB`, `1.5GB`, `512KiB`, `2GiB` into bytes.
 * `kB`/`MB`/`GB`/`TB` (any case) are powers of ten, `KiB`/`MiB`/`GiB`/`TiB` powers of two;
 * fractions round down. Returns `undefined` for anything else or above {@link MAX_SAMPLE_SIZE}.
 */
export function parseSampleSize(token: string): number | undefined {
  const match = SIZE_TOKEN.exec(token);
  if (!match) return undefined;
  const [, whole = '', fraction = '', prefix, binary] = match;
  const exponent = prefix ? (UNIT_EXPONENT[prefix.toLowerCase()] ?? 0) : 0;
  const unit = (binary ? 1024n : 1000n) ** BigInt(exponent);
  // BigInt keeps `4.35kB` at exactly 4350 bytes, where floating point would give 4349.
  const bytes = (BigInt(whole + fraction) * unit) / 10n ** BigInt(fraction.length);
  return bytes <= BigInt(MAX_SAMPLE_SIZE) ? Number(bytes) : undefined;
}

/** A byte range to serve, end exclusive. */
interface ByteRange {
  start: number;
  end: number;
}

/**
 * Reads a single-range `Range` header against a file of `size` bytes (RFC 9110 §14.1.2).
 * `undefined`: serve the whole file (no header, several ranges or a malformed one, which the RFC
 * lets a server ignore). `'unsatisfiable'`: answer 416.
 */
export function parseByteRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  const match = header ? /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size : Math.min(Number(last) + 1, size) };
}

/** How a response should (mis)behave, from its query string. */
interface Behaviour {
  chunked: boolean;
  /** Bytes per second. */
  rate: number | undefined;
  /** Body bytes to send before destroying the socket. */
  failAfter: number | undefined;
  /** Break the connection at `failAfter` with a TCP reset (the client reads ECONNRESET). */
  reset: boolean;
  /** Break only the first N responses to the same URL that reach `failAfter`; serve later ones whole. */
  failTimes: number | undefined;
  delayMs: number;
  /** Chunked framing that no HTTP parser accepts, right after the headers. */
  malformed: boolean;
  /**
   * The file "changes" once this many body bytes were served for its URL, over all responses: its
   * `ETag` and `Last-Modified` change, so `If-Match`/`If-Unmodified-Since` with the old ones get 412.
   */
  changeAfter: number | undefined;
  /** An origin without range support: no `Accept-Ranges`, and `Range` is ignored (200, whole file). */
  noRanges: boolean;
}

class InvalidParameterError extends Error {
  override readonly name = 'InvalidParameterError';
}

function readBehaviour(query: URLSearchParams): Behaviour {
  const size = (name: string, min: number): number | undefined => {
    const raw = query.get(name);
    if (raw === null) return undefined;
    const value = parseSampleSize(raw);
    if (value === undefined || value < min) {
      throw new InvalidParameterError(`${name} must be a byte count like 1048576 or 1MiB, got "${raw}"`);
    }
    return value;
  };
  const chunked = query.get('chunked');
  const failTimes = query.get('failTimes');
  if (failTimes !== null && !/^\d{1,6}$/.test(failTimes)) {
    throw new InvalidParameterError(`failTimes must be a count like 1, got "${failTimes}"`);
  }
  const delay = query.get('delayMs') ?? '0';
  const delayMs = Number(delay);
  if (!/^\d+$/.test(delay) || delayMs > MAX_DELAY_MS) {
    throw new InvalidParameterError(`delayMs must be an integer from 0 to ${MAX_DELAY_MS}, got "${delay}"`);
  }
  return {
    chunked: chunked === '1' || chunked === 'true',
    rate: size('rate', 1),
    failAfter: size('failAfter', 0),
    reset: query.get('reset') === '1',
    failTimes: failTimes === null ? undefined : Number(failTimes),
    delayMs,
    malformed: query.get('malformed') === '1',
    changeAfter: size('changeAfter', 0),
    noRanges: query.get('ranges') === '0',
  };
}

// ---------------------------------------------------------------------------------------------
// Report CSV
// ---------------------------------------------------------------------------------------------

const CSV_HEADER = 'id,date,customer,amount,currency\n';
const CUSTOMERS = [
  'Acme Corp',
  'Globex',
  'Initech',
  'Umbrella Ltd',
  'Hooli',
  'Stark Industries',
  'Wayne Enterprises',
  'Soylent',
  'Tyrell Corporation',
  'Cyberdyne Systems',
  'Wonka Industries',
  'Vandelay Industries',
  'Massive Dynamic',
  'Aperture Science',
  'Oscorp',
  'Duff Beer',
];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'JPY'];
// Customer, amount and currency repeat every TAIL_PERIOD rows; the date advances one day every
// ROWS_PER_DAY rows and is always 10 characters. That makes the exact length a formula.
const TAIL_PERIOD = 4093;
const ROWS_PER_DAY = 1000;
const FIRST_DAY_MS = Date.UTC(2020, 0, 1);

/** `customer,amount,currency\n` for row ids `i` with `i % TAIL_PERIOD === r`, ASCII only. */
const ROW_TAILS = Array.from({ length: TAIL_PERIOD }, (_, r): string => {
  let h = Math.imul(r ^ 0x5bd1e995, 0x27d4eb2d);
  h = Math.imul(h ^ (h >>> 15), 0x165667b1) >>> 0;
  const customer = CUSTOMERS[h % CUSTOMERS.length];
  const currency = CURRENCIES[(h >>> 8) % CURRENCIES.length];
  const amount = ((h >>> 4) % 5_000_000) / 100;
  return `${customer},${amount.toFixed(2)},${currency}\n`;
});
/** `TAIL_PREFIX_LENGTHS[n]`: total length of the tails of residues `1..n`. */
const TAIL_PREFIX_LENGTHS: number[] = [0];
for (let r = 1; r < TAIL_PERIOD; r++) {
  TAIL_PREFIX_LENGTHS.push((TAIL_PREFIX_LENGTHS[r - 1] ?? 0) + (ROW_TAILS[r]?.length ?? 0));
}
const TAIL_CYCLE_LENGTH = ROW_TAILS.reduce((sum, tail) => sum + tail.length, 0);

/** Total number of digits in the decimal ids `1..n`. */
function idDigits(n: number): number {
  let total = 0;
  for (let digits = 1, low = 1; low <= n; digits++, low *= 10) {
    total += (Math.min(n, low * 10 - 1) - low + 1) * digits;
  }
  return total;
}

/** Exact byte length of `/sample/report.csv?rows={rows}`, without generating it. */
export function reportCsvLength(rows: number): number {
  const cycles = Math.floor(rows / TAIL_PERIOD);
  const tails = cycles * TAIL_CYCLE_LENGTH + (TAIL_PREFIX_LENGTHS[rows % TAIL_PERIOD] ?? 0);
  // Per row: the id, `,`, the 10-character date and `,`, then the tail.
  return CSV_HEADER.length + idDigits(rows) + rows * 12 + tails;
}

/** The report, in buffers of roughly 64 KiB. */
function* reportCsvChunks(rows: number): Generator<Buffer> {
  let text = CSV_HEADER;
  let day = -1;
  let date = '';
  for (let id = 1; id <= rows; id++) {
    const rowDay = Math.floor((id - 1) / ROWS_PER_DAY);
    if (rowDay !== day) {
      day = rowDay;
      date = new Date(FIRST_DAY_MS + day * 86_400_000).toISOString().slice(0, 10);
    }
    text += `${id},${date},${ROW_TAILS[id % TAIL_PERIOD]}`;
    if (text.length >= BLOCK_SIZE) {
      yield Buffer.from(text, 'latin1');
      text = '';
    }
  }
  if (text) yield Buffer.from(text, 'latin1');
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/** Per-response state: aborted when the client goes away (or the server closes the socket). */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  gone: AbortSignal;
}

function sendJson(
  ex: Exchange,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): undefined {
  const text = status === 204 || status === 304 ? '' : `${JSON.stringify(body)}\n`;
  ex.res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  ex.res.end(ex.req.method === 'HEAD' ? undefined : text);
}

function sendError(ex: Exchange, status: number, error: string, message: string): undefined {
  sendJson(ex, status, { error, message });
}

function waitForDrain(ex: Exchange): Promise<void> {
  return new Promise((resolve) => {
    if (ex.gone.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      ex.res.off('drain', done);
      ex.gone.removeEventListener('abort', done);
      resolve();
    };
    ex.res.on('drain', done);
    ex.gone.addEventListener('abort', done);
  });
}

/** Waits `ms`, or less if the client goes away; `false` in that case. */
async function pause(ms: number, gone: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal: gone });
    return true;
  } catch {
    return false;
  }
}

/**
 * A token bucket refilled from the clock. The returned function waits (in steps of at least
 * 20 ms) until it may hand out up to `wanted` bytes, and says how many; `0` once the client is
 * gone. Steps are at most 1/40 s of data; the bucket starts empty, so a throttled response never
 * bursts ahead of its rate, and holds two steps or 50 ms of data, so timer lateness is not lost
 * as throughput.
 */
function createThrottle(rate: number, gone: AbortSignal): (wanted: number) => Promise<number> {
  const step = Math.max(1, Math.min(BLOCK_SIZE, Math.floor(rate / 40)));
  // At least 50 ms of data: a 20 ms sleep at high rates must not overflow (and waste) the bucket.
  const capacity = Math.max(2 * step, rate / 20);
  let tokens = 0;
  let last = performance.now();
  return async (wanted) => {
    const want = Math.min(wanted, step);
    for (;;) {
      const now = performance.now();
      tokens = Math.min(capacity, tokens + ((now - last) * rate) / 1000);
      last = now;
      if (tokens >= want) {
        tokens -= want;
        return want;
      }
      if (!(await pause(Math.max(20, Math.ceil(((want - tokens) * 1000) / rate)), gone))) return 0;
    }
  };
}

/** How a response ended, for the log: e.g. `client closed after 65536 body bytes`. */
type BodyOutcome = string;

/**
 * Writes the chunks, honouring backpressure, the rate limit and `failAfter`. Stops as soon as
 * the client goes away.
 */
async function writeBody(
  ex: Exchange,
  chunks: Iterable<Buffer>,
  behaviour: Behaviour,
  onSent: (bytes: number) => void = () => {},
): Promise<BodyOutcome> {
  const { res, gone } = ex;
  if (behaviour.malformed) {
    res.flushHeaders();
    res.socket?.end('not-a-chunk-size\r\n\r\n');
    return 'sent malformed framing';
  }
  const throttle = behaviour.rate === undefined ? undefined : createThrottle(behaviour.rate, gone);
  let failAfter = behaviour.failAfter;
  let sent = 0;
  const ended = (how: string): BodyOutcome => `${how} after ${sent} body bytes`;
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      if (gone.aborted) return ended('client closed');
      let piece = chunk.subarray(at, at + (throttle ? await throttle(chunk.length - at) : chunk.length));
      if (gone.aborted) return ended('client closed');
      if (failAfter !== undefined && sent + piece.length > failAfter) {
        if (takeFailure(ex, behaviour)) {
          piece = piece.subarray(0, failAfter - sent);
          await failNow(ex, piece, behaviour);
          sent += piece.length;
          return ended('failed on purpose');
        }
        failAfter = undefined;
      }
      at += piece.length;
      sent += piece.length;
      onSent(piece.length);
      if (!res.write(piece)) await waitForDrain(ex);
    }
  }
  if (gone.aborted) return ended('client closed');
  res.end();
  return ended('sent');
}

/** Failures performed so far per URL, for `failTimes`. */
const failuresByUrl = new Map<string, number>();
/** Body bytes served so far per URL, for `changeAfter`. */
const servedByUrl = new Map<string, number>();

/**
 * RFC 9110 §13.1.1 and §13.1.4: `If-Match` (strong comparison, so a weak tag never matches) and,
 * without it, `If-Unmodified-Since`. `true`: answer 412.
 */
function preconditionFails(ex: Exchange, etag: string, lastModified: string): boolean {
  const ifMatch = ex.req.headers['if-match'];
  if (ifMatch !== undefined) {
    const tags = ifMatch.split(',').map((tag) => tag.trim());
    return !tags.includes('*') && !tags.includes(etag);
  }
  const ifUnmodifiedSince = ex.req.headers['if-unmodified-since'];
  if (ifUnmodifiedSince === undefined) return false;
  const since = Date.parse(ifUnmodifiedSince);
  return !Number.isNaN(since) && Date.parse(lastModified) > since;
}

/** Whether this response is to fail at `failAfter`: always, or while `failTimes` is not used up. */
function takeFailure(ex: Exchange, behaviour: Behaviour): boolean {
  if (behaviour.failTimes === undefined) return true;
  const url = `${ex.url.pathname}${ex.url.search}`;
  const failures = failuresByUrl.get(url) ?? 0;
  if (failures >= behaviour.failTimes) return false;
  failuresByUrl.set(url, failures + 1);
  return true;
}

/**
 * Sends the last bytes (and the headers, if still pending), then destroys the socket: a plain close,
 * or with `reset` a TCP reset.
 */
async function failNow(ex: Exchange, lastPiece: Buffer, behaviour: Behaviour): Promise<void> {
  const { res } = ex;
  // Without waiting for the write to reach the socket, destroy() would discard it. An empty
  // write is not framed by `res`, so push the headers out (a no-op once sent) and wait on the socket.
  await new Promise<void>((resolve) => {
    if (lastPiece.length > 0) {
      res.write(lastPiece, () => resolve());
    } else if (res.socket) {
      res.flushHeaders();
      res.socket.write(Buffer.alloc(0), () => resolve());
    } else {
      resolve();
    }
  });
  if (!behaviour.reset) {
    res.socket?.destroy();
    return;
  }
  // A reset right after the last write often reaches the client as a plain end of stream (its
  // kernel reports the reset while the data is still being read); a moment later it is a reset.
  await sleep(20);
  res.socket?.resetAndDestroy();
}

function commonHeaders(
  contentType: string,
  fileName: string,
  etag: string,
  length: number,
  behaviour: Behaviour,
): Record<string, string | number> {
  return {
    'Content-Type': contentType,
    'Content-Disposition': `attachment; filename="${fileName}"`,
    ETag: etag,
    'Last-Modified': LAST_MODIFIED,
    'Cache-Control': 'no-store',
    ...(behaviour.chunked || behaviour.malformed ? {} : { 'Content-Length': length }),
  };
}

async function serveSample(ex: Exchange, sizeToken: string): Promise<BodyOutcome | undefined> {
  const size = parseSampleSize(sizeToken);
  if (size === undefined) {
    sendError(
      ex,
      400,
      'InvalidSize',
      `"${sizeToken}" is not a size like 12345, 10kB, 5MB, 512KiB or 2GiB (max 100 GiB)`,
    );
    return undefined;
  }
  const behaviour = readBehaviour(ex.url.searchParams);
  const digestMode = readDigestMode(ex.url.searchParams);
  if (behaviour.delayMs > 0 && !(await pause(behaviour.delayMs, ex.gone)))
    return 'client closed during delayMs';

  const urlKey = `${ex.url.pathname}${ex.url.search}`;
  const changed =
    behaviour.changeAfter !== undefined && (servedByUrl.get(urlKey) ?? 0) >= behaviour.changeAfter;
  const etag = changed ? `"sample-${size}-changed"` : `"sample-${size}"`;
  const lastModified = changed ? CHANGED_LAST_MODIFIED : LAST_MODIFIED;
  if (preconditionFails(ex, etag, lastModified)) {
    sendJson(
      ex,
      412,
      { error: 'PreconditionFailed', message: 'The sample changed' },
      { ETag: etag, 'Last-Modified': lastModified },
    );
    return undefined;
  }
  const ifRange = ex.req.headers['if-range'];
  // A stale `If-Range` means the client's partial copy is of another file: send it all.
  const honourRange =
    !behaviour.noRanges && (ifRange === undefined || ifRange === etag || ifRange === lastModified);
  const range = honourRange ? parseByteRange(ex.req.headers.range, size) : undefined;
  if (range === 'unsatisfiable') {
    sendJson(
      ex,
      416,
      { error: 'RangeNotSatisfiable', message: `The sample has ${size} bytes` },
      { 'Content-Range': `bytes */${size}`, 'Accept-Ranges': 'bytes' },
    );
    return undefined;
  }
  const { start, end } = range ?? { start: 0, end: size };
  const headers = commonHeaders(
    'application/octet-stream',
    `sample-${sizeToken}.bin`,
    etag,
    end - start,
    behaviour,
  );
  if (!behaviour.noRanges) headers['Accept-Ranges'] = 'bytes';
  headers['Last-Modified'] = lastModified;
  if (range) headers['Content-Range'] = `bytes ${start}-${end - 1}/${size}`;
  Object.assign(headers, digestHeaders(digestMode, size, range !== undefined));
  ex.res.writeHead(range ? 206 : 200, headers);
  if (ex.req.method === 'HEAD') {
    ex.res.end();
    return 'headers only';
  }
  return writeBody(ex, samplePieces(start, end), behaviour, (bytes) => {
    if (behaviour.changeAfter !== undefined) servedByUrl.set(urlKey, (servedByUrl.get(urlKey) ?? 0) + bytes);
  });
}

async function serveReport(ex: Exchange): Promise<BodyOutcome | undefined> {
  const rawRows = ex.url.searchParams.get('rows') ?? String(DEFAULT_REPORT_ROWS);
  const rows = Number(rawRows);
  if (!/^\d{1,9}$/.test(rawRows) || rows > MAX_REPORT_ROWS) {
    sendError(
      ex,
      400,
      'InvalidRows',
      `rows must be an integer from 0 to ${MAX_REPORT_ROWS}, got "${rawRows}"`,
    );
    return undefined;
  }
  // A server that ignores `Accept-Encoding: identity`: the body is gzipped, and Content-Length is
  // the encoded length.
  const gzip = ex.url.searchParams.get('gzip') === '1';
  if (gzip && rows > MAX_GZIP_REPORT_ROWS) {
    sendError(ex, 400, 'InvalidRows', `with gzip=1, rows must be at most ${MAX_GZIP_REPORT_ROWS}`);
    return undefined;
  }
  const behaviour = readBehaviour(ex.url.searchParams);
  if (behaviour.delayMs > 0 && !(await pause(behaviour.delayMs, ex.gone)))
    return 'client closed during delayMs';
  const body = gzip ? [gzipSync(Buffer.concat([...reportCsvChunks(rows)]))] : undefined;
  const headers = commonHeaders(
    'text/csv; charset=utf-8',
    'report.csv',
    `"report-${rows}${gzip ? '-gzip' : ''}"`,
    body ? (body[0]?.length ?? 0) : reportCsvLength(rows),
    behaviour,
  );
  headers['Accept-Ranges'] = 'none';
  if (gzip) headers['Content-Encoding'] = 'gzip';
  ex.res.writeHead(200, headers);
  if (ex.req.method === 'HEAD') {
    ex.res.end();
    return 'headers only';
  }
  return writeBody(ex, body ?? reportCsvChunks(rows), behaviour);
}

function serveStatus(ex: Exchange, rawCode: string): undefined {
  const code = Number(rawCode);
  if (!/^\d{3}$/.test(rawCode) || code < 200 || code > 599) {
    sendError(ex, 400, 'InvalidStatus', `"${rawCode}" is not a status code from 200 to 599`);
    return;
  }
  sendJson(ex, code, { status: code, message: `Answered ${code} on request` });
}

function serveRedirect(ex: Exchange, rawCount: string, rest: string): undefined {
  const count = Number(rawCount);
  if (!/^\d{1,2}$/.test(rawCount)) {
    sendError(ex, 400, 'InvalidRedirectCount', `"${rawCount}" is not a redirect count from 0 to 99`);
    return;
  }
  // `/redirect/0/x` still answers with one last hop, to `/x`: n + 1 redirects in all.
  const location = `${count > 0 ? `/redirect/${count - 1}` : ''}/${rest}${ex.url.search}`;
  sendJson(ex, 302, { location }, { Location: location });
}

function serveRedirectTo(ex: Exchange): undefined {
  const target = ex.url.searchParams.get('url') ?? '';
  let parsed: URL | undefined;
  try {
    parsed = new URL(target);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    sendError(ex, 400, 'InvalidUrl', 'url must be an absolute http(s) URL');
    return;
  }
  sendJson(ex, 302, { location: parsed.href }, { Location: parsed.href });
}

const ENDPOINTS = {
  'GET|HEAD /sample/{size}':
    'Deterministic bytes; size like 12345, 10kB, 5MB, 1.5GB (powers of 10) or 512KiB, 2GiB (powers of 2), max 100 GiB. Single Range supported.',
  'GET|HEAD /sample/report.csv?rows=N': `Deterministic CSV report, default ${DEFAULT_REPORT_ROWS} rows, max ${MAX_REPORT_ROWS}.`,
  'GET /status/{code}': 'Answers that status with a small JSON body.',
  'GET /redirect/{n}/{path}': '302 to /redirect/{n-1}/{path}, and from n = 0 to /{path}.',
  'GET /redirect-to?url={absolute URL}': '302 to that URL.',
  query: {
    chunked: '1: no Content-Length, chunked transfer encoding',
    rate: 'bytes per second (or a size like 1MB)',
    failAfter: 'send that many body bytes, then destroy the socket',
    reset: '1: with failAfter, break the connection with a TCP reset (ECONNRESET)',
    failTimes: 'with failAfter: break only the first N responses to the same URL, serve later ones whole',
    ranges:
      '0: an origin without range support (no Accept-Ranges; Range is ignored, 200 with the whole file)',
    changeAfter:
      'the file changes (new ETag and Last-Modified) once that many body bytes of this URL were served; If-Match/If-Unmodified-Since with the old ones get 412',
    gzip: `1 (report.csv only, up to ${MAX_GZIP_REPORT_ROWS} rows): gzipped body with Content-Encoding: gzip, whatever Accept-Encoding says`,
    delayMs: 'wait that long before sending the status line',
    digest:
      '/sample only. 1: a correct Repr-Digest (sha-256); crc64nvme: a correct x-amz-checksum-crc64nvme (full responses); bad, bad-crc64nvme: the same with a wrong value; malformed: a Repr-Digest no parser accepts',
    malformed:
      '1: chunked headers, then framing no HTTP parser accepts (a failure before the first body byte)',
  },
};

// Synchronous routes answer in full and return `undefined`.
type Route = (ex: Exchange, params: readonly string[]) => Promise<BodyOutcome | undefined> | undefined;

/** First match wins; the capture groups become `params`. */
const ROUTES: readonly (readonly [RegExp, Route])[] = [
  [/^\/$/, (ex) => sendJson(ex, 200, { name: 'sample-upstream', endpoints: ENDPOINTS })],
  [/^\/sample\/report\.csv$/, (ex) => serveReport(ex)],
  [/^\/sample\/([^/]+)$/, (ex, [size = '']) => serveSample(ex, decodeURIComponent(size))],
  [/^\/status\/([^/]+)$/, (ex, [code = '']) => serveStatus(ex, code)],
  [/^\/redirect\/([^/]+)\/(.*)$/, (ex, [count = '', rest = '']) => serveRedirect(ex, count, rest)],
  [/^\/redirect-to$/, (ex) => serveRedirectTo(ex)],
];

async function route(ex: Exchange): Promise<BodyOutcome | undefined> {
  const method = ex.req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    sendJson(ex, 405, { error: 'MethodNotAllowed', message: 'Only GET and HEAD' }, { Allow: 'GET, HEAD' });
    return undefined;
  }
  const path = ex.url.pathname;
  for (const [pattern, serve] of ROUTES) {
    const match = pattern.exec(path);
    if (match) return serve(ex, match.slice(1));
  }
  sendError(ex, 404, 'NotFound', `Nothing at ${path}; GET / lists the endpoints`);
  return undefined;
}

async function handle(req: IncomingMessage, res: ServerResponse, log: (msg: string) => void): Promise<void> {
  const goneController = new AbortController();
  res.on('close', () => goneController.abort());
  // Writes after the client left may emit 'error'; the 'close' above already stops the body.
  res.on('error', () => undefined);
  // Concatenated, not resolved: `new URL('//other/x', base)` would read `other` as the host.
  const target = req.url?.startsWith('/') ? req.url : '/';
  const ex: Exchange = {
    req,
    res,
    url: new URL(`http://sample-upstream.invalid${target}`),
    gone: goneController.signal,
  };
  const label = `${req.method} ${ex.url.pathname}${ex.url.search}`;
  try {
    const outcome = await route(ex);
    log(`${label} → ${res.statusCode}${outcome ? ` ${outcome}` : ''}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`${label} → error: ${message}`);
    if (res.headersSent) {
      res.destroy();
    } else if (error instanceof InvalidParameterError || error instanceof URIError) {
      sendError(ex, 400, 'InvalidParameter', message);
    } else {
      sendError(ex, 500, 'InternalError', message);
    }
  }
}

function toUrlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Starts the sample upstream; resolves once it listens. */
export async function startSampleUpstream(options: SampleUpstreamOptions = {}): Promise<SampleUpstream> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => undefined);
  const server: Server = createServer((req, res) => void handle(req, res, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${toUrlHost(host)}:${port}/`,
    port,
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// `npx tsx local/sample-upstream.ts [--port 3002] [--host 127.0.0.1]` runs it on its own.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string' }, 'exit-with-parent': { type: 'boolean' } },
  });
  // Started by the local stack, as a part of it: end when the stack's end of stdin closes (how the
  // stack stops it, and what happens when the stack is killed). A signal that would stop this process
  // is handed to the stack instead, so a signal to any process of the stack stops all of it. Should
  // the stack not answer, the signal still ends this process after a while.
  if (values['exit-with-parent']) {
    const stack = process.ppid;
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(signal, () => {
        try {
          process.kill(stack, signal);
        } catch {
          process.exit(0);
        }
        setTimeout(() => process.exit(0), 10_000).unref();
      });
    }
  }
  const upstream = await startSampleUpstream({
    port: Number(values.port ?? 3002),
    host: values.host ?? '127.0.0.1',
    log: (msg) => console.log(msg),
  });
  console.log(`sample upstream listening on ${upstream.url}`);
}
