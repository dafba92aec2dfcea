import {
  Annotations,
  CfnOutput,
  RemovalPolicy,
  Stack,
  type StackProps,
  Token,
  Validations,
} from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LogGroupLogDestination,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import {
  DEFAULT_STREAM_MAX_BYTES,
  DEFAULT_WEBSOCKET_AUTH,
  WEBSOCKET_AUTH_MODES,
  type WebSocketAuth,
} from '../shared/config.ts';
import { ENV } from '../shared/env-names.ts';
import { AsyncPath } from './async-path.ts';
import { DownloadFunction } from './functions.ts';
import { alarmsOf, Monitoring } from './monitoring.ts';
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
   * What the WebSocket `$connect` accepts as proof that the caller started the download.
   * `token`: the download token from the 202 answer (`?token=` or `X-Download-Token`); a download
   * id or execution ARN alone gets nothing. `execution-arn-header`: also the
   * `X-StateMachine-ExecutionArn` header alone, as the original sample did — an opt-in for old
   * clients only: execution ARNs show up in consoles and logs.
   * @default 'token'
   */
  readonly webSocketAuth: WebSocketAuth;
  /**
   * Write REST and WebSocket API access logs (JSON) to log groups. Needs the account's API
   * Gateway CloudWatch role (set once per account and region, outside this stack).
   * @default false
   */
  readonly apiAccessLogs: boolean;
  /**
   * `POWERTOOLS_LOG_LEVEL` of every function.
   * @default 'INFO'
   */
  readonly logLevel: string;
  /**
   * Steady-state requests per second the REST stage accepts (every method; more get 429).
   * @default 50
   */
  readonly restThrottlingRateLimit: number;
  /**
   * Requests the REST stage accepts at once above the steady rate.
   * @default 100
   */
  readonly restThrottlingBurstLimit: number;
  /**
   * Steady-state messages (and connects) per second the WebSocket stage accepts, every route.
   * @default 50
   */
  readonly webSocketThrottlingRateLimit: number;
  /**
   * Messages the WebSocket stage accepts at once above the steady rate.
   * @default 100
   */
  readonly webSocketThrottlingBurstLimit: number;
  /**
   * Concurrency reserved for the stream function; 0 reserves none. Reserving any fails the deploy
   * where the account's total concurrency is 10 (new accounts), so it is opt-in.
   * @default 0 (none)
   */
  readonly streamReservedConcurrency: number;
  /**
   * Concurrency reserved for the router (`download`) function; 0 reserves none. See
   * `streamReservedConcurrency`.
   * @default 0 (none)
   */
  readonly routerReservedConcurrency: number;
  /**
   * ARN of an SNS topic that receives every alarm's ALARM and OK transitions.
   * @default '' (alarms without actions; watch the dashboard)
   */
  readonly alarmTopicArn: string;
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
  webSocketAuth: DEFAULT_WEBSOCKET_AUTH,
  apiAccessLogs: false,
  logLevel: 'INFO',
  restThrottlingRateLimit: 50,
  restThrottlingBurstLimit: 100,
  webSocketThrottlingRateLimit: 50,
  webSocketThrottlingBurstLimit: 100,
  streamReservedConcurrency: 0,
  routerReservedConcurrency: 0,
  alarmTopicArn: '',
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
  // API Gateway's default account quotas: 10,000 requests per second, bursts of 5,000.
  restThrottlingRateLimit: [1, 10_000],
  restThrottlingBurstLimit: [1, 5_000],
  webSocketThrottlingRateLimit: [1, 10_000],
  webSocketThrottlingBurstLimit: [1, 5_000],
  streamReservedConcurrency: [0, 10_000],
  routerReservedConcurrency: [0, 10_000],
};

