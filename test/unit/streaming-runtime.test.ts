import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLocalContext } from '../../local/lambda-service.ts';
import {
  type AnyStreamingHandler,
  DEFAULT_HIGH_WATER_MARK,
  installAwsLambdaGlobal,
  invokeInProcess,
  PRELUDE_DELIMITER,
  parsePrelude,
} from '../../local/streaming-runtime.ts';
import {
  HTTP_INTEGRATION_CONTENT_TYPE,
  type LambdaResponseStream,
  startHttpResponse,
  streamify,
} from '../../shared/http/awslambda.ts';
import { ResponseWriter, sendResponse } from '../../shared/http/response-writer.ts';
import { readInvocation } from '../helpers/invocation.ts';

beforeAll(() => installAwsLambdaGlobal());

function run(handler: AnyStreamingHandler, options: { timeoutMs?: number; log?: string[] } = {}) {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const context: Context = createLocalContext('test', timeoutMs);
  return invokeInProcess(handler, {}, context, {
    timeoutMs,
    log: (line) => options.log?.push(line),
  });
}

const prelude = { statusCode: 206, headers: { 'content-type': 'text/csv' } };
const preludeBytes = Buffer.concat([Buffer.from(JSON.stringify(prelude)), PRELUDE_DELIMITER]);

describe('the in-process runtime, as aws-lambda-ric behaves', () => {
  it('posts the prelude and its 8 NUL bytes with the first write, then the body', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        startHttpResponse(stream, prelude);
        stream.write('body');
        stream.end();
      }),
    );
    expect(received.contentType).toBe(HTTP_INTEGRATION_CONTENT_TYPE);
    expect(received.bytes.equals(Buffer.concat([preludeBytes, Buffer.from('body')]))).toBe(true);
    expect(received.outcome).toEqual({ ok: true });
  });

  it('posts no prelude at all for end() without a write', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        startHttpResponse(stream, prelude);
        stream.end();
      }),
    );
    expect(received.contentType).toBe(HTTP_INTEGRATION_CONTENT_TYPE);
    expect(received.bytes.length).toBe(0);
  });

  it('posts the prelude for an empty first write', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        startHttpResponse(stream, prelude);
        stream.write('');
        stream.end();
      }),
    );
    expect(received.bytes.equals(preludeBytes)).toBe(true);
  });

  it('refuses setContentType after the first write, failing the invocation', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        stream.write('x');
        stream.setContentType('text/plain');
      }),
    );
    expect(received.outcome).toMatchObject({ ok: false, errorType: 'Runtime.InvalidStreamingOperation' });
  });

  it('writes objects as JSON', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        (stream.write as (chunk: unknown) => boolean)({ a: 1 });
        stream.end();
      }),
    );
    expect(received.contentType).toBe('application/octet-stream');
    expect(received.bytes.toString()).toBe('{"a":1}');
  });

  it('reports a rejection after some bytes as error trailers, the body ending where it stopped', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        startHttpResponse(stream, prelude);
        stream.write('partial');
        throw new RangeError('upstream broke');
      }),
    );
    expect(received.bytes.equals(Buffer.concat([preludeBytes, Buffer.from('partial')]))).toBe(true);
    expect(received.outcome).toEqual({
      ok: false,
      errorType: 'RangeError',
      errorMessage: 'upstream broke',
      crashed: false,
    });
  });

  it('reports a destroyed response stream as the runtime exit it is on AWS, loudly', async () => {
    const log: string[] = [];
    const received = await readInvocation(
      run(
        async (_event, stream) => {
          stream.write('partial');
          (stream as unknown as { destroy(): void }).destroy();
        },
        { log },
      ),
    );
    expect(received.outcome).toMatchObject({ ok: false, errorType: 'Runtime.ExitError', crashed: true });
    expect(log.join('\n')).toMatch(/Runtime\.ExitError.*destroyed its response stream/);
  });

  it('reports a handler that resolves without ending its stream as timed out', async () => {
    const received = await readInvocation(
      run(
        async (_event, stream) => {
          stream.write('never ended');
        },
        { timeoutMs: 200 },
      ),
    );
    expect(received.outcome).toMatchObject({ ok: false, errorType: 'Sandbox.Timedout', crashed: true });
  });

  it('applies backpressure at 64 KiB by default, or at the high-water mark given to streamifyResponse', async () => {
    const marks: Array<{ hwm: number; firstFalseAt: number }> = [];
    const probe: AnyStreamingHandler = async (_event, stream) => {
      let written = 0;
      while (stream.write(Buffer.alloc(1024))) written += 1024;
      marks.push({ hwm: stream.writableHighWaterMark, firstFalseAt: written + 1024 });
      stream.end();
    };
    await readInvocation(run(probe));
    const small = streamify(probe as never, { highWaterMark: 8 * 1024 }) as unknown as AnyStreamingHandler;
    await readInvocation(run(small));
    // write() turns false once the mark is reached on the way to the Runtime API (the request's
    // buffer and the receiving side's each hold up to one mark).
    for (const [mark, hwm] of [
      [marks[0], DEFAULT_HIGH_WATER_MARK],
      [marks[1], 8 * 1024],
    ] as const) {
      expect(mark?.hwm).toBe(hwm);
      expect(mark?.firstFalseAt).toBeGreaterThanOrEqual(hwm);
      expect(mark?.firstFalseAt).toBeLessThanOrEqual(2 * hwm);
    }
  });
});

