import { Readable } from 'node:stream';
import { errors, MockAgent } from 'undici';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UpstreamConfig } from '../../shared/config.ts';
import { DeadlineExceededError } from '../../shared/deadline.ts';
import { parseDownloadKey } from '../../shared/download-key.ts';
import {
  HttpError,
  NotFoundError,
  RangeNotSatisfiableError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../../shared/errors.ts';
import {
  openUpstream,
  toUpstreamError,
  type UpstreamRequest,
  withUpstreamErrors,
} from '../../shared/upstream.ts';

const BASE = 'https://files.example.com';
const MIRROR = 'https://mirror.example.net';
const ELSEWHERE = 'https://evil.example.org';

describe('toUpstreamError', () => {
  it.each([
    ['headers timeout', new errors.HeadersTimeoutError()],
    ['body timeout', new errors.BodyTimeoutError()],
    ['connect timeout', new errors.ConnectTimeoutError()],
  ])('maps an undici %s to a 504 UpstreamTimeoutError', (_label, error) => {
    const mapped = toUpstreamError(error);

    expect(mapped).toBeInstanceOf(UpstreamTimeoutError);
    expect(mapped).toMatchObject({ statusCode: 504, code: 'UpstreamTimeout' });
    expect(mapped.cause).toBe(error);
  });

  it('recognises the timeout codes on any error object', () => {
    const headers = Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    const body = Object.assign(new Error('x'), { code: 'UND_ERR_BODY_TIMEOUT' });

    expect(toUpstreamError(headers)).toBeInstanceOf(UpstreamTimeoutError);
    expect(toUpstreamError(body).message).toBe('Upstream stopped sending data');
  });

  it.each([
    ['an undici socket error', new errors.SocketError('other side closed')],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }),
    ],
    ['a DNS failure', Object.assign(new Error('getaddrinfo ENOTFOUND files'), { code: 'ENOTFOUND' })],
    ['a reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a thrown string', 'boom'],
    ['null', null],
  ])('maps %s to a 502 UpstreamUnavailableError with a safe message', (_label, error) => {
    const mapped = toUpstreamError(error);

    expect(mapped).toBeInstanceOf(UpstreamUnavailableError);
    expect(mapped).toMatchObject({ statusCode: 502, code: 'UpstreamUnreachable' });
    expect(mapped.message).toBe('Upstream failed to deliver the file');
  });

  it('maps an abort by the function deadline to a 504, whatever undici threw', () => {
    const controller = new AbortController();
    controller.abort(new DeadlineExceededError('stopped 5000 ms before the timeout'));

    const mapped = toUpstreamError(new errors.RequestAbortedError(), controller.signal);

    expect(mapped).toBeInstanceOf(UpstreamTimeoutError);
    expect(mapped.message).toContain('deadline');
  });

  it('passes on another abort reason as it is (e.g. the client went away)', () => {
    const controller = new AbortController();
    const reason = new Error('client disconnected');
    controller.abort(reason);

    expect(toUpstreamError(new errors.RequestAbortedError(), controller.signal)).toBe(reason);
  });

  it('wraps a non-Error abort reason in an Error', () => {
    const controller = new AbortController();
    controller.abort('gone');

    const mapped = toUpstreamError(new Error('aborted'), controller.signal);

    expect(mapped).toBeInstanceOf(Error);
    expect(mapped.message).toBe('gone');
  });

  it('ignores a signal that has not fired', () => {
    const signal = new AbortController().signal;

    expect(toUpstreamError(new errors.SocketError('closed'), signal)).toBeInstanceOf(
      UpstreamUnavailableError,
    );
  });

  it('passes an HttpError through unchanged, even after an abort', () => {
    const controller = new AbortController();
    controller.abort(new DeadlineExceededError('late'));
    const notFound = new NotFoundError('UpstreamNotFound', 'no file');

    expect(toUpstreamError(notFound, controller.signal)).toBe(notFound);
  });
});

describe('withUpstreamErrors', () => {
  it('passes the bytes on and turns a failure of the body into an upstream error', async () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const body = new Readable({ read() {} });
    body.push(Buffer.from('first bytes'));
    setImmediate(() => body.destroy(reset));
    const received: Buffer[] = [];

    const failure = await (async () => {
      for await (const chunk of withUpstreamErrors(body)) received.push(chunk as Buffer);
    })().catch((error: unknown) => error);

    expect(Buffer.concat(received).toString()).toBe('first bytes');
    expect(failure).toBeInstanceOf(UpstreamUnavailableError);
    expect((failure as Error).cause).toBe(reset);
  });

  it('names a body cut off by the function deadline an upstream timeout', async () => {
    const controller = new AbortController();
    const body = new Readable({ read() {} });
    controller.abort(new DeadlineExceededError('late'));
    setImmediate(() => body.destroy(new errors.RequestAbortedError()));

    const failure = await withUpstreamErrors(body, controller.signal)
      .toArray()
      .catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(UpstreamTimeoutError);
  });

  it('cancels the body when the reader goes away', async () => {
    const body = new Readable({ read() {} });
    body.push(Buffer.from('x'));
    const tagged = withUpstreamErrors(body);
    await new Promise((resolve) => tagged.once('data', resolve));

    tagged.destroy();

    await vi.waitFor(() => expect(body.destroyed).toBe(true));
  });
});

