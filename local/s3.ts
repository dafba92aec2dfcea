import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { createRequire } from 'node:module';
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
 * Starts @20minutes/s3rver with the buckets configured, on 127.0.0.1. It verifies SigV4 (header
 * and presigned) and expiry; one bug of its verification is worked around here (see
 * `signatureRepair`).
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
  s3rver.middleware.unshift(signatureRepair(options.allowAnonymous ?? false));
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
 * s3rver 4.0.4 canonicalizes query values with `encodeURIComponent`, which leaves `!'()*` as they
 * are, while SigV4 (and every AWS SDK) percent-encodes them. So any correctly signed request whose
 * query holds one of them is refused with SignatureDoesNotMatch, e.g. a presigned GET with
 * `response-content-disposition=attachment; filename*=UTF-8''…`. For exactly those requests this
 * middleware checks the signature itself (RFC 3986 encoding) and, if it is valid, marks the request
 * authenticated, which s3rver honours; s3rver still checks expiry and everything else. It also
 * refuses unsigned requests unless `allowAnonymous`.
 */
function signatureRepair(allowAnonymous: boolean): KoaMiddleware {
  return async (ctx, next) => {
    const url = new URL(ctx.req.url ?? '/', 'http://localhost');
    const query = parseQuery(url.search);
    const authorization = ctx.req.headers.authorization;
    const presigned = query.some(([key]) => key === 'X-Amz-Algorithm' || key === 'Signature');
    if (!authorization && !presigned) {
      if (!allowAnonymous && ctx.method !== 'OPTIONS') {
        ctx.status = 403;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';
        return;
      }
      return next();
    }
    const withoutSignature = query.filter(([key]) => key !== 'X-Amz-Signature');
    const s3rverCanonical = withoutSignature
      .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
      .sort()
      .join('&');
    if (s3rverCanonical !== canonicalQuery(withoutSignature)) {
      const accessKeyId = verifySigV4(ctx.req, url.pathname, query);
      if (accessKeyId !== undefined) {
        const account = AWSAccount.registry.get(accessKeyId);
        if (account) ctx.state.account = account;
      }
    }
    return next();
  };
}

/** The access key id if the request carries a valid AWS4-HMAC-SHA256 signature by LOCAL_CREDENTIALS. */
function verifySigV4(
  req: IncomingMessage,
  pathname: string,
  query: ReadonlyArray<readonly [string, string]>,
): string | undefined {
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
          const [key = '', ...value] = part.trim().split('=');
          return [key, value.join('=')] as const;
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
  } else {
    return undefined;
  }
  if (!credential || !signedHeaders || !signature || !amzDate) return undefined;
  const [accessKeyId, day, region, service, terminator] = credential.split('/');
  if (accessKeyId !== LOCAL_CREDENTIALS.accessKeyId || !day || !region || !service || !terminator)
    return undefined;
  const headerNames = signedHeaders.split(';');
  const canonicalRequest = [
    req.method ?? 'GET',
    pathname
      .split('/')
      .map((segment) => encodeRfc3986(safeDecode(segment)))
      .join('/'),
    canonicalQuery(query.filter(([key]) => key !== 'X-Amz-Signature')),
    headerNames
      .map((name) => `${name}:${(headerString(req, name) ?? '').trim().replace(/\s+/g, ' ')}\n`)
      .join(''),
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/${terminator}`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${LOCAL_CREDENTIALS.secretAccessKey}`).update(day).digest();
  for (const part of [region, service, terminator]) key = createHmac('sha256', key).update(part).digest();
  const expected = createHmac('sha256', key).update(stringToSign).digest();
  const provided = Buffer.from(signature, 'hex');
  return provided.length === expected.length && timingSafeEqual(provided, expected) ? accessKeyId : undefined;
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
