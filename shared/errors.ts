/**
 * The HTTP error family. Every error a client may see is an `HttpError` with a status, a stable
 * machine-readable `code` and a message that is safe to show; anything else becomes a 500 whose
 * details stay in the logs.
 */
export class HttpError extends Error {
  override readonly name: string = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** Extra members of the problem document (e.g. where to go instead). */
    readonly extra: Readonly<Record<string, unknown>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What one named error means to a client, to a download record and to the workflow. */
export interface ErrorEntry {
  /** HTTP status of the answer when the error reaches an API (absent: never does). */
  readonly status?: number;
  /** The problem document's `code` when the class fixes it (others take it per instance). */
  readonly code?: string;
  /** The download record's `error.code` when a workflow task fails with this error. */
  readonly failureCode?: string;
  /** Step Functions retries `FetchToS3` on it (the failure may heal). */
  readonly retryable: boolean;
}

/**
 * Every error name that crosses a boundary (HTTP answer, Step Functions `Error`), declared once.
 * The classes below take their status and code from it, `shared/downloads/failure.ts` maps a
 * caught error to the record's code with it, and `infra/state-machine-definition.ts` builds the
 * `FetchToS3` Retry list from the `retryable` ones, in this order.
 */
export const ERRORS = {
  BadRequestError: { status: 400, failureCode: 'InvalidKey', retryable: false },
  UnauthorizedError: { status: 401, retryable: false },
  ForbiddenError: { status: 403, retryable: false },
  NotFoundError: { status: 404, failureCode: 'UpstreamNotFound', retryable: false },
  PayloadTooLargeError: { status: 413, code: 'TooLargeForStreaming', retryable: false },
  FileTooLargeError: { status: 413, code: 'FileTooLarge', failureCode: 'FileTooLarge', retryable: false },
  RangeNotSatisfiableError: {
    status: 416,
    code: 'RangeNotSatisfiable',
    failureCode: 'RangeNotSatisfiable',
    retryable: false,
  },
  UpstreamUnavailableError: { status: 502, failureCode: 'UpstreamFailed', retryable: true },
  UpstreamRejectedError: { status: 502, failureCode: 'UpstreamRejected', retryable: false },
  UpstreamTimeoutError: {
    status: 504,
    code: 'UpstreamTimeout',
    failureCode: 'UpstreamTimeout',
    retryable: true,
  },
  ServiceUnavailableError: { status: 503, retryable: false },
  /** `shared/downloads/copy-to-s3.ts`: S3 itself failed during the copy. */
  S3UploadError: { failureCode: 'StorageFailed', retryable: true },
  /** `shared/downloads/copy-to-s3.ts`: the copy ran out of function time. */
  CopyTimeoutError: { failureCode: 'CopyTimeout', retryable: false },
  /**
   * Upstream's file changed while a parallel copy read it (412 on `If-Match`/`If-Unmodified-Since`,
   * or another `ETag`): the ranges would mix two versions, so the copy stops; retrying would not help.
   */
  UpstreamChangedError: {
    status: 502,
    code: 'UpstreamChanged',
    failureCode: 'UpstreamChanged',
    retryable: false,
  },
  /**
   * `shared/checksum/`: the copied bytes do not match the digest upstream announced (`Repr-Digest`,
   * `Digest`, `Content-MD5`, `x-amz-checksum-*`); nothing is stored. Not retried: upstream would
   * most likely send the same bytes again.
   */
  ChecksumMismatchError: {
    status: 502,
    code: 'ChecksumMismatch',
    failureCode: 'ChecksumMismatch',
    retryable: false,
  },
  /** Step Functions' own: a state ran past its `TimeoutSeconds`. */
  'States.Timeout': { failureCode: 'Timeout', retryable: false },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorName = keyof typeof ERRORS;

/** Names of the errors worth another attempt, in catalogue order. */
export const RETRYABLE_ERROR_NAMES: readonly ErrorName[] = (Object.keys(ERRORS) as ErrorName[]).filter(
  (name) => (ERRORS[name] as ErrorEntry).retryable,
);

/** 400: the key or a parameter is malformed. */
export class BadRequestError extends HttpError {
  override readonly name = 'BadRequestError' satisfies ErrorName;
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(ERRORS.BadRequestError.status, code, message, extra);
  }
}

/** 401: the request carries no credential where one is needed (e.g. no download token). */
export class UnauthorizedError extends HttpError {
  override readonly name = 'UnauthorizedError' satisfies ErrorName;
  constructor(code: string, message: string) {
    super(ERRORS.UnauthorizedError.status, code, message);
  }
}

/** 403: the credential the request carries does not grant it (e.g. a wrong download token). */
export class ForbiddenError extends HttpError {
  override readonly name = 'ForbiddenError' satisfies ErrorName;
  constructor(code: string, message: string) {
    super(ERRORS.ForbiddenError.status, code, message);
  }
}

/** 404: unknown download, or upstream has no such file. */
export class NotFoundError extends HttpError {
  override readonly name = 'NotFoundError' satisfies ErrorName;
  constructor(code: string, message: string) {
    super(ERRORS.NotFoundError.status, code, message);
  }
}

/** 413: too large for the streaming path; `extra` names the async alternative. */
export class PayloadTooLargeError extends HttpError {
  override readonly name = 'PayloadTooLargeError' satisfies ErrorName;
  constructor(message: string, extra: Record<string, unknown>) {
    super(ERRORS.PayloadTooLargeError.status, ERRORS.PayloadTooLargeError.code, message, extra);
  }
}

/** The body grew past what this path can carry (announced length unknown). Retrying will not help. */
export class FileTooLargeError extends HttpError {
  override readonly name = 'FileTooLargeError' satisfies ErrorName;
  constructor(message: string) {
    super(ERRORS.FileTooLargeError.status, ERRORS.FileTooLargeError.code, message);
  }
}

/** 416: upstream refused the requested range. */
export class RangeNotSatisfiableError extends HttpError {
  override readonly name = 'RangeNotSatisfiableError' satisfies ErrorName;
  constructor(contentRange: string | undefined) {
    super(
      ERRORS.RangeNotSatisfiableError.status,
      ERRORS.RangeNotSatisfiableError.code,
      'The requested range is not satisfiable',
      contentRange ? { contentRange } : {},
    );
  }
}

/** 502 that may heal: upstream 5xx/429, refused or broken connection. Step Functions retries it. */
export class UpstreamUnavailableError extends HttpError {
  override readonly name = 'UpstreamUnavailableError' satisfies ErrorName;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(ERRORS.UpstreamUnavailableError.status, code, message, {}, options);
  }
}

