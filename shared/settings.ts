import { ENV, type EnvName } from './env-names.ts';

/**
 * The catalogue of the app's settings: each one declared once, with its CDK context key (the key
 * of `SETTINGS`), the environment variable that carries it to the functions (none for
 * deployment-only settings), its default, what it accepts, and which functions read it.
 *
 * `infra/download-stack.ts` validates context values against it at synth time, `shared/config.ts`
 * validates the environment against it at run time (both through `checkSetting`), and
 * `scripts/settings-table.ts` writes README's settings table from it.
 */

/** A whole number from `min` to `max`, inclusive. */
export interface IntegerSetting {
  readonly kind: 'integer';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  /** How the README shows the default when the raw number says little (`190 MiB`). */
  readonly defaultLabel?: string;
}

/** A free-form string (its own checks, such as URL syntax, live with its reader). */
export interface StringSetting {
  readonly kind: 'string';
  readonly default: string;
  readonly defaultLabel?: string;
}

/** One of a fixed list of strings. */
export interface ChoiceSetting<T extends string = string> {
  readonly kind: 'choice';
  readonly allowed: readonly T[];
  readonly default: T;
}

/** `true` or `false`. */
export interface BooleanSetting {
  readonly kind: 'boolean';
  readonly default: boolean;
}

interface SettingInfo {
  /** What the setting does, for README's table (Markdown). */
  readonly description: string;
  /** The variable that carries it to the functions; absent for deployment-only settings. */
  readonly env?: EnvName | 'POWERTOOLS_LOG_LEVEL';
  /** The `functions/` folders whose config loader reads `env`. */
  readonly readBy: readonly string[];
}

export type Setting = (IntegerSetting | StringSetting | ChoiceSetting | BooleanSetting) & SettingInfo;

const MIB = 1024 * 1024;
const DAY = 86_400;

/**
 * What `$connect` accepts as proof that the caller started the download:
 * - `token`: the download's token (`?token=` or `X-Download-Token`), whatever names the download;
 * - `execution-arn-header`: the token, or the `X-StateMachine-ExecutionArn` header alone, as in the
 *   original sample (an opt-in for old clients: execution ARNs show up in consoles and logs).
 */
export const WEBSOCKET_AUTH_MODES = ['token', 'execution-arn-header'] as const;
export type WebSocketAuth = (typeof WEBSOCKET_AUTH_MODES)[number];

/** How the REST API authenticates callers. */
export const API_AUTH_MODES = ['iam', 'none'] as const;
export type ApiAuth = (typeof API_AUTH_MODES)[number];

const UPSTREAM_READERS = ['stream', 'router', 'fetch-to-s3', 'plan-copy', 'copy-range'] as const;
const PRESIGN_READERS = ['presign', 'notify', 'download-status'] as const;

