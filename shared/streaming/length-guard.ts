import { Transform, type TransformCallback } from 'node:stream';
import { FileTooLargeError, UpstreamUnavailableError } from '../errors.ts';

/**
 * Passes bytes through and fails the stream if upstream sends more than it announced, ends before
 * it, or exceeds `maxBytes`. Failing (instead of ending) is what makes the client see an
 * incomplete transfer rather than a silently truncated file.
 */
export class LengthGuard extends Transform {
  bytes = 0;
  constructor(
    private readonly expectedBytes: number | undefined,
    private readonly maxBytes: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedBytes !== undefined && this.bytes > this.expectedBytes) {
      callback(
        new UpstreamUnavailableError(
          'UpstreamLengthMismatch',
          `Upstream sent more than the ${this.expectedBytes} bytes it announced`,
        ),
      );
      return;
    }
    if (this.bytes > this.maxBytes) {
      callback(new FileTooLargeError(`Upstream sent more than ${this.maxBytes} bytes`));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedBytes !== undefined && this.bytes < this.expectedBytes) {
      callback(
        new UpstreamUnavailableError(
          'UpstreamEndedEarly',
          `Upstream ended after ${this.bytes} of ${this.expectedBytes} announced bytes`,
        ),
      );
      return;
    }
    callback();
  }
}
