import { EXIT, type ExitCode } from './exit-codes.ts';

/** A failure to report to the user: a one-line title, an optional detail, and the exit code. */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    readonly title: string,
    readonly detail?: string,
    options?: ErrorOptions,
  ) {
    super(detail ? `${title}: ${detail}` : title, options);
  }
}

/** Ctrl-C or SIGTERM: the work stopped, the partial file and its state were saved. */
export class InterruptedError extends CliError {
  override readonly name = 'InterruptedError';
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated, `interrupted (${signal})`);
  }
}

/**
 * The file behind the URL is not the one the partial download holds (its ETag or size changed, or
 * the server answered a conditional request with 412): the parts already on disk must not be
 * stitched to the new bytes.
 */
export class FileChangedError extends Error {
  override readonly name = 'FileChangedError';
}

/** The server ignored `Range` (answered 200 with the whole file). */
export class RangeIgnoredError extends Error {
  override readonly name = 'RangeIgnoredError';
}

/** True for an error that means "stop now": interrupted by the user. */
export function isInterruption(error: unknown): error is InterruptedError {
  return error instanceof InterruptedError;
}

/** The interruption if `signal` was aborted by one, else `error` unchanged. */
export function interruptionOr(error: unknown, signal: AbortSignal): unknown {
  return signal.aborted && signal.reason instanceof InterruptedError ? signal.reason : error;
}
