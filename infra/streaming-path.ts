import { Duration } from 'aws-cdk-lib';
import {
  type AuthorizationType,
  type IResource,
  LambdaIntegration,
  ResponseTransferMode,
} from 'aws-cdk-lib/aws-apigateway';
import { FunctionUrlAuthType, type IFunctionUrl, InvokeMode } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { DownloadFunction, type FunctionDefaults } from './functions.ts';

/** The longest a streamed response may run (Lambda and API Gateway STREAM mode both cap at 15 minutes). */
export const STREAM_TIMEOUT = Duration.minutes(15);

/**
 * A REST integration that streams the function's response (`InvokeWithResponseStream`), with the
 * integration timeout raised from the 29 s default to the 15 min the STREAM mode allows.
 */
export function streamingIntegration(fn: DownloadFunction): LambdaIntegration {
  return new LambdaIntegration(fn, {
    responseTransferMode: ResponseTransferMode.STREAM,
    timeout: STREAM_TIMEOUT,
  });
}

/** Adds `GET` and `HEAD` on `resource`, both streaming from `fn`. */
export function addStreamingMethods(
  resource: IResource,
  fn: DownloadFunction,
  authorizationType: AuthorizationType,
): void {
  const integration = streamingIntegration(fn);
  for (const httpMethod of ['GET', 'HEAD']) {
    resource.addMethod(httpMethod, integration, { authorizationType });
  }
}

export interface StreamingPathProps {
  /** The REST API's root resource; this construct adds `/stream/{key+}` under it. */
  readonly apiRoot: IResource;
  /** Authorization of the REST methods. */
  readonly authorizationType: AuthorizationType;
  /** Upstream and `STREAM_MAX_BYTES` variables, shared with the router. */
  readonly streamEnvironment: Readonly<Record<string, string>>;
  readonly defaults: FunctionDefaults;
}

/**
 * The streaming path: the `stream` function behind `GET|HEAD /stream/{key+}` (REST, STREAM
 * mode) and behind its own Function URL (`RESPONSE_STREAM`, IAM auth). It reaches upstream only
 * and holds no AWS permissions beyond logging and tracing.
 */
export class StreamingPath extends Construct {
  readonly function: DownloadFunction;
  readonly functionUrl: IFunctionUrl;

  constructor(scope: Construct, id: string, props: StreamingPathProps) {
    super(scope, id);

    this.function = new DownloadFunction(this, 'StreamFunction', {
      folder: 'stream',
      description: 'Streams an upstream file to the client (REST STREAM mode and Function URL).',
      environment: props.streamEnvironment,
      timeout: STREAM_TIMEOUT,
      memorySize: 512,
      defaults: props.defaults,
    });

    this.functionUrl = this.function.addFunctionUrl({
      authType: FunctionUrlAuthType.AWS_IAM,
      invokeMode: InvokeMode.RESPONSE_STREAM,
    });

    addStreamingMethods(
      props.apiRoot.addResource('stream').addResource('{key+}'),
      this.function,
      props.authorizationType,
    );
  }
}
