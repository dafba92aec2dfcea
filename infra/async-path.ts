import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  LogGroupLogDestination,
  type ThrottleSettings,
  WebSocketApi,
  WebSocketStage,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { MAX_PARALLEL_PART_BYTES } from '../shared/downloads/copy-ranges.ts';
import { ENV } from '../shared/env-names.ts';
import { type Settings, settingsEnvironment } from '../shared/settings.ts';
import { DownloadFunction, type FunctionDefaults } from './functions.ts';
import { acknowledgeWildcardResource, grantConnectionsApi, grantOnWildcardResources } from './grants.ts';
import { buildDownloadDefinition } from './state-machine-definition.ts';
import { WorkflowWatch } from './workflow-watch.ts';

/** The parallel-copy worker's memory (MB = MiB in Lambda): two parts of the largest size, and room to run. */
const COPY_RANGE_MEMORY_MB = (2 * MAX_PARALLEL_PART_BYTES) / (1024 * 1024) + 512;

/** Key prefix of the copied files in the download bucket; IAM grants and the lifecycle rule are scoped to it. */
export const DOWNLOAD_OBJECT_PREFIX = 'downloads/';

/** Stage of the WebSocket API; part of both the client and the management URL. */
export const WEBSOCKET_STAGE_NAME = 'live';

/**
 * One JSON line per WebSocket event. Leaves out the `$connect` query string: it carries the
 * download's token.
 */
const WEBSOCKET_ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    requestTime: '$context.requestTime',
    ip: '$context.identity.sourceIp',
    eventType: '$context.eventType',
    routeKey: '$context.routeKey',
    status: '$context.status',
    connectionId: '$context.connectionId',
    error: '$context.error.message',
    integrationError: '$context.integrationErrorMessage',
  }),
);

export interface AsyncPathProps {
  /**
   * The app's settings: each function gets the variables of the settings it reads
   * (`settingsEnvironment`), and the bucket's lifecycle `objectExpirationDays`.
   */
  readonly settings: Readonly<Settings>;
  /** Default route throttling of the WebSocket stage. */
  readonly webSocketThrottle: Required<ThrottleSettings>;
  /** Write WebSocket access logs (like the REST stage's, `apiAccessLogs`). */
  readonly accessLogs: boolean;
  readonly defaults: FunctionDefaults;
}

/**
 * The async path: the WebSocket API, the download table and bucket, and the Step Functions
 * workflow that copies upstream into S3 and hands out a presigned URL. The REST routes that start
 * and report downloads (the router and the status endpoint) are `DownloadApi`'s.
 *
 * The bucket and table are a cache of short-lived downloads, so this sample destroys them with
 * the stack (`RemovalPolicy.DESTROY`, bucket emptied by `autoDeleteObjects`). Keep that in mind
 * before pointing it at anything you want to keep.
 *
 * Every function gets only the actions it uses, on the resources it uses (S3 on `downloads/*`).
 */
export class AsyncPath extends Construct {
  readonly bucket: Bucket;
  readonly table: Table;
  readonly webSocketApi: WebSocketApi;
  readonly webSocketStage: WebSocketStage;
  readonly stateMachine: StateMachine;
  /** Settles downloads whose execution timed out, was stopped or failed unhandled; dead-letter queue. */
  readonly workflowWatch: WorkflowWatch;
  readonly functions: {
    readonly websocket: DownloadFunction;
    readonly planCopy: DownloadFunction;
    readonly copyRange: DownloadFunction;
    readonly completeCopy: DownloadFunction;
    readonly fetchToS3: DownloadFunction;
    readonly presign: DownloadFunction;
    readonly markReady: DownloadFunction;
    readonly notify: DownloadFunction;
    readonly markFailed: DownloadFunction;
  };

