import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
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

/** The parts of s3rver's FilesystemStore (lib/stores/filesystem.js) that `joinParts` uses or replaces. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
  putObjectMultipart(
    bucket: string,
    uploadId: string,
    parts: ReadonlyArray<{ number: number; etag: string }>,
  ): Promise<{ size: number; md5: string }>;
}

interface S3rverInstance {
  /** Koa's middleware stack; s3rver's own middleware is already in it. */
  middleware: KoaMiddleware[];
  store: FilesystemStore;
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
/** s3rver's error: its code picks the status (InvalidPart, InvalidPartOrder: 400) and the XML body. */
const S3Error = require('@20minutes/s3rver/lib/models/error.js') as new (
  code: string,
  message: string,
) => Error;

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
  const { store } = s3rver;
  store.putObjectMultipart = (bucket, uploadId, parts) => joinParts(store, bucket, uploadId, parts);
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
 * - Checks SigV4 signatures itself (header and presigned, with expiry) with the SDK's signer
 *   (`@smithy/signature-v4`): it refuses what does not verify (403) and marks the rest
 *   authenticated, which s3rver honours. s3rver 4.0.4's
 *   own canonical request is wrong in two ways that make it refuse correctly signed requests:
 *   it drops the trailing slash of bucket-level paths (`GET /bucket/?list-type=2`: every
 *   ListObjectsV2, ListObjects, HeadBucket of the current SDK), and it encodes query values with
 *   `encodeURIComponent`, which leaves `!'()*` as they are where SigV4 percent-encodes them (a
 *   presigned GET with `response-content-disposition=attachment; filename*=UTF-8''…`).
 * - Serves ListMultipartUploads (s3rver: NotImplemented), ListParts (with each part's
 *   `ChecksumCRC64NVME`, kept from its UploadPart) and AbortMultipartUpload
 *   (s3rver: MethodNotAllowed) from s3rver's upload directories, and answers UploadPart and
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
    const listParts = ctx.method === 'GET' && key !== '' && uploadId !== undefined;
    if (listUploads || abortUpload || listParts) {
      const verified = await verifySigV4(ctx.req, query);
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
      if (listParts) {
        ctx.status = 200;
        ctx.type = 'application/xml';
        ctx.body = await listUploadParts(upload, bucket, params);
        return;
      }
      await rm(upload.path, { recursive: true, force: true });
      ctx.status = 204;
      return;
    }
    let upload: StoredUpload | undefined;
    if (uploadId !== undefined && (ctx.method === 'PUT' || ctx.method === 'POST') && key !== '') {
      upload = await readUpload(directory, bucket, uploadId);
      if (!upload || upload.key !== key) return sendNoSuchUpload(ctx);
    }

    // This check decides: s3rver's own (which still runs) trusts a request marked authenticated.
    const verified = await verifySigV4(ctx.req, query);
    if (!verified.ok) return sendS3Error(ctx, 403, verified.code, verified.message);
    const account = AWSAccount.registry.get(verified.accessKeyId);
    if (account) ctx.state.account = account;
    await next();
    // s3rver drops checksums; keep an UploadPart's CRC64NVME next to the part for ListParts.
    const partNumber = params.get('partNumber');
    const checksum = headerString(ctx.req, 'x-amz-checksum-crc64nvme');
    if (upload && ctx.method === 'PUT' && partNumber && /^\d+$/.test(partNumber) && ctx.status === 200) {
      const file = join(upload.path, `${Number(partNumber)}.crc64nvme`);
      if (checksum) await writeFile(file, checksum);
      else await rm(file, { force: true });
    }
  };
}

/** Read size when joining parts: large reads keep a multi-GB CompleteMultipartUpload to seconds. */
const JOIN_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * CompleteMultipartUpload as S3 answers it, in place of s3rver's: the object's ETag is S3's
 * multipart ETag, the MD5 of the parts' MD5s with `-N` appended, and the parts are joined on disk
 * without hashing the whole object again. (s3rver streams every part through MD5 in 64 KiB reads
 * on the event loop, which made completing a 1 GB upload take 5 s here and held every other
 * request meanwhile; S3 completes in well under a second.)
 */
