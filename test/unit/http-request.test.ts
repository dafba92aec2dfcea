import { describe, expect, it } from 'vitest';
import { parseDownloadKey } from '../../shared/download-key.ts';
import { toHttpRequest } from '../../shared/http/request.ts';
import { functionUrlEvent, restEvent } from '../fixtures/events.ts';

describe.each([
  {
    shape: 'REST proxy (v1)',
    event: (key: string, query: Record<string, string[]>, headers: Record<string, string>) =>
      // REST APIs hand over `path` and the greedy path parameter as the client sent them.
      restEvent({ key, query, headers }),
  },
  {
    shape: 'Function URL (v2)',
    event: (key: string, query: Record<string, string[]>, headers: Record<string, string>) =>
      functionUrlEvent({
        rawPath: `/${key}`,
        rawQueryString: new URLSearchParams(
          Object.entries(query).flatMap(([k, vs]) => vs.map((v): [string, string] => [k, v])),
        ).toString(),
        headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
      }),
  },
])('toHttpRequest with a $shape event', ({ event }) => {
  it('gives the key in wire form, query, lower-case headers and method', () => {
    const request = toHttpRequest(event('reports/a%20b.csv', { version: ['2'] }, { Range: 'bytes=0-9' }));
    expect(request.method).toBe('GET');
    expect(request.pathParameters.key).toBe('reports/a%20b.csv');
    expect(request.query.get('version')).toBe('2');
    expect(request.headers.range).toBe('bytes=0-9');
    expect(request.requestId).toMatch(/[0-9a-f-]{36}/);
  });

  it('keeps repeated query parameters', () => {
    const request = toHttpRequest(event('a.bin', { tag: ['x', 'y'] }, {}));
    expect(request.query.getAll('tag')).toEqual(['x', 'y']);
  });

  it('keeps a traversal attempt visible to the key parser', () => {
    const request = toHttpRequest(event('%2e%2e/secret', {}, {}));
    expect(decodeURIComponent(request.pathParameters.key ?? '')).toBe('../secret');
  });

  it.each([
    ['an escape that is not hex', 'sample/%zz'],
    ['overlong UTF-8', '%c0%ae%c0%ae/x'],
  ])('hands %s to the key parser as sent, which refuses it', (_name, key) => {
    const request = toHttpRequest(event(key, {}, {}));

    expect(request.pathParameters.key).toBe(key);
    expect(() => parseDownloadKey(request.pathParameters.key)).toThrow(
      expect.objectContaining({ statusCode: 400, code: 'InvalidKey' }),
    );
  });
});

describe('toHttpRequest base URLs', () => {
  it('includes the REST stage so links point back at the same API', () => {
    expect(toHttpRequest(restEvent()).baseUrl).toBe(
      'https://abc123.execute-api.eu-west-1.amazonaws.com/prod',
    );
  });

  it('has no stage on a Function URL', () => {
    expect(toHttpRequest(functionUrlEvent()).baseUrl).toBe('https://abcdefg.lambda-url.eu-west-1.on.aws');
  });

  it('has no key on a Function URL root', () => {
    expect(toHttpRequest(functionUrlEvent({ rawPath: '/' })).pathParameters.key).toBeUndefined();
  });
});
