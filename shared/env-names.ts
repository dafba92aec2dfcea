/**
 * Names of the environment variables the functions read. `infra/` sets them and `local/` sets them,
 * both from these constants, so a rename cannot leave one side behind.
 */
export const ENV = {
  /** Base URL that download keys are appended to, e.g. `https://files.example.com/exports/`. */
  upstreamBaseUrl: 'UPSTREAM_BASE_URL',
  /** Comma-separated extra origins that upstream redirects may lead to (the base URL's origin is always allowed). */
  upstreamAllowedOrigins: 'UPSTREAM_ALLOWED_ORIGINS',
  /** Milliseconds to wait for upstream's status line and headers. */
  upstreamHeadersTimeoutMs: 'UPSTREAM_HEADERS_TIMEOUT_MS',
  /** Milliseconds upstream may stay silent mid-body before the transfer is aborted. */
  upstreamBodyTimeoutMs: 'UPSTREAM_BODY_TIMEOUT_MS',
  /** Largest body, in bytes, that is streamed through Lambda; larger files go the async way. */
  streamMaxBytes: 'STREAM_MAX_BYTES',
  /** Largest body, in bytes, that the router streams (at most `STREAM_MAX_BYTES`); larger files go async. */
  routerStreamMaxBytes: 'ROUTER_STREAM_MAX_BYTES',
  /** S3 bucket that async downloads are copied into. */
  downloadBucket: 'DOWNLOAD_BUCKET',
  /** DynamoDB table of download records. */
  downloadTable: 'DOWNLOAD_TABLE',
  /** ARN of the async download state machine. */
  stateMachineArn: 'STATE_MACHINE_ARN',
  /** Client-facing WebSocket URL (`wss://…/{stage}`), returned in 202 answers. */
  webSocketUrl: 'WEBSOCKET_URL',
  /** Management endpoint for `@connections` (`https://…/{stage}`). */
  webSocketManagementUrl: 'WEBSOCKET_MANAGEMENT_URL',
  /** Name of the function that delivers a ready URL after `$connect` (invoked asynchronously). */
  notifierFunctionName: 'NOTIFIER_FUNCTION_NAME',
  /** Lifetime of presigned download URLs, in seconds. */
  presignTtlSeconds: 'PRESIGN_TTL_SECONDS',
  /** How long a download record lives, in seconds (DynamoDB TTL). */
  recordTtlSeconds: 'RECORD_TTL_SECONDS',
  /** Multipart part size in bytes (5 MiB minimum). */
  uploadPartSizeBytes: 'UPLOAD_PART_SIZE_BYTES',
  /** Parts uploaded concurrently; memory is about partSize × (queueSize + 1). */
  uploadQueueSize: 'UPLOAD_QUEUE_SIZE',
  /** Smallest file, in bytes, that is copied in parallel ranges (when upstream allows ranges). */
  parallelCopyMinBytes: 'PARALLEL_COPY_MIN_BYTES',
  /** Ranges of a parallel copy, each copied by its own worker at the same time. */
  parallelCopyConcurrency: 'PARALLEL_COPY_CONCURRENCY',
  /** Seconds one parallel-copy worker invocation copies before it hands its range back to the workflow. */
  parallelCopyWorkerSeconds: 'PARALLEL_COPY_WORKER_SECONDS',
  /**
   * What `$connect` accepts as proof: `token` (default) needs the download's token; `execution-arn-header`
   * also accepts the `X-StateMachine-ExecutionArn` header alone, as the original sample did (opt-in).
   */
  webSocketAuth: 'WEBSOCKET_AUTH',
  /** Use path-style S3 addressing (local S3 servers need it). */
  s3ForcePathStyle: 'S3_FORCE_PATH_STYLE',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
