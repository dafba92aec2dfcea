import { describe, expect, it } from 'vitest';
import { decideRoute, type RouteLimits } from '../../shared/downloads/route-download.ts';
import { BadRequestError } from '../../shared/errors.ts';
import type { HttpRequest } from '../../shared/http/request.ts';

const MAX = 1000;
/** Today's default: the router's threshold at its top, so the stream limit decides. */
const LIMITS: RouteLimits = { streamMaxBytes: MAX, routerStreamMaxBytes: 200_000_000 };
/** A router threshold below the stream limit. */
const ROUTER = 400;
const SPLIT: RouteLimits = { streamMaxBytes: MAX, routerStreamMaxBytes: ROUTER };

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
    expect(decideRoute(request(), 0, LIMITS)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), MAX - 1, LIMITS)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), MAX, LIMITS)).toEqual({ path: 'stream' });
  });

  it('sends a larger file the async way, saying it is too large to stream', () => {
    expect(decideRoute(request(), MAX + 1, LIMITS)).toEqual({ path: 'async', reason: 'too-large-to-stream' });
  });

  it('sends a file of unknown length the async way', () => {
    expect(decideRoute(request(), undefined, LIMITS)).toEqual({ path: 'async', reason: 'unknown-length' });
  });

  it('sends everything but empty files async when the limit is 0', () => {
    expect(decideRoute(request(), 1, { streamMaxBytes: 0, routerStreamMaxBytes: 0 })).toEqual({
      path: 'async',
      reason: 'too-large-to-stream',
    });
    expect(decideRoute(request(), 0, { streamMaxBytes: 0, routerStreamMaxBytes: 0 })).toEqual({
      path: 'stream',
    });
  });

  it('ignores query parameters other than mode', () => {
    expect(decideRoute(request('v=2&format=csv'), 10, LIMITS)).toEqual({ path: 'stream' });
  });
});

describe('decideRoute with a router threshold below the stream limit', () => {
  it('streams a file up to and including the router threshold', () => {
    expect(decideRoute(request(), 0, SPLIT)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), ROUTER, SPLIT)).toEqual({ path: 'stream' });
  });

  it('sends a file above the threshold but within the stream limit the async way, naming the threshold', () => {
    expect(decideRoute(request(), ROUTER + 1, SPLIT)).toEqual({
      path: 'async',
      reason: 'above-router-threshold',
    });
    expect(decideRoute(request(), MAX, SPLIT)).toEqual({ path: 'async', reason: 'above-router-threshold' });
  });

  it('names the stream limit for a file above both', () => {
    expect(decideRoute(request(), MAX + 1, SPLIT)).toEqual({ path: 'async', reason: 'too-large-to-stream' });
  });

  it('names the unknown length for a file without Content-Length', () => {
    expect(decideRoute(request(), undefined, SPLIT)).toEqual({ path: 'async', reason: 'unknown-length' });
  });

  it('names the request for ?mode=async, whatever the size', () => {
    for (const size of [1, ROUTER + 1, MAX + 1, undefined]) {
      expect(decideRoute(request('mode=async'), size, SPLIT)).toEqual({ path: 'async', reason: 'requested' });
    }
  });

  it('streams on ?mode=stream what the streaming path can carry, above the threshold too', () => {
    expect(decideRoute(request('mode=stream'), ROUTER + 1, SPLIT)).toEqual({ path: 'stream' });
    expect(decideRoute(request('mode=stream'), MAX, SPLIT)).toEqual({ path: 'stream' });
    expect(decideRoute(request('mode=stream'), MAX + 1, SPLIT)).toEqual({ path: 'too-large' });
  });

  it('lets the stream limit decide when the threshold is above it (the default)', () => {
    const above: RouteLimits = { streamMaxBytes: MAX, routerStreamMaxBytes: MAX * 2 };

    expect(decideRoute(request(), MAX, above)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), MAX + 1, above)).toEqual({ path: 'async', reason: 'too-large-to-stream' });
  });

  it('sends every non-empty file async with a threshold of 0', () => {
    const zero: RouteLimits = { streamMaxBytes: MAX, routerStreamMaxBytes: 0 };

    expect(decideRoute(request(), 0, zero)).toEqual({ path: 'stream' });
    expect(decideRoute(request(), 1, zero)).toEqual({ path: 'async', reason: 'above-router-threshold' });
  });
});

describe('decideRoute with ?mode=async or Prefer: respond-async', () => {
  it('goes async on request even when the file fits', () => {
    expect(decideRoute(request('mode=async'), 10, LIMITS)).toEqual({ path: 'async', reason: 'requested' });
  });

  it.each(['respond-async', 'Respond-Async', 'respond-async, wait=10', 'return=minimal; respond-async'])(
    'goes async for Prefer: %s',
    (prefer) => {
      expect(decideRoute(request('', { prefer }), 10, LIMITS)).toEqual({
        path: 'async',
        reason: 'requested',
      });
    },
  );

  it('does not go async for other Prefer values', () => {
    expect(decideRoute(request('', { prefer: 'return=minimal' }), 10, LIMITS)).toEqual({ path: 'stream' });
    expect(decideRoute(request('', { prefer: 'respond-asynchronously' }), 10, LIMITS)).toEqual({
      path: 'stream',
    });
  });

  it('reports "requested" also for files that would have gone async anyway', () => {
    expect(decideRoute(request('mode=async'), undefined, LIMITS)).toEqual({
      path: 'async',
      reason: 'requested',
    });
    expect(decideRoute(request('mode=async'), MAX + 1, LIMITS)).toEqual({
      path: 'async',
      reason: 'requested',
    });
  });
});

describe('decideRoute with ?mode=stream', () => {
  it('streams a file that fits', () => {
    expect(decideRoute(request('mode=stream'), MAX, LIMITS)).toEqual({ path: 'stream' });
  });

  it('refuses a file that is too large instead of going async', () => {
    expect(decideRoute(request('mode=stream'), MAX + 1, LIMITS)).toEqual({ path: 'too-large' });
  });

  it('streams a file of unknown length (the length guard caps it mid-stream)', () => {
    expect(decideRoute(request('mode=stream'), undefined, LIMITS)).toEqual({ path: 'stream' });
  });

  it('wins over Prefer: respond-async', () => {
    expect(decideRoute(request('mode=stream', { prefer: 'respond-async' }), 10, LIMITS)).toEqual({
      path: 'stream',
    });
  });
});

describe('decideRoute with an invalid mode', () => {
  it.each(['', 'ASYNC', 'sync', 'stream,async'])('refuses mode=%s with a 400 InvalidMode', (mode) => {
    const act = () => decideRoute(request(`mode=${encodeURIComponent(mode)}`), 10, LIMITS);

    expect(act).toThrow(BadRequestError);
    expect(act).toThrow(expect.objectContaining({ statusCode: 400, code: 'InvalidMode' }));
  });
});
