import { describe, expect, it } from 'vitest';
import { parseDownloadKey, toUpstreamUrl } from '../../shared/download-key.ts';
import { BadRequestError } from '../../shared/errors.ts';

describe('parseDownloadKey', () => {
  it.each([
    ['reports/2024.csv', ['reports', '2024.csv']],
    ['sample/150MB', ['sample', '150MB']],
    ['a%20file.bin', ['a file.bin']],
    ['caf%C3%A9/menu.pdf', ['café', 'menu.pdf']],
    ['v1.2/..data', ['v1.2', '..data']],
    ['emoji%F0%9F%98%80.txt', ['emoji😀.txt']],
    ['literal%25zz', ['literal%zz']],
  ])('accepts %s', (raw, segments) => {
    expect(parseDownloadKey(raw).segments).toEqual(segments);
  });

  it('names the file after the last segment', () => {
    expect(parseDownloadKey('exports/q3/report.csv').fileName).toBe('report.csv');
  });

  it.each([
    ['empty key', ''],
    ['traversal', '../etc/passwd'],
    ['traversal in the middle', 'a/../../b'],
    ['single dot segment', 'a/./b'],
    ['encoded traversal', '%2e%2e/secret'],
    ['encoded slash traversal', 'a%2F..%2F..%2Fb'],
    ['double-encoded traversal', '%252e%252e/secret'],
    ['double-encoded slash', 'a%252fb'],
    ['absolute URL', 'http://evil.example/x'],
    ['encoded absolute URL', 'https%3A%2F%2Fevil.example%2Fx'],
    ['protocol-relative host', '/evil.example/x'],
    ['leading slash', '/etc/passwd'],
    ['backslash', 'a\\b'],
    ['encoded backslash', 'a%5C..%5Cb'],
    ['empty segment', 'a//b'],
    ['trailing slash', 'a/b/'],
    ['NUL byte', 'a%00b'],
    ['newline', 'a%0Ab'],
    ['DEL', 'a%7Fb'],
    ['malformed percent-encoding', 'a%E0%A4%A'],
    ['an escape that is not hex', 'sample/%zz'],
    ['a lone percent sign', 'a%'],
    ['overlong UTF-8 dots', '%c0%ae%c0%ae/x'],
    ['overlong UTF-8 slash', 'a%c0%afb'],
    ['a UTF-16 surrogate', 'a%ED%A0%80'],
    ['a continuation byte alone', 'a%80'],
    ['raw non-ASCII', 'café.txt'],
    ['raw space', 'a b'],
    ['too long', 'a'.repeat(1025)],
  ])('refuses %s', (_name, raw) => {
    expect(() => parseDownloadKey(raw)).toThrow(BadRequestError);
  });

  it('refuses with a 400 and a stable code', () => {
    try {
      parseDownloadKey('../x');
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ statusCode: 400, code: 'InvalidKey' });
    }
  });
});

describe('toUpstreamUrl', () => {
  const base = new URL('https://files.example.com/exports/');

  it('appends encoded segments under the base path', () => {
    const url = toUpstreamUrl(base, parseDownloadKey('q3/a%20b%3F.csv'));
    expect(url.href).toBe('https://files.example.com/exports/q3/a%20b%3F.csv');
  });

  it('forwards the query', () => {
    const url = toUpstreamUrl(
      base,
      parseDownloadKey('a.bin'),
      new URLSearchParams({ version: '2', x: 'a b' }),
    );
    expect(url.href).toBe('https://files.example.com/exports/a.bin?version=2&x=a+b');
  });

  it('cannot leave the base origin or path whatever the key', () => {
    for (const raw of ['x', 'a%40evil.example', 'dir/a%3A80', '%3F', '%23frag']) {
      const url = toUpstreamUrl(base, parseDownloadKey(raw));
      expect(url.origin).toBe(base.origin);
      expect(url.pathname.startsWith('/exports/')).toBe(true);
      expect(url.search).toBe('');
      expect(url.hash).toBe('');
    }
  });
});
