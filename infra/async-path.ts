import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { type AuthorizationType, type IResource, LambdaIntegration } from 'aws-cdk-lib/aws-apigateway';
import { WebSocketApi, WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENV } from '../shared/env-names.ts';
import { DownloadFunction, type FunctionDefaults } from './functions.ts';
import { buildDownloadDefinition } from './state-machine-definition.ts';
import { addStreamingMethods, STREAM_TIMEOUT } from './streaming-path.ts';

/** Key prefix of the copied files in the download bucket; IAM grants and the lifecycle rule are scoped to it. */
export const DOWNLOAD_OBJECT_PREFIX = 'downloads/';

/** Stage of the WebSocket API; part of both the client and the management URL. */
export const WEBSOCKET_STAGE_NAME = 'live';

/** Tunables of the async path; see `DownloadStackProps` for what each means. */
export interface AsyncPathSettings {
  readonly presignTtlSeconds: number;
  readonly recordTtlSeconds: number;
  readonly objectExpirationDays: number;
  readonly uploadPartSizeBytes: number;
  readonly uploadQueueSize: number;
}

export interface AsyncPathProps extends AsyncPathSettings {
  /** The REST API's root resource; this construct adds `/download/{key+}` and `/downloads/{downloadId}`. */
  readonly apiRoot: IResource;
  /** Authorization of the REST methods. */
  readonly authorizationType: AuthorizationType;
  /** `UPSTREAM_*` variables, shared with the streaming path. */
  readonly upstreamEnvironment: Readonly<Record<string, string>>;
  /** The router streams bodies up to this many bytes and sends larger ones the async way. */
  readonly streamMaxBytes: number;
  readonly defaults: FunctionDefaults;
}