/** 502 that will not heal: upstream refused the request, or redirected somewhere not allowed. */
export class UpstreamRejectedError extends HttpError {
  override readonly name = 'UpstreamRejectedError' satisfies ErrorName;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(ERRORS.UpstreamRejectedError.status, code, message, {}, options);
  }
}

/** 504: upstream did not answer in time. */
export class UpstreamTimeoutError extends HttpError {
  override readonly name = 'UpstreamTimeoutError' satisfies ErrorName;
  constructor(message: string, options?: ErrorOptions) {
    super(ERRORS.UpstreamTimeoutError.status, ERRORS.UpstreamTimeoutError.code, message, {}, options);
  }
}

/** Upstream's file changed while it was being copied in ranges (see `ERRORS.UpstreamChangedError`). */
export class UpstreamChangedError extends HttpError {
  override readonly name = 'UpstreamChangedError' satisfies ErrorName;
  constructor(message: string, options?: ErrorOptions) {
    super(ERRORS.UpstreamChangedError.status, ERRORS.UpstreamChangedError.code, message, {}, options);
  }
}

/** The copied bytes do not match upstream's announced digest (see `ERRORS.ChecksumMismatchError`). */
export class ChecksumMismatchError extends HttpError {
  override readonly name = 'ChecksumMismatchError' satisfies ErrorName;
  constructor(message: string) {
    super(ERRORS.ChecksumMismatchError.status, ERRORS.ChecksumMismatchError.code, message);
  }
}

/** 503: a dependency (S3, DynamoDB, Step Functions) failed; the client may retry. */
export class ServiceUnavailableError extends HttpError {
  override readonly name = 'ServiceUnavailableError' satisfies ErrorName;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(ERRORS.ServiceUnavailableError.status, code, message, {}, options);
  }
}

/** A JSON problem document (RFC 9457) plus our stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  [member: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  416: 'Range Not Satisfiable',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Maps any thrown value to the problem document a client may see. Never leaks stack traces. */
export function toProblem(error: unknown): Problem {
  if (error instanceof HttpError) {
    return {
      ...error.extra,
      type: 'about:blank',
      title: TITLES[error.statusCode] ?? 'Error',
      status: error.statusCode,
      code: error.code,
      detail: error.message,
    };
  }
  return {
    type: 'about:blank',
    title: TITLES[500] as string,
    status: 500,
    code: 'InternalError',
    detail: 'The request failed unexpectedly; see the service logs.',
  };
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
