import { Duration } from 'aws-cdk-lib';
import { type IResource, LambdaIntegration } from 'aws-cdk-lib/aws-apigateway';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENV } from '../shared/env-names.ts';
import { type Settings, settingsEnvironment } from '../shared/settings.ts';
import { DownloadFunction, type FunctionDefaults } from './functions.ts';
import { grantOnWildcardResources } from './grants.ts';
import {
  addStreamingMethods,
  type RestMethodGuard,
  restMethodOptions,
  STREAM_TIMEOUT,
} from './streaming-path.ts';

export interface DownloadApiProps {
  /** The REST API's root resource; this construct adds `/download/{key+}` and `/downloads/{downloadId}`. */
  readonly apiRoot: IResource;
  readonly guard: RestMethodGuard;
  /** The app's settings; each function gets the variables of the settings it reads (`settingsEnvironment`). */
  readonly settings: Readonly<Settings>;
  /** Concurrency reserved for the router; 0 reserves none. */
  readonly routerReservedConcurrency: number;
  /** The download records: the router writes them, the status endpoint reads them. */
  readonly table: ITable;
  /** The bucket the workflow copies into; the status endpoint re-signs expired URLs of its objects. */
  readonly bucket: IBucket;
  /** Key prefix of the copied files in `bucket` (`downloads/`); the status endpoint presigns only those. */
  readonly objectPrefix: string;
  /** The workflow the router starts for files above the threshold. */
  readonly stateMachine: IStateMachine;
  /** The client-facing WebSocket URL (`wss://…/{stage}`) that 202 answers and statuses name. */
  readonly webSocketUrl: string;
  readonly defaults: FunctionDefaults;
}

/**
 * The REST API's download routes: the router (`GET|HEAD /download/{key+}`, STREAM mode), which
 * streams what fits and starts the async workflow for the rest, and the status endpoint
 * (`GET /downloads/{downloadId}`), the polling alternative to the WebSocket. Each function gets
 * only the actions it uses.
 */
export class DownloadApi extends Construct {
  readonly router: DownloadFunction;
  readonly downloadStatus: DownloadFunction;

  constructor(scope: Construct, id: string, props: DownloadApiProps) {
    super(scope, id);
    const { defaults } = props;

    this.router = new DownloadFunction(this, 'RouterFunction', {
      folder: 'router',
      description: 'Routes a download: streams what fits, starts the async copy for the rest.',
      environment: {
        ...settingsEnvironment(props.settings, 'router'),
        [ENV.downloadTable]: props.table.tableName,
        [ENV.stateMachineArn]: props.stateMachine.stateMachineArn,
        [ENV.webSocketUrl]: props.webSocketUrl,
      },
      timeout: STREAM_TIMEOUT,
      memorySize: 512,
      reservedConcurrency: props.routerReservedConcurrency,
      invokedSynchronouslyBy: 'API Gateway (REST STREAM mode)',
      defaults,
    });
    // PutItem: the new record; UpdateItem: marks it FAILED when the workflow cannot start.
    props.table.grant(this.router, 'dynamodb:PutItem', 'dynamodb:UpdateItem');
    props.stateMachine.grantStartExecution(this.router);
    addStreamingMethods(
      props.apiRoot.addResource('download').addResource('{key+}'),
      this.router,
      props.guard,
    );

    this.downloadStatus = new DownloadFunction(this, 'DownloadStatusFunction', {
      folder: 'download-status',
      description: 'Answers GET /downloads/{downloadId} (polling alternative to the WebSocket).',
      environment: {
        ...settingsEnvironment(props.settings, 'download-status'),
        [ENV.downloadTable]: props.table.tableName,
        [ENV.webSocketUrl]: props.webSocketUrl,
        // Re-signs an expired URL for a client that polls late.
        [ENV.downloadBucket]: props.bucket.bucketName,
      },
      timeout: Duration.seconds(10),
      invokedSynchronouslyBy: 'API Gateway (REST)',
      defaults,
    });
    props.table.grant(this.downloadStatus, 'dynamodb:GetItem');
    // A presigned URL carries exactly the signer's rights: GetObject on downloads only.
    grantOnWildcardResources(
      this.downloadStatus,
      ['s3:GetObject'],
      [props.bucket.arnForObjects(`${props.objectPrefix}*`)],
      `Object keys are per download and known only at run time; scoped to ${props.objectPrefix}`,
    );
    props.apiRoot
      .addResource('downloads')
      .addResource('{downloadId}')
      .addMethod(
        'GET',
        new LambdaIntegration(this.downloadStatus),
        restMethodOptions(props.guard, 'downloadId'),
      );
  }
}