/** Every setting, by context key. */
export const SETTINGS = {
  upstreamBaseUrl: {
    kind: 'string',
    default: 'https://example.com/',
    defaultLabel: '`https://example.com/` (set it!)',
    description: 'where files come from; keys are appended',
    env: ENV.upstreamBaseUrl,
    readBy: UPSTREAM_READERS,
  },
  upstreamAllowedOrigins: {
    kind: 'string',
    default: '',
    description: 'extra origins redirects may go to (comma-separated)',
    env: ENV.upstreamAllowedOrigins,
    readBy: UPSTREAM_READERS,
  },
  upstreamHeadersTimeoutMs: {
    kind: 'integer',
    default: 10_000,
    min: 100,
    max: 900_000,
    description: "wait for upstream's status and headers (then 504)",
    env: ENV.upstreamHeadersTimeoutMs,
    readBy: UPSTREAM_READERS,
  },
  upstreamBodyTimeoutMs: {
    kind: 'integer',
    default: 30_000,
    min: 100,
    max: 900_000,
    description: 'upstream silent mid-body (then abort)',
    env: ENV.upstreamBodyTimeoutMs,
    readBy: UPSTREAM_READERS,
  },
  streamMaxBytes: {
    kind: 'integer',
    // 190 MiB, under the 200 MB response-streaming limit in either reading.
    default: 190 * MIB,
    defaultLabel: '199229440 (190 MiB)',
    min: 0,
    // 200 MB is the platform's hard limit for one streamed response.
    max: 200_000_000,
    description: 'largest streamed file; above it the router goes async and `/stream` answers 413',
    env: ENV.streamMaxBytes,
    readBy: ['stream', 'router'],
  },
  routerStreamMaxBytes: {
    kind: 'integer',
    // At the top of the range, so that the stream limit below decides: today's behaviour.
    default: 200_000_000,
    defaultLabel: '`streamMaxBytes`',
    min: 0,
    max: 200_000_000,
    description:
      "largest file the router (`/download/`) streams, capped at `streamMaxBytes`; above it the router goes async (`reason: above-router-threshold`). On AWS a stream runs at 2 MB/s after its first 6–10 MB while a presigned S3 URL downloads at the client's speed: see [Choosing the router threshold](#choosing-the-router-threshold)",
    env: ENV.routerStreamMaxBytes,
    readBy: ['router'],
  },
  presignTtlSeconds: {
    kind: 'integer',
    default: 900,
    min: 1,
    // SigV4 presigned URLs live at most 7 days (and no longer than the signing role's session).
    max: 7 * DAY,
    description:
      'lifetime of the presigned URL; a client that polls or reconnects after it expired gets a freshly signed one',
    env: ENV.presignTtlSeconds,
    readBy: PRESIGN_READERS,
  },
  recordTtlSeconds: {
    kind: 'integer',
    default: 7 * DAY,
    defaultLabel: '604800 (7 days)',
    min: 60,
    max: 366 * DAY,
    description: 'lifetime of a download record / handle (DynamoDB TTL)',
    env: ENV.recordTtlSeconds,
    readBy: ['router'],
  },
  objectExpirationDays: {
    kind: 'integer',
    default: 1,
    min: 1,
    max: 3650,
    description: 'S3 lifecycle: delete copied files after this many days',
    readBy: [],
  },
  uploadPartSizeBytes: {
    kind: 'integer',
    default: 8 * MIB,
    defaultLabel: '8388608 (8 MiB)',
    // S3 parts are 5 MiB to 5 GiB; 10,000 parts of 8 MiB cover 78 GiB.
    min: 5 * MIB,
    max: 5 * 1024 * MIB,
    description:
      'multipart part size (5 MiB–5 GiB; 10,000 parts → 78 GiB max at 8 MiB); a parallel copy raises it to fit its file in 10,000 parts and uses at most 525 MiB (its workers hold two parts)',
    env: ENV.uploadPartSizeBytes,
    readBy: ['fetch-to-s3', 'plan-copy'],
  },
  uploadQueueSize: {
    kind: 'integer',
    default: 4,
    min: 1,
    // fetch-to-s3 holds about partSize × (queueSize + 1) in its 1024 MB.
    max: 32,
    description: 'parts in flight; copy memory ≈ part size × (queue + 1)',
    env: ENV.uploadQueueSize,
    readBy: ['fetch-to-s3'],
  },
  parallelCopyMinBytes: {
    kind: 'integer',
    default: 256 * MIB,
    defaultLabel: '268435456 (256 MiB)',
    // One part at least; S3's largest object.
    min: 5 * MIB,
    max: 5 * 1024 ** 4,
    description:
      'smallest file copied in parallel ranges into one multipart upload (needs `Content-Length`, `Accept-Ranges: bytes` and an `ETag` or `Last-Modified` upstream); smaller files, and every other one, are copied as one stream',
    env: ENV.parallelCopyMinBytes,
    readBy: ['plan-copy'],
  },
  parallelCopyConcurrency: {
    kind: 'integer',
    default: 8,
    // An inline Map state runs at most 40 iterations at once.
    min: 1,
    max: 40,
    description:
      "ranges of a parallel copy, copied at once, each by its own worker invocation over its own upstream connection (mind the account's Lambda concurrency)",
    env: ENV.parallelCopyConcurrency,
    readBy: ['plan-copy'],
  },
  parallelCopyWorkerSeconds: {
    kind: 'integer',
    default: 840,
    // The worker's function timeout is 15 minutes; it stops at least 20 s before it.
    min: 1,
    max: 880,
    description:
      'how long one parallel-copy worker invocation copies before it hands the rest of its range back to the workflow, which invokes it again',
    env: ENV.parallelCopyWorkerSeconds,
    readBy: ['copy-range'],
  },
  apiAuth: {
    kind: 'choice',
    allowed: API_AUTH_MODES,
    default: 'iam',
    description: '`iam`: REST methods need SigV4 (`AWS_IAM`); `none`: open',
    readBy: [],
  } satisfies ChoiceSetting<ApiAuth> & SettingInfo,
  webSocketAuth: {
    kind: 'choice',
    allowed: WEBSOCKET_AUTH_MODES,
    default: 'token',
    description:
      'what WebSocket `$connect` accepts as proof: `token` needs the download token; `execution-arn-header` also accepts the `X-StateMachine-ExecutionArn` header alone, as the original sample did (opt-in for old clients; execution ARNs appear in consoles and logs)',
    env: ENV.webSocketAuth,
    readBy: ['websocket'],
  } satisfies ChoiceSetting<WebSocketAuth> & SettingInfo,
  apiAccessLogs: {
    kind: 'boolean',
    default: false,
    description:
      "REST and WebSocket access logs, JSON, kept a month (needs the account's API Gateway CloudWatch role)",
    readBy: [],
  },
  logLevel: {
    kind: 'string',
    default: 'INFO',
    description: 'Powertools log level',
    // Read by Powertools' logger in every function, not by a config loader.
    env: 'POWERTOOLS_LOG_LEVEL',
    readBy: [],
  },
  restThrottlingRateLimit: {
    kind: 'integer',
    default: 50,
    // API Gateway's default account quotas: 10,000 requests per second, bursts of 5,000.
    min: 1,
    max: 10_000,
    description: 'REST stage, every method: steady requests per second; above it API Gateway answers 429',
    readBy: [],
  },
  restThrottlingBurstLimit: {
    kind: 'integer',
    default: 100,
    min: 1,
    max: 5_000,
    description: 'REST stage: requests accepted at once above the steady rate',
    readBy: [],
  },
  webSocketThrottlingRateLimit: {
    kind: 'integer',
    default: 50,
    min: 1,
    max: 10_000,
    description: 'WebSocket stage, every route: steady messages (and connects) per second',
    readBy: [],
  },
  webSocketThrottlingBurstLimit: {
    kind: 'integer',
    default: 100,
    min: 1,
    max: 5_000,
    description: 'WebSocket stage: burst above the steady rate',
    readBy: [],
  },
  streamReservedConcurrency: {
    kind: 'integer',
    default: 0,
    defaultLabel: '0 (none)',
    min: 0,
    max: 10_000,
    description:
      'concurrency reserved for the stream function. Opt-in: any reservation fails the deploy in an account whose total concurrency is 10 (new accounts)',
    readBy: [],
  },
  routerReservedConcurrency: {
    kind: 'integer',
    default: 0,
    defaultLabel: '0 (none)',
    min: 0,
    max: 10_000,
    description: 'the same for the router function',
    readBy: [],
  },
  alarmTopicArn: {
    kind: 'string',
    default: '',
    description:
      "SNS topic ARN that receives every alarm's ALARM and OK transitions (see [Operations](#operations)); without it the alarms only show on the dashboard",
    readBy: [],
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

type ValueOf<S> = S extends { kind: 'integer' }
  ? number
  : S extends { kind: 'boolean' }
    ? boolean
    : S extends { kind: 'choice'; allowed: readonly (infer T)[] }
      ? T
      : string;

/** The app's settings, typed from the catalogue. */
export type Settings = { -readonly [K in SettingName]: ValueOf<(typeof SETTINGS)[K]> };

/** Every setting at its default. */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.fromEntries(
  Object.entries(SETTINGS).map(([name, setting]) => [name, setting.default]),
) as unknown as Settings;

/** Settings whose `env` a function's config loader reads. */
export function settingsReadBy(folder: string): SettingName[] {
  return (Object.keys(SETTINGS) as SettingName[]).filter((name) =>
    (SETTINGS[name].readBy as readonly string[]).includes(folder),
  );
}

/**
 * The variables that carry `settings` to the function in `functions/<folder>/`: one per setting
 * it reads. Empty strings are left out (the function then uses the same empty default).
 */
export function settingsEnvironment(settings: Readonly<Settings>, folder: string): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const name of settingsReadBy(folder)) {
    const value = String(settings[name]);
    const variable = (SETTINGS[name] as Setting).env;
    if (variable && value !== '') environment[variable] = value;
  }
  return environment;
}

