/**
 * The CLI's exit codes: one per failure class, so scripts can tell "try again later" from "fix the
 * request". `--help` and the README print `EXIT_CODE_TABLE`.
 */
export const EXIT = {
  ok: 0,
  other: 1,
  usage: 2,
  notFound: 3,
  tooLarge: 4,
  upstreamFailed: 5,
  copyFailed: 6,
  verificationFailed: 7,
  accessDenied: 8,
  unreachable: 9,
  interrupted: 130,
  terminated: 143,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What each code means, in the order `--help` lists them. */
export const EXIT_CODE_TABLE: ReadonlyArray<readonly [ExitCode, string]> = [
  [EXIT.ok, 'done: the file is complete and verified (get), or the status was printed (status)'],
  [EXIT.other, 'an unexpected error'],
  [EXIT.usage, 'bad arguments or options, or a request the API refused as invalid (400: bad key, mode, id)'],
  [EXIT.notFound, 'not found: the key does not exist upstream, or the download is unknown or expired (404)'],
  [EXIT.tooLarge, 'too large: for streaming (413, with --mode stream) or for the copy to S3 (FileTooLarge)'],
  [
    EXIT.upstreamFailed,
    'upstream failed: it errored, timed out or broke off (502, 504, a stream cut short after the retries), or sent bytes that do not match its own digest (ChecksumMismatch)',
  ],
  [EXIT.copyFailed, 'the copy to S3 failed or could not start (a "failed" message, status FAILED, 503)'],
  [
    EXIT.verificationFailed,
    'verification failed: wrong size or checksum (the bytes stay in FILE.part; the next run starts over)',
  ],
  [
    EXIT.accessDenied,
    'access denied: missing or rejected SigV4 signature or credentials (403), or download token (401/403)',
  ],
  [
    EXIT.unreachable,
    'the API or the download URL could not be reached, or kept failing after the retries (run again to resume)',
  ],
  [EXIT.interrupted, 'interrupted by Ctrl-C (SIGINT): run the same command again to resume'],
  [EXIT.terminated, 'terminated (SIGTERM): run the same command again to resume'],
];

/** The class of an API answer by its HTTP status (problem documents and gateway errors alike). */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 400 || status === 405 || status === 422) return EXIT.usage;
  if (status === 401 || status === 403) return EXIT.accessDenied;
  if (status === 404 || status === 410) return EXIT.notFound;
  if (status === 413) return EXIT.tooLarge;
  if (status === 416 || status === 502 || status === 504) return EXIT.upstreamFailed;
  if (status === 503) return EXIT.copyFailed;
  if (status === 429 || status >= 500) return EXIT.unreachable;
  return EXIT.other;
}

/** The class of an async download's failure, by the `error.code` of a `failed` message or FAILED status. */
export function exitCodeForFailure(code: string): ExitCode {
  if (code === 'UpstreamNotFound' || code === 'DownloadNotFound') return EXIT.notFound;
  if (code === 'FileTooLarge' || code === 'TooLargeForStreaming') return EXIT.tooLarge;
  // ChecksumMismatch: upstream's bytes do not match the digest upstream announced.
  if (code.startsWith('Upstream') || code === 'ChecksumMismatch') return EXIT.upstreamFailed;
  return EXIT.copyFailed;
}
