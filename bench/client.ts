import { connect } from 'node:net';

/** What the discarding client saw of one response. */
export interface Transfer {
  status: number;
  /** Body bytes received (chunked framing excluded). */
  bytes: number;
  /** From starting the request (connect included) to the first body byte. */
  firstByteMs: number | undefined;
  /** From starting the request to the end of the body. */
  totalMs: number;
}

/** Where a chunked body's framing is being read. */
type ChunkState = 'size' | 'data' | 'data-end' | 'trailers';

/** A status line and headers longer than this are not a response this bench expects. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Every read lands in this one buffer, reused: no allocation, no fresh pages per read. */
const READ_BUFFER_BYTES = 1024 * 1024;

/**
 * GETs `url` (plain `http:`) on a new connection and throws the body away as it arrives, as
 * `curl -o /dev/null` does, so the client is not what limits the speed. Node's `http` client is not
 * used for this on purpose: on the 2-core development machine it cost 1.4–1.9 s of CPU per GB (a
 * fresh buffer for every read, the parser, stream events) and capped a transfer near 500 MB/s,
 * where reading into one reused buffer (`net.connect`'s `onread`) costs 0.3–0.5 s per GB, as
 * fast as curl. So this reads the response with a minimal HTTP/1.1 parser of its own: status
 * line, `Content-Length` or chunked framing, or the body up to the close. It only counts; the
 * bench checks the bytes themselves on a separate, hashed download through Node's `http`.
 * Rejects on a malformed or incomplete response.
 */
export function fetchDiscarding(url: string): Promise<Transfer> {
  const target = new URL(url);
  if (target.protocol !== 'http:') throw new Error(`fetchDiscarding speaks plain http only: ${url}`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    let headDone = false;
    let status = 0;
    let contentLength: number | undefined;
    let chunked = false;
    let chunkState: ChunkState = 'size';
    let chunkLeft = 0;
    let line = '';
    let bytes = 0;
    let firstByteMs: number | undefined;
    let settled = false;

    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(new Error(`GET ${url}: ${error.message} (after ${bytes} body bytes)`));
      else resolve({ status, bytes, firstByteMs, totalMs: performance.now() - started });
    };
    const countBody = (length: number) => {
      if (length === 0) return;
      firstByteMs ??= performance.now() - started;
      bytes += length;
    };

    /** Reads body bytes `data[from, to)`. */
    const onBody = (data: Uint8Array, from: number, to: number) => {
      if (!chunked) {
        countBody(to - from);
        if (contentLength !== undefined && bytes > contentLength)
          settle(new Error('body longer than Content-Length'));
        else if (bytes === contentLength) settle();
        return;
      }
      let at = from;
      while (at < to && !settled) {
        if (chunkState === 'data') {
          const take = Math.min(chunkLeft, to - at);
          countBody(take);
          chunkLeft -= take;
          at += take;
          if (chunkLeft === 0) chunkState = 'data-end';
          continue;
        }
        // Framing: read a line (size line, the CRLF after data, trailers) byte by byte.
        const byte = data[at++] as number;
        if (byte !== 0x0a) {
          if (byte !== 0x0d) line += String.fromCharCode(byte);
          if (line.length > 1024) settle(new Error('chunk framing line too long'));
          continue;
        }
        const text = line;
        line = '';
        if (chunkState === 'size') {
          const size = Number.parseInt(text.split(';')[0] ?? '', 16);
          if (!Number.isSafeInteger(size) || size < 0) settle(new Error(`bad chunk size line "${text}"`));
          else if (size === 0) chunkState = 'trailers';
          else {
            chunkLeft = size;
            chunkState = 'data';
          }
        } else if (chunkState === 'data-end') {
          if (text !== '') settle(new Error('chunk data not followed by CRLF'));
          else chunkState = 'size';
        } else if (text === '') {
          settle(); // The empty line after the last chunk (and its trailers, if any).
        }
      }
    };

    const onHead = (data: Uint8Array, length: number) => {
      head = Buffer.concat([head, data.subarray(0, length)]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HEAD_BYTES) settle(new Error('response head too long'));
        return;
      }
      headDone = true;
      const [statusLine = '', ...headerLines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (!statusMatch) return settle(new Error(`bad status line "${statusLine}"`));
      status = Number(statusMatch[1]);
      for (const headerLine of headerLines) {
        const colon = headerLine.indexOf(':');
        const name = headerLine.slice(0, colon).trim().toLowerCase();
        const value = headerLine.slice(colon + 1).trim();
        if (name === 'content-length') contentLength = Number(value);
        if (name === 'transfer-encoding') chunked = value.toLowerCase().includes('chunked');
      }
      if (!chunked && contentLength === 0) return settle();
      onBody(head, end + 4, head.length);
    };

    const socket = connect({
      host: target.hostname,
      port: Number(target.port || 80),
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (length, buffer) => {
          if (settled) return false;
          if (headDone) onBody(buffer, 0, length);
          else onHead(buffer, length);
          return true;
        },
      },
    });
    socket.once('connect', () => {
      socket.write(
        `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`,
      );
    });
    socket.once('error', (error) => settle(error));
    socket.once('end', () => {
      // A body without length or chunking ends with the connection; any other end is a break.
      if (headDone && !chunked && contentLength === undefined) settle();
      else settle(new Error('connection closed before the response was complete'));
    });
  });
}
