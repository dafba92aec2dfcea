import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download, getJson } from '../helpers/http.ts';
import { type RunningStack, startStack } from '../helpers/local-stack.ts';
import { sampleSha256 } from '../helpers/sample-bytes.ts';

const MB = 1_000_000;

let stack: RunningStack;
let rest: string;
let functionUrl: string;

beforeAll(async () => {
  stack = await startStack();
  rest = stack.endpoints.restApi;
  functionUrl = stack.endpoints.functionUrl;
});

afterAll(async () => {
  await stack?.stop();
});

/** Sends raw bytes and reports how the server ended the connection. */
function rawExchange(
  url: string,
  request: string | ((write: (chunk: string | Buffer) => boolean) => void),
): Promise<{ response: Buffer; ending: 'end' | 'reset' | string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (ending: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve({ response: Buffer.concat(chunks), ending });
    };
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('end', () => finish('end'));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(error.code === 'ECONNRESET' ? 'reset' : (error.code ?? error.message)),
    );
    socket.on('connect', () => {
      if (typeof request === 'string') socket.write(request);
      else request((chunk) => socket.write(chunk));
    });
  });
}

/** A client that gives up after `ms`, before any answer. */
async function impatient(url: string, ms: number): Promise<string | undefined> {
  const result = await download(url, { timeoutMs: ms });
  return result.error?.message;
}

async function stillServing(): Promise<void> {
  expect(stack.process.exitCode).toBeNull();
  const next = await download(`${rest}/stream/sample/1MB`);
  expect(next.status).toBe(200);
  expect(next.sha256).toBe(sampleSha256(MB));
}

describe('clients that leave early', () => {
  it.each([
    ['the REST stream route', () => `${rest}/stream/sample/5MB?delayMs=3000`],
    ['the router', () => `${rest}/download/sample/5MB?delayMs=3000`],
    ['the Function URL', () => `${functionUrl}/sample/5MB?delayMs=3000`],
  ])('leave the stack running when they go before upstream answers (%s)', async (_name, url) => {
    expect(await impatient(url(), 300)).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await stillServing();
  });

  it('leave the stack running after 200 immediate aborts in a row', async () => {
    const url = new URL(`${rest}/stream/sample/5MB?delayMs=200`);
    for (let i = 0; i < 200; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(Number(url.port), url.hostname, () => {
          socket.end(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: x\r\n\r\n`);
          socket.destroy();
        });
        socket.on('close', () => resolve());
        socket.on('error', () => {});
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await stillServing();
  });
});

describe('failed transfers', () => {
  it('reset an HTTP/1.0 connection, so the client can tell the body is incomplete', async () => {
    const { pathname, search } = new URL(`${rest}/stream/sample/5MB?chunked=1&failAfter=1000000`);
    const result = await rawExchange(rest, `GET ${pathname}${search} HTTP/1.0\r\n\r\n`);
    expect(result.response.subarray(0, 12).toString()).toBe('HTTP/1.1 200');
    expect(result.ending).toBe('reset');
  });

  it.each([
    ['the REST stream route', () => `${rest}/stream/sample/5MB?malformed=1`],
    ['the router', () => `${rest}/download/sample/5MB?malformed=1&mode=stream`],
    ['the Function URL', () => `${functionUrl}/sample/5MB?malformed=1`],
  ])(
    'answer a 502 problem document when upstream breaks before the first body byte (%s)',
    async (_name, url) => {
      const result = await getJson(url());
      expect(result.status).toBe(502);
      expect(result.headers['content-type']).toBe('application/problem+json');
      expect(result.json).toMatchObject({ status: 502, code: 'UpstreamUnreachable' });
    },
  );
});

describe('request bodies', () => {
  it('refuses a declared body above 10 MB with 413 before reading it', async () => {
    const { pathname } = new URL(`${rest}/stream/sample/1MB`);
    const result = await rawExchange(rest, (write) => {
      write(`POST ${pathname} HTTP/1.1\r\nHost: x\r\nContent-Length: ${400 * MB}\r\n\r\n`);
      write(Buffer.alloc(64 * 1024));
      return true;
    });
    expect(result.response.toString()).toMatch(/^HTTP\/1\.1 413 /);
    expect(result.response.toString()).toContain('Request Too Long');
  });

  it('stops reading a chunked body once it passes 10 MB', async () => {
    const { pathname } = new URL(`${rest}/stream/sample/1MB`);
    const chunk = Buffer.alloc(MB);
    const result = await rawExchange(rest, (write) => {
      write(`GET ${pathname} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
      for (let i = 0; i < 12; i++)
        write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
      return true;
    });
    expect(result.response.toString()).toMatch(/^HTTP\/1\.1 413 /);
    await stillServing();
  });
});
