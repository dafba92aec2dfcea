import { describe, expect, it } from 'vitest';
import { CopyTimeoutError, S3UploadError } from '../../shared/downloads/copy-to-s3.ts';
import { toDownloadError } from '../../shared/downloads/failure.ts';
import {
  BadRequestError,
  ERRORS,
  type ErrorEntry,
  FileTooLargeError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  RangeNotSatisfiableError,
  ServiceUnavailableError,
  UnauthorizedError,
  UpstreamChangedError,
  UpstreamRejectedError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from '../../shared/errors.ts';

/** One instance of every named error class. */
const INSTANCES: Error[] = [
  new BadRequestError('InvalidKey', 'bad'),
  new UnauthorizedError('TokenRequired', 'no token'),
  new ForbiddenError('TokenMismatch', 'wrong token'),
  new NotFoundError('NotFound', 'none'),
  new PayloadTooLargeError('too large', {}),
  new FileTooLargeError('too large'),
  new RangeNotSatisfiableError(undefined),
  new UpstreamUnavailableError('UpstreamFailed', 'down'),
  new UpstreamRejectedError('UpstreamRejected', 'refused'),
  new UpstreamTimeoutError('slow'),
  new UpstreamChangedError('changed'),
  new ServiceUnavailableError('StorageFailed', 'down'),
  new S3UploadError('s3'),
  new CopyTimeoutError('late'),
];

describe('the error catalogue', () => {
  it.each(INSTANCES.map((error) => [error.name, error] as const))(
    '%s is declared, and answers with its declared status and code',
    (name, error) => {
      expect(Object.keys(ERRORS)).toContain(name);
      const entry = ERRORS[name as keyof typeof ERRORS] as ErrorEntry;
      if ('statusCode' in error) expect(error.statusCode).toBe(entry.status);
      if (entry.code) expect((error as { code?: string }).code).toBe(entry.code);
    },
  );

  it.each(Object.entries(ERRORS as Record<string, ErrorEntry>).filter(([, entry]) => entry.failureCode))(
    'records a workflow failure named %s under its failure code',
    (name, entry) => {
      expect(toDownloadError({ Error: name, Cause: '{"errorMessage":"why"}' }).code).toBe(entry.failureCode);
    },
  );

  it('reports an error name it does not declare as InternalError', () => {
    expect(toDownloadError({ Error: 'TypeError', Cause: '{"errorMessage":"x is undefined"}' })).toEqual({
      code: 'InternalError',
      message: 'The download failed unexpectedly',
    });
  });
});
