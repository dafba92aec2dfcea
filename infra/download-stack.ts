import { Annotations, CfnOutput, Stack, type StackProps, Token } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LogGroupLogDestination,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { DEFAULT_STREAM_MAX_BYTES } from '../shared/config.ts';
import { ENV } from '../shared/env-names.ts';
import { AsyncPath } from './async-path.ts';
import { StreamingPath } from './streaming-path.ts';

/** How the REST API authenticates callers. */
export type ApiAuth = 'iam' | 'none';

/**
 * The app's settings. Each one is a stack prop and a CDK context key of the same name
 * (`cdk deploy -c upstreamBaseUrl=https://files.example.com/exports/`, or `context` in `cdk.json`).
 */
export interface DownloadSettings {
  /**
   * Base URL that download keys are appended to. Required for a real deployment.
   * @default 'https://example.com/' — only so that `cdk synth` works offline; synth warns.
   */
  readonly upstreamBaseUrl: string;
  /**
   * Comma-separated extra origins that upstream redirects may lead to; the base URL's origin is
   * always allowed.
   * @default '' (none)
   */
  readonly upstreamAllowedOrigins: string;
  /**
   * Milliseconds to wait for upstream's status line and headers.
   * @default 10000
   */
  readonly upstreamHeadersTimeoutMs: number;
  /**
   * Milliseconds upstream may stay silent mid-body before the transfer is aborted.
   * @default 30000
   */
  readonly upstreamBodyTimeoutMs: number;
  /**
   * Largest body, in bytes, streamed through Lambda; `/download` sends larger (or unknown-length)
   * files the async way and `/stream` answers 413. At most 200000000 (response streaming limit).
   * @default 199229440 (190 MiB)
   */
  readonly streamMaxBytes: number;
  /**
   * Lifetime of presigned URLs in seconds (at most 7 days; a URL signed with the function's role
   * credentials also stops working when that session expires).
   * @default 900
   */
  readonly presignTtlSeconds: number;
  /**
   * How long a download record lives, in seconds (DynamoDB TTL on `expiresAt`).
   * @default 604800 (7 days)
   */
  readonly recordTtlSeconds: number;
  /**
   * Days after which copied files under `downloads/` are deleted by an S3 lifecycle rule.
   * @default 1
   */
  readonly objectExpirationDays: number;
  /**
   * Multipart part size in bytes, 5 MiB to 5 GiB. With 10,000 parts at most, this caps the
   * largest copy (8 MiB → about 78 GiB).
   * @default 8388608 (8 MiB)
   */
  readonly uploadPartSizeBytes: number;
  /**
   * Parts uploaded concurrently; `fetch-to-s3` holds about partSize × (queueSize + 1) in memory.
   * @default 4
   */
  readonly uploadQueueSize: number;
  /**
   * `iam`: REST methods require SigV4-signed requests (`AuthorizationType.IAM`);
   * `none`: anyone may call them. The Function URL always uses IAM.
   * @default 'iam'
   */
  readonly apiAuth: ApiAuth;
  /**
   * Write REST API access logs to a log group. Needs the account's API Gateway CloudWatch role
   * (set once per account and region, outside this stack).
   * @default false
   */
  readonly apiAccessLogs: boolean;
  /**
   * `POWERTOOLS_LOG_LEVEL` of every function.
   * @default 'INFO'
   */
  readonly logLevel: string;
}

/** Defaults of every setting. */
export const DEFAULT_DOWNLOAD_SETTINGS: DownloadSettings = {
  upstreamBaseUrl: 'https://example.com/',
  upstreamAllowedOrigins: '',
  upstreamHeadersTimeoutMs: 10_000,
  upstreamBodyTimeoutMs: 30_000,
  streamMaxBytes: DEFAULT_STREAM_MAX_BYTES,
  presignTtlSeconds: 900,
  recordTtlSeconds: 86_400 * 7,
  objectExpirationDays: 1,
  uploadPartSizeBytes: 8 * 1024 * 1024,
  uploadQueueSize: 4,
  apiAuth: 'iam',
  apiAccessLogs: false,
  logLevel: 'INFO',
};

export interface DownloadStackProps extends StackProps, Partial<DownloadSettings> {}

const MIB = 1024 * 1024;

