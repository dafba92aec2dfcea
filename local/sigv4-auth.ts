import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

/** `LOCAL_AUTH`: `none` (default, open like `sam local`) or `iam` (SigV4 required, as deployed). */
export type LocalAuthMode = 'none' | 'iam';

/** What the REST API (`execute-api`) or the Function URL (`lambda`) answers a request it refuses. */
export interface AuthDenial {
  statusCode: 403;
  /** `x-amzn-ErrorType`, e.g. `MissingAuthenticationTokenException`. */
  errorType: string;
  body: Record<string, string>;
}

/** Checks one request; resolves with the denial to send, or undefined when it may pass. */
export type RequestAuthorizer = (req: IncomingMessage, body: Buffer) => Promise<AuthDenial | undefined>;

export interface SigV4AuthOptions {
  service: 'execute-api' | 'lambda';
  region: string;
  /** The one key pair the local stack knows (LOCAL_CREDENTIALS). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** API Gateway refuses signatures more than 5 minutes off its clock. */
  maxSkewMs?: number;
  now?: () => number;
}

// The services' own messages (API Gateway REST with AWS_IAM; Lambda Function URLs with AWS_IAM).
const MISSING_TOKEN = 'Missing Authentication Token';
const FUNCTION_URL_FORBIDDEN =
  'Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html';
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const INVALID_TOKEN = 'The security token included in the request is invalid.';

function deny(errorType: string, message: string): AuthDenial {
  return { statusCode: 403, errorType, body: { message } };
}

/** `20240102T030405Z` → Date, or undefined. */
function parseAmzDate(value: string | undefined): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  if (!match) return undefined;
  const [year, month, day, hours, minutes, seconds] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return new Date(Date.UTC(year, month - 1, day, hours, minutes, seconds));
}

