/** How the page talks to the download API: the same contract as the `large-download` CLI (cli/api.ts). */

import type { DownloadStatus } from '../client/download-status.ts';
import { readErrorAnswer } from '../client/error-answer.ts';

export type { DownloadStatus } from '../client/download-status.ts';

/** `?mode=`: let the router choose, or ask for one path. */
export type DownloadMode = 'auto' | 'stream' | 'async';

/** A key as typed, optionally with query parameters for upstream (`sample/20MB?rate=1000000`). */
export interface DownloadKey {
  raw: string;
  /** Path segments, each percent-encoded. */
  path: string;
  query: URLSearchParams;
  /** The key's last segment: the name the browser saves a streamed file under. */
  fileName: string;
}

/** Splits `<key>[?query]`; the key is taken literally, like the CLI does. Undefined when it names nothing. */
export function parseDownloadKey(raw: string): DownloadKey | undefined {
  const trimmed = raw.trim();
  const queryStart = trimmed.indexOf('?');
  const keyPart = (queryStart === -1 ? trimmed : trimmed.slice(0, queryStart)).replace(/^\/+/, '');
  if (keyPart === '') return undefined;
  const segments = keyPart.split('/');
  return {
    raw: trimmed,
    path: segments.map(encodeURIComponent).join('/'),
    query: new URLSearchParams(queryStart === -1 ? '' : trimmed.slice(queryStart + 1)),
    fileName: segments.at(-1) || 'download',
  };
}

/** The 202 body of `GET /download/{key}` (see the README's API section). */
export interface AcceptedDownload {
  downloadId: string;
  status: string;
  webSocketUrl: string;
  statusUrl: string;
  reason?: string;
  size?: number;
  expiresAt?: string;
}

/** What went wrong, shown as the problem document's title and detail. */
export interface Problem {
  title: string;
  detail?: string;
  status?: number;
  code?: string;
}

/** A failure the page shows as it is. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = 'ProblemError';
  }
}

/** Human words for the router's `reason`. */
export const ASYNC_REASONS: Readonly<Record<string, string>> = {
  'too-large-to-stream': 'larger than the API streams: copied to S3 first',
  'unknown-length': 'upstream did not announce a size: copied to S3 first',
  requested: 'the asynchronous path was asked for',
};

/** The REST API this page was served from: the page's own directory (`/` locally, `/prod/` on AWS). */
export function apiBaseOf(location: Location): URL {
  const base = new URL(location.href);
  base.search = '';
  base.hash = '';
  if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
  return base;
}

/** `download/{key}` under the API, with the key's query and the mode. */
export function routerUrl(base: URL, key: DownloadKey, mode: DownloadMode): URL {
  const url = new URL(`download/${key.path}`, base);
  const query = new URLSearchParams(key.query);
  if (mode !== 'auto') query.set('mode', mode);
  url.search = query.toString();
  return url;
}

/** Reads an error answer: a problem document (`title`, `detail`), API Gateway's `{message}`, or the status. */
export async function toProblem(response: Response): Promise<Problem> {
  const text = await response.text().catch(() => '');
  const { problem, message } = readErrorAnswer(text);
  const status = response.status;
  if (problem) return { ...problem, status };
  return {
    title: message ?? `HTTP ${status} ${response.statusText}`.trim(),
    status,
    ...(status === 403 && message
      ? { detail: 'The API refused the request: it may need SigV4-signed requests (apiAuth=iam).' }
      : {}),
  };
}

/** A network failure (no answer at all), as a problem. */
export function unreachable(url: URL, error: unknown): ProblemError {
  return new ProblemError({
    title: 'The API could not be reached',
    detail: `${url.origin}: ${error instanceof Error ? error.message : String(error)}`,
  });
}

/** `fetch`, with a network failure (no answer at all) as a problem; an abort stays an abort. */
async function request(url: URL, init: RequestInit & { signal: AbortSignal }): Promise<Response> {
  try {
    return await fetch(url, { cache: 'no-store', ...init });
  } catch (error) {
    if (init.signal.aborted) throw error;
    throw unreachable(url, error);
  }
}

/** What the router would do with a GET, from `HEAD`: stream (with the size) or go async. */
export type RouteAnswer =
  | { path: 'stream'; size: number | undefined; fileName: string | undefined }
  | { path: 'async' }
  | { path: 'failed'; status: number };

/** `HEAD /download/{key}`: the router's choice, starting nothing. */
export async function askRouter(url: URL, signal: AbortSignal): Promise<RouteAnswer> {
  const response = await request(url, { method: 'HEAD', signal });
  if (response.status === 202) return { path: 'async' };
  if (response.ok) {
    const length = response.headers.get('content-length');
    return {
      path: 'stream',
      size: length === null ? undefined : Number(length),
      fileName: fileNameOf(response.headers.get('content-disposition')),
    };
  }
  return { path: 'failed', status: response.status };
}

/** The answer of `GET /download/{key}` when it is not a stream: the 202 body, or the problem. */
export async function startDownload(
  url: URL,
  signal: AbortSignal,
): Promise<{ accepted: AcceptedDownload } | { streamed: true }> {
  const response = await request(url, { signal });
  if (response.status === 202) {
    const body = (await response.json()) as Partial<AcceptedDownload>;
    if (typeof body.webSocketUrl !== 'string' || typeof body.statusUrl !== 'string') {
      throw new ProblemError({ title: 'The router answered 202 without webSocketUrl and statusUrl' });
    }
    return { accepted: body as AcceptedDownload };
  }
  if (response.ok) {
    // The router streamed after all (the file shrank since HEAD): let the browser fetch it instead.
    await response.body?.cancel();
    return { streamed: true };
  }
  throw new ProblemError(await toProblem(response));
}

/** `GET statusUrl` (it carries the download token). */
export async function readStatus(statusUrl: string, signal: AbortSignal): Promise<DownloadStatus> {
  const response = await request(new URL(statusUrl), { signal });
  if (!response.ok) throw new ProblemError(await toProblem(response));
  const status = (await response.json()) as Partial<DownloadStatus>;
  if (typeof status.status !== 'string') {
    throw new ProblemError({ title: 'The status URL answered something that is not a download status' });
  }
  return status as DownloadStatus;
}

/** `filename="…"` (or `filename*=UTF-8''…`) of a Content-Disposition header. */
export function fileNameOf(disposition: string | null): string | undefined {
  if (!disposition) return undefined;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1]);
    } catch {
      // Fall through to the plain parameter.
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)/i.exec(disposition);
  return (plain?.[1] ?? plain?.[2])?.trim() || undefined;
}

/** Hands a URL to the browser's download manager: no bytes pass through this page's memory. */
export function saveThroughBrowser(url: string, fileName?: string): void {
  const anchor = document.createElement('a');
  anchor.href = url;
  // Honoured for same-origin URLs (the API); a presigned S3 URL names the file itself
  // (Content-Disposition: attachment).
  if (fileName) anchor.download = fileName;
  anchor.rel = 'noopener';
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
}