async function joinParts(
  store: FilesystemStore,
  bucket: string,
  uploadId: string,
  parts: ReadonlyArray<{ number: number; etag: string }>,
): Promise<{ size: number; md5: string }> {
  const uploadDirectory = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  const [key, metadata] = await Promise.all([
    readFile(join(uploadDirectory, 'key'), 'utf8'),
    readFile(join(uploadDirectory, 'metadata'), 'utf8').then(
      (text) => JSON.parse(text) as Record<string, unknown>,
    ),
  ]);
  // As S3: parts listed in ascending order, each one uploaded and named by its ETag.
  const numbers = parts.map((part) => part.number);
  if (numbers.some((number, index) => index > 0 && number <= (numbers[index - 1] as number))) {
    throw new S3Error(
      'InvalidPartOrder',
      'The list of parts was not in ascending order. Parts must be ordered by part number.',
    );
  }
  const partMd5s = await Promise.all(
    parts.map(async (part) => {
      const md5 = await readFile(join(uploadDirectory, `${part.number}.md5`), 'utf8').catch(() => undefined);
      if (md5?.trim() !== part.etag) {
        throw new S3Error(
          'InvalidPart',
          "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.",
        );
      }
      return md5.trim();
    }),
  );
  const objectPath = store.getResourcePath(bucket, key, 'object');
  await mkdir(dirname(objectPath), { recursive: true });
  // Joined beside the object and renamed over it at the end: a join that fails half-way (a full
  // disk) leaves no truncated object behind, and an object already at the key stays as it was.
  const joining = `${objectPath}.joining-${uploadId}`;
  let size = 0;
  try {
    const output = await open(joining, 'w');
    const buffer = Buffer.allocUnsafe(JOIN_CHUNK_BYTES);
    try {
      for (const number of numbers) {
        const part = await open(join(uploadDirectory, String(number)), 'r');
        try {
          for (;;) {
            const { bytesRead } = await part.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0) break;
            await output.write(buffer, 0, bytesRead);
            size += bytesRead;
          }
        } finally {
          await part.close();
        }
      }
    } finally {
      await output.close();
    }
    await rename(joining, objectPath);
  } catch (error) {
    await rm(joining, { force: true });
    throw error;
  }
  const etagOfEtags = createHash('md5');
  for (const md5 of partMd5s) etagOfEtags.update(Buffer.from(md5, 'hex'));
  const md5 = `${etagOfEtags.digest('hex')}-${numbers.length}`;
  // As s3rver's S3Object does for an object stored without a type.
  metadata['content-type'] ??= 'binary/octet-stream';
  await store.putMetadata(bucket, key, metadata, md5);
  await rm(uploadDirectory, { recursive: true });
  return { size, md5 };
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

/**
 * ListParts of one upload: s3rver keeps part N in the file `N` of the upload's directory, its MD5
 * (the part's ETag) in `N.md5`; the CRC64NVME its UploadPart carried is in `N.crc64nvme` (S3 lists
 * it for an upload created with a checksum algorithm). Pages of `max-parts` (default 1,000) after `part-number-marker`.
 */
