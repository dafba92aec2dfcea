import type { CopyFailureReport, DownloadStatus } from '../client/download-status.ts';
import { readErrorAnswer } from '../client/error-answer.ts';
import { CliError } from './errors.ts';
import { EXIT, exitCodeForFailure, exitCodeForStatus } from './exit-codes.ts';
import { describeNetworkError, type HttpResponse, isNetworkError, readText, send } from './http.ts';
import type { RequestSigner } from './signing.ts';

export { type DownloadStatus, type ReadyFile, toReadyFile } from '../client/download-status.ts';

/** `--mode`: let the router choose, or ask for `?mode=stream` / `?mode=async`. */
export type DownloadMode = 'auto' | 'stream' | 'async';

/** The `<key>` argument: a key, optionally with query parameters that go upstream (`sample/5MB?rate=1000`). */
export interface DownloadKey {
  /** As typed; identifies the download across runs. */
  raw: string;
  /** Path segments, each percent-encoded. */
  path: string;
  query: URLSearchParams;
  /** The key's last segment, a default output file name; undefined when it cannot be one. */
  fileName: string | undefined;
}

/** Splits `<key>[?query]`; the key is taken literally (a space is a space, `%` is a percent sign). */
export function parseDownloadKey(raw: string): DownloadKey {
  const queryStart = raw.indexOf('?');
  const keyPart = (queryStart === -1 ? raw : raw.slice(0, queryStart)).replace(/^\/+/, '');
  if (keyPart === '') throw new CliError(EXIT.usage, 'no key given', `"${raw}" names no file`);
  const segments = keyPart.split('/');
  const last = segments.at(-1) ?? '';
  return {
    raw,
    path: segments.map(encodeURIComponent).join('/'),
    query: new URLSearchParams(queryStart === -1 ? '' : raw.slice(queryStart + 1)),
    fileName: last === '' || last === '.' || last === '..' ? undefined : last,
  };
}

/** The JSON the router answers with 202. */
export interface AcceptedDownload {
  downloadId: string;
  status: string;
  webSocketUrl: string;
  statusUrl: string;
  executionArn?: string;
  expiresAt?: string;
  reason?: string;
  size?: number;
}

/** The error a FAILED status or `failed` message reports, as a CLI failure. */
export function toCopyFailure(error: CopyFailureReport | undefined): CliError {
  const code = typeof error?.code === 'string' ? error.code : 'InternalError';
  const message = typeof error?.message === 'string' ? error.message : 'the download failed';
  return new CliError(exitCodeForFailure(code), `the copy to S3 failed (${code})`, message);
}

/**
 * The API as the CLI uses it: a REST API (`/download`, `/stream`, `/downloads`) or a Function URL
 * (the stream function at `/{key}`). Requests are signed by `signer` when it signs.
 */
export class ApiClient {
  constructor(
    readonly base: URL,
    readonly functionUrl: boolean,
    readonly signer: RequestSigner,
  ) {}

  /** The router for `key` (a Function URL streams at `/{key}`). */
  downloadUrl(key: DownloadKey, mode: DownloadMode): URL {
    const url = this.#join(this.functionUrl ? key.path : `download/${key.path}`);
    const query = new URLSearchParams(key.query);
    if (mode !== 'auto') query.set('mode', mode);
    url.search = query.toString();
    return url;
  }

  /** The streaming route for `key`, which honours `Range`. */
  streamUrl(key: DownloadKey): URL {
    const url = this.#join(this.functionUrl ? key.path : `stream/${key.path}`);
    url.search = key.query.toString();
    return url;
  }

  /** `GET /downloads/{id}` (without the token: pass it in `X-Download-Token`). */
  statusUrlFor(downloadId: string): URL {
    return this.#join(`downloads/${encodeURIComponent(downloadId)}`);
  }