/** An SNS topic ARN (`arn:aws:sns:eu-west-1:123456789012:alarms`), in any partition. */
const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;

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
  if (!(WEBSOCKET_AUTH_MODES as readonly string[]).includes(settings.webSocketAuth)) {
    problems.push(
      `webSocketAuth must be ${WEBSOCKET_AUTH_MODES.map((mode) => `"${mode}"`).join(' or ')}, got "${String(settings.webSocketAuth)}"`,
    );
  }
  if (
    settings.alarmTopicArn &&
    !Token.isUnresolved(settings.alarmTopicArn) &&
    !SNS_TOPIC_ARN.test(settings.alarmTopicArn)
  ) {
    problems.push(`alarmTopicArn must be an SNS topic ARN, got "${settings.alarmTopicArn}"`);
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
 * API, bucket, table and workflow, and their alarms and dashboard. The only names set carry the
 * stack name (the APIs', the workflow's log group), so the stack can be deployed twice under
 * different stack names.
 */
export class DownloadStack extends Stack {
  readonly settings: DownloadSettings;
  readonly restApi: RestApi;
  readonly streamingPath: StreamingPath;
  readonly asyncPath: AsyncPath;
  readonly monitoring: Monitoring;

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
            new LogGroup(this, 'RestApiAccessLogs', {
              retention: RetentionDays.ONE_MONTH,
              removalPolicy: RemovalPolicy.DESTROY,
            }),
          ),
          accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        }
      : {};
    this.restApi = new RestApi(this, 'RestApi', {
      restApiName: `${this.stackName}-downloads`,
      description:
        'Large-file downloads: streaming for what fits, S3 + Step Functions + WebSocket for the rest.',
      // Edge-optimized endpoints cut idle streams after 30 s; regional ones allow 5 minutes.
      endpointTypes: [EndpointType.REGIONAL],
      binaryMediaTypes: ['*/*'],
      defaultMethodOptions: { authorizationType },
      cloudWatchRole: false,
      deployOptions: {
        stageName: 'prod',
        tracingEnabled: true,
        // Default method throttling (MethodSettings `/*/*`): beyond it API Gateway answers 429.
        throttlingRateLimit: settings.restThrottlingRateLimit,
        throttlingBurstLimit: settings.restThrottlingBurstLimit,
        ...accessLogs,
      },
    });
    const guard = {
      authorizationType,
      requestValidator: this.restApi.addRequestValidator('RequestValidator', {
        validateRequestParameters: true,
        validateRequestBody: true,
      }),
    };
    this.acknowledgeRestApiFindings(settings);

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
      guard,
      streamEnvironment: { ...upstreamEnvironment, [ENV.streamMaxBytes]: String(settings.streamMaxBytes) },
      reservedConcurrency: settings.streamReservedConcurrency,
      defaults,
    });
    this.asyncPath = new AsyncPath(this, 'AsyncPath', {
      apiRoot: this.restApi.root,
      guard,
      upstreamEnvironment,
      streamMaxBytes: settings.streamMaxBytes,
      routerReservedConcurrency: settings.routerReservedConcurrency,
      webSocketThrottle: {
        rateLimit: settings.webSocketThrottlingRateLimit,
        burstLimit: settings.webSocketThrottlingBurstLimit,
      },
      accessLogs: settings.apiAccessLogs,
      presignTtlSeconds: settings.presignTtlSeconds,
      recordTtlSeconds: settings.recordTtlSeconds,
      objectExpirationDays: settings.objectExpirationDays,
      uploadPartSizeBytes: settings.uploadPartSizeBytes,
      uploadQueueSize: settings.uploadQueueSize,
      webSocketAuth: settings.webSocketAuth,
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

    // Last, so that it sees every function and alarm of the stack.
    this.monitoring = new Monitoring(this, 'Monitoring', {
      restStage: this.restApi.deploymentStage,
      webSocketStage: this.asyncPath.webSocketStage,
      stateMachine: this.asyncPath.stateMachine,
      functions: this.node.findAll().filter((c): c is DownloadFunction => c instanceof DownloadFunction),
    });
    this.monitoring.notifyAlarms(alarmsOf(this), settings.alarmTopicArn);
    new CfnOutput(this, 'DashboardName', {
      value: this.monitoring.dashboard.dashboardName,
      description: 'CloudWatch dashboard of the APIs, functions and workflow',
    });
  }

  /** cdk-nag findings on the REST API that this design accepts, each with its reason. */
  private acknowledgeRestApiFindings(settings: DownloadSettings): void {
    const acknowledge = (id: string, reason: string) =>
      Validations.of(this.restApi).acknowledge({ id, reason });
    acknowledge(
      'AwsSolutions-APIG3',
      'AWS WAF is out of scope for this sample: callers are authenticated (IAM) and throttled per stage; attach a web ACL to the prod stage where needed',
    );
    acknowledge(
      'AwsSolutions-APIG6',
      'Execution logs need the account-wide API Gateway CloudWatch role and go to a log group API Gateway creates without retention; access logs (apiAccessLogs) and X-Ray tracing cover requests',
    );
    acknowledge(
      'AwsSolutions-COG4',
      settings.apiAuth === 'iam'
        ? 'Methods use IAM (SigV4) authorization, not Cognito user pools'
        : 'apiAuth=none: the operator opened the REST API on purpose (README Security)',
    );
    if (settings.apiAuth === 'none') {
      acknowledge(
        'AwsSolutions-APIG4',
        'apiAuth=none: the operator opened the REST API on purpose (README Security)',
      );
    }
    if (!settings.apiAccessLogs) {
      for (const id of ['AwsSolutions-APIG1', 'Serverless-APIGWAccessLogging']) {
        acknowledge(
          id,
          'Access logs are opt-in (apiAccessLogs=true): API Gateway needs the account-wide CloudWatch Logs role, which this stack does not own',
        );
      }
    }
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
    webSocketAuth: props.webSocketAuth ?? d.webSocketAuth,
    apiAccessLogs: props.apiAccessLogs ?? d.apiAccessLogs,
    logLevel: props.logLevel ?? d.logLevel,
    restThrottlingRateLimit: props.restThrottlingRateLimit ?? d.restThrottlingRateLimit,
    restThrottlingBurstLimit: props.restThrottlingBurstLimit ?? d.restThrottlingBurstLimit,
    webSocketThrottlingRateLimit: props.webSocketThrottlingRateLimit ?? d.webSocketThrottlingRateLimit,
    webSocketThrottlingBurstLimit: props.webSocketThrottlingBurstLimit ?? d.webSocketThrottlingBurstLimit,
    streamReservedConcurrency: props.streamReservedConcurrency ?? d.streamReservedConcurrency,
    routerReservedConcurrency: props.routerReservedConcurrency ?? d.routerReservedConcurrency,
    alarmTopicArn: props.alarmTopicArn ?? d.alarmTopicArn,
  };
}
