import type { Context } from 'aws-lambda';
import { streamifyResponse as streamifyWithFallback } from 'lambda-stream';

/** Status line and headers written before the first body byte of a streamed HTTP response. */
export interface ResponsePrelude {
  statusCode: number;
  headers?: Record<string, string>;
  cookies?: string[];
}

/**
 * The response stream the Node.js runtime hands a streaming handler. It is not a `Writable`: the
 * runtime (npm `aws-lambda-ric`) proxies about twenty methods of an `http.ClientRequest` to the
 * Runtime API. What is left out here is left out on purpose:
 * - `destroy()`: destroying it rejects promises inside the runtime that nothing awaits, and the
 *   runtime process exits (`Runtime.ExitError`, a cold start for the next request). To fail
 *   mid-stream, reject the handler's promise instead; the runtime then sends error trailers.
 * - `end(chunk)`: the runtime posts the prelude only from `write()`; `end(chunk)` bypasses it. Write
 *   the last chunk, then `end()`.
 */
export interface LambdaResponseStream {
  write(chunk: string | Uint8Array, callback?: (error?: Error | null) => void): boolean;
  end(callback?: () => void): void;
  on(event: 'drain' | 'finish' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'drain' | 'finish' | 'close', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'drain' | 'finish' | 'close', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  /** Throws `Runtime.InvalidStreamingOperation` after the first `write()`. */
  setContentType(contentType: string): void;
  readonly destroyed: boolean;
  readonly writableFinished: boolean;
  readonly writableHighWaterMark: number;
}

/** A response-streaming handler, before `streamifyResponse` wraps it. */
export type StreamingHandler<TEvent> = (
  event: TEvent,
  responseStream: LambdaResponseStream,
  context: Context,
) => Promise<void>;

/** Options of the runtime's `streamifyResponse`. */
export interface StreamifyOptions {
  /** High-water mark of the response stream, in bytes (the runtime's default is 64 KiB). */
  highWaterMark?: number;
}

/**
 * The `awslambda` global of the Node.js Lambda runtime (and of the local stack, which installs a
 * copy that behaves the same before it loads any handler).
 */
export interface AwsLambdaGlobal {
  streamifyResponse<TEvent>(
    handler: StreamingHandler<TEvent>,
    options?: StreamifyOptions,
  ): StreamingHandler<TEvent>;
  HttpResponseStream: {
    /**
     * Sets the HTTP-integration content type and arranges for the JSON prelude and 8 NUL bytes to
     * go out with the first `write()`; returns the same stream.
     */
    from(stream: LambdaResponseStream, prelude: ResponsePrelude): LambdaResponseStream;
  };
}

/**
 * The global as seen from here. `@types/aws-lambda` declares `awslambda` as always present; it is
 * not (unit tests, plain Node), so it is read through this optional view instead.
 */
export interface GlobalWithAwsLambda {
  awslambda?: AwsLambdaGlobal;
}

/** Content type the runtime sets on a stream that starts with an HTTP prelude. */
export const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';

/** Where the runtime reads a streaming handler's high-water mark (`aws-lambda-ric`'s UserFunctionLoader). */
export const HIGH_WATER_MARK_MARKER = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');

function runtime(): AwsLambdaGlobal {
  const global = (globalThis as unknown as GlobalWithAwsLambda).awslambda;
  if (!global) {
    throw new Error(
      'The awslambda global is missing: streaming handlers run on the Lambda Node.js runtime or under the local stack (npm start)',
    );
  }
  return global;
}

/**
 * Wraps a handler for response streaming. `lambda-stream` delegates to the runtime's own
 * `streamifyResponse` whenever the `awslambda` global exists (always on AWS and under the local
 * stack); its buffered fallback only serves code that imports a handler without any runtime.
 * `lambda-stream` does not pass options on, so the high-water mark is set where the runtime reads it.
 */
export function streamify<TEvent>(
  handler: StreamingHandler<TEvent>,
  options: StreamifyOptions = {},
): StreamingHandler<TEvent> {
  // lambda-stream types its handler for v2 events and its own stream class; the runtime calls it
  // with whatever event arrives and its own response stream, which is what StreamingHandler says.
  const wrapped = streamifyWithFallback(
    handler as unknown as Parameters<typeof streamifyWithFallback>[0],
  ) as unknown as StreamingHandler<TEvent>;
  if (options.highWaterMark !== undefined) {
    Object.defineProperty(wrapped, HIGH_WATER_MARK_MARKER, { value: options.highWaterMark });
  }
  return wrapped;
}

/** Starts an HTTP response on a streaming handler's stream: the prelude goes out with the first write. */
export function startHttpResponse(
  stream: LambdaResponseStream,
  prelude: ResponsePrelude,
): LambdaResponseStream {
  return runtime().HttpResponseStream.from(stream, prelude);
}
