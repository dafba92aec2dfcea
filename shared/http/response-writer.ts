import { Writable } from 'node:stream';
import { type LambdaResponseStream, type ResponsePrelude, startHttpResponse } from './awslambda.ts';

/** The runtime's response stream reported an error or closed while a write waited for it. */
export class ResponseStreamClosedError extends Error {
  override readonly name = 'ResponseStreamClosedError';
}

/**
 * The end of a `pipeline()` into the runtime's response stream. It starts the HTTP response with
 * the first body chunk (so a failure before it can still become an error response), writes with
 * backpressure, always writes at least one chunk before `end()` (the runtime posts the prelude only
 * from a write), and never destroys the response stream: when the pipeline fails, the handler
 * rejects and the runtime aborts the response with error trailers.
 */
export class ResponseWriter extends Writable {
  private started = false;

  constructor(
    private readonly target: LambdaResponseStream,
    private readonly prelude: ResponsePrelude,
  ) {
    super();
  }

  /** True once the prelude went out: from then on the status cannot change. */
  get headersSent(): boolean {
    return this.started;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.start();
    if (this.target.write(chunk)) {
      callback();
      return;
    }
    this.waitFor('drain', callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.started) {
      this.start();
      this.target.write('');
    }
    this.waitFor('finish', callback);
    this.target.end();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Deliberately leaves the response stream alone: see `LambdaResponseStream`.
    callback(error);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    startHttpResponse(this.target, this.prelude);
  }

  private waitFor(event: 'drain' | 'finish', callback: (error?: Error | null) => void): void {
    const done = (error?: Error) => {
      this.target.off(event, onEvent);
      this.target.off('error', onError);
      this.target.off('close', onClose);
      callback(error);
    };
    const onEvent = () => done();
    const onError = (error: Error) =>
      done(new ResponseStreamClosedError('The response stream failed', { cause: error }));
    const onClose = () => done(new ResponseStreamClosedError('The response stream closed'));
    this.target.once(event, onEvent);
    this.target.once('error', onError);
    if (event === 'drain') this.target.once('close', onClose);
  }
}

/** Sends a whole response (status, headers, a small body) and resolves once the runtime has it. */
export function sendResponse(
  target: LambdaResponseStream,
  prelude: ResponsePrelude,
  body: string,
): Promise<void> {
  const writer = new ResponseWriter(target, prelude);
  return new Promise((resolve, reject) => {
    writer.once('error', reject);
    writer.end(body, () => resolve());
  });
}
