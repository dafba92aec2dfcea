import { PassThrough } from 'node:stream';
import type { Context } from 'aws-lambda';
import {
  type AwsLambdaGlobal,
  type GlobalWithAwsLambda,
  HIGH_WATER_MARK_MARKER,
  HTTP_INTEGRATION_CONTENT_TYPE,
  type LambdaResponseStream,
  type ResponsePrelude,
  type StreamifyOptions,
  type StreamingHandler,
} from '../shared/http/awslambda.ts';
import type { RuntimeResponse, StreamingInvocation, StreamingOutcome } from './runtime-response.ts';

/** The marker the Node.js runtime puts on streamified handlers. */
const STREAMING_MARKER = Symbol.for('aws.lambda.runtime.handler.streaming');

/** 8 NUL bytes end the JSON prelude, as in the Lambda runtime's `HttpResponseStream`. */
export const PRELUDE_DELIMITER = Buffer.alloc(8);

/** The runtime's response stream buffers this much before `write()` returns false (Node 24's default). */
export const DEFAULT_HIGH_WATER_MARK = 64 * 1024;

/** What the runtime's `HttpResponseStream.from` hangs on the stream: called once, before the first write. */
type BeforeFirstWrite = (write: (chunk: string | Uint8Array) => void) => void;

interface EmulatedResponseStream extends LambdaResponseStream {
  _onBeforeFirstWrite?: BeforeFirstWrite;
}

/** Thrown by `setContentType` once the response has started, as the runtime does. */
export class InvalidStreamingOperationError extends Error {
  override readonly name = 'Runtime.InvalidStreamingOperation';
}

/**
 * Installs an `awslambda` global that behaves like the Node.js runtime's (npm `aws-lambda-ric`):
 * `streamifyResponse` marks the handler (and its high-water mark), and `HttpResponseStream.from`
 * sets the HTTP-integration content type and defers the JSON prelude and its 8 NUL bytes to the
 * first `write()`. Must run before handler modules are imported.
 */
export function installAwsLambdaGlobal(): void {
  const target = globalThis as unknown as GlobalWithAwsLambda;
  // Other libraries (the SDK's invoke store) may already have created `awslambda` for their own
  // members: add ours to it rather than replace it.
  if (typeof target.awslambda?.streamifyResponse === 'function') return;
  const runtime: AwsLambdaGlobal = {
    streamifyResponse<TEvent>(
      handler: StreamingHandler<TEvent>,
      options?: StreamifyOptions,
    ): StreamingHandler<TEvent> {
      Object.defineProperty(handler, STREAMING_MARKER, { value: 'response', configurable: true });
      if (typeof options?.highWaterMark === 'number') {
        Object.defineProperty(handler, HIGH_WATER_MARK_MARKER, { value: options.highWaterMark });
      }
      return handler;
    },
    HttpResponseStream: {
      from(stream: LambdaResponseStream, prelude: ResponsePrelude): LambdaResponseStream {
        stream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
        const json = JSON.stringify(prelude);
        (stream as EmulatedResponseStream)._onBeforeFirstWrite = (write) => {
          write(json);
          write(PRELUDE_DELIMITER);
        };
        return stream;
      },
    },
  };
  target.awslambda = Object.assign(target.awslambda ?? {}, runtime);
}

/** True if the handler was wrapped with `awslambda.streamifyResponse`. */
export function isStreamingHandler(handler: unknown): boolean {
  return typeof handler === 'function' && STREAMING_MARKER in handler;
}

function highWaterMarkOf(handler: unknown): number {
  const value = Number((handler as Record<symbol, unknown>)[HIGH_WATER_MARK_MARKER]);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_HIGH_WATER_MARK;
}

/** The status and headers a gateway sends for a streamed response. */
export interface ParsedPrelude {
  statusCode: number;
  headers: Record<string, string | string[]>;
}

/** Parses the JSON prelude the way API Gateway and Function URLs do. */
export function parsePrelude(json: string): ParsedPrelude {
  const value = JSON.parse(json) as Partial<ResponsePrelude>;
  const statusCode = typeof value.statusCode === 'number' ? value.statusCode : 200;
  const headers: Record<string, string | string[]> = {};
  for (const [name, header] of Object.entries(value.headers ?? {}))
    headers[name.toLowerCase()] = String(header);
  if (Array.isArray(value.cookies) && value.cookies.length > 0)
    headers['set-cookie'] = value.cookies.map(String);
  return { statusCode, headers };
}

/** An event listener on the response stream. */
type Listener = (...args: unknown[]) => void;

/** A streaming handler as the runtime calls it. */
export type AnyStreamingHandler = (
  event: unknown,
  responseStream: LambdaResponseStream,
  context: Context,
) => unknown;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * The response stream of one invocation, shaped like the runtime's: an object proxying the
 * methods of a writable (here a `PassThrough` whose readable side is what the Runtime API
 * receives), not a `Writable` itself. It behaves as the runtime's does: the prelude goes out with
 * the first `write()`, `setContentType` after it throws, objects are written as JSON, and
 * `destroy()` is the crash it is on AWS.
 */
