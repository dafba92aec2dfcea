import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  GatewayResponseStream,
  installAwsLambdaGlobal,
  type ParsedPrelude,
  PRELUDE_DELIMITER,
  parsePrelude,
  type ResponseSink,
} from '../../local/streaming-runtime.ts';
import { startHttpResponse } from '../../shared/http/awslambda.ts';

/** Records what a gateway would send; `drainEvery` simulates a slow client. */
function recordingSink(drainEvery = 0) {
  const record = {
    prelude: undefined as ParsedPrelude | undefined,
    chunks: [] as Buffer[],
    ended: false,
    aborted: undefined as Error | undefined,
  };
  let writes = 0;
  const sink: ResponseSink = {
    start: (prelude) => {
      record.prelude = prelude;
    },
    write: async (chunk) => {
      record.chunks.push(chunk);
      writes++;
      if (drainEvery && writes % drainEvery === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    },
    end: async () => {
      record.ended = true;
    },
    abort: (error) => {
      record.aborted = error;
    },
  };
  return { sink, record };
}

beforeAll(() => installAwsLambdaGlobal());

describe('HttpResponseStream.from (prelude writer)', () => {
  it('writes the JSON prelude, then 8 NUL bytes, then the body', async () => {
    const written: Buffer[] = [];
    const target = new (await import('node:stream')).Writable({
      write(chunk, _enc, cb) {
        written.push(Buffer.from(chunk));
        cb();
      },
    });
    const stream = startHttpResponse(target, { statusCode: 206, headers: { 'content-type': 'text/csv' } });
    stream.end('body');
    await new Promise((resolve) => target.on('finish', resolve));
    const bytes = Buffer.concat(written);
    const json = JSON.stringify({ statusCode: 206, headers: { 'content-type': 'text/csv' } });
    expect(bytes.subarray(0, json.length).toString()).toBe(json);
    expect(bytes.subarray(json.length, json.length + 8).equals(PRELUDE_DELIMITER)).toBe(true);
    expect(bytes.subarray(json.length + 8).toString()).toBe('body');
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

describe('GatewayResponseStream (prelude parser)', () => {
  it('splits prelude from body even when the delimiter straddles chunks', async () => {
    const { sink, record } = recordingSink();
    const stream = new GatewayResponseStream(sink);
    stream.setContentType('application/vnd.awslambda.http-integration-response');
    const prelude = Buffer.from(JSON.stringify({ statusCode: 201, headers: { 'x-a': 'b' } }));
    const whole = Buffer.concat([prelude, PRELUDE_DELIMITER, Buffer.from('hello world')]);
    const pieces = [
      whole.subarray(0, 5),
      whole.subarray(5, prelude.length + 3),
      whole.subarray(prelude.length + 3),
    ];
    await pipeline(Readable.from(pieces), stream);
    expect(record.prelude).toEqual({ statusCode: 201, headers: { 'x-a': 'b' } });
    expect(Buffer.concat(record.chunks).toString()).toBe('hello world');
    expect(record.ended).toBe(true);
  });

  it('passes a raw stream through as a 200 with its content type', async () => {
    const { sink, record } = recordingSink();
    const stream = new GatewayResponseStream(sink);
    stream.setContentType('text/plain');
    await pipeline(Readable.from([Buffer.from('raw')]), stream);
    expect(record.prelude).toEqual({ statusCode: 200, headers: { 'content-type': 'text/plain' } });
    expect(Buffer.concat(record.chunks).toString()).toBe('raw');
  });

  it('answers an empty body with headers and a clean end', async () => {
    const { sink, record } = recordingSink();
    const stream = startHttpResponse(new GatewayResponseStream(sink), { statusCode: 204 });
    stream.write('');
    await new Promise<void>((resolve) => stream.end(resolve));
    expect(record.prelude?.statusCode).toBe(204);
    expect(record.chunks).toEqual([]);
    expect(record.ended).toBe(true);
  });

  it('waits for the sink before taking more (backpressure) and keeps every byte in order', async () => {
    const { sink, record } = recordingSink(3);
    const stream = startHttpResponse(new GatewayResponseStream(sink), { statusCode: 200 });
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1000, i));
    await pipeline(Readable.from(chunks), stream);
    expect(Buffer.concat(record.chunks).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('aborts the response instead of ending it when destroyed with an error', () => {
    const { sink, record } = recordingSink();
    const stream = startHttpResponse(new GatewayResponseStream(sink), { statusCode: 200 });
    stream.on('error', () => {});
    stream.destroy(new Error('upstream broke'));
    expect(record.aborted?.message).toBe('upstream broke');
    expect(record.ended).toBe(false);
  });
});