/** Integer settings and their allowed ranges (the functions' config applies the same bounds). */
const INTEGER_RANGES: Readonly<Partial<Record<keyof DownloadSettings, readonly [number, number]>>> = {
  upstreamHeadersTimeoutMs: [100, 900_000],
  upstreamBodyTimeoutMs: [100, 900_000],
  streamMaxBytes: [0, 200_000_000],
  presignTtlSeconds: [1, 604_800],
  recordTtlSeconds: [60, 366 * 86_400],
  objectExpirationDays: [1, 3650],
  uploadPartSizeBytes: [5 * MIB, 5 * 1024 * MIB],
  uploadQueueSize: [1, 64],
};

/** Throws one error naming every invalid setting. */
export function validateDownloadSettings(settings: DownloadSettings): void {
  const problems: string[] = [];
  for (const [name, range] of Object.entries(INTEGER_RANGES)) {
    if (!range) continue;
    const value = settings[name as keyof DownloadSettings];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < range[0] || value > range[1]) {
      problems.push(`${name} must be an integer from ${range[0]} to ${range[1]}, got ${String(value)}`);
    }
  }
  if (!Token.isUnresolved(settings.upstreamBaseUrl) && !isHttpUrl(settings.upstreamBaseUrl)) {
    problems.push(`upstreamBaseUrl must be an absolute http(s) URL, got "${settings.upstreamBaseUrl}"`);
  }
  for (const origin of settings.upstreamAllowedOrigins.split(',').map((o) => o.trim())) {
    if (origin && !isHttpUrl(origin))
      problems.push(`upstreamAllowedOrigins has an invalid origin "${origin}"`);
  }
  if (settings.apiAuth !== 'iam' && settings.apiAuth !== 'none') {
    problems.push(`apiAuth must be "iam" or "none", got "${String(settings.apiAuth)}"`);
  }
  if (problems.length > 0) throw new Error(`Invalid download settings:\n  ${problems.join('\n  ')}`);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * Reads the settings from CDK context (`-c name=value` gives strings, `cdk.json` may give numbers
 * or booleans); absent keys are left out, so the stack's defaults apply.
 */
export function downloadSettingsFromContext(scope: Construct): Partial<DownloadSettings> {
  const settings: Record<string, unknown> = {};
  for (const [name, fallback] of Object.entries(DEFAULT_DOWNLOAD_SETTINGS)) {
    const raw: unknown = scope.node.tryGetContext(name);
    if (raw === undefined || raw === null) continue;
    if (typeof fallback === 'number') {
      const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (String(raw).trim() === '' || !Number.isFinite(value)) {
        throw new Error(`context ${name} must be a number, got "${String(raw)}"`);
      }
      settings[name] = value;
    } else if (typeof fallback === 'boolean') {
      const value = String(raw).trim().toLowerCase();
      if (value !== 'true' && value !== 'false') {
        throw new Error(`context ${name} must be true or false, got "${String(raw)}"`);
      }
      settings[name] = value === 'true';
    } else {
      settings[name] = String(raw).trim();
    }
  }
  return settings as Partial<DownloadSettings>;
}

/**
 * One REST API (regional, stage `prod`) in front of both paths, plus the async path's WebSocket
 * API, bucket, table and workflow. No physical names are set, so the stack can be deployed twice
 * under different stack names.
 */
export class DownloadStack extends Stack {
  readonly settings: DownloadSettings;
  readonly restApi: RestApi;
  readonly streamingPath: StreamingPath;
  readonly asyncPath: AsyncPath;

