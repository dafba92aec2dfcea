import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type AcceptedDownload,
  type ApiClient,
  type DownloadKey,
  type DownloadMode,
  parseDownloadKey,
  type ReadyFile,
  toReadyFile,
} from './api.ts';
import { createPresignedSource, createStreamSource, type OpenedBody, toOpenedBody } from './byte-source.ts';
import { CliError, FileChangedError, isInterruption, RangeIgnoredError } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import { type FetchOptions, fetchParallel, fetchSequential } from './fetch-file.ts';
import { formatBytes } from './format.ts';
import { readText } from './http.ts';
import { type Checksum, PartialFile, type ResumeState } from './partial-file.ts';
import type { ProgressBar, Reporter } from './progress.ts';
import { RateLimiter } from './rate-limiter.ts';
import { verifyDownload } from './verify.ts';
import { waitForCopy } from './wait-for-copy.ts';

export interface GetOptions {
  key: string;
  output: string | undefined;
  mode: DownloadMode;
  connections: number;
  retries: number;
  limitRate: number | undefined;
  resume: boolean;
}

export interface CommandContext {
  api: ApiClient;
  reporter: Reporter;
  signal: AbortSignal;
  /** First retry delay (ms); tests shorten it. */
  retryDelayMs?: number;
}

/** What the finished file must match. */
interface Expected {
  size: number | undefined;
  checksum: Checksum | undefined;
}

/** A file changed under the download this many times in one run: give up rather than loop. */
const MAX_RESTARTS = 2;

/** `-o FILE`, `-o DIR/` (the key's name inside), or the key's last segment in the working directory. */
async function resolveOutputPath(output: string | undefined, key: DownloadKey): Promise<string> {
  const needName = () =>
    new CliError(EXIT.usage, 'no file name', `"${key.raw}" does not end in a file name: give -o FILE`);
  if (output === '-') {
    throw new CliError(
      EXIT.usage,
      '-o - is not supported',
      'the file is written in place, in parts: give -o FILE',
    );
  }
  if (output === undefined) {
    if (!key.fileName) throw needName();
    return resolve(key.fileName);
  }
  const path = resolve(output);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) return path;
  if (!key.fileName) throw needName();
  return join(path, key.fileName);
}

function parseAccepted(text: string): AcceptedDownload {
  let body: Partial<AcceptedDownload> | undefined;
  try {
    body = JSON.parse(text) as Partial<AcceptedDownload>;
  } catch {
    body = undefined;
  }
  if (
    typeof body?.downloadId !== 'string' ||
    typeof body.statusUrl !== 'string' ||
    typeof body.webSocketUrl !== 'string'
  ) {
    throw new CliError(EXIT.other, 'the API answered 202 without a download handle', text.slice(0, 300));
  }
  return body as AcceptedDownload;
}

/**
 * `large-download get`: asks the router, then either writes the streamed answer or waits for the
 * copy to S3 and downloads the presigned URL in parallel ranges; resumes what a previous run left
 * in `FILE.part`; verifies; renames `FILE.part` to `FILE`.
 */
export async function runGet(options: GetOptions, context: CommandContext): Promise<void> {
  const key = parseDownloadKey(options.key);
  if (context.api.functionUrl && options.mode === 'async') {
    throw new CliError(EXIT.usage, '--mode async needs the REST API', 'a Function URL only streams');
  }
  const outputPath = await resolveOutputPath(options.output, key);
  const { file, previous, discarded } = await PartialFile.open(
    outputPath,
    { key: key.raw, api: context.api.base.href },
    { resume: options.resume },
  );
  const { reporter } = context;
  if (discarded) {
    reporter.note(
      options.resume
        ? `${file.partPath} was left by another download: starting over`
        : `--no-resume: starting over, without what ${file.partPath} held`,
    );
  }
  const checkpoints = setInterval(() => void file.checkpoint().catch(() => undefined), 1_000);
  try {
    const expected = await new Download(key, file, options, context).run(previous);
    const verified = await verifyDownload(file, expected);
    await file.complete(outputPath);
    if (verified.skipped) reporter.note(`checksum not checked: ${verified.skipped}`);
    reporter.note(
      `saved ${outputPath}: ${verified.size} bytes, ${verified.checked.join(' and ')} verified; ${file.written} bytes transferred this run`,
    );
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.verificationFailed) {
      await file.abandon().catch(() => undefined);
    } else if (file.bytesDone === 0 && file.facts.statusUrl === undefined) {
      // Nothing to resume (refused before the first byte): leave no files behind.
      await file.discard().catch(() => undefined);
    } else {
      await file.close().catch(() => undefined);
      if (file.bytesDone === 0 && isInterruption(error)) {
        reporter.note(
          `download ${file.facts.downloadId} goes on in the service: run the same command again to pick it up`,
        );
      } else if (file.bytesDone > 0) {
        const size = file.facts.size;
        reporter.note(
          `${isInterruption(error) ? 'stopped' : 'kept'} ${file.bytesDone}${size === undefined ? '' : ` of ${size}`} bytes in ${file.partPath}: run the same command again to resume`,
        );
      }
    }
    throw error;
  } finally {
    clearInterval(checkpoints);
  }
}

