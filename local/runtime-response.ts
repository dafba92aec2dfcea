import type { Readable } from 'node:stream';

/**
 * How one streaming invocation ended, as the Lambda service sees it. `errorType` comes from the
 * runtime's `Lambda-Runtime-Function-Error-Type` trailer (or error post); a `crashed` invocation is
 * one whose runtime process died (`Runtime.ExitError`) or was stopped (`Sandbox.Timedout`).
 */
export type StreamingOutcome =
  | { ok: true }
  | { ok: false; errorType: string; errorMessage: string; crashed: boolean };

/** The response a runtime posts for one streaming invocation, as the Runtime API receives it. */
export interface RuntimeResponse {
  /** The `Content-Type` the runtime posted (the HTTP-integration type when a prelude leads the body). */
  contentType: string;
  /** The posted bytes, with backpressure towards the function. */
  body: Readable;
}

/**
 * One streaming invocation in flight. `response` resolves once the runtime starts posting (its
 * request headers are in), or with `undefined` if the invocation ended without posting anything.
 * `outcome` resolves (never rejects) when the invocation is over: after the body's last byte and
 * its trailers, or when the runtime failed or died.
 */
export interface StreamingInvocation {
  response: Promise<RuntimeResponse | undefined>;
  outcome: Promise<StreamingOutcome>;
}

/** Runs a response-streaming function for one event; the in-process runtime and the real runtime client both provide it. */
export type InvokeStreaming = (event: unknown) => StreamingInvocation;