  constructor(scope: Construct, id: string, props: DownloadStackProps = {}) {
    super(scope, id, props);
    const settings = withDefaults(props);
    validateDownloadSettings(settings);
    this.settings = settings;
    if (props.upstreamBaseUrl === undefined) {
      Annotations.of(this).addWarningV2(
        'large-downloads:upstreamBaseUrl',
        `upstreamBaseUrl is not set; using ${settings.upstreamBaseUrl}. Deploy with -c upstreamBaseUrl=https://your-origin/path/`,
      );
    }

    const authorizationType = settings.apiAuth === 'iam' ? AuthorizationType.IAM : AuthorizationType.NONE;
    const accessLogs = settings.apiAccessLogs
      ? {
          accessLogDestination: new LogGroupLogDestination(
            new LogGroup(this, 'RestApiAccessLogs', { retention: RetentionDays.ONE_MONTH }),
          ),
          accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        }
      : {};
    this.restApi = new RestApi(this, 'RestApi', {
      description:
        'Large-file downloads: streaming for what fits, S3 + Step Functions + WebSocket for the rest.',
      // Edge-optimized endpoints cut idle streams after 30 s; regional ones allow 5 minutes.
      endpointTypes: [EndpointType.REGIONAL],
      binaryMediaTypes: ['*/*'],
      defaultMethodOptions: { authorizationType },
      cloudWatchRole: false,
      deployOptions: { stageName: 'prod', tracingEnabled: true, ...accessLogs },
    });

    const defaults = { logLevel: settings.logLevel };
    const upstreamEnvironment: Record<string, string> = {
      [ENV.upstreamBaseUrl]: settings.upstreamBaseUrl,
      [ENV.upstreamHeadersTimeoutMs]: String(settings.upstreamHeadersTimeoutMs),
      [ENV.upstreamBodyTimeoutMs]: String(settings.upstreamBodyTimeoutMs),
      ...(settings.upstreamAllowedOrigins
        ? { [ENV.upstreamAllowedOrigins]: settings.upstreamAllowedOrigins }
        : {}),
    };

    this.streamingPath = new StreamingPath(this, 'StreamingPath', {
      apiRoot: this.restApi.root,
      authorizationType,
      streamEnvironment: { ...upstreamEnvironment, [ENV.streamMaxBytes]: String(settings.streamMaxBytes) },
      defaults,
    });
    this.asyncPath = new AsyncPath(this, 'AsyncPath', {
      apiRoot: this.restApi.root,
      authorizationType,
      upstreamEnvironment,
      streamMaxBytes: settings.streamMaxBytes,
      presignTtlSeconds: settings.presignTtlSeconds,
      recordTtlSeconds: settings.recordTtlSeconds,
      objectExpirationDays: settings.objectExpirationDays,
      uploadPartSizeBytes: settings.uploadPartSizeBytes,
      uploadQueueSize: settings.uploadQueueSize,
      defaults,
    });

    new CfnOutput(this, 'RestApiUrl', {
      value: this.restApi.url,
      description: 'REST API base URL (stage prod)',
    });
    new CfnOutput(this, 'FunctionUrl', {
      value: this.streamingPath.functionUrl.url,
      description: 'Function URL of the stream function (IAM auth, response streaming)',
    });
    new CfnOutput(this, 'WebSocketUrl', {
      value: this.asyncPath.webSocketStage.url,
      description: 'WebSocket URL for async download notifications',
    });
    new CfnOutput(this, 'BucketName', { value: this.asyncPath.bucket.bucketName });
    new CfnOutput(this, 'StateMachineArn', { value: this.asyncPath.stateMachine.stateMachineArn });
    new CfnOutput(this, 'TableName', { value: this.asyncPath.table.tableName });
  }
}

function withDefaults(props: DownloadStackProps): DownloadSettings {
  const d = DEFAULT_DOWNLOAD_SETTINGS;
  return {
    upstreamBaseUrl: props.upstreamBaseUrl ?? d.upstreamBaseUrl,
    upstreamAllowedOrigins: props.upstreamAllowedOrigins ?? d.upstreamAllowedOrigins,
    upstreamHeadersTimeoutMs: props.upstreamHeadersTimeoutMs ?? d.upstreamHeadersTimeoutMs,
    upstreamBodyTimeoutMs: props.upstreamBodyTimeoutMs ?? d.upstreamBodyTimeoutMs,
    streamMaxBytes: props.streamMaxBytes ?? d.streamMaxBytes,
    presignTtlSeconds: props.presignTtlSeconds ?? d.presignTtlSeconds,
    recordTtlSeconds: props.recordTtlSeconds ?? d.recordTtlSeconds,
    objectExpirationDays: props.objectExpirationDays ?? d.objectExpirationDays,
    uploadPartSizeBytes: props.uploadPartSizeBytes ?? d.uploadPartSizeBytes,
    uploadQueueSize: props.uploadQueueSize ?? d.uploadQueueSize,
    apiAuth: props.apiAuth ?? d.apiAuth,
    apiAccessLogs: props.apiAccessLogs ?? d.apiAccessLogs,
    logLevel: props.logLevel ?? d.logLevel,
  };
}
