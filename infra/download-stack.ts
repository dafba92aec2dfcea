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
  type ApiAuth,
  checkSetting,
  DEFAULT_SETTINGS,
  SETTINGS,
  type Setting,
  type SettingName,
  type Settings,
} from '../shared/settings.ts';
import { AsyncPath, DOWNLOAD_OBJECT_PREFIX } from './async-path.ts';
import { DownloadApi } from './download-api.ts';
import { DownloadFunction } from './functions.ts';
import { alarmsOf, Monitoring } from './monitoring.ts';
import { BrowserPage } from './page.ts';
import { StreamingPath } from './streaming-path.ts';

export type { ApiAuth };

/**
 * The app's settings. Each one is a stack prop and a CDK context key of the same name
 * (`cdk deploy -c upstreamBaseUrl=https://files.example.com/exports/`, or `context` in `cdk.json`);
 * what each means, its default and its bounds are declared once, in `SETTINGS`
 * (`shared/settings.ts`), which the functions' config loaders read too.
 */
export type DownloadSettings = Settings;

/** Defaults of every setting. */
export const DEFAULT_DOWNLOAD_SETTINGS: Readonly<DownloadSettings> = DEFAULT_SETTINGS;

export interface DownloadStackProps extends StackProps, Partial<DownloadSettings> {}

/** An SNS topic ARN (`arn:aws:sns:eu-west-1:123456789012:alarms`), in any partition. */
const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$/;

/** Throws one error naming every invalid setting. */
export function validateDownloadSettings(settings: DownloadSettings): void {
  const problems: string[] = [];
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const declared: Setting = SETTINGS[name];
    const value: unknown = settings[name];
    // Same check as the functions' config loaders, so synth accepts exactly what they accept.
    const checked =
      declared.kind === 'integer' && typeof value !== 'number'
        ? {
            ok: false as const,
            problem: `must be an integer from ${declared.min} to ${declared.max}, got ${String(value)}`,
          }
        : declared.kind === 'string' || (typeof value === 'string' && Token.isUnresolved(value))
          ? { ok: true as const }
          : checkSetting(declared, value);
    if (!checked.ok) problems.push(`${name} ${checked.problem}`);
  }
  if (!Token.isUnresolved(settings.upstreamBaseUrl) && !isHttpUrl(settings.upstreamBaseUrl)) {
    problems.push(`upstreamBaseUrl must be an absolute http(s) URL, got "${settings.upstreamBaseUrl}"`);
  }
  for (const origin of settings.upstreamAllowedOrigins.split(',').map((o) => o.trim())) {
    if (origin && !isHttpUrl(origin))
      problems.push(`upstreamAllowedOrigins has an invalid origin "${origin}"`);
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
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const kind = SETTINGS[name].kind;
    const raw: unknown = scope.node.tryGetContext(name);
    if (raw === undefined || raw === null) continue;
    if (kind === 'integer') {
      const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
      if (String(raw).trim() === '' || !Number.isFinite(value)) {
        throw new Error(`context ${name} must be a number, got "${String(raw)}"`);
      }
      settings[name] = value;
    } else if (kind === 'boolean') {
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
  /** The browser page at the REST API's root (`GET /`), under the same auth as the API. */
  readonly browserPage: BrowserPage;
  readonly asyncPath: AsyncPath;
  /** The router (`/download/{key+}`) and the status endpoint (`/downloads/{downloadId}`). */
  readonly downloadApi: DownloadApi;
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
    this.streamingPath = new StreamingPath(this, 'StreamingPath', {
      apiRoot: this.restApi.root,
      guard,
      settings,
      reservedConcurrency: settings.streamReservedConcurrency,
      defaults,
    });
    this.asyncPath = new AsyncPath(this, 'AsyncPath', {
      settings,
      webSocketThrottle: {
        rateLimit: settings.webSocketThrottlingRateLimit,
        burstLimit: settings.webSocketThrottlingBurstLimit,
      },
      accessLogs: settings.apiAccessLogs,
      defaults,
    });
    this.downloadApi = new DownloadApi(this, 'DownloadApi', {
      apiRoot: this.restApi.root,
      guard,
      settings,
      routerReservedConcurrency: settings.routerReservedConcurrency,
      table: this.asyncPath.table,
      bucket: this.asyncPath.bucket,
      objectPrefix: DOWNLOAD_OBJECT_PREFIX,
      stateMachine: this.asyncPath.stateMachine,
      webSocketUrl: this.asyncPath.webSocketStage.url,
      defaults,
    });

    this.browserPage = new BrowserPage(this, 'BrowserPage', { apiRoot: this.restApi.root, guard, defaults });

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
  const settings: Record<string, unknown> = { ...DEFAULT_SETTINGS };
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    if (props[name] !== undefined) settings[name] = props[name];
  }
  return settings as DownloadSettings;
}