describe('ResponseWriter', () => {
  it('starts the response with the first body chunk and never destroys the runtime stream on failure', async () => {
    let destroyedByWriter = false;
    const received = await readInvocation(
      run(async (_event, stream) => {
        const guarded = new Proxy(stream, {
          get: (target, name) =>
            name === 'destroy'
              ? () => {
                  destroyedByWriter = true;
                }
              : Reflect.get(target, name),
        }) as LambdaResponseStream;
        const writer = new ResponseWriter(guarded, prelude);
        const source = Readable.from(
          (async function* () {
            yield Buffer.from('first');
            throw new Error('upstream broke');
          })(),
        );
        await expect(pipeline(source, writer)).rejects.toThrow('upstream broke');
        expect(writer.headersSent).toBe(true);
        throw new Error('mid-body failure');
      }),
    );
    expect(destroyedByWriter).toBe(false);
    expect(received.bytes.equals(Buffer.concat([preludeBytes, Buffer.from('first')]))).toBe(true);
    expect(received.outcome).toMatchObject({ ok: false, errorMessage: 'mid-body failure' });
  });

  it('has not started the response when the source fails before its first chunk', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        const writer = new ResponseWriter(stream, prelude);
        const failing = new Readable({
          read() {
            this.destroy(new Error('bad framing'));
          },
        });
        await expect(pipeline(failing, writer)).rejects.toThrow('bad framing');
        expect(writer.headersSent).toBe(false);
        await sendResponse(stream, { statusCode: 502 }, '{"status":502}');
      }),
    );
    const problemPrelude = Buffer.concat([Buffer.from('{"statusCode":502}'), PRELUDE_DELIMITER]);
    expect(received.bytes.toString()).toBe(
      Buffer.concat([problemPrelude, Buffer.from('{"status":502}')]).toString(),
    );
    expect(received.outcome).toEqual({ ok: true });
  });

  it('posts the prelude for an empty body', async () => {
    const received = await readInvocation(
      run(async (_event, stream) => {
        await pipeline(Readable.from([]), new ResponseWriter(stream, prelude));
      }),
    );
    expect(received.bytes.equals(preludeBytes)).toBe(true);
    expect(received.outcome).toEqual({ ok: true });
  });
});

describe('parsePrelude', () => {
  it('reads status, lower-cases headers and turns cookies into set-cookie', () => {
    expect(
      parsePrelude('{"statusCode":404,"headers":{"Content-Type":"application/json"},"cookies":["a=1"]}'),
    ).toEqual({
      statusCode: 404,
      headers: { 'content-type': 'application/json', 'set-cookie': ['a=1'] },
    });
  });

  it('defaults to 200', () => {
    expect(parsePrelude('{}').statusCode).toBe(200);
  });
});
