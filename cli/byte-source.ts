import type { ApiClient, ReadyFile } from './api.ts';
import { CliError, FileChangedError } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import { discard, type HttpResponse, readText, send } from './http.ts';

/** An answer with bytes of the file: where they start, and what the server says about the whole. */
export interface OpenedBody {
  status: number;
  /** Offset of the first byte in the file. */
  start: number;
  /** Size of the whole file, when the answer tells. */
  total: number | undefined;
  etag: string | undefined;
  /** The server said it serves byte ranges. */
  acceptsRanges: boolean;
  body: HttpResponse['body'];
}

/** Somewhere to GET the file from, whole or from an offset. */
export interface ByteSource {
  /** Named in messages ("S3", "the API"). */
  readonly name: string;
  /**
   * The file from `range.start` (to `range.end`, exclusive, when given), or all of it. With `etag`,
   * only that version of the file: S3 refuses another (If-Match → FileChangedError); the API sends
   * the whole file instead (If-Range).
   */
  open(
    range: { start: number; end?: number } | undefined,
    etag: string | undefined,
    signal: AbortSignal,
  ): Promise<OpenedBody>;
}

/** A 5xx or 429 from a server, worth another try. */
export class TransientHttpError extends Error {
  override readonly name = 'TransientHttpError';
}

/** Reads `Content-Range` / `Content-Length` / `ETag` / `Accept-Ranges` of a 200 or 206. */
export function toOpenedBody(response: HttpResponse): OpenedBody {
  const { headers } = response;
  const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headers['content-range'] ?? '');
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  let start = 0;
  let total: number | undefined;
  if (response.status === 206 && range) {
    start = Number(range[1]);
    total = range[3] === '*' ? undefined : Number(range[3]);
  } else if (response.status === 200 && length !== undefined && Number.isSafeInteger(length)) {
    total = length;
  }
  return {
    status: response.status,
    start,
    total,
    etag: headers.etag,
    acceptsRanges:
      response.status === 206 || (headers['accept-ranges'] ?? '').toLowerCase().includes('bytes'),
    body: response.body,
  };
}

function rangeHeader(range: { start: number; end?: number }): string {
  return `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}`;
}

/**
 * A presigned S3 URL from a `ready` message or a READY status. Never signed again (it carries its
 * own signature). When S3 refuses it (403: expired), `refresh` asks the status URL for a freshly
 * signed one (the service re-signs on read) and the request is sent once more; concurrent range
 * requests share that one refresh.
 */
export function createPresignedSource(
  ready: ReadyFile,
  refresh: (() => Promise<ReadyFile>) | undefined,
  note: (line: string) => void,
): ByteSource & { readonly current: ReadyFile } {
  let current = ready;
  let refreshing: Promise<ReadyFile> | undefined;
  const renew = async (stale: ReadyFile): Promise<void> => {
    if (!refresh) return;
    if (current !== stale) return; // another range request renewed it already
    refreshing ??= refresh().finally(() => {
      refreshing = undefined;
    });
    current = await refreshing;
  };
  return {
    name: 'S3',
    get current() {
      return current;
    },
    async open(range, etag, signal) {
      // Expiry is handled when S3 says so (403), not by the clock: clocks differ, S3 decides.
      for (let attempt = 0; ; attempt++) {
        const used = current;
        const headers: Record<string, string> = {};
        if (range) headers.range = rangeHeader(range);
        if (etag) headers['if-match'] = etag;
        const response = await send(new URL(used.url), { headers, signal });
        if (response.status === 200 || response.status === 206) return toOpenedBody(response);
        const text = await readText(response, 16 * 1024).catch(() => '');
        const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
        const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
        const said = [code, message].filter(Boolean).join(': ') || `HTTP ${response.status}`;
        if (response.status === 412) throw new FileChangedError(`S3: ${said}`);
        if (response.status === 416) throw new FileChangedError(`S3 refused the range: ${said}`);
        if (response.status === 403 && refresh && attempt === 0) {
          note(`S3 refused the download URL (${said}): asking the status URL for a fresh one`);
          await renew(used);
          continue;
        }
        if (response.status === 403) {
          throw new CliError(EXIT.accessDenied, 'S3 refused the download URL (403)', said);
        }
        if (response.status === 404) {
          throw new CliError(EXIT.notFound, 'the copy is no longer in S3 (404)', said);
        }
        if (response.status === 429 || response.status >= 500) {
          throw new TransientHttpError(`S3 answered ${response.status} (${said})`);
        }
        throw new CliError(EXIT.other, `S3 answered ${response.status}`, said);
      }
    },
  };
}

/**
 * The API's streaming route (`/stream/{key}`, or a Function URL): signed like every API request.
 * A resumed request sends `Range` with `If-Range: <etag>`, so a changed file comes back whole.
 */
export function createStreamSource(api: ApiClient, url: URL): ByteSource {
  return {
    name: 'the API',
    async open(range, etag, signal) {
      const headers: Record<string, string> = {};
      if (range) headers.range = rangeHeader(range);
      if (range && etag) headers['if-range'] = etag;
      const response = await api.get(url, { headers, signal });
      if (response.status === 200 || response.status === 206) return toOpenedBody(response);
      if (response.status === 416) {
        discard(response);
        throw new FileChangedError('the API refused the range (416)');
      }
      if (response.status >= 500 && response.status !== 503) {
        const error = await api.toError(response, 'streaming the file');
        throw new TransientHttpError(error.message);
      }
      throw await api.toError(response, 'streaming the file');
    },
  };
}
