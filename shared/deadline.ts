/** Raised when a function's own deadline (remaining time minus a margin) passes. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
}

/** The part of the Lambda context this module needs. */
export interface RemainingTime {
  getRemainingTimeInMillis(): number;
}

/**
 * An `AbortSignal` that fires `marginMs` before the invocation runs out of time, so that the
 * function can still clean up (abort a multipart upload, record the failure) before Lambda kills it.
 */
export function deadlineSignal(context: RemainingTime, marginMs: number): AbortSignal {
  const remaining = context.getRemainingTimeInMillis();
  const controller = new AbortController();
  const budget = Math.max(remaining - marginMs, 0);
  const timer = setTimeout(
    () => controller.abort(new DeadlineExceededError(`stopped ${marginMs} ms before the function's timeout`)),
    budget,
  );
  timer.unref();
  return controller.signal;
}
