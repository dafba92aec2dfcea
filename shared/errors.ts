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

/** 400: the key or a parameter is malformed. */
export class BadRequestError extends HttpError {
  override readonly name = 'BadRequestError';
  constructor(code: string, message: string, extra?: Record<string, unknown>) {
    super(400, code, message, extra);
  }
}

/** 401: the request carries no credential where one is needed (e.g. no download token). */
export class UnauthorizedError extends HttpError {
  override readonly name = 'UnauthorizedError';
  constructor(code: string, message: string) {
    super(401, code, message);
  }
}

/** 403: the credential the request carries does not grant it (e.g. a wrong download token). */
export class ForbiddenError extends HttpError {
  override readonly name = 'ForbiddenError';
  constructor(code: string, message: string) {
    super(403, code, message);
  }
}

/** 404: unknown download, or upstream has no such file. */
export class NotFoundError extends HttpError {
  override readonly name = 'NotFoundError';
  constructor(code: string, message: string) {
    super(404, code, message);
  }
}

/** 413: too large for the streaming path; `extra` names the async alternative. */
export class PayloadTooLargeError extends HttpError {
  override readonly name = 'PayloadTooLargeError';
  constructor(message: string, extra: Record<string, unknown>) {
    super(413, 'TooLargeForStreaming', message, extra);
  }
}

/** The body grew past what this path can carry (announced length unknown). Retrying will not help. */
export class FileTooLargeError extends HttpError {
  override readonly name = 'FileTooLargeError';
  constructor(message: string) {
    super(413, 'FileTooLarge', message);
  }
}

/** 416: upstream refused the requested range. */
export class RangeNotSatisfiableError extends HttpError {
  override readonly name = 'RangeNotSatisfiableError';
  constructor(contentRange: string | undefined) {
    super(
      416,
      'RangeNotSatisfiable',
      'The requested range is not satisfiable',
      contentRange ? { contentRange } : {},
    );
  }
}

/** 502 that may heal: upstream 5xx/429, refused or broken connection. Step Functions retries it. */
export class UpstreamUnavailableError extends HttpError {
  override readonly name = 'UpstreamUnavailableError';
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(502, code, message, {}, options);
  }
}

/** 502 that will not heal: upstream refused the request, or redirected somewhere not allowed. */
export class UpstreamRejectedError extends HttpError {
  override readonly name = 'UpstreamRejectedError';
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(502, code, message, {}, options);
  }
}

/** 504: upstream did not answer in time. */
export class UpstreamTimeoutError extends HttpError {
  override readonly name = 'UpstreamTimeoutError';
  constructor(message: string, options?: ErrorOptions) {
    super(504, 'UpstreamTimeout', message, {}, options);
  }
}

/** 503: a dependency (S3, DynamoDB, Step Functions) failed; the client may retry. */
export class ServiceUnavailableError extends HttpError {
  override readonly name = 'ServiceUnavailableError';
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(503, code, message, {}, options);
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
