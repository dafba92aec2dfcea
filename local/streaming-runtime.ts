import { Writable } from 'node:stream';
import {
  type AwsLambdaGlobal,
  type GlobalWithAwsLambda,
  HTTP_INTEGRATION_CONTENT_TYPE,
  type LambdaResponseStream,
  type ResponsePrelude,
  type StreamingHandler,
} from '../shared/http/awslambda.ts';

/** The marker the Node.js runtime puts on streamified handlers. */
const STREAMING_MARKER = Symbol.for('aws.lambda.runtime.handler.streaming');

/** 8 NUL bytes end the JSON prelude, as in the Lambda runtime's `HttpResponseStream`. */
export const PRELUDE_DELIMITER = Buffer.alloc(8);

/**
 * Installs a faithful `awslambda` global: `streamifyResponse` marks the handler, and
 * `HttpResponseStream.from` sets the HTTP-integration content type and writes the JSON prelude
 * followed by 8 NUL bytes, as the runtime does. Must run before handler modules are imported.
 */
export function installAwsLambdaGlobal(): void {
  const target = globalThis as unknown as GlobalWithAwsLambda;
  // Other libraries (the SDK's invoke store) may already have created `awslambda` for their own
  // members: add ours to it rather than replace it.
  if (typeof target.awslambda?.streamifyResponse === 'function') return;
  const runtime: AwsLambdaGlobal = {
    streamifyResponse<TEvent>(handler: StreamingHandler<TEvent>): StreamingHandler<TEvent> {
      Object.defineProperty(handler, STREAMING_MARKER, { value: 'response' });
      return handler;
    },
    HttpResponseStream: {
      from(stream: Writable, prelude: ResponsePrelude): LambdaResponseStream {
        const responseStream = stream as LambdaResponseStream;
        responseStream.setContentType?.(HTTP_INTEGRATION_CONTENT_TYPE);
        responseStream.write(JSON.stringify(prelude));
        responseStream.write(PRELUDE_DELIMITER);
        return responseStream;
      },
    },
  };
  target.awslambda = Object.assign(target.awslambda ?? {}, runtime);
}

/** True if the handler was wrapped with `awslambda.streamifyResponse`. */
export function isStreamingHandler(handler: unknown): boolean {
  return typeof handler === 'function' && STREAMING_MARKER in handler;
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

/** Where a response stream sends status, headers and body. */
export interface ResponseSink {
  /** Called once, before the first body byte. */
  start(prelude: ParsedPrelude): void;
  /** Writes a body chunk; resolves when the sink can take more (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Ends the response cleanly. */
  end(): Promise<void>;
  /** Aborts the response: the client must see an incomplete transfer. */
  abort(error: Error): void;
}

/**
 * The writable handed to a streaming handler. With the HTTP-integration content type it collects
 * the prelude up to the 8 NUL bytes, then passes the body through with backpressure; without it,
 * the whole stream is the body.
 */
export class GatewayResponseStream extends Writable implements LambdaResponseStream {
  private contentType = 'application/octet-stream';
  private started = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly sink: ResponseSink) {
    super();
  }

  /** True once status and headers have gone to the client. */
  get headersSent(): boolean {
    return this.started;
  }

  setContentType(contentType: string): void {
    if (!this.started) this.contentType = contentType;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.accept(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    (async () => {
      if (!this.started) {
        if (this.contentType === HTTP_INTEGRATION_CONTENT_TYPE && this.pendingBytes > 0) {
          throw new Error('response stream ended inside the HTTP prelude');
        }
        this.begin({ statusCode: 200, headers: { 'content-type': this.contentType } });
      }
      await this.sink.end();
    })().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (error) this.sink.abort(error);
    callback(error);
  }

  private begin(prelude: ParsedPrelude): void {
    this.started = true;
    this.sink.start(prelude);
  }

  private async accept(chunk: Buffer): Promise<void> {
    if (this.started) {
      if (chunk.length > 0) await this.sink.write(chunk);
      return;
    }
    if (this.contentType !== HTTP_INTEGRATION_CONTENT_TYPE) {
      this.begin({ statusCode: 200, headers: { 'content-type': this.contentType } });
      if (chunk.length > 0) await this.sink.write(chunk);
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const buffered = Buffer.concat(this.pending);
    const end = buffered.indexOf(PRELUDE_DELIMITER);
    if (end === -1) {
      if (buffered.length > 64 * 1024) throw new Error('HTTP prelude larger than 64 KiB');
      this.pending = [buffered];
      return;
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.begin(parsePrelude(buffered.subarray(0, end).toString('utf8')));
    const rest = buffered.subarray(end + PRELUDE_DELIMITER.length);
    if (rest.length > 0) await this.sink.write(rest);
  }
}
