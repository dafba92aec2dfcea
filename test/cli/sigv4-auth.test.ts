import type { IncomingMessage } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import { createSigV4Authorizer } from '../../local/sigv4-auth.ts';

const REGION = 'us-east-1';
const HOST = '127.0.0.1:3000';
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

/** A request as a client signs it with the SDK's signer, as the gateway receives it. */
async function signedRequest(
  path: string,
  options: {
    service?: string;
    region?: string;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    signingDate?: Date;
    headers?: Record<string, string>;
  } = {},
): Promise<IncomingMessage> {
  const url = new URL(path, `http://${HOST}`);
  const signer = new SignatureV4({
    credentials: options.credentials ?? LOCAL_CREDENTIALS,
    region: options.region ?? REGION,
    service: options.service ?? 'execute-api',
    sha256: Sha256,
  });
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = value;
  const signed = await signer.sign(
    {
      method: 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query,
      headers: { host: HOST, ...options.headers },
    },
    { signingDate: options.signingDate ?? new Date(NOW) },
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) headers[name.toLowerCase()] = value;
  return { method: 'GET', url: `${url.pathname}${url.search}`, headers } as unknown as IncomingMessage;
}

const authorize = (service: 'execute-api' | 'lambda' = 'execute-api') =>
  createSigV4Authorizer({ service, region: REGION, credentials: LOCAL_CREDENTIALS, now: () => NOW });

describe('the local SigV4 check (LOCAL_AUTH=iam)', () => {
  it('lets through a request signed by the SDK with the local credentials, query and extra headers included', async () => {
    const request = await signedRequest('/downloads/abc?token=xyz&b=2&a=1', {
      headers: { range: 'bytes=0-9' },
    });
    expect(await authorize()(request, Buffer.alloc(0))).toBeUndefined();
    const functionUrl = await signedRequest('/sample/150MB', { service: 'lambda' });
    expect(await authorize('lambda')(functionUrl, Buffer.alloc(0))).toBeUndefined();
  });

  it('answers an unsigned request as the REST API and the Function URL do', async () => {
    const unsigned = {
      method: 'GET',
      url: '/download/x',
      headers: { host: HOST },
    } as unknown as IncomingMessage;
    expect(await authorize()(unsigned, Buffer.alloc(0))).toEqual({
      statusCode: 403,
      errorType: 'MissingAuthenticationTokenException',
      body: { message: 'Missing Authentication Token' },
    });
    expect(await authorize('lambda')(unsigned, Buffer.alloc(0))).toMatchObject({
      errorType: 'AccessDeniedException',
      body: {
        Message: expect.stringMatching(/^Forbidden\. For troubleshooting Function URL authorization issues/),
      },
    });
  });

  it('refuses a signature that does not cover the request as received', async () => {
    const request = await signedRequest('/download/sample/1MB?mode=async');
    const tampered = { ...request, url: '/download/sample/2MB?mode=async' } as IncomingMessage;
    const otherQuery = { ...request, url: '/download/sample/1MB?mode=stream' } as IncomingMessage;
    for (const req of [tampered, otherQuery]) {
      expect(await authorize()(req, Buffer.alloc(0))).toEqual({
        statusCode: 403,
        errorType: 'InvalidSignatureException',
        body: { message: MISMATCH },
      });
    }
  });

  it('refuses a wrong secret, an unknown key, another region or service, and a stale date', async () => {
    const check = async (req: Promise<IncomingMessage>) =>
      (await authorize()(await req, Buffer.alloc(0)))?.body;
    expect(
      await check(signedRequest('/x', { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'wrong' } })),
    ).toEqual({ message: MISMATCH });
    expect(
      await check(signedRequest('/x', { credentials: { accessKeyId: 'AKIAOTHER', secretAccessKey: 'x' } })),
    ).toEqual({ message: 'The security token included in the request is invalid.' });
    expect(await check(signedRequest('/x', { region: 'eu-west-1' }))).toEqual({
      message: "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    });
    expect(await check(signedRequest('/x', { service: 'lambda' }))).toEqual({
      message: "Credential should be scoped to correct service: 'execute-api'. ",
    });
    expect(await check(signedRequest('/x', { signingDate: new Date(NOW - 6 * 60 * 1000) }))).toEqual({
      message:
        'Signature expired: 20261123T115400Z is now earlier than 20261123T115500Z (20261123T120000Z - 5 min.)',
    });
  });

  it('refuses an Authorization header that is not a complete SigV4 one', async () => {
    const req = {
      method: 'GET',
      url: '/x',
      headers: { host: HOST, authorization: 'Bearer abc' },
    } as unknown as IncomingMessage;
    expect(await authorize()(req, Buffer.alloc(0))).toMatchObject({
      errorType: 'IncompleteSignatureException',
    });
  });
});