describe('openUpstream (undici MockAgent, no network)', () => {
  let agent: MockAgent;
  const config: UpstreamConfig = {
    baseUrl: new URL(`${BASE}/exports/`),
    allowedOrigins: new Set([BASE, MIRROR]),
    headersTimeoutMs: 1_000,
    bodyTimeoutMs: 1_000,
  };

  function get(key = 'reports/q1.csv', extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
    return { key: parseDownloadKey(key), method: 'GET', ...extra };
  }

  async function rejectionOf(promise: Promise<unknown>): Promise<HttpError> {
    try {
      await promise;
    } catch (error) {
      expect(error).toBeInstanceOf(HttpError);
      return error as HttpError;
    }
    throw new Error('expected openUpstream to fail');
  }

  beforeEach(() => {
    agent = new MockAgent();
    agent.disableNetConnect();
  });

  afterEach(async () => {
    await agent.close();
  });

  it('returns status, lower-case headers, length and body of a 200', async () => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply(200, 'a,b\n1,2\n', { headers: { 'Content-Type': 'text/csv', 'Content-Length': '8' } });

    const response = await openUpstream(get(), config, agent);

    expect(response.statusCode).toBe(200);
    expect(response.url.href).toBe(`${BASE}/exports/reports/q1.csv`);
    expect(response.headers['content-type']).toBe('text/csv');
    expect(response.contentLength).toBe(8);
    expect(Buffer.concat(await response.body.toArray()).toString()).toBe('a,b\n1,2\n');
  });

  it('asks for the identity encoding, forwards the Range header and the query', async () => {
    let seen: { path: string; headers: Record<string, string> } | undefined;
    agent
      .get(BASE)
      .intercept({ path: (path) => path.startsWith('/exports/'), method: 'GET' })
      .reply((options) => {
        seen = { path: options.path, headers: options.headers as Record<string, string> };
        return {
          statusCode: 206,
          data: '0123456789',
          responseOptions: { headers: { 'content-range': 'bytes 0-9/100' } },
        };
      });

    const response = await openUpstream(
      get('a%20dir/r%C3%A9sum%C3%A9.pdf', { range: 'bytes=0-9', query: new URLSearchParams('v=2&sig=a+b') }),
      config,
      agent,
    );

    expect(response.statusCode).toBe(206);
    expect(response.headers['content-range']).toBe('bytes 0-9/100');
    expect(seen?.path).toBe('/exports/a%20dir/r%C3%A9sum%C3%A9.pdf?v=2&sig=a+b');
    expect(seen?.headers['accept-encoding']).toBe('identity');
    expect(seen?.headers.range).toBe('bytes=0-9');
    await response.body.toArray();
  });

  it('sends no Range header when the client sent none', async () => {
    let headers: Record<string, string> | undefined;
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply((options) => {
        headers = options.headers as Record<string, string>;
        return { statusCode: 200, data: '' };
      });

    await openUpstream(get(), config, agent);

    expect(headers).not.toHaveProperty('range');
  });

  it.each<[number, new (...args: never[]) => HttpError, number, string]>([
    [404, NotFoundError, 404, 'UpstreamNotFound'],
    [410, NotFoundError, 404, 'UpstreamNotFound'],
    [503, UpstreamUnavailableError, 502, 'UpstreamFailed'],
    [500, UpstreamUnavailableError, 502, 'UpstreamFailed'],
    [429, UpstreamUnavailableError, 502, 'UpstreamFailed'],
    [403, UpstreamRejectedError, 502, 'UpstreamRejected'],
    [401, UpstreamRejectedError, 502, 'UpstreamRejected'],
    [204, UpstreamRejectedError, 502, 'UpstreamRejected'],
    [304, UpstreamRejectedError, 502, 'UpstreamRejected'],
  ])('maps upstream %i to %o (%i %s)', async (status, type, clientStatus, code) => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply(status, 'upstream details');

    const error = await rejectionOf(openUpstream(get(), config, agent));

    expect(error).toBeInstanceOf(type);
    expect(error.statusCode).toBe(clientStatus);
    expect(error.code).toBe(code);
    expect(error.message).not.toContain('upstream details');
  });

  it('maps upstream 416 to RangeNotSatisfiableError carrying Content-Range', async () => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply(416, '', { headers: { 'content-range': 'bytes */100' } });

    const error = await rejectionOf(
      openUpstream(get('reports/q1.csv', { range: 'bytes=200-' }), config, agent),
    );

    expect(error).toBeInstanceOf(RangeNotSatisfiableError);
    expect(error.statusCode).toBe(416);
    expect(error.extra).toEqual({ contentRange: 'bytes */100' });
  });

  it('follows a redirect to an allowed origin, keeping Range and identity encoding', async () => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply(302, '', { headers: { location: `${MIRROR}/cache/q1.csv?token=t` } });
    let headers: Record<string, string> | undefined;
    agent
      .get(MIRROR)
      .intercept({ path: '/cache/q1.csv?token=t', method: 'GET' })
      .reply((options) => {
        headers = options.headers as Record<string, string>;
        return { statusCode: 206, data: 'x' };
      });

    const response = await openUpstream(get('reports/q1.csv', { range: 'bytes=5-5' }), config, agent);

    expect(response.url.href).toBe(`${MIRROR}/cache/q1.csv?token=t`);
    expect(headers?.range).toBe('bytes=5-5');
    expect(headers?.['accept-encoding']).toBe('identity');
    await response.body.toArray();
  });

  it('follows a relative redirect on the same origin', async () => {
    const pool = agent.get(BASE);
    pool
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply(301, '', { headers: { location: '../v2/q1.csv' } });
    pool.intercept({ path: '/exports/v2/q1.csv', method: 'GET' }).reply(200, 'v2');

    const response = await openUpstream(get(), config, agent);

    expect(response.url.href).toBe(`${BASE}/exports/v2/q1.csv`);
    expect(Buffer.concat(await response.body.toArray()).toString()).toBe('v2');
  });

  it.each([
    ['another host', `${ELSEWHERE}/q1.csv`],
    ['another scheme on the same host', 'http://files.example.com/exports/reports/q1.csv'],
    ['another port on the same host', 'https://files.example.com:8443/exports/reports/q1.csv'],
    ['link-local metadata', 'http://169.254.169.254/latest/meta-data/'],
  ])('refuses a redirect to %s with RedirectNotAllowed', async (_label, location) => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .reply(302, '', { headers: { location } });

    const error = await rejectionOf(openUpstream(get(), config, agent));

    expect(error).toBeInstanceOf(UpstreamRejectedError);
    expect(error.code).toBe('RedirectNotAllowed');
    // The redirect was not followed: MockAgent refuses unmatched requests, which would be UpstreamUnreachable.
    expect(error.statusCode).toBe(502);
  });

  function redirectChain(hops: number): void {
    const pool = agent.get(BASE);
    for (let hop = 0; hop < hops; hop++) {
      const from = hop === 0 ? '/exports/reports/q1.csv' : `/hop/${hop}`;
      pool
        .intercept({ path: from, method: 'GET' })
        .reply(302, '', { headers: { location: `/hop/${hop + 1}` } });
    }
    pool.intercept({ path: `/hop/${hops}`, method: 'GET' }).reply(200, 'end');
  }

  it('follows up to 5 redirects', async () => {
    redirectChain(5);

    const response = await openUpstream(get(), config, agent);

    expect(response.url.pathname).toBe('/hop/5');
    expect(Buffer.concat(await response.body.toArray()).toString()).toBe('end');
  });

  it('refuses a 6th redirect with TooManyRedirects', async () => {
    redirectChain(6);

    const error = await rejectionOf(openUpstream(get(), config, agent));

    expect(error).toBeInstanceOf(UpstreamRejectedError);
    expect(error.code).toBe('TooManyRedirects');
  });

  it('maps a connection failure to 502 UpstreamUnreachable', async () => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .replyWithError(new errors.SocketError('other side closed'));

    const error = await rejectionOf(openUpstream(get(), config, agent));

    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.code).toBe('UpstreamUnreachable');
  });

  it('maps a headers timeout to 504', async () => {
    agent
      .get(BASE)
      .intercept({ path: '/exports/reports/q1.csv', method: 'GET' })
      .replyWithError(new errors.HeadersTimeoutError());

    const error = await rejectionOf(openUpstream(get(), config, agent));

    expect(error).toBeInstanceOf(UpstreamTimeoutError);
    expect(error.statusCode).toBe(504);
  });

  it('maps a request cancelled by the function deadline to 504', async () => {
    agent.get(BASE).intercept({ path: '/exports/reports/q1.csv', method: 'GET' }).reply(200, 'x');
    const controller = new AbortController();
    controller.abort(new DeadlineExceededError('stopped before the timeout'));

    const error = await rejectionOf(
      openUpstream(get('reports/q1.csv', { signal: controller.signal }), config, agent),
    );

    expect(error).toBeInstanceOf(UpstreamTimeoutError);
  });

  it('keeps dotted and host-like segments inside the base path', async () => {
    let path: string | undefined;
    agent
      .get(BASE)
      .intercept({ path: () => true, method: 'GET' })
      .reply((options) => {
        path = options.path;
        return { statusCode: 200, data: '' };
      });

    await openUpstream(get('%2E%2Ea/%40evil.example.org'), config, agent);

    expect(path).toBe('/exports/..a/%40evil.example.org');
  });
});