/**
 * Parses one raw value of a setting (a context value, which may be a number or boolean from
 * `cdk.json`, or an environment variable's text) and checks it against the catalogue. Returns the
 * value, or a problem phrased after "`<name>` ", e.g. `must be an integer from 1 to 32, got "40"`.
 */
export function checkSetting(
  setting: Setting,
  raw: unknown,
): { ok: true; value: number | string | boolean } | { ok: false; problem: string } {
  const text = typeof raw === 'string' ? raw.trim() : String(raw);
  switch (setting.kind) {
    case 'integer': {
      const value = typeof raw === 'number' ? raw : text === '' ? Number.NaN : Number(text);
      if (!Number.isSafeInteger(value) || value < setting.min || value > setting.max) {
        return {
          ok: false,
          problem: `must be an integer from ${setting.min} to ${setting.max}, got "${String(raw)}"`,
        };
      }
      return { ok: true, value };
    }
    case 'boolean': {
      const value = text.toLowerCase();
      if (value !== 'true' && value !== 'false')
        return { ok: false, problem: `must be true or false, got "${String(raw)}"` };
      return { ok: true, value: value === 'true' };
    }
    case 'choice':
      if (!setting.allowed.includes(text)) {
        return {
          ok: false,
          problem: `must be one of ${setting.allowed.join(', ')}, got "${String(raw)}"`,
        };
      }
      return { ok: true, value: text };
    case 'string':
      return { ok: true, value: text };
  }
}
