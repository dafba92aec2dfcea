/**
 * The floor of one hop in Node: a bare proxy that forwards `GET /<path>` to `<upstream>/<path>`
 * with `undici.request` and pipes the body into the `node:http` response with `pipeline()`,
 * nothing else (no key validation, no headers policy, no Lambda runtime, no gateway). The bench
 * runs it as its own process in front of the stack's sample upstream, and compares the streaming
 * routes with it: what they cost beyond the hop itself.
 *
 * `node --import tsx bench/bare-proxy.ts --upstream http://127.0.0.1:3002/ [--port 0]` prints
 * `bare proxy listening on <url>`; it exits when its stdin closes (how the bench stops it, and what
 * happens when the bench dies).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { request } from 'undici';

/** Upstream headers passed on: what a client needs to read a download. */
const PASSED_HEADERS = ['content-length', 'content-type', 'content-range', 'accept-ranges'] as const;

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string' } } });
if (!values.upstream) throw new Error('--upstream <base URL> is required');
const upstream = new URL(values.upstream);

const server = createServer(async (req, res) => {
  try {
    const answer = await request(new URL((req.url ?? '/').slice(1), upstream), {
      method: req.method === 'HEAD' ? 'HEAD' : 'GET',
    });
    const headers: Record<string, string> = {};
    for (const name of PASSED_HEADERS) {
      const value = answer.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    res.writeHead(answer.statusCode, headers);
    await pipeline(answer.body, res);
  } catch {
    // Upstream failed or the client left: nothing to tell anyone but the client.
    res.destroy();
  }
});
server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`bare proxy listening on http://127.0.0.1:${port}/`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
