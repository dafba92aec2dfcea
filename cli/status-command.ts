import type { ApiClient, DownloadStatus } from './api.ts';
import { EXIT, type ExitCode, exitCodeForFailure } from './exit-codes.ts';
import { formatBytes } from './format.ts';

export interface StatusOptions {
  /** A download id, or a status URL as the 202 gave it (token included). */
  download: string;
  /** The download token, for a bare id (sent as `X-Download-Token`). */
  token: string | undefined;
  json: boolean;
}

/** The status as aligned `name  value` lines. */
export function formatStatus(status: DownloadStatus): string[] {
  const rows: Array<[string, string | undefined]> = [
    ['download', status.downloadId],
    ['status', status.status],
    [
      'key',
      status.key === undefined ? undefined : `${status.key}${status.fileName ? ` (${status.fileName})` : ''}`,
    ],
    [
      'copied',
      status.bytes === undefined
        ? undefined
        : status.totalBytes
          ? `${status.bytes} of ${status.totalBytes} bytes (${((status.bytes / status.totalBytes) * 100).toFixed(0)}%)`
          : `${status.bytes} bytes`,
    ],
    [
      'size',
      status.size === undefined
        ? undefined
        : `${status.size} bytes (${formatBytes(status.size)})${status.contentType ? `, ${status.contentType}` : ''}`,
    ],
    ['checksum', status.checksum ? `${status.checksum.algorithm} ${status.checksum.value}` : undefined],
    ['url', status.url],
    ['expires', status.url ? status.expiresAt : undefined],
    ['error', status.error ? `${status.error.code}: ${status.error.message}` : undefined],
    ['created', status.createdAt],
    ['updated', status.updatedAt],
  ];
  return rows
    .filter((row): row is [string, string] => row[1] !== undefined)
    .map(([name, value]) => `${name.padEnd(9)} ${value}`);
}

/**
 * `large-download status`: prints a download's status. Exits 0 unless the download FAILED (then
 * with its failure's code) or the status could not be read.
 */
export async function runStatus(
  options: StatusOptions,
  context: { api: ApiClient; signal: AbortSignal; print: (line: string) => void },
): Promise<ExitCode> {
  const isUrl = /^https?:\/\//i.test(options.download);
  const url = isUrl ? new URL(options.download) : context.api.statusUrlFor(options.download);
  const status = await context.api.getStatus(url, {
    ...(options.token ? { token: options.token } : {}),
    signal: context.signal,
  });
  if (options.json) context.print(JSON.stringify(status, null, 2));
  else for (const line of formatStatus(status)) context.print(line);
  return status.status === 'FAILED' ? exitCodeForFailure(status.error?.code ?? 'InternalError') : EXIT.ok;
}