function toAmzDate(epochMs: number): string {
  return new Date(epochMs)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` → its fields. */
function parseAuthorization(header: string): Map<string, string> | undefined {
  if (!header.startsWith('AWS4-HMAC-SHA256 ')) return undefined;
  const fields = new Map<string, string>();
  for (const part of header.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
    const index = part.indexOf('=');
    if (index > 0) fields.set(part.slice(0, index).trim(), part.slice(index + 1).trim());
  }
  return fields;
}

/**
 * Verifies SigV4 `Authorization` headers the way API Gateway's AWS_IAM authorization and Function
 * URLs do, with the SDK's own signer (`@smithy/signature-v4`): it signs the received request again
 * with the local credentials, over exactly the headers the client signed, at the client's
 * `X-Amz-Date`, and compares the signatures. Refusals carry the services' status, error type and
 * message. Query-string (presigned) signatures are not accepted.
 */
export function createSigV4Authorizer(options: SigV4AuthOptions): RequestAuthorizer {
  const maxSkewMs = options.maxSkewMs ?? 5 * 60 * 1000;
  const now = options.now ?? Date.now;
  const signer = new SignatureV4({
    credentials: options.credentials,
    region: options.region,
    service: options.service,
    sha256: Sha256,
    // Re-sign exactly what the client signed: add no `x-amz-content-sha256` of our own.
    applyChecksum: false,
  });

  return async (req, body) => {
    const authorization = headerValue(req, 'authorization');
    if (!authorization) {
      return options.service === 'lambda'
        ? { statusCode: 403, errorType: 'AccessDeniedException', body: { Message: FUNCTION_URL_FORBIDDEN } }
        : deny('MissingAuthenticationTokenException', MISSING_TOKEN);
    }
    const fields = parseAuthorization(authorization);
    const credential = fields?.get('Credential');
    const signedHeaders = fields?.get('SignedHeaders');
    const signature = fields?.get('Signature');
    const amzDate = headerValue(req, 'x-amz-date');
    if (!fields || !credential || !signedHeaders || !signature || !amzDate) {
      const missing = [
        !credential && "Authorization header requires 'Credential' parameter.",
        !signature && "Authorization header requires 'Signature' parameter.",
        !signedHeaders && "Authorization header requires 'SignedHeaders' parameter.",
        !amzDate && "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      ].filter(Boolean);
      return deny(
        'IncompleteSignatureException',
        fields
          ? missing.join(' ')
          : `Authorization header requires 'AWS4-HMAC-SHA256' signatures. ${missing.join(' ')}`,
      );
    }
    const [accessKeyId, day, region, service, terminator] = credential.split('/');
    if (accessKeyId !== options.credentials.accessKeyId || headerValue(req, 'x-amz-security-token')) {
      return deny('UnrecognizedClientException', INVALID_TOKEN);
    }
    const signedAt = parseAmzDate(amzDate);
    if (!signedAt)
      return deny(
        'IncompleteSignatureException',
        `Date must be in ISO-8601 'basic format'. Got '${amzDate}'.`,
      );
    if (day !== amzDate.slice(0, 8)) {
      return deny(
        'InvalidSignatureException',
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${day}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
      );
    }
    const at = now();
    if (signedAt.getTime() < at - maxSkewMs) {
      return deny(
        'InvalidSignatureException',
        `Signature expired: ${amzDate} is now earlier than ${toAmzDate(at - maxSkewMs)} (${toAmzDate(at)} - 5 min.)`,
      );
    }
    if (signedAt.getTime() > at + maxSkewMs) {
      return deny(
        'InvalidSignatureException',
        `Signature not yet current: ${amzDate} is still later than ${toAmzDate(at + maxSkewMs)} (${toAmzDate(at)} + 5 min.)`,
      );
    }
    if (region !== options.region) {
      return deny(
        'InvalidSignatureException',
        `Credential should be scoped to a valid region, not '${region}'. `,
      );
    }
    if (service !== options.service) {
      return deny(
        'InvalidSignatureException',
        `Credential should be scoped to correct service: '${options.service}'. `,
      );
    }
    if (terminator !== 'aws4_request') {
      return deny(
        'InvalidSignatureException',
        `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'. `,
      );
    }
    const names = signedHeaders.split(';');
    if (!names.includes('host')) {
      return deny(
        'InvalidSignatureException',
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
      );
    }
    const headers: Record<string, string> = {};
    for (const name of names) {
      const value = headerValue(req, name);
      if (value === undefined) return deny('InvalidSignatureException', SIGNATURE_MISMATCH);
      headers[name] = value;
    }
    // The path and query as sent: the signer encodes them as SigV4 says (path segments twice).
    const target = req.url ?? '/';
    const queryStart = target.indexOf('?');
    const query: Record<string, string | string[]> = {};
    for (const [name, value] of new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1))) {
      const previous = query[name];
      query[name] =
        previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
    }
    const resigned = await signer.sign(
      {
        method: req.method ?? 'GET',
        protocol: 'http:',
        hostname: (headers.host ?? '').replace(/:\d+$/, ''),
        path: queryStart === -1 ? target : target.slice(0, queryStart),
        query,
        headers,
        ...(body.length > 0 ? { body } : {}),
      },
      { signingDate: signedAt, signableHeaders: new Set(names) },
    );
    const expected =
      /Signature=([0-9a-f]{64})$/.exec(String(resigned.headers.authorization ?? ''))?.[1] ?? '';
    const matches =
      expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
    return matches ? undefined : deny('InvalidSignatureException', SIGNATURE_MISMATCH);
  };
}

/** Sends a denial as the services do: 403, JSON, `x-amzn-ErrorType`. */
export function sendAuthDenial(res: ServerResponse, denial: AuthDenial): void {
  const text = JSON.stringify(denial.body);
  res.writeHead(denial.statusCode, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-errortype': denial.errorType,
  });
  res.end(text);
}

/** `LOCAL_AUTH` from the environment; undefined for a value it does not know. */
export function parseLocalAuthMode(raw: string | undefined): LocalAuthMode | undefined {
  const value = raw?.trim() || 'none';
  return value === 'none' || value === 'iam' ? value : undefined;
}
