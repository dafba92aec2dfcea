import { ENV } from './env-names.ts';
import {
  checkSetting,
  SETTINGS,
  type Setting,
  type SettingName,
  type Settings,
  WEBSOCKET_AUTH_MODES,
  type WebSocketAuth,
} from './settings.ts';

export { WEBSOCKET_AUTH_MODES, type WebSocketAuth };

type Env = Readonly<Record<string, string | undefined>>;

/** Raised when the function's environment is missing or malformed; names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Default largest streamed body: 190 MiB, under the 200 MB response-streaming limit in either reading. */
export const DEFAULT_STREAM_MAX_BYTES = SETTINGS.streamMaxBytes.default;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`environment variable ${name} is required`);
  return value;
}

type EnvSettingName = {
  [K in SettingName]: (typeof SETTINGS)[K] extends { env: string } ? K : never;
}[SettingName];

/** Reads a setting's variable, checked against the catalogue (`shared/settings.ts`); unset → default. */
function setting<K extends EnvSettingName>(env: Env, name: K): Settings[K] {
  const declared: Setting = SETTINGS[name];
  const variable = declared.env as string;
  const raw = env[variable]?.trim();
  if (!raw) return declared.default as Settings[K];
  const checked = checkSetting(declared, raw);
  if (!checked.ok) throw new ConfigError(`environment variable ${variable} ${checked.problem}`);
  return checked.value as Settings[K];
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
    headersTimeoutMs: setting(env, 'upstreamHeadersTimeoutMs'),
    bodyTimeoutMs: setting(env, 'upstreamBodyTimeoutMs'),
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
    streamMaxBytes: setting(env, 'streamMaxBytes'),
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
  /** The router streams files up to this size and `streamMaxBytes`, whichever is smaller. */
  routerStreamMaxBytes: number;
}

export function loadRouterConfig(env: Env = process.env): RouterConfig {
  return {
    ...loadStreamConfig(env),
    downloadTable: required(env, ENV.downloadTable),
    stateMachineArn: required(env, ENV.stateMachineArn),
    webSocketUrl: url(env, ENV.webSocketUrl, ['ws:', 'wss:']).href.replace(/\/$/, ''),
    recordTtlSeconds: setting(env, 'recordTtlSeconds'),
    routerStreamMaxBytes: setting(env, 'routerStreamMaxBytes'),
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

export const DEFAULT_WEBSOCKET_AUTH: WebSocketAuth = SETTINGS.webSocketAuth.default;

/** Settings of the WebSocket routes. */
export interface WebSocketConfig extends TableConfig {
  notifierFunctionName: string;
  webSocketAuth: WebSocketAuth;
}

export function loadWebSocketConfig(env: Env = process.env): WebSocketConfig {
  return {
    ...loadTableConfig(env),
    notifierFunctionName: required(env, ENV.notifierFunctionName),
    webSocketAuth: setting(env, 'webSocketAuth'),
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
    partSizeBytes: setting(env, 'uploadPartSizeBytes'),
    queueSize: setting(env, 'uploadQueueSize'),
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
    presignTtlSeconds: setting(env, 'presignTtlSeconds'),
  };
}

/** Settings of the failure step. */
export interface MarkFailedConfig extends NotifyConfig {
  downloadBucket: string;
}

export function loadMarkFailedConfig(env: Env = process.env): MarkFailedConfig {
  return { ...loadNotifyConfig(env), downloadBucket: required(env, ENV.downloadBucket) };
}

/** Settings of the parallel copy's planning step (`plan-copy`). */
export interface PlanCopyConfig extends TableConfig {
  upstream: UpstreamConfig;
  downloadBucket: string;
  /** The configured part size; a large file gets larger parts (10,000 at most). */
  partSizeBytes: number;
  minBytes: number;
  concurrency: number;
}

export function loadPlanCopyConfig(env: Env = process.env): PlanCopyConfig {
  return {
    ...loadTableConfig(env),
    upstream: loadUpstreamConfig(env),
    downloadBucket: required(env, ENV.downloadBucket),
    partSizeBytes: setting(env, 'uploadPartSizeBytes'),
    minBytes: setting(env, 'parallelCopyMinBytes'),
    concurrency: setting(env, 'parallelCopyConcurrency'),
  };
}

/** Settings of a parallel copy's worker (`copy-range`). */
export interface CopyRangeConfig extends NotifyConfig {
  upstream: UpstreamConfig;
  /** How long one invocation copies before it returns where it stopped. */
  workerSeconds: number;
}

export function loadCopyRangeConfig(env: Env = process.env): CopyRangeConfig {
  return {
    ...loadNotifyConfig(env),
    upstream: loadUpstreamConfig(env),
    workerSeconds: setting(env, 'parallelCopyWorkerSeconds'),
  };
}

/** Settings of the parallel copy's completing step (`complete-copy`): the upload comes in its input. */
export type CompleteCopyConfig = TableConfig;

export function loadCompleteCopyConfig(env: Env = process.env): CompleteCopyConfig {
  return loadTableConfig(env);
}
