import { describe, expect, it } from 'vitest';
import { ApiClient, parseDownloadKey, toCopyFailure, toReadyFile } from '../../cli/api.ts';
import { EXIT, exitCodeForFailure, exitCodeForStatus } from '../../cli/exit-codes.ts';
import { parseByteSize } from '../../cli/format.ts';
import { RequestSigner, regionFromHost, signingServiceFor } from '../../cli/signing.ts';

function client(api: string, functionUrl = false): ApiClient {
  const base = new URL(api);
  const signer = new RequestSigner({ enabled: false, service: 'execute-api', apiUrl: base, env: {} });
  return new ApiClient(base, functionUrl, signer);
}

describe('the <key> argument', () => {
  it('splits off the query for upstream, encodes each segment and names the default file', () => {
    const key = parseDownloadKey('reports/2025 Q1/data.csv?rate=1000&x=a%20b');
    expect(key.path).toBe('reports/2025%20Q1/data.csv');
    expect(key.query.get('rate')).toBe('1000');
    expect(key.query.get('x')).toBe('a b');
    expect(key.fileName).toBe('data.csv');
    expect(parseDownloadKey('sample/').fileName).toBeUndefined();
    expect(() => parseDownloadKey('?rate=1')).toThrow('no key given');
  });
});

describe('ApiClient URLs', () => {
  it('puts routes under the REST API stage and maps --mode to ?mode=', () => {
    const api = client('https://abc.execute-api.eu-west-1.amazonaws.com/prod/');
    const key = parseDownloadKey('sample/1GB?rate=5');
    expect(api.downloadUrl(key, 'auto').href).toBe(
      'https://abc.execute-api.eu-west-1.amazonaws.com/prod/download/sample/1GB?rate=5',
    );
    expect(api.downloadUrl(key, 'async').href).toBe(
      'https://abc.execute-api.eu-west-1.amazonaws.com/prod/download/sample/1GB?rate=5&mode=async',
    );
    expect(api.streamUrl(key).href).toBe(
      'https://abc.execute-api.eu-west-1.amazonaws.com/prod/stream/sample/1GB?rate=5',
    );
    expect(api.statusUrlFor('id-1').href).toBe(
      'https://abc.execute-api.eu-west-1.amazonaws.com/prod/downloads/id-1',
    );
  });

  it('streams from the key itself on a Function URL', () => {
    const api = client('https://xyz.lambda-url.eu-west-1.on.aws', true);
    expect(api.downloadUrl(parseDownloadKey('sample/5MB'), 'stream').href).toBe(
      'https://xyz.lambda-url.eu-west-1.on.aws/sample/5MB?mode=stream',
    );
  });
});

describe('signing settings', () => {
  it('takes the region and the service from AWS host names', () => {
    expect(regionFromHost('abc.execute-api.eu-west-1.amazonaws.com')).toBe('eu-west-1');
    expect(regionFromHost('xyz.lambda-url.ap-south-2.on.aws')).toBe('ap-south-2');
    expect(regionFromHost('127.0.0.1')).toBeUndefined();
    expect(signingServiceFor(new URL('https://xyz.lambda-url.eu-west-1.on.aws'), false)).toBe('lambda');
    expect(signingServiceFor(new URL('http://127.0.0.1:3003'), true)).toBe('lambda');
    expect(signingServiceFor(new URL('http://127.0.0.1:3000'), false)).toBe('execute-api');
  });

  it('signs from the first request only when credentials are set or the API is on AWS', () => {
    const signer = (api: string, env: NodeJS.ProcessEnv, enabled = true) =>
      new RequestSigner({ enabled, service: 'execute-api', apiUrl: new URL(api), env }).signing;
    expect(signer('http://127.0.0.1:3000', {})).toBe(false);
    expect(signer('http://127.0.0.1:3000', { AWS_ACCESS_KEY_ID: 'x' })).toBe(true);
    expect(signer('https://abc.execute-api.eu-west-1.amazonaws.com/prod', {})).toBe(true);
    expect(signer('https://abc.execute-api.eu-west-1.amazonaws.com/prod', { AWS_PROFILE: 'p' }, false)).toBe(
      false,
    );
  });
});

describe('exit codes', () => {
  it('map API answers and copy failures to failure classes', () => {
    expect(exitCodeForStatus(400)).toBe(EXIT.usage);
    expect(exitCodeForStatus(403)).toBe(EXIT.accessDenied);
    expect(exitCodeForStatus(404)).toBe(EXIT.notFound);
    expect(exitCodeForStatus(413)).toBe(EXIT.tooLarge);
    expect(exitCodeForStatus(502)).toBe(EXIT.upstreamFailed);
    expect(exitCodeForStatus(503)).toBe(EXIT.copyFailed);
    expect(exitCodeForFailure('UpstreamNotFound')).toBe(EXIT.notFound);
    expect(exitCodeForFailure('FileTooLarge')).toBe(EXIT.tooLarge);
    expect(exitCodeForFailure('UpstreamTimeout')).toBe(EXIT.upstreamFailed);
    expect(exitCodeForFailure('ChecksumMismatch')).toBe(EXIT.upstreamFailed);
    expect(exitCodeForFailure('StorageFailed')).toBe(EXIT.copyFailed);
    expect(toCopyFailure({ code: 'CopyTimeout', message: 'too slow' })).toMatchObject({
      exitCode: EXIT.copyFailed,
      title: 'the copy to S3 failed (CopyTimeout)',
      detail: 'too slow',
    });
  });
});

describe('ready messages', () => {
  it('keep a checksum when the API gives one, and do without', () => {
    expect(
      toReadyFile({
        type: 'ready',
        url: 'http://s3/x',
        size: 5,
        checksum: { algorithm: 'sha256', value: 'ab' },
      }),
    ).toEqual({ url: 'http://s3/x', size: 5, checksum: { algorithm: 'sha256', value: 'ab' } });
    expect(toReadyFile({ type: 'ready', url: 'http://s3/x', expiresAt: 't' })).toEqual({
      url: 'http://s3/x',
      expiresAt: 't',
    });
    expect(toReadyFile({ type: 'ready' })).toBeUndefined();
  });
});

describe('parseByteSize', () => {
  it('reads SI and binary suffixes', () => {
    expect(parseByteSize('500k')).toBe(500_000);
    expect(parseByteSize('5M')).toBe(5_000_000);
    expect(parseByteSize('1.5MB')).toBe(1_500_000);
    expect(parseByteSize('2MiB')).toBe(2 * 1024 * 1024);
    expect(parseByteSize('12')).toBe(12);
    expect(parseByteSize('fast')).toBeUndefined();
    expect(parseByteSize('0')).toBeUndefined();
  });
});
