import { ENV } from './env-names.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** Raised when the function's environment is missing or malformed; names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Default largest streamed body: 190 MiB, under the 200 MB response-streaming limit in either reading. */
export const DEFAULT_STREAM_MAX_BYTES = 190 * 1024 * 1024;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`environment variable ${name} is required`);
  return value;
}

function integer(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `environment variable ${name} must be an integer from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

function url(env: Env, name: string, protocols: readonly string[]): URL {
  const raw = required(env, name);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`environment variable ${name} must be an absolute URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`environment variable ${name} must use ${protocols.join(' or ')}, got "${raw}"`);
  }
  return parsed;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`environment variable ${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function boolean(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  return raw === 'true' || raw === '1' || raw === 'yes';
}

/** Everything needed to reach upstream. */
export interface UpstreamConfig {
  /** Always ends with `/`. */
  baseUrl: URL;
  /** Origins (scheme://host:port) that redirects may lead to. */
  allowedOrigins: ReadonlySet<string>;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

/** Reads the upstream settings. */
export function loadUpstreamConfig(env: Env = process.env): UpstreamConfig {
  const baseUrl = url(env, ENV.upstreamBaseUrl, ['http:', 'https:']);
  if (!baseUrl.pathname.endsWith('/')) baseUrl.pathname += '/';
  baseUrl.search = '';
  baseUrl.hash = '';
  const allowedOrigins = new Set([baseUrl.origin]);
  for (const origin of (env[ENV.upstreamAllowedOrigins] ?? '').split(',')) {
    const trimmed = origin.trim();
    if (!trimmed) continue;
    let parsed: URL;
    try {
      parsed = new URL(trimmed);
    } catch {
      throw new ConfigError(
        `environment variable ${ENV.upstreamAllowedOrigins} has an invalid origin "${trimmed}"`,
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new ConfigError(
        `environment variable ${ENV.upstreamAllowedOrigins} allows only http and https origins, got "${trimmed}"`,
      );
    }
    allowedOrigins.add(parsed.origin);
  }
  return {
    baseUrl,
    allowedOrigins,
    headersTimeoutMs: integer(env, ENV.upstreamHeadersTimeoutMs, 10_000, 100, 900_000),
    bodyTimeoutMs: integer(env, ENV.upstreamBodyTimeoutMs, 30_000, 100, 900_000),
  };
}

/** Settings of the streaming path. */
export interface StreamConfig {
  upstream: UpstreamConfig;
  streamMaxBytes: number;
}

/** Reads the streaming function's settings. */
export function loadStreamConfig(env: Env = process.env): StreamConfig {
  return {
    upstream: loadUpstreamConfig(env),
    // 200 MB is the platform's hard limit for one streamed response.
    streamMaxBytes: integer(env, ENV.streamMaxBytes, DEFAULT_STREAM_MAX_BYTES, 0, 200_000_000),
  };
}

export { boolean as readBoolean };

/** Settings of the router (`GET /download/{key+}`). */
export interface RouterConfig extends StreamConfig {
  downloadTable: string;
  stateMachineArn: string;
  /** Client-facing WebSocket URL. */
  webSocketUrl: string;
  recordTtlSeconds: number;
}

export function loadRouterConfig(env: Env = process.env): RouterConfig {
  return {
    ...loadStreamConfig(env),
    downloadTable: required(env, ENV.downloadTable),
    stateMachineArn: required(env, ENV.stateMachineArn),
    webSocketUrl: url(env, ENV.webSocketUrl, ['ws:', 'wss:']).href.replace(/\/$/, ''),
    recordTtlSeconds: integer(env, ENV.recordTtlSeconds, 7 * 24 * 3600, 60),
  };
}

/** Settings of the functions that only read or write download records. */
export interface TableConfig {
  downloadTable: string;
}

export function loadTableConfig(env: Env = process.env): TableConfig {
  return { downloadTable: required(env, ENV.downloadTable) };
}

/** Settings of the status function (it re-signs expired download URLs). */
export interface StatusConfig extends TableConfig, PresignConfig {
  webSocketUrl: string;
}

export function loadStatusConfig(env: Env = process.env): StatusConfig {
  return {
    ...loadTableConfig(env),
    ...loadPresignConfig(env),
    webSocketUrl: url(env, ENV.webSocketUrl, ['ws:', 'wss:']).href.replace(/\/$/, ''),
  };
}

/**
 * What `$connect` accepts as proof that the caller started the download:
 * - `token`: the download's token (`?token=` or `X-Download-Token`), whatever names the download;
 * - `execution-arn-header`: the token, or the `X-StateMachine-ExecutionArn` header alone, as in the
 *   original sample (an opt-in for old clients: execution ARNs show up in consoles and logs).
 */
export const WEBSOCKET_AUTH_MODES = ['token', 'execution-arn-header'] as const;
export type WebSocketAuth = (typeof WEBSOCKET_AUTH_MODES)[number];
export const DEFAULT_WEBSOCKET_AUTH: WebSocketAuth = 'token';

/** Settings of the WebSocket routes. */
export interface WebSocketConfig extends TableConfig {
  notifierFunctionName: string;
  webSocketAuth: WebSocketAuth;
}

export function loadWebSocketConfig(env: Env = process.env): WebSocketConfig {
  return {
    ...loadTableConfig(env),
    notifierFunctionName: required(env, ENV.notifierFunctionName),
    webSocketAuth: oneOf(env, ENV.webSocketAuth, WEBSOCKET_AUTH_MODES, DEFAULT_WEBSOCKET_AUTH),
  };
}

/** Settings of the functions that post to WebSocket connections. */
export interface NotifyConfig extends TableConfig {
  webSocketManagementUrl: string;
}

/** Settings of the notifier (it re-signs expired download URLs before delivering them). */
export interface DeliveryConfig extends NotifyConfig, PresignConfig {}

export function loadDeliveryConfig(env: Env = process.env): DeliveryConfig {
  return { ...loadNotifyConfig(env), ...loadPresignConfig(env) };
}

export function loadNotifyConfig(env: Env = process.env): NotifyConfig {
  return {
    ...loadTableConfig(env),
    webSocketManagementUrl: url(env, ENV.webSocketManagementUrl, ['http:', 'https:']).href.replace(/\/$/, ''),
  };
}

/** Settings of the copy step. */
export interface FetchConfig extends NotifyConfig {
  upstream: UpstreamConfig;
  downloadBucket: string;
  partSizeBytes: number;
  queueSize: number;
}

export function loadFetchConfig(env: Env = process.env): FetchConfig {
  return {
    ...loadNotifyConfig(env),
    upstream: loadUpstreamConfig(env),
    downloadBucket: required(env, ENV.downloadBucket),
    // S3 parts are 5 MiB to 5 GiB; 10,000 parts of 8 MiB cover 78 GiB.
    partSizeBytes: integer(env, ENV.uploadPartSizeBytes, 8 * 1024 * 1024, 5 * 1024 * 1024, 5 * 1024 ** 3),
    queueSize: integer(env, ENV.uploadQueueSize, 4, 1, 32),
  };
}

/** Settings of the presign step. */
export interface PresignConfig {
  downloadBucket: string;
  presignTtlSeconds: number;
}

export function loadPresignConfig(env: Env = process.env): PresignConfig {
  return {
    downloadBucket: required(env, ENV.downloadBucket),
    // SigV4 presigned URLs live at most 7 days (and no longer than the signing role's session).
    presignTtlSeconds: integer(env, ENV.presignTtlSeconds, 900, 1, 7 * 24 * 3600),
  };
}

/** Settings of the failure step. */
export interface MarkFailedConfig extends NotifyConfig {
  downloadBucket: string;
}

export function loadMarkFailedConfig(env: Env = process.env): MarkFailedConfig {
  return { ...loadNotifyConfig(env), downloadBucket: required(env, ENV.downloadBucket) };
}
