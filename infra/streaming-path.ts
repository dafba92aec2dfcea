import { Duration } from 'aws-cdk-lib';
import {
  type AuthorizationType,
  type IRequestValidator,
  type IResource,
  LambdaIntegration,
  type MethodOptions,
  ResponseTransferMode,
} from 'aws-cdk-lib/aws-apigateway';
import { FunctionUrlAuthType, type IFunctionUrl, InvokeMode } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { type Settings, settingsEnvironment } from '../shared/settings.ts';
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

/** How every REST method of the app is guarded. */
export interface RestMethodGuard {
  /** `AWS_IAM` (SigV4) unless `apiAuth` is `none`. */
  readonly authorizationType: AuthorizationType;
  /** The API's validator: it refuses a request that lacks a required parameter before any function runs. */
  readonly requestValidator: IRequestValidator;
}

/** Options of a method on a resource whose last path part is `{pathParameter}` (declared required). */
export function restMethodOptions(guard: RestMethodGuard, pathParameter: string): MethodOptions {
  return {
    authorizationType: guard.authorizationType,
    requestValidator: guard.requestValidator,
    requestParameters: { [`method.request.path.${pathParameter}`]: true },
  };
}

/** Adds `GET` and `HEAD` on `resource` (`…/{key+}`), both streaming from `fn`. */
export function addStreamingMethods(resource: IResource, fn: DownloadFunction, guard: RestMethodGuard): void {
  const integration = streamingIntegration(fn);
  for (const httpMethod of ['GET', 'HEAD']) {
    resource.addMethod(httpMethod, integration, restMethodOptions(guard, 'key'));
  }
}

export interface StreamingPathProps {
  /** The REST API's root resource; this construct adds `/stream/{key+}` under it. */
  readonly apiRoot: IResource;
  readonly guard: RestMethodGuard;
  /** The app's settings; the function gets the variables of those it reads (`settingsEnvironment`). */
  readonly settings: Readonly<Settings>;
  /** Concurrency reserved for the stream function; 0 reserves none. */
  readonly reservedConcurrency: number;
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
      environment: settingsEnvironment(props.settings, 'stream'),
      timeout: STREAM_TIMEOUT,
      memorySize: 512,
      reservedConcurrency: props.reservedConcurrency,
      invokedSynchronouslyBy: 'API Gateway (REST STREAM mode) or its Function URL',
      defaults: props.defaults,
    });

    this.functionUrl = this.function.addFunctionUrl({
      authType: FunctionUrlAuthType.AWS_IAM,
      invokeMode: InvokeMode.RESPONSE_STREAM,
    });

    addStreamingMethods(
      props.apiRoot.addResource('stream').addResource('{key+}'),
      this.function,
      props.guard,
    );
  }
}