/** One run of `get`, from the router's answer (or the state a previous run left) to a complete FILE.part. */
class Download {
  readonly #limiter: RateLimiter | undefined;

  constructor(
    readonly key: DownloadKey,
    readonly file: PartialFile,
    readonly options: GetOptions,
    readonly context: CommandContext,
  ) {
    this.#limiter = options.limitRate ? new RateLimiter(options.limitRate) : undefined;
  }

  get #api(): ApiClient {
    return this.context.api;
  }

  #note = (line: string): void => this.context.reporter.note(line);

  async run(previous: ResumeState | undefined): Promise<Expected> {
    if (previous?.source === 'async' && previous.statusUrl) return this.#resumeAsync(previous.statusUrl);
    if (previous?.source === 'stream' && this.file.bytesDone > 0 && this.file.facts.etag) {
      return this.#resumeStream();
    }
    return this.#start();
  }

  /** Asks the router: a streamed answer, or 202 and the async path. */
  async #start(): Promise<Expected> {
    const url = this.#api.downloadUrl(this.key, this.options.mode);
    const response = await this.#api.get(url, { signal: this.context.signal });
    if (response.status === 202) return this.#copyThenFetch(parseAccepted(await readText(response)));
    if (response.status === 200 || response.status === 206) return this.#stream(toOpenedBody(response));
    throw await this.#api.toError(response, 'requesting the download');
  }

  #fetchOptions(bar: ProgressBar): Omit<FetchOptions, 'source' | 'exhaustedExitCode'> {
    return {
      file: this.file,
      signal: this.context.signal,
      retries: this.options.retries,
      note: this.#note,
      onBytes: (bytes, total) => bar.update(bytes, total),
      ...(this.#limiter ? { limiter: this.#limiter } : {}),
      ...(this.context.retryDelayMs !== undefined ? { retryDelayMs: this.context.retryDelayMs } : {}),
    };
  }

  /** Runs `transfer` under a progress bar, starting over (a bounded number of times) when the file changes. */
  async #transfer(total: number | undefined, transfer: (bar: ProgressBar) => Promise<void>): Promise<void> {
    const bar = this.context.reporter.bar('download', total, this.file.bytesDone);
    try {
      for (let restarts = 0; ; restarts++) {
        try {
          await transfer(bar);
          break;
        } catch (error) {
          if (!(error instanceof FileChangedError)) throw error;
          if (restarts >= MAX_RESTARTS) {
            throw new CliError(
              EXIT.verificationFailed,
              'the file keeps changing during the download',
              error.message,
            );
          }
          this.#note(`the file changed since the partial download (${error.message}): starting over`);
          await this.file.reset();
          bar.update(0);
        }
      }
      bar.done();
    } catch (error) {
      bar.done(isInterruption(error) ? 'stopped' : 'failed');
      throw error;
    }
  }

  #noteResume(from: string): void {
    const { file } = this;
    const size = file.facts.size;
    const percent = size ? ` (${((file.bytesDone / size) * 100).toFixed(1)}%)` : '';
    this.#note(
      `resuming at byte ${file.done.contiguousEnd}: ${file.bytesDone}${size === undefined ? '' : ` of ${size}`} bytes${percent} already in ${file.partPath}; the rest from ${from}`,
    );
  }

  /** The router streamed the file: write it, resuming through `/stream` with `Range` if it breaks. */
  async #stream(first: OpenedBody): Promise<Expected> {
    this.file.facts.source = 'stream';
    let pending: OpenedBody | undefined = first;
    await this.#transfer(first.total, async (bar) => {
      const opened = pending;
      pending = undefined;
      await fetchSequential({
        ...this.#fetchOptions(bar),
        source: createStreamSource(this.#api, this.#api.streamUrl(this.key)),
        exhaustedExitCode: EXIT.upstreamFailed,
        ...(opened ? { first: opened } : {}),
      });
    });
    return { size: this.file.facts.size, checksum: undefined };
  }

  /** A previous run streamed part of the file: ask `/stream` for the rest (`Range`, `If-Range`). */
  async #resumeStream(): Promise<Expected> {
    this.#noteResume(`${this.#api.streamUrl(this.key).pathname} (Range, If-Range: ${this.file.facts.etag})`);
    await this.#transfer(this.file.facts.size, (bar) =>
      fetchSequential({
        ...this.#fetchOptions(bar),
        source: createStreamSource(this.#api, this.#api.streamUrl(this.key)),
        exhaustedExitCode: EXIT.upstreamFailed,
      }),
    );
    return { size: this.file.facts.size, checksum: undefined };
  }

  /** 202: remember the handle (for a later run), wait for the copy, download it. */
  async #copyThenFetch(accepted: AcceptedDownload): Promise<Expected> {
    const { facts } = this.file;
    facts.source = 'async';
    facts.downloadId = accepted.downloadId;
    facts.statusUrl = accepted.statusUrl;
    facts.webSocketUrl = accepted.webSocketUrl;
    await this.file.checkpoint();
    this.#note(
      `the API copies ${this.key.raw} to S3 first (${accepted.reason ?? 'async'}), download ${accepted.downloadId}`,
    );
    const ready = await this.#watchCopy(accepted.webSocketUrl, accepted.statusUrl, accepted.size, 0);
    return this.#fetchReady(ready);
  }

  /** A previous run got a 202: its status URL says where the copy is. */
  async #resumeAsync(statusUrl: string): Promise<Expected> {
    const { facts } = this.file;
    let status: Awaited<ReturnType<ApiClient['getStatus']>>;
    try {
      status = await this.#api.getStatus(new URL(statusUrl), { signal: this.context.signal });
    } catch (error) {
      if (
        error instanceof CliError &&
        (error.exitCode === EXIT.notFound || error.exitCode === EXIT.accessDenied)
      ) {
        this.#note(
          `the earlier download ${facts.downloadId} is gone (${error.title}): asking for a new copy`,
        );
        return this.#start();
      }
      throw error;
    }
    if (status.status === 'READY') {
      const ready = toReadyFile(status as unknown as Record<string, unknown>);
      if (ready) return this.#fetchReady(ready);
    }
    if (status.status === 'FAILED') {
      this.#note(`the earlier copy failed (${status.error?.code ?? 'no code'}): asking for a new one`);
      return this.#start();
    }
    this.#note(`download ${status.downloadId} is still being copied to S3: waiting for it`);
    const webSocketUrl = facts.webSocketUrl ?? status.webSocketUrl;
    if (!webSocketUrl) throw new CliError(EXIT.other, 'the status names no WebSocket URL to wait on');
    const ready = await this.#watchCopy(webSocketUrl, statusUrl, status.totalBytes, status.bytes ?? 0);
    return this.#fetchReady(ready);
  }

  async #watchCopy(
    webSocketUrl: string,
    statusUrl: string,
    size: number | undefined,
    initial: number,
  ): Promise<ReadyFile> {
    const bar = this.context.reporter.bar('copy', size, initial);
    try {
      const ready = await waitForCopy({
        api: this.#api,
        webSocketUrl,
        statusUrl,
        signal: this.context.signal,
        onProgress: (bytes, total) => bar.update(bytes, total),
        note: this.#note,
      });
      if (ready.size !== undefined) bar.update(ready.size, ready.size);
      bar.done(`in S3, ${formatBytes(ready.size ?? 0)}`);
      return ready;
    } catch (error) {
      bar.done(isInterruption(error) ? 'stopped waiting' : 'failed');
      throw error;
    }
  }

  /** The copy is in S3: download the presigned URL, in parallel ranges, into place. */
  async #fetchReady(ready: ReadyFile): Promise<Expected> {
    const { file } = this;
    if (ready.size !== undefined && file.facts.size !== undefined && ready.size !== file.facts.size) {
      this.#note(
        `the file has ${ready.size} bytes now, the partial download ${file.facts.size}: starting over`,
      );
      await file.reset();
    }
    if (ready.checksum) file.facts.checksum = ready.checksum;
    if (file.bytesDone > 0) this.#noteResume('S3');
    const statusUrl = file.facts.statusUrl;
    const refresh = statusUrl
      ? async (): Promise<ReadyFile> => {
          const status = await this.#api.getStatus(new URL(statusUrl), { signal: this.context.signal });
          const fresh =
            status.status === 'READY' ? toReadyFile(status as unknown as Record<string, unknown>) : undefined;
          if (!fresh)
            throw new CliError(EXIT.copyFailed, `the download is ${status.status}, not READY, any more`);
          return fresh;
        }
      : undefined;
    const source = createPresignedSource(ready, refresh, this.#note);
    let oneStream = this.options.connections <= 1;
    await this.#transfer(ready.size ?? file.facts.size, async (bar) => {
      const size = ready.size ?? file.facts.size;
      const options = { ...this.#fetchOptions(bar), source, exhaustedExitCode: EXIT.unreachable };
      if (oneStream || size === undefined) return fetchSequential(options);
      try {
        await fetchParallel({ ...options, size, connections: this.options.connections });
      } catch (error) {
        if (!(error instanceof RangeIgnoredError)) throw error;
        this.#note('S3 ignored Range: downloading over one connection instead');
        oneStream = true;
        await fetchSequential(options);
      }
    });
    return { size: ready.size, checksum: file.facts.checksum ?? ready.checksum };
  }
}