  constructor(scope: Construct, id: string, props: AsyncPathProps) {
    super(scope, id);
    const { defaults } = props;
    const downloadObjects = `${DOWNLOAD_OBJECT_PREFIX}*`;
    const onStateMachine = 'the state machine (LambdaInvoke task)';

    this.bucket = new Bucket(this, 'DownloadBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [
        {
          id: 'expire-downloads',
          prefix: DOWNLOAD_OBJECT_PREFIX,
          expiration: Duration.days(props.settings.objectExpirationDays),
        },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
    });
    Validations.of(this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Objects are short-lived copies reached only through presigned URLs that the REST API (IAM auth, access logs) hands out; server access logs would need a second bucket that outlives the stack',
    });

    this.table = new Table(this, 'DownloadTable', {
      partitionKey: { name: 'downloadId', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    Validations.of(this.table).acknowledge({
      id: 'AwsSolutions-DDB3',
      reason:
        'Records are the state of downloads that expire within days (TTL) and are destroyed with the stack; a restore would bring back nothing a client can use',
    });

    // Routes are added below, once the function they call exists.
    this.webSocketApi = new WebSocketApi(this, 'WebSocketApi', {
      apiName: `${Stack.of(this).stackName}-notifications`,
      description: 'Notifies clients when their async download is ready.',
      routeSelectionExpression: '$request.body.action',
    });
    this.webSocketStage = new WebSocketStage(this, 'WebSocketStage', {
      webSocketApi: this.webSocketApi,
      stageName: WEBSOCKET_STAGE_NAME,
      autoDeploy: true,
      throttle: props.webSocketThrottle,
      ...(props.accessLogs
        ? {
            accessLogSettings: {
              destination: new LogGroupLogDestination(
                new LogGroup(this, 'WebSocketAccessLogs', {
                  retention: RetentionDays.ONE_MONTH,
                  removalPolicy: RemovalPolicy.DESTROY,
                }),
              ),
              format: WEBSOCKET_ACCESS_LOG_FORMAT,
            },
          }
        : {}),
    });
    if (!props.accessLogs) {
      for (const id of ['AwsSolutions-APIG1', 'Serverless-APIGWAccessLogging']) {
        Validations.of(this.webSocketStage).acknowledge({
          id,
          reason:
            'Access logs are opt-in (apiAccessLogs=true): API Gateway needs the account-wide CloudWatch Logs role, which this stack does not own',
        });
      }
    }
    const managementUrl = this.webSocketStage.callbackUrl;
    const tableName = this.table.tableName;
    const bucketName = this.bucket.bucketName;

    const fetchToS3 = new DownloadFunction(this, 'FetchToS3Function', {
      folder: 'fetch-to-s3',
      description: 'Copies an upstream file into S3 with a multipart upload and reports progress.',
      environment: {
        ...settingsEnvironment(props.settings, 'fetch-to-s3'),
        [ENV.downloadBucket]: bucketName,
        [ENV.downloadTable]: tableName,
        [ENV.webSocketManagementUrl]: managementUrl,
      },
      timeout: Duration.minutes(15),
      memorySize: 1024,
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    const objectsReason = `Object keys are per download and known only at run time; scoped to ${DOWNLOAD_OBJECT_PREFIX}`;
    const grantOnDownloadObjects = (fn: DownloadFunction, ...actions: string[]) =>
      grantOnWildcardResources(fn, actions, [this.bucket.arnForObjects(downloadObjects)], objectsReason);
    // CreateMultipartUpload, UploadPart and CompleteMultipartUpload are all authorized by s3:PutObject;
    // lib-storage's Upload never lists parts.
    grantOnDownloadObjects(fetchToS3, 's3:PutObject', 's3:AbortMultipartUpload');
    // GetItem: where an earlier attempt's progress stopped.
    this.table.grant(fetchToS3, 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    grantConnectionsApi(fetchToS3, this.webSocketStage, 'POST');

    const presign = new DownloadFunction(this, 'PresignFunction', {
      folder: 'presign',
      description: 'Presigns a GET URL for a copied download.',
      environment: {
        ...settingsEnvironment(props.settings, 'presign'),
        [ENV.downloadBucket]: bucketName,
      },
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    // A presigned URL carries exactly the signer's rights: GetObject on downloads only.
    const grantPresigning = (fn: DownloadFunction) => grantOnDownloadObjects(fn, 's3:GetObject');
    grantPresigning(presign);

    const markReady = new DownloadFunction(this, 'MarkReadyFunction', {
      folder: 'mark-ready',
      description: 'Stores the presigned URL on the download record.',
      environment: { [ENV.downloadTable]: tableName },
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    this.table.grant(markReady, 'dynamodb:UpdateItem');

    const notify = new DownloadFunction(this, 'NotifyFunction', {
      folder: 'notify',
      description: 'Posts the ready message to the WebSocket connection of a download.',
      environment: {
        ...settingsEnvironment(props.settings, 'notify'),
        [ENV.downloadTable]: tableName,
        [ENV.webSocketManagementUrl]: managementUrl,
        // Re-signs an expired URL for a client that connects late.
        [ENV.downloadBucket]: bucketName,
      },
      defaults,
    });
    Validations.of(notify).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'The state machine invokes it synchronously; its asynchronous invocations (after $connect) fail to an on-failure destination (WorkflowWatch dead-letter queue), which replaces a DLQ',
    });
    this.table.grant(notify, 'dynamodb:GetItem');
    grantPresigning(notify);
    // DELETE: closes connections past the per-download cap once they were told why.
    grantConnectionsApi(notify, this.webSocketStage, 'POST', 'DELETE');

    const markFailed = new DownloadFunction(this, 'MarkFailedFunction', {
      folder: 'mark-failed',
      description: 'Aborts leftover uploads, records the failure and tells a connected client.',
      environment: {
        [ENV.downloadTable]: tableName,
        [ENV.downloadBucket]: bucketName,
        [ENV.webSocketManagementUrl]: managementUrl,
      },
      timeout: Duration.minutes(1),
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    this.table.grant(markFailed, 'dynamodb:UpdateItem');
    markFailed.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:ListBucketMultipartUploads'],
        resources: [this.bucket.bucketArn],
      }),
    );
    markFailed.addToRolePolicy(
      // Finds a partial object a failed copy may have left under its prefix.
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${DOWNLOAD_OBJECT_PREFIX}*`] } },
      }),
    );
    grantOnDownloadObjects(markFailed, 's3:AbortMultipartUpload', 's3:DeleteObject');
    grantConnectionsApi(markFailed, this.webSocketStage, 'POST');

    // The parallel ranged copy: plan, workers (one Map iteration per range), completion.
    const planCopy = new DownloadFunction(this, 'PlanCopyFunction', {
      folder: 'plan-copy',
      description: 'Chooses the copy; for a parallel one creates the multipart upload and its ranges.',
      environment: {
        ...settingsEnvironment(props.settings, 'plan-copy'),
        [ENV.downloadBucket]: bucketName,
        [ENV.downloadTable]: tableName,
      },
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    // CreateMultipartUpload is authorized by s3:PutObject; AbortMultipartUpload when the plan fails.
    grantOnDownloadObjects(planCopy, 's3:PutObject', 's3:AbortMultipartUpload');
    this.table.grant(planCopy, 'dynamodb:UpdateItem');

    const copyRange = new DownloadFunction(this, 'CopyRangeFunction', {
      folder: 'copy-range',
      description: 'Copies one range of a parallel copy into its multipart upload, with progress.',
      environment: {
        ...settingsEnvironment(props.settings, 'copy-range'),
        [ENV.downloadTable]: tableName,
        [ENV.webSocketManagementUrl]: managementUrl,
      },
      timeout: Duration.minutes(15),
      // A worker holds two parts (one uploading with its CRC64NVME, the next one reading); the
      // planner's parts are at most 525 MiB (MAX_PARALLEL_PART_BYTES: 10,000 of them hold 5 TiB),
      // so 1,050 MiB of buffers plus 512 MiB for the runtime, the SDK and the sockets: 1,562 MB.
      memorySize: COPY_RANGE_MEMORY_MB,
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    // UploadPart is authorized by s3:PutObject.
    grantOnDownloadObjects(copyRange, 's3:PutObject');
    // GetItem: where the range stands; UpdateItem: progress and the progress-message slot.
    this.table.grant(copyRange, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    grantConnectionsApi(copyRange, this.webSocketStage, 'POST');

    const completeCopy = new DownloadFunction(this, 'CompleteCopyFunction', {
      folder: 'complete-copy',
      description: "Checks a parallel copy's checksum and completes its multipart upload.",
      environment: { [ENV.downloadTable]: tableName },
      timeout: Duration.minutes(2),
      invokedSynchronouslyBy: onStateMachine,
      defaults,
    });
    // ListParts (s3:ListMultipartUploadParts), CompleteMultipartUpload (s3:PutObject), Abort.
    grantOnDownloadObjects(
      completeCopy,
      's3:ListMultipartUploadParts',
      's3:PutObject',
      's3:AbortMultipartUpload',
    );
    this.table.grant(completeCopy, 'dynamodb:GetItem');

    const workflowFunctions = {
      planCopy,
      copyRange,
      completeCopy,
      fetchToS3,
      presign,
      markReady,
      notify,
      markFailed,
    };
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      comment: 'Copies a large upstream file into S3 and hands out a presigned URL.',
      definitionBody: DefinitionBody.fromChainable(buildDownloadDefinition(this, workflowFunctions)),
      stateMachineType: StateMachineType.STANDARD,
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: {
        // Under /aws/vendedlogs/states/ Step Functions needs no entry in the account's CloudWatch
        // Logs resource policy (capped at 5,120 characters, full in busy accounts); the stack
        // name keeps the name unique per stack.
        destination: new LogGroup(this, 'StateMachineLogs', {
          logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-downloads`,
          retention: RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        level: LogLevel.ALL,
        // Inputs carry presigned URLs; keep them out of the logs.
        includeExecutionData: false,
      },
    });
    const stateMachineRole = this.stateMachine.role;
    Validations.of(stateMachineRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes and the CloudWatch Logs delivery actions that Step Functions logging needs support no resource-level permissions',
    });
    for (const fn of Object.values(workflowFunctions)) {
      acknowledgeWildcardResource(
        stateMachineRole,
        `${fn.functionArn}:*`,
        'LambdaInvoke allows the task function and its versions/aliases (<function ARN>:*), nothing else',
      );
    }
    this.workflowWatch = new WorkflowWatch(this, 'WorkflowWatch', {
      stateMachine: this.stateMachine,
      table: this.table,
      bucket: this.bucket,
      objectPrefix: DOWNLOAD_OBJECT_PREFIX,
      webSocketStage: this.webSocketStage,
      notifier: notify,
      defaults,
    });

    const websocket = new DownloadFunction(this, 'WebSocketFunction', {
      folder: 'websocket',
      description: 'WebSocket routes: binds connections to downloads and answers status requests.',
      environment: {
        ...settingsEnvironment(props.settings, 'websocket'),
        [ENV.downloadTable]: tableName,
        [ENV.notifierFunctionName]: notify.functionName,
      },
      invokedSynchronouslyBy: 'API Gateway (WebSocket routes)',
      defaults,
    });
    // PutItem: the connection → download mapping item, so $disconnect needs no scan.
    this.table.grant(websocket, 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem');
    // The notifier is invoked by its unqualified name: no `<arn>:*` for versions and aliases.
    websocket.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [notify.functionArn] }),
    );
    const webSocketIntegration = new WebSocketLambdaIntegration('WebSocketIntegration', websocket);
    for (const routeKey of ['$connect', '$disconnect', '$default', 'status']) {
      const route = this.webSocketApi.addRoute(routeKey, {
        integration: webSocketIntegration,
        // `$default` and `status` answer the client; `$connect`/`$disconnect` answers only gate the handshake.
        returnResponse: routeKey === '$default' || routeKey === 'status',
      });
      // An auto-deployed stage created before any route exists fails its first deployment
      // ("At least one route is required before deploying the Api").
      this.webSocketStage.node.addDependency(route);
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          routeKey === '$connect'
            ? '$connect admits a connection only with proof of an existing, unexpired download, checked by its handler (webSocketAuth, README Security); browsers cannot sign a WebSocket handshake for IAM'
            : 'API Gateway authorizes WebSocket connections on $connect only; this route runs on a connection $connect admitted',
      });
    }

    this.functions = {
      websocket,
      planCopy,
      copyRange,
      completeCopy,
      fetchToS3,
      presign,
      markReady,
      notify,
      markFailed,
    };
  }
}
