import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { detailedLog, type LocalLog } from './lambda-service.ts';

/**
 * The credentials every local AWS SDK client uses. @20minutes/s3rver 4 knows exactly one key pair,
 * `S3RVER`/`S3RVER`, and verifies SigV4 with it; dynalite and the other emulators ignore credentials.
 */
// Not frozen: the SDK records where credentials came from on the object it is given.
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3Options {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** Where s3rver keeps buckets and objects (created if missing, kept on close). */
  directory: string;
  /** Buckets to create at start (existing ones are kept). */
  buckets: string[];
  /**
   * Serve requests without any signature (s3rver's own default). Off by default: like a private
   * bucket, unsigned requests get 403 AccessDenied, so only presigned URLs open objects.
   */
  allowAnonymous?: boolean;
  log?: LocalLog;
}

export interface LocalS3 {
  /** `http://127.0.0.1:PORT`; clients need `forcePathStyle: true`. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

interface KoaContext {
  method: string;
  req: IncomingMessage;
  state: Record<string, unknown>;
  status: number;
  type: string;
  body: unknown;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

interface S3rverInstance {
  /** Koa's middleware stack; s3rver's own middleware is already in it. */
  middleware: KoaMiddleware[];
  httpServer?: Server;
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

// s3rver and its account registry are CommonJS without type declarations.
const require = createRequire(import.meta.url);
const S3rver = require('@20minutes/s3rver') as S3rverConstructor;
const AWSAccount = require('@20minutes/s3rver/lib/models/account.js') as {
  registry: Map<string, unknown>;
};

/**
 * Starts @20minutes/s3rver with the buckets configured, on 127.0.0.1. s3rver verifies SigV4 (header
 * and presigned) and expiry; `localS3Extensions` works around one bug of that verification and adds
 * the multipart operations s3rver lacks (ListMultipartUploads, AbortMultipartUpload, NoSuchUpload).
 */
export async function startS3(options: S3Options): Promise<LocalS3> {
  const host = options.host ?? '127.0.0.1';
  const s3rver = new S3rver({
    port: options.port,
    address: host,
    directory: options.directory,
    silent: true,
    vhostBuckets: false,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  s3rver.middleware.unshift(localS3Extensions(options.directory, options.allowAnonymous ?? false));
  const { port } = await s3rver.run();
  detailedLog(options.log)('s3: started', { port, directory: options.directory, buckets: options.buckets });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async close() {
      const closed = s3rver.close();
      s3rver.httpServer?.closeAllConnections();
      await closed;
    },
  };
}

/**
 * Runs before s3rver's own middleware:
 * - Refuses unsigned requests (403 AccessDenied) unless `allowAnonymous`, like a private bucket.
 * - Checks SigV4 signatures itself and marks valid requests authenticated, which s3rver honours
 *   (it still checks expiry and everything else, and refuses what is not valid). s3rver 4.0.4's
 *   own canonical request is wrong in two ways that make it refuse correctly signed requests:
 *   it drops the trailing slash of bucket-level paths (`GET /bucket/?list-type=2`: every
 *   ListObjectsV2, ListObjects, HeadBucket of the current SDK), and it encodes query values with
 *   `encodeURIComponent`, which leaves `!'()*` as they are where SigV4 percent-encodes them (a
 *   presigned GET with `response-content-disposition=attachment; filename*=UTF-8''…`).
 * - Serves ListMultipartUploads (s3rver: NotImplemented) and AbortMultipartUpload (s3rver:
 *   MethodNotAllowed) from s3rver's upload directories, and answers UploadPart and
 *   CompleteMultipartUpload for an unknown upload id with 404 NoSuchUpload, as S3 does.
 */
function localS3Extensions(directory: string, allowAnonymous: boolean): KoaMiddleware {
  return async (ctx, next) => {
    const url = new URL(ctx.req.url ?? '/', 'http://localhost');
    const query = parseQuery(url.search);
    const params = new Map(query);
    const authorization = ctx.req.headers.authorization;
    const presigned = params.has('X-Amz-Algorithm') || params.has('Signature');
    if (!authorization && !presigned) {
      if (!allowAnonymous && ctx.method !== 'OPTIONS')
        return sendS3Error(ctx, 403, 'AccessDenied', 'Access Denied');
      return next();
    }

    const [bucket = '', ...keySegments] = url.pathname.slice(1).split('/').map(safeDecode);
    const key = keySegments.join('/');
    const uploadId = params.get('uploadId');
    const listUploads = ctx.method === 'GET' && key === '' && params.has('uploads');
    const abortUpload = ctx.method === 'DELETE' && key !== '' && uploadId !== undefined;
    if (listUploads || abortUpload) {
      const verified = verifySigV4(ctx.req, url.pathname, query);
      if (!verified.ok) return sendS3Error(ctx, 403, verified.code, verified.message);
      if (!bucket || !(await exists(join(directory, bucket)))) {
        return sendS3Error(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
      }
      if (listUploads) {
        ctx.status = 200;
        ctx.type = 'application/xml';
        ctx.body = await listMultipartUploads(directory, bucket, params.get('prefix') ?? '');
        return;
      }
      const upload = await readUpload(directory, bucket, uploadId ?? '');
      if (!upload || upload.key !== key) return sendNoSuchUpload(ctx);
      await rm(upload.path, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    if (uploadId !== undefined && (ctx.method === 'PUT' || ctx.method === 'POST') && key !== '') {
      const upload = await readUpload(directory, bucket, uploadId);
      if (!upload || upload.key !== key) return sendNoSuchUpload(ctx);
    }

    // s3rver's own check (which still runs, with expiry) trusts a request marked authenticated.
    const verified = verifySigV4(ctx.req, url.pathname, query);
    if (verified.ok) {
      const account = AWSAccount.registry.get(verified.accessKeyId);
      if (account) ctx.state.account = account;
    }
    return next();
  };
}

interface StoredUpload {
  uploadId: string;
  key: string;
  path: string;
  initiated: Date;
}

// s3rver's FilesystemStore keeps an upload in `<directory>/<bucket>/._S3rver_uploads/<uploadId>/`
// with the object key in a file named `key` (lib/stores/filesystem.js, initiateUpload).
function uploadsDirectory(directory: string, bucket: string): string {
  return join(directory, bucket, '._S3rver_uploads');
}

async function readUpload(
  directory: string,
  bucket: string,
  uploadId: string,
): Promise<StoredUpload | undefined> {
  if (!/^[0-9a-f]+$/.test(uploadId) || !bucket || bucket.includes('..')) return undefined;
  const path = join(uploadsDirectory(directory, bucket), uploadId);
  try {
    const keyFile = join(path, 'key');
    const [key, info] = await Promise.all([readFile(keyFile, 'utf8'), stat(keyFile)]);
    return { uploadId, key, path, initiated: info.mtime };
  } catch {
    return undefined;
  }
}

async function listMultipartUploads(directory: string, bucket: string, prefix: string): Promise<string> {
  let ids: string[] = [];
  try {
    ids = await readdir(uploadsDirectory(directory, bucket));
  } catch {
    // No upload was ever started in this bucket.
  }
  const uploads = (await Promise.all(ids.map((id) => readUpload(directory, bucket, id))))
    .filter((upload): upload is StoredUpload => upload?.key.startsWith(prefix) === true)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated.getTime() - b.initiated.getTime()));
  const owner = '<ID>123456789000</ID><DisplayName>S3rver</DisplayName>';
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Bucket>${escapeXml(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>`,
    '<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>',
    `<Prefix>${escapeXml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>`,
    ...uploads.map(
      (upload) =>
        `<Upload><Key>${escapeXml(upload.key)}</Key><UploadId>${upload.uploadId}</UploadId>` +
        `<Initiator>${owner}</Initiator><Owner>${owner}</Owner><StorageClass>STANDARD</StorageClass>` +
        `<Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
    ),
    '</ListMultipartUploadsResult>',
  ].join('');
}

function sendNoSuchUpload(ctx: KoaContext): void {
  sendS3Error(
    ctx,
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
  );
}

function sendS3Error(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`;
}

type Verification = { ok: true; accessKeyId: string } | { ok: false; code: string; message: string };

const SIGNATURE_MISMATCH: Verification = {
  ok: false,
  code: 'SignatureDoesNotMatch',
  message: 'The request signature we calculated does not match the signature you provided.',
};

/** Checks an AWS4-HMAC-SHA256 signature (header or presigned, with expiry) made with LOCAL_CREDENTIALS. */
function verifySigV4(
  req: IncomingMessage,
  pathname: string,
  query: ReadonlyArray<readonly [string, string]>,
): Verification {
  const fromQuery = new Map(query);
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  let amzDate: string | undefined;
  let payloadHash: string;
  const authorization = req.headers.authorization;
  if (authorization?.startsWith('AWS4-HMAC-SHA256 ')) {
    const fields = new Map(
      authorization
        .slice('AWS4-HMAC-SHA256 '.length)
        .split(',')
        .map((part) => {
          const [name = '', ...value] = part.trim().split('=');
          return [name, value.join('=')] as const;
        }),
    );
    credential = fields.get('Credential');
    signedHeaders = fields.get('SignedHeaders');
    signature = fields.get('Signature');
    amzDate = headerString(req, 'x-amz-date');
    payloadHash = headerString(req, 'x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD';
  } else if (fromQuery.get('X-Amz-Algorithm') === 'AWS4-HMAC-SHA256') {
    credential = fromQuery.get('X-Amz-Credential');
    signedHeaders = fromQuery.get('X-Amz-SignedHeaders');
    signature = fromQuery.get('X-Amz-Signature');
    amzDate = fromQuery.get('X-Amz-Date');
    payloadHash = fromQuery.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
    const signedAt = parseAmzDate(amzDate ?? '');
    const expires = Number(fromQuery.get('X-Amz-Expires'));
    if (signedAt === undefined || !Number.isFinite(expires) || Date.now() > signedAt + expires * 1000) {
      return { ok: false, code: 'AccessDenied', message: 'Request has expired' };
    }
  } else {
    return {
      ok: false,
      code: 'AccessDenied',
      message: 'Only AWS4-HMAC-SHA256 signatures are supported locally',
    };
  }
  if (!credential || !signedHeaders || !signature || !amzDate) return SIGNATURE_MISMATCH;
  const [accessKeyId, day, region, service, terminator] = credential.split('/');
  if (accessKeyId !== LOCAL_CREDENTIALS.accessKeyId) {
    return {
      ok: false,
      code: 'InvalidAccessKeyId',
      message: 'The AWS Access Key Id you provided does not exist in our records.',
    };
  }
  if (!day || !region || !service || !terminator) return SIGNATURE_MISMATCH;
  const canonicalRequest = [
    req.method ?? 'GET',
    pathname
      .split('/')
      .map((segment) => encodeRfc3986(safeDecode(segment)))
      .join('/'),
    canonicalQuery(query.filter(([name]) => name !== 'X-Amz-Signature')),
    signedHeaders
      .split(';')
      .map((name) => `${name}:${(headerString(req, name) ?? '').trim().replace(/\s+/g, ' ')}\n`)
      .join(''),
    signedHeaders,
    payloadHash,
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    `${day}/${region}/${service}/${terminator}`,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let signingKey: Buffer = createHmac('sha256', `AWS4${LOCAL_CREDENTIALS.secretAccessKey}`)
    .update(day)
    .digest();
  for (const part of [region, service, terminator])
    signingKey = createHmac('sha256', signingKey).update(part).digest();
  const expected = createHmac('sha256', signingKey).update(stringToSign).digest();
  const provided = Buffer.from(signature, 'hex');
  return provided.length === expected.length && timingSafeEqual(provided, expected)
    ? { ok: true, accessKeyId }
    : SIGNATURE_MISMATCH;
}

/** `20240102T030405Z` → epoch ms. */
function parseAmzDate(value: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hours, minutes, seconds] = match.map(Number) as number[];
  return Date.UTC(year!, month! - 1, day!, hours!, minutes!, seconds!);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function escapeXml(value: string): string {
  return value.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

/** Raw query pairs, percent-decoded once, in order. */
function parseQuery(search: string): Array<[string, string]> {
  if (search.length <= 1) return [];
  return search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const index = pair.indexOf('=');
      const key = index < 0 ? pair : pair.slice(0, index);
      const value = index < 0 ? '' : pair.slice(index + 1);
      return [safeDecode(key), safeDecode(value)];
    });
}

/** SigV4's canonical query string: RFC 3986 encoding, sorted by key, then value. */
function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs
    .map(([key, value]) => [encodeRfc3986(key), encodeRfc3986(value)] as const)
    .sort(([keyA, valueA], [keyB, valueB]) =>
      keyA < keyB ? -1 : keyA > keyB ? 1 : valueA < valueB ? -1 : valueA > valueB ? 1 : 0,
    )
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}
