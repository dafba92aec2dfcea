import type { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';

/** Status line and headers written before the first body byte of a streamed HTTP response. */
export interface ResponsePrelude {
  statusCode: number;
  headers?: Record<string, string>;
  cookies?: string[];
}

/** The writable the Lambda runtime hands to a streaming handler. */
export interface LambdaResponseStream extends Writable {
  setContentType?(contentType: string): void;
}

/** A response-streaming handler, before `streamifyResponse` wraps it. */
export type StreamingHandler<TEvent> = (
  event: TEvent,
  responseStream: LambdaResponseStream,
  context: Context,
) => Promise<void>;

/**
 * The `awslambda` global of the Node.js Lambda runtime (and of the local gateway, which installs
 * a faithful copy before it loads any handler).
 */
export interface AwsLambdaGlobal {
  streamifyResponse<TEvent>(handler: StreamingHandler<TEvent>): StreamingHandler<TEvent>;
  HttpResponseStream: {
    /** Writes the JSON prelude and 8 NUL bytes; returns the stream to write the body to. */
    from(stream: Writable, prelude: ResponsePrelude): LambdaResponseStream;
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

function runtime(): AwsLambdaGlobal {
  const global = (globalThis as unknown as GlobalWithAwsLambda).awslambda;
  if (!global) {
    throw new Error(
      'The awslambda global is missing: streaming handlers run on the Lambda Node.js runtime or under the local gateway (npm start)',
    );
  }
  return global;
}

/** Wraps a handler for response streaming with the runtime's own `streamifyResponse`. */
export function streamify<TEvent>(handler: StreamingHandler<TEvent>): StreamingHandler<TEvent> {
  return runtime().streamifyResponse(handler);
}

/** Starts an HTTP response on a streaming handler's stream: status and headers, then the body. */
export function startHttpResponse(stream: Writable, prelude: ResponsePrelude): LambdaResponseStream {
  return runtime().HttpResponseStream.from(stream, prelude);
}
