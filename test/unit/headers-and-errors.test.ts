import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { attachmentDisposition, fileNameFromDisposition } from '../../shared/content-disposition.ts';
import { parseDownloadKey } from '../../shared/download-key.ts';
import { NotFoundError, PayloadTooLargeError, toProblem, UpstreamTimeoutError } from '../../shared/errors.ts';
import { toForwardedQuery, toStreamHeaders } from '../../shared/streaming/stream-download.ts';
import { parseContentLength } from '../../shared/upstream.ts';

function opened(headers: Record<string, string>, statusCode: 200 | 206 = 200) {
  return {
    key: parseDownloadKey('exports/report%202024.csv'),
    upstream: {
      url: new URL('http://upstream/exports/report%202024.csv'),
      statusCode,
      headers,
      contentLength: parseContentLength(headers['content-length']),
      body: Readable.from([]),
    },
  };
}

describe('toStreamHeaders', () => {
  it('passes on the file headers and nothing else', () => {
    const headers = toStreamHeaders(
      opened({
        'content-type': 'text/csv',
        'content-length': '42',
        etag: '"abc"',
        'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT',
        'accept-ranges': 'bytes',
        'set-cookie': 'session=secret',
        server: 'upstream/1.0',
        'content-disposition': 'attachment; filename="x.csv"',
      }),
    );
    expect(headers).toEqual({
      'content-type': 'text/csv',
      'content-length': '42',
      etag: '"abc"',
      'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT',
      'accept-ranges': 'bytes',
      'content-disposition': `attachment; filename="x.csv"; filename*=UTF-8''x.csv`,
      'x-content-type-options': 'nosniff',
      'x-download-mode': 'stream',
    });
  });

  it('passes on a Content-Encoding upstream applied, with the encoded length', () => {
    const headers = toStreamHeaders(
      opened({ 'content-type': 'text/csv', 'content-encoding': 'gzip', 'content-length': '120' }),
    );
    expect(headers).toMatchObject({
      'content-type': 'text/csv',
      'content-encoding': 'gzip',
      'content-length': '120',
    });
  });

  it.each([
    ['inline', 'inline; filename="x.html"', 'x.html'],
    ['a path', 'attachment; filename="../../../etc/passwd"', '.._.._.._etc_passwd'],
    ['an encoded path', "attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", '.._.._etc_passwd'],
    ['a bare inline', 'inline', 'report 2024.csv'],
  ])(
    'always sends an attachment with a sanitised name when upstream says %s',
    (_name, disposition, fileName) => {
      const headers = toStreamHeaders(opened({ 'content-disposition': disposition }));

      expect(headers['content-disposition']).toBe(attachmentDisposition(fileName));
      expect(fileNameFromDisposition(headers['content-disposition'])).toBe(fileName);
      expect(headers['x-content-type-options']).toBe('nosniff');
    },
  );

  it.each([
    'text/html',
    'text/html; charset=utf-8',
    'TEXT/HTML',
    'application/xhtml+xml',
    'image/svg+xml',
    'text/xml',
    'application/xml; charset=utf-8',
    'application/rss+xml',
    'text/plain, text/html',
  ])('sends the active content type %s as application/octet-stream', (contentType) => {
    expect(toStreamHeaders(opened({ 'content-type': contentType }))['content-type']).toBe(
      'application/octet-stream',
    );
  });

  it.each(['text/csv; charset=utf-8', 'application/json', 'application/pdf', 'image/png', 'text/plain'])(
    'keeps the inert content type %s',
    (contentType) => {
      expect(toStreamHeaders(opened({ 'content-type': contentType }))['content-type']).toBe(contentType);
    },
  );

  it('keeps Content-Range on partial content', () => {
    const headers = toStreamHeaders(
      opened({ 'content-range': 'bytes 0-9/100', 'content-length': '10' }, 206),
    );
    expect(headers['content-range']).toBe('bytes 0-9/100');
  });

  it('names the file after the key when upstream does not', () => {
    const headers = toStreamHeaders(opened({}));
    expect(headers['content-disposition']).toBe(
      `attachment; filename="report 2024.csv"; filename*=UTF-8''report%202024.csv`,
    );
    expect(headers['content-type']).toBe('application/octet-stream');
  });
});

describe('Content-Disposition', () => {
  it('round-trips non-ASCII names', () => {
    expect(fileNameFromDisposition(attachmentDisposition('café menu (1).pdf'))).toBe('café menu (1).pdf');
  });

  it('reads plain and quoted file names and refuses path tricks', () => {
    expect(fileNameFromDisposition('attachment; filename=data.bin')).toBe('data.bin');
    expect(fileNameFromDisposition('attachment; filename="a \\"b\\".txt"')).toBe('a "b".txt');
    expect(fileNameFromDisposition('attachment; filename="../../etc/passwd"')).toBe('.._.._etc_passwd');
    expect(fileNameFromDisposition('inline')).toBeUndefined();
  });
});

describe('toForwardedQuery', () => {
  it('drops this API’s own parameters', () => {
    expect(toForwardedQuery(new URLSearchParams('mode=async&v=2'))?.toString()).toBe('v=2');
    expect(toForwardedQuery(new URLSearchParams('mode=stream'))).toBeUndefined();
  });
});

describe('parseContentLength', () => {
  it.each([
    ['123', 123],
    [' 0 ', 0],
    ['-1', undefined],
    ['1e3', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%s → %s', (raw, expected) => {
    expect(parseContentLength(raw)).toBe(expected);
  });
});

describe('toProblem', () => {
  it('maps HttpErrors to problem documents with their status and code', () => {
    expect(toProblem(new NotFoundError('UpstreamNotFound', 'no file'))).toMatchObject({
      status: 404,
      code: 'UpstreamNotFound',
      detail: 'no file',
      title: 'Not Found',
    });
    expect(toProblem(new UpstreamTimeoutError('slow')).status).toBe(504);
    expect(toProblem(new PayloadTooLargeError('big', { maxBytes: 1 }))).toMatchObject({
      status: 413,
      maxBytes: 1,
    });
  });

  it('never leaks an unexpected error', () => {
    const problem = toProblem(new Error('secret connection string'));
    expect(problem.status).toBe(500);
    expect(JSON.stringify(problem)).not.toContain('secret');
  });
});