  #join(path: string): URL {
    const url = new URL(this.base.href);
    url.pathname = `${this.base.pathname.replace(/\/+$/, '')}/${path}`;
    url.search = '';
    url.hash = '';
    return url;
  }

  /**
   * GETs an API URL, signed when the signer signs. An unsigned request that the gateway refuses
   * with 403 is sent once more, signed, if credentials can be found. Answers of any status come
   * back; a connection that fails is a CliError (`unreachable`).
   */
  async get(url: URL, options: { headers?: Record<string, string>; signal?: AbortSignal } = {}) {
    const attempt = async (): Promise<HttpResponse> => {
      const headers = await this.signer.sign('GET', url, { ...options.headers });
      try {
        return await send(url, { headers, signal: options.signal });
      } catch (error) {
        if (options.signal?.aborted || !isNetworkError(error)) throw error;
        throw new CliError(
          EXIT.unreachable,
          `cannot reach the API at ${url.origin}`,
          `${describeNetworkError(error)}${url.origin === 'http://127.0.0.1:3000' ? ' (is `npm start` running? else set --api or LARGE_DOWNLOAD_API)' : ''}`,
          { cause: error },
        );
      }
    };
    const response = await attempt();
    if (response.status === 403 && isGatewayDenial(response) && !this.signer.signing) {
      if (await this.signer.retryWithSignature()) {
        response.body.destroy();
        return attempt();
      }
    }
    return response;
  }

  /** The failure an error answer stands for: its problem document's title and detail, or the gateway's message. */
  async toError(response: HttpResponse, what: string): Promise<CliError> {
    const text = await readText(response).catch(() => '');
    const { problem, message } = readErrorAnswer(text);
    const status = response.status;
    if (problem) {
      const { title, code, detail } = problem;
      const exitCode = code === 'DownloadNotStarted' ? exitCodeForFailure(code) : exitCodeForStatus(status);
      return new CliError(exitCode, `${title} (${status}${code ? ` ${code}` : ''})`, detail);
    }
    // API Gateway and Function URLs answer auth failures with `{"message": …}` (`{"Message": …}`).
    if (message !== undefined) {
      const firstLine = message.split('\n')[0] ?? message;
      return new CliError(exitCodeForStatus(status), `${what}: ${firstLine} (${status})`, this.#hint(status));
    }
    return new CliError(
      exitCodeForStatus(status),
      `${what}: HTTP ${status}`,
      text.trim().slice(0, 300) || undefined,
    );
  }

  #hint(status: number): string | undefined {
    if (status !== 403) return undefined;
    if (!this.signer.signing) {
      const remedy = this.signer.options.enabled
        ? 'set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY'
        : 'leave out --no-sign';
      return `the API needs SigV4-signed requests (IAM auth), and ${this.signer.describeUnsigned()}: ${remedy}`;
    }
    return `the signature was refused: check the credentials, the region (--region) and, for a Function URL, --function-url (a REST API also answers "Missing Authentication Token" for a path it does not have: check --api)`;
  }

  /** Reads a status URL (as the 202 gave it, token and all) or `statusUrlFor(id)` with the token in a header. */
  async getStatus(url: URL, options: { token?: string; signal?: AbortSignal } = {}): Promise<DownloadStatus> {
    const response = await this.get(url, {
      headers: options.token ? { 'x-download-token': options.token } : {},
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.status !== 200) throw await this.toError(response, 'reading the download status');
    const text = await readText(response);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const status = parsed as Partial<DownloadStatus> | undefined;
    if (typeof status?.status !== 'string' || typeof status.downloadId !== 'string') {
      throw new CliError(EXIT.other, 'the status URL answered something that is not a download status');
    }
    return status as DownloadStatus;
  }
}

/** A 403 from the gateway itself (JSON `message`), not a problem document from a function. */
function isGatewayDenial(response: HttpResponse): boolean {
  const type = response.headers['content-type'] ?? '';
  return !type.includes('problem+json');
}
