import { describe, expect, it } from 'vitest';
import { decideRoute } from '../../shared/downloads/route-download.ts';
import { BadRequestError } from '../../shared/errors.ts';
import type { HttpRequest } from '../../shared/http/request.ts';

const MAX = 1000;

function request(query = '', headers: Record<string, string> = {}): HttpRequest {
  return {
    method: 'GET',
    pathParameters: { key: 'exports/big.bin' },
    query: new URLSearchParams(query),
    headers,
    requestId: 'req-1',
    baseUrl: 'https://api.example.com/prod',
  };
}

describe('decideRoute without overrides', () => {
  it('streams a file that fits, up to and including the limit', () => {
    expect(decideRoute(request(), 0, MAX)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), MAX - 1, MAX)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), MAX, MAX)).toEqual({ path: 'stream' });
  });

  it('sends a larger file the async way, saying it is too large to stream', () => {
    expect(decideRoute(request(), MAX + 1, MAX)).toEqual({ path: 'async', reason: 'too-large-to-stream' });
  });

  it('sends a file of unknown length the async way', () => {
    expect(decideRoute(request(), undefined, MAX)).toEqual({ path: 'async', reason: 'unknown-length' });
  });

  it('sends everything but empty files async when the limit is 0', () => {
    expect(decideRoute(request(), 1, 0)).toEqual({ path: 'async', reason: 'too-large-to-stream' });
    expect(decideRoute(request(), 0, 0)).toEqual({ path: 'stream' });
  });

  it('ignores query parameters other than mode', () => {
    expect(decideRoute(request('v=2&format=csv'), 10, MAX)).toEqual({ path: 'stream' });
  });
});

describe('decideRoute with ?mode=async or Prefer: respond-async', () => {
  it('goes async on request even when the file fits', () => {
    expect(decideRoute(request('mode=async'), 10, MAX)).toEqual({ path: 'async', reason: 'requested' });
  });

  it.each(['respond-async', 'Respond-Async', 'respond-async, wait=10', 'return=minimal; respond-async'])(
    'goes async for Prefer: %s',
    (prefer) => {
      expect(decideRoute(request('', { prefer }), 10, MAX)).toEqual({ path: 'async', reason: 'requested' });
    },
  );

  it('does not go async for other Prefer values', () => {
    expect(decideRoute(request('', { prefer: 'return=minimal' }), 10, MAX)).toEqual({ path: 'stream' });
    expect(decideRoute(request('', { prefer: 'respond-asynchronously' }), 10, MAX)).toEqual({
      path: 'stream',
    });
  });

  it('reports "requested" also for files that would have gone async anyway', () => {
    expect(decideRoute(request('mode=async'), undefined, MAX)).toEqual({
      path: 'async',
      reason: 'requested',
    });
    expect(decideRoute(request('mode=async'), MAX + 1, MAX)).toEqual({ path: 'async', reason: 'requested' });
  });
});

describe('decideRoute with ?mode=stream', () => {
  it('streams a file that fits', () => {
    expect(decideRoute(request('mode=stream'), MAX, MAX)).toEqual({ path: 'stream' });
  });

  it('refuses a file that is too large instead of going async', () => {
    expect(decideRoute(request('mode=stream'), MAX + 1, MAX)).toEqual({ path: 'too-large' });
  });

  it('streams a file of unknown length (the length guard caps it mid-stream)', () => {
    expect(decideRoute(request('mode=stream'), undefined, MAX)).toEqual({ path: 'stream' });
  });

  it('wins over Prefer: respond-async', () => {
    expect(decideRoute(request('mode=stream', { prefer: 'respond-async' }), 10, MAX)).toEqual({
      path: 'stream',
    });
  });
});

describe('decideRoute with an invalid mode', () => {
  it.each(['', 'ASYNC', 'sync', 'stream,async'])('refuses mode=%s with a 400 InvalidMode', (mode) => {
    const act = () => decideRoute(request(`mode=${encodeURIComponent(mode)}`), 10, MAX);

    expect(act).toThrow(BadRequestError);
    expect(act).toThrow(expect.objectContaining({ statusCode: 400, code: 'InvalidMode' }));
  });
});