function createResponseStream(
  highWaterMark: number,
  onStart: (response: RuntimeResponse) => void,
  onDestroy: (error: Error | undefined) => void,
): { stream: LambdaResponseStream; inner: PassThrough; fail(): void } {
  const inner = new PassThrough({ highWaterMark });
  let contentType = 'application/octet-stream';
  let writeCalled = false;
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    onStart({ contentType, body: inner });
  };
  const stream: EmulatedResponseStream = {
    write(chunk: unknown, ...rest: unknown[]): boolean {
      const data = typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : JSON.stringify(chunk);
      start();
      if (!writeCalled && typeof stream._onBeforeFirstWrite === 'function') {
        stream._onBeforeFirstWrite((first) => inner.write(first));
      }
      writeCalled = true;
      return (inner.write as (...args: unknown[]) => boolean)(data, ...rest);
    },
    end(...args: unknown[]): void {
      start();
      // Like `http.ClientRequest#end(chunk)`, a chunk given to `end()` skips the prelude hook.
      (inner.end as (...a: unknown[]) => void)(...args);
    },
    setContentType(value: string) {
      if (writeCalled) throw new InvalidStreamingOperationError('Cannot set content-type, too late.');
      contentType = value;
    },
    on: (event: string, listener: Listener) => inner.on(event, listener),
    once: (event: string, listener: Listener) => inner.once(event, listener),
    off: (event: string, listener: Listener) => inner.off(event, listener),
    get destroyed() {
      return inner.destroyed;
    },
    get writableFinished() {
      return inner.writableFinished;
    },
    get writableHighWaterMark() {
      return inner.writableHighWaterMark;
    },
  } as EmulatedResponseStream;
  // Methods the runtime's proxy also exposes; `destroy` is the one that matters.
  Object.assign(stream, {
    destroy(error?: Error) {
      onDestroy(error);
      inner.destroy();
      return stream;
    },
    cork: () => inner.cork(),
    uncork: () => inner.uncork(),
    addListener: (event: string, listener: Listener) => inner.addListener(event, listener),
    removeListener: (event: string, listener: Listener) => inner.removeListener(event, listener),
    listenerCount: (event: string) => inner.listenerCount(event),
    emit: (event: string, ...args: unknown[]) => inner.emit(event, ...args),
  });
  // Every error must have a listener, or it would crash the process the handlers share.
  inner.on('error', () => {});
  return {
    stream,
    inner,
    fail() {
      // The runtime adds error trailers and ends the request: the body ends, the outcome says why.
      start();
      if (!inner.writableEnded) inner.end();
    },
  };
}

/** A `Lambda-Runtime-Function-Error-Type` as the runtime derives it from what the handler threw. */
function toErrorOutcome(error: unknown): StreamingOutcome {
  if (error instanceof Error) {
    return { ok: false, errorType: error.name, errorMessage: error.message, crashed: false };
  }
  return { ok: false, errorType: typeof error, errorMessage: String(error), crashed: false };
}

/**
 * Runs one invocation of a streaming handler in this process, the way the Node.js runtime's
 * `StreamingInvokeProcessor` does: a handler that rejects gets error trailers after whatever it
 * wrote; one that resolves must have ended its stream; a destroyed stream is reported as the
 * runtime process exit it causes on AWS (`Runtime.ExitError`), loudly, without taking the local
 * stack down; a handler still running at `timeoutMs` is reported as `Sandbox.Timedout`.
 */
export function invokeInProcess(
  handler: AnyStreamingHandler,
  event: unknown,
  context: Context,
  options: { timeoutMs: number; log: (message: string) => void },
): StreamingInvocation {
  const response = deferred<RuntimeResponse | undefined>();
  const outcome = deferred<StreamingOutcome>();
  let over = false;
  const finish = (result: StreamingOutcome) => {
    if (over) return;
    over = true;
    clearTimeout(timer);
    response.resolve(undefined);
    outcome.resolve(result);
  };
  const name = context.functionName;
  const { stream, inner, fail } = createResponseStream(
    highWaterMarkOf(handler),
    (started) => response.resolve(started),
    (error) => {
      options.log(
        `${name}: Runtime.ExitError: the handler destroyed its response stream${error ? ` (${error.message})` : ''}. ` +
          'On AWS this exits the runtime process: the invocation fails and the next request pays a cold start. ' +
          'Reject the handler instead.',
      );
      finish({
        ok: false,
        errorType: 'Runtime.ExitError',
        errorMessage: `RequestId: ${context.awsRequestId} Error: Runtime exited with error: exit status 1`,
        crashed: true,
      });
    },
  );
  const timer = setTimeout(() => {
    options.log(`${name}: Task timed out after ${(options.timeoutMs / 1000).toFixed(2)} seconds`);
    finish({
      ok: false,
      errorType: 'Sandbox.Timedout',
      errorMessage: `Task timed out after ${(options.timeoutMs / 1000).toFixed(2)} seconds`,
      crashed: true,
    });
    inner.destroy();
  }, options.timeoutMs);
  timer.unref();

  const ended = new Promise<void>((resolve) => {
    inner.once('finish', resolve);
    inner.once('close', resolve);
  });
  (async () => {
    try {
      const result = handler(event, stream, context);
      if (!(result instanceof Promise)) throw new Error('Streaming does not support non-async handlers.');
      await result;
      // The runtime waits for the Runtime API's answer, which comes once the request body ended.
      await ended;
      if (!inner.writableFinished) throw new Error('Response stream is not finished.');
      finish({ ok: true });
    } catch (error) {
      if (over) return;
      options.log(`${name}: Invoke Error ${(error as Error)?.name}: ${(error as Error)?.message}`);
      const result = toErrorOutcome(error);
      fail();
      finish(result);
    }
  })();
  return { response: response.promise, outcome: outcome.promise };
}