/**
 * The async path: the router (`GET|HEAD /download/{key+}`, STREAM mode), the status endpoint
 * (`GET /downloads/{downloadId}`), the WebSocket API, the download table and bucket, and the
 * Step Functions workflow that copies upstream into S3 and hands out a presigned URL.
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
  readonly functions: {
    readonly download: DownloadFunction;
    readonly downloadStatus: DownloadFunction;
    readonly websocket: DownloadFunction;
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

    this.bucket = new Bucket(this, 'DownloadBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [
        {
          id: 'expire-downloads',
          prefix: DOWNLOAD_OBJECT_PREFIX,
          expiration: Duration.days(props.objectExpirationDays),
        },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
    });

    this.table = new Table(this, 'DownloadTable', {
      partitionKey: { name: 'downloadId', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Routes are added below, once the function they call exists.
    this.webSocketApi = new WebSocketApi(this, 'WebSocketApi', {
      description: 'Notifies clients when their async download is ready.',
      routeSelectionExpression: '$request.body.action',
    });
    this.webSocketStage = new WebSocketStage(this, 'WebSocketStage', {
      webSocketApi: this.webSocketApi,
      stageName: WEBSOCKET_STAGE_NAME,
      autoDeploy: true,
    });
    const webSocketUrl = this.webSocketStage.url;
    const managementUrl = this.webSocketStage.callbackUrl;
    const tableName = this.table.tableName;
    const bucketName = this.bucket.bucketName;

    const fetchToS3 = new DownloadFunction(this, 'FetchToS3Function', {
      folder: 'fetch-to-s3',
      description: 'Copies an upstream file into S3 with a multipart upload and reports progress.',
      environment: {
        ...props.upstreamEnvironment,
        [ENV.downloadBucket]: bucketName,
        [ENV.downloadTable]: tableName,
        [ENV.webSocketManagementUrl]: managementUrl,
        [ENV.uploadPartSizeBytes]: String(props.uploadPartSizeBytes),
        [ENV.uploadQueueSize]: String(props.uploadQueueSize),
      },
      timeout: Duration.minutes(15),
      memorySize: 1024,
      defaults,
    });
    fetchToS3.addToRolePolicy(
      new PolicyStatement({
        // CreateMultipartUpload, UploadPart and CompleteMultipartUpload are all authorized by s3:PutObject.
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [this.bucket.arnForObjects(downloadObjects)],
      }),
    );
    this.table.grant(fetchToS3, 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    this.webSocketStage.grantManagementApiAccess(fetchToS3);

    const presign = new DownloadFunction(this, 'PresignFunction', {
      folder: 'presign',
      description: 'Presigns a GET URL for a copied download.',
      environment: {
        [ENV.downloadBucket]: bucketName,
        [ENV.presignTtlSeconds]: String(props.presignTtlSeconds),
      },
      defaults,
    });
    // A presigned URL carries exactly the signer's rights: GetObject on downloads only.
    const grantPresigning = (fn: DownloadFunction) =>
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [this.bucket.arnForObjects(downloadObjects)],
        }),
      );
    const presignEnvironment = {
      [ENV.downloadBucket]: bucketName,
      [ENV.presignTtlSeconds]: String(props.presignTtlSeconds),
    };
    grantPresigning(presign);

    const markReady = new DownloadFunction(this, 'MarkReadyFunction', {
      folder: 'mark-ready',
      description: 'Stores the presigned URL on the download record.',
      environment: { [ENV.downloadTable]: tableName },
      defaults,
    });
    this.table.grant(markReady, 'dynamodb:UpdateItem');

    const notify = new DownloadFunction(this, 'NotifyFunction', {
      folder: 'notify',
      description: 'Posts the ready message to the WebSocket connection of a download.',
      environment: {
        [ENV.downloadTable]: tableName,
        [ENV.webSocketManagementUrl]: managementUrl,
        // Re-signs an expired URL for a client that connects late.
        ...presignEnvironment,
      },
      defaults,
    });
    this.table.grant(notify, 'dynamodb:GetItem');
    grantPresigning(notify);
    this.webSocketStage.grantManagementApiAccess(notify);

    const markFailed = new DownloadFunction(this, 'MarkFailedFunction', {
      folder: 'mark-failed',
      description: 'Aborts leftover uploads, records the failure and tells a connected client.',
      environment: {
        [ENV.downloadTable]: tableName,
        [ENV.downloadBucket]: bucketName,
        [ENV.webSocketManagementUrl]: managementUrl,
      },
      timeout: Duration.minutes(1),
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
    markFailed.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:AbortMultipartUpload', 's3:DeleteObject'],
        resources: [this.bucket.arnForObjects(downloadObjects)],
      }),
    );
    this.webSocketStage.grantManagementApiAccess(markFailed);

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      comment: 'Copies a large upstream file into S3 and hands out a presigned URL.',
      definitionBody: DefinitionBody.fromChainable(
        buildDownloadDefinition(this, { fetchToS3, presign, markReady, notify, markFailed }),
      ),
      stateMachineType: StateMachineType.STANDARD,
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: {
        destination: new LogGroup(this, 'StateMachineLogs', {
          retention: RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
        level: LogLevel.ALL,
        // Inputs carry presigned URLs; keep them out of the logs.
        includeExecutionData: false,
      },
    });

    const websocket = new DownloadFunction(this, 'WebSocketFunction', {
      folder: 'websocket',
      description: 'WebSocket routes: binds connections to downloads and answers status requests.',
      environment: {
        [ENV.downloadTable]: tableName,
        [ENV.notifierFunctionName]: notify.functionName,
      },
      defaults,
    });
    // PutItem: the connection → download mapping item, so $disconnect needs no scan.
    this.table.grant(websocket, 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:PutItem');
    notify.grantInvoke(websocket);
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
    }

    const download = new DownloadFunction(this, 'DownloadFunction', {
      folder: 'download',
      description: 'Routes a download: streams what fits, starts the async copy for the rest.',
      environment: {
        ...props.upstreamEnvironment,
        [ENV.streamMaxBytes]: String(props.streamMaxBytes),
        [ENV.downloadTable]: tableName,
        [ENV.stateMachineArn]: this.stateMachine.stateMachineArn,
        [ENV.webSocketUrl]: webSocketUrl,
        [ENV.recordTtlSeconds]: String(props.recordTtlSeconds),
      },
      timeout: STREAM_TIMEOUT,
      memorySize: 512,
      defaults,
    });
    this.table.grant(download, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    this.stateMachine.grantStartExecution(download);
    addStreamingMethods(
      props.apiRoot.addResource('download').addResource('{key+}'),
      download,
      props.authorizationType,
    );

    const downloadStatus = new DownloadFunction(this, 'DownloadStatusFunction', {
      folder: 'download-status',
      description: 'Answers GET /downloads/{downloadId} (polling alternative to the WebSocket).',
      environment: {
        [ENV.downloadTable]: tableName,
        [ENV.webSocketUrl]: webSocketUrl,
        // Re-signs an expired URL for a client that polls late.
        ...presignEnvironment,
      },
      timeout: Duration.seconds(10),
      defaults,
    });
    this.table.grant(downloadStatus, 'dynamodb:GetItem');
    grantPresigning(downloadStatus);
    props.apiRoot
      .addResource('downloads')
      .addResource('{downloadId}')
      .addMethod('GET', new LambdaIntegration(downloadStatus), {
        authorizationType: props.authorizationType,
      });

    this.functions = {
      download,
      downloadStatus,
      websocket,
      fetchToS3,
      presign,
      markReady,
      notify,
      markFailed,
    };
  }
}