async function listUploadParts(
  upload: StoredUpload,
  bucket: string,
  params: ReadonlyMap<string, string>,
): Promise<string> {
  const marker = Number(params.get('part-number-marker') ?? '0') || 0;
  const maxParts = Math.min(Number(params.get('max-parts') ?? '1000') || 1000, 1000);
  const numbers = (await readdir(upload.path))
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((number) => number > marker)
    .sort((a, b) => a - b);
  const page = numbers.slice(0, maxParts);
  const parts = await Promise.all(
    page.map(async (number) => {
      const path = join(upload.path, String(number));
      const [info, md5, crc64nvme] = await Promise.all([
        stat(path),
        readFile(`${path}.md5`, 'utf8').catch(() => ''),
        readFile(`${path}.crc64nvme`, 'utf8').catch(() => ''),
      ]);
      return { number, size: info.size, md5: md5.trim(), crc64nvme: crc64nvme.trim(), modified: info.mtime };
    }),
  );
  const truncated = numbers.length > page.length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Bucket>${escapeXml(bucket)}</Bucket><Key>${escapeXml(upload.key)}</Key><UploadId>${upload.uploadId}</UploadId>`,
    `<PartNumberMarker>${marker}</PartNumberMarker><NextPartNumberMarker>${page.at(-1) ?? marker}</NextPartNumberMarker>`,
    `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated><StorageClass>STANDARD</StorageClass>`,
    ...parts.map(
      (part) =>
        `<Part><PartNumber>${part.number}</PartNumber><LastModified>${part.modified.toISOString()}</LastModified>` +
        `<ETag>&quot;${part.md5}&quot;</ETag>` +
        (part.crc64nvme ? `<ChecksumCRC64NVME>${escapeXml(part.crc64nvme)}</ChecksumCRC64NVME>` : '') +
        `<Size>${part.size}</Size></Part>`,
    ),
    '</ListPartsResult>',
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

/** The query parameters a presigned URL carries its signature in; the signer adds them again. */
const PRESIGN_PARAMETERS = new Set([
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
]);
const CONTENT_SHA256 = 'x-amz-content-sha256';
// Presigned S3 URLs never sign the body (the SDK's presigner says so in `X-Amz-Content-Sha256`).
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
// SigV4 refuses to presign for longer than a week; so does S3.
const MAX_PRESIGN_SECONDS = 7 * 24 * 60 * 60;

/**
 * S3's flavour of SigV4 with the local credentials, from the AWS SDK's own signer: S3 signs the
 * path as sent (no second encoding) and takes the payload hash from `x-amz-content-sha256`.
 */
const s3Signer = new SignatureV4({
  credentials: LOCAL_CREDENTIALS,
  region: 'us-east-1',
  service: 's3',
  sha256: Sha256,
  uriEscapePath: false,
  applyChecksum: false,
});

/**
 * Checks an AWS4-HMAC-SHA256 signature made with LOCAL_CREDENTIALS, in the `Authorization`
 * header or presigned in the query (with its expiry), by signing the received request again with
 * `@smithy/signature-v4` at the client's date, region and service, over exactly what the client
 * signed, and comparing the signatures.
 */
async function verifySigV4(
  req: IncomingMessage,
  query: ReadonlyArray<readonly [string, string]>,
): Promise<Verification> {
  const fromQuery = new Map(query);
  const target = req.url ?? '/';
  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const authorization = req.headers.authorization;
  const presigned = !authorization?.startsWith('AWS4-HMAC-SHA256 ');
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  let amzDate: string | undefined;
  if (!presigned) {
    const fields = new Map(
      (authorization ?? '')
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
  } else if (fromQuery.get('X-Amz-Algorithm') === 'AWS4-HMAC-SHA256') {
    credential = fromQuery.get('X-Amz-Credential');
    signedHeaders = fromQuery.get('X-Amz-SignedHeaders');
    signature = fromQuery.get('X-Amz-Signature');
    amzDate = fromQuery.get('X-Amz-Date');
  } else {
    return {
      ok: false,
      code: 'AccessDenied',
      message: 'Only AWS4-HMAC-SHA256 signatures are supported locally',
    };
  }
  const signedAt = parseAmzDate(amzDate ?? '');
  const expiresIn = Number(fromQuery.get('X-Amz-Expires'));
  if (
    presigned &&
    (signedAt === undefined ||
      !Number.isInteger(expiresIn) ||
      expiresIn < 1 ||
      expiresIn > MAX_PRESIGN_SECONDS ||
      Date.now() > signedAt + expiresIn * 1000)
  ) {
    return { ok: false, code: 'AccessDenied', message: 'Request has expired' };
  }
  if (!credential || !signedHeaders || !signature || signedAt === undefined) return SIGNATURE_MISMATCH;
  const [accessKeyId, day, region, service, terminator] = credential.split('/');
  if (accessKeyId !== LOCAL_CREDENTIALS.accessKeyId) {
    return {
      ok: false,
      code: 'InvalidAccessKeyId',
      message: 'The AWS Access Key Id you provided does not exist in our records.',
    };
  }
  if (!region || !service || terminator !== 'aws4_request' || day !== amzDate?.slice(0, 8)) {
    return SIGNATURE_MISMATCH;
  }

  const headers: Record<string, string> = {};
  for (const name of signedHeaders.split(';')) {
    const value = headerString(req, name);
    if (value === undefined) return SIGNATURE_MISMATCH;
    headers[name] = value;
  }
  const signedQuery: Record<string, string | string[]> = {};
  for (const [name, value] of query) {
    if (presigned && PRESIGN_PARAMETERS.has(name)) continue;
    const previous = signedQuery[name];
    signedQuery[name] =
      previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
  }
  const request = {
    method: req.method ?? 'GET',
    protocol: 'http:',
    hostname: (headers.host ?? '').replace(/:\d+$/, ''),
    path,
    query: signedQuery,
    headers,
  };
  const signingDate = new Date(signedAt);
  let expected: string;
  if (presigned) {
    // The payload hash goes in as a header that is neither signed nor moved into the query: a
    // `X-Amz-Content-Sha256` the URL carries is signed as the query parameter it is.
    const payloadHash =
      query.find(([name]) => name.toLowerCase() === CONTENT_SHA256)?.[1] ?? UNSIGNED_PAYLOAD;
    const resigned = await s3Signer.presign(
      { ...request, headers: { ...headers, [CONTENT_SHA256]: payloadHash } },
      {
        signingDate,
        expiresIn,
        signingRegion: region,
        signingService: service,
        unsignableHeaders: new Set([CONTENT_SHA256]),
        unhoistableHeaders: new Set([CONTENT_SHA256]),
      },
    );
    expected = String(resigned.query?.['X-Amz-Signature'] ?? '');
  } else {
    const resigned = await s3Signer.sign(request, {
      signingDate,
      signingRegion: region,
      signingService: service,
      signableHeaders: new Set(Object.keys(headers)),
    });
    expected = /Signature=([0-9a-f]{64})$/.exec(String(resigned.headers.authorization ?? ''))?.[1] ?? '';
  }
  return expected.length === signature.length &&
    timingSafeEqual(Buffer.from(expected), Buffer.from(signature))
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
