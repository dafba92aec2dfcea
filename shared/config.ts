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

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`environment variable ${name} must be an integer from ${min} to ${max}, got "${raw}"`);
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
    try {
      allowedOrigins.add(new URL(trimmed).origin);
    } catch {
      throw new ConfigError(`environment variable ${ENV.upstreamAllowedOrigins} has an invalid origin "${trimmed}"`);
    }
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

export const __testing = { required, integer, url, boolean };
export { boolean as readBoolean, integer as readInteger, required as readRequired, url as readUrl };
