import { fileURLToPath } from 'node:url';
import { type CfnResource, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { FUNCTION_FOLDER_METADATA } from './function-metadata.ts';

/** The folders under `functions/`; each holds a `handler.ts` that exports `handler`. */
export const FUNCTION_FOLDERS = [
  'stream',
  'router',
  'download-status',
  'websocket',
  'fetch-to-s3',
  'presign',
  'mark-ready',
  'notify',
  'mark-failed',
  'workflow-ended',
  'plan-copy',
  'copy-range',
  'complete-copy',
  'page',
] as const;

/** Name of a folder under `functions/`. */
export type FunctionFolder = (typeof FUNCTION_FOLDERS)[number];

/** Repository root: the bundler's project root and where `package-lock.json` lives. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Absolute path of a function's entry file, `functions/<folder>/handler.ts`. */
export function handlerEntry(folder: FunctionFolder): string {
  return fileURLToPath(new URL(`../functions/${folder}/handler.ts`, import.meta.url));
}

/**
 * Every bundle is ESM; a few dependencies still call `require()` (Node built-ins from CJS code),
 * which ESM output lacks, so define it from `createRequire`. The alias avoids clashing with an
 * import of the same name in the bundle.
 */
const ESM_REQUIRE_SHIM =
  "import { createRequire as __createRequireForEsm } from 'node:module'; const require = __createRequireForEsm(import.meta.url);";

/** The `bundling` settings this app gives CDK; `local/bundle.ts` turns the same values into esbuild options. */
export type FunctionBundling = Readonly<
  Required<
    Pick<
      BundlingOptions,
      'minify' | 'sourceMap' | 'format' | 'target' | 'mainFields' | 'banner' | 'bundleAwsSDK'
    >
  >
>;

/**
 * How every function is bundled, deployed (CDK's `NodejsFunction`) and local (`local/bundle.ts`)
 * alike: one ESM file with a source map, for Node.js 24.
 */
export const FUNCTION_BUNDLING: FunctionBundling = {
  minify: true,
  sourceMap: true,
  format: OutputFormat.ESM,
  target: 'node24',
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_SHIM,
  // Bundle the SDK instead of using the runtime's copy: the pinned versions are the tested ones
  // (`@aws-sdk/lib-storage` has broken stream uploads in one release).
  bundleAwsSDK: true,
};

/** Settings shared by every function of the app. */
export interface FunctionDefaults {
  /** `POWERTOOLS_LOG_LEVEL` of every function. */
  readonly logLevel: string;
}

/** What differs between the functions. */
export interface DownloadFunctionProps {
  /** The folder under `functions/` whose `handler.ts` this function runs. */
  readonly folder: FunctionFolder;
  readonly description: string;
  /** The function's own variables; keys are names from `ENV` in `shared/env-names.ts`. */
  readonly environment: Readonly<Record<string, string>>;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /** @default 256 MB */
  readonly memorySize?: number;
  /**
   * Concurrency reserved for this function; 0 or absent reserves none. Any reservation fails the
   * deploy in accounts whose total concurrency is 10 (new accounts), so it is opt-in.
   * @default none
   */
  readonly reservedConcurrency?: number;
  /**
   * Who invokes the function, synchronously (`'API Gateway'`, `'the state machine'`): the caller
   * gets the error back, so no dead-letter queue is needed (one only ever receives failed
   * asynchronous invocations). Leave it out for a function that is invoked asynchronously, and
   * give that one a failure destination instead.
   */
  readonly invokedSynchronouslyBy?: string;
  readonly defaults: FunctionDefaults;
}

/**
 * A `NodejsFunction` with the app's defaults: Node.js 24 on arm64, ESM bundle with source maps
 * (bundled locally by esbuild, no Docker), X-Ray tracing, its own log group kept for a month.
 * Its role has no managed policy (the CDK default, `AWSLambdaBasicExecutionRole`, may write to
 * every log group): only writing to its own log group, X-Ray, and what its code is granted.
 * It remembers its `functions/` folder, and records it in the template (`FUNCTION_FOLDER_METADATA`),
 * which is how the local stack knows which handler each function of the template runs.
 */
export class DownloadFunction extends NodejsFunction {
  /** The folder under `functions/` this function was built from. */
  readonly folder: FunctionFolder;

  constructor(scope: Construct, id: string, props: DownloadFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(scope, `${id}ServiceRole`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${props.folder} function`,
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      entry: handlerEntry(props.folder),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: fileURLToPath(new URL('../package-lock.json', import.meta.url)),
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      timeout: props.timeout ?? Duration.seconds(30),
      memorySize: props.memorySize ?? 256,
      tracing: Tracing.ACTIVE,
      role,
      logGroup,
      reservedConcurrentExecutions: props.reservedConcurrency ? props.reservedConcurrency : undefined,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.folder,
        POWERTOOLS_LOG_LEVEL: props.defaults.logLevel,
        // Powertools Metrics (EMF): every function's metrics in one namespace, dimension `service`.
        POWERTOOLS_METRICS_NAMESPACE: 'LargeDownloads',
        ...props.environment,
      },
      bundling: FUNCTION_BUNDLING,
    });
    this.folder = props.folder;
    (this.node.defaultChild as CfnResource).addMetadata(FUNCTION_FOLDER_METADATA, props.folder);
    // Tracing.ACTIVE adds xray:PutTraceSegments and xray:PutTelemetryRecords to the role.
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray trace writes (PutTraceSegments, PutTelemetryRecords) support no resource-level permissions',
    });
    if (props.invokedSynchronouslyBy) {
      Validations.of(this).acknowledge({
        id: 'Serverless-LambdaDLQ',
        reason: `Only ${props.invokedSynchronouslyBy} invokes it, synchronously, and gets its errors back; a DLQ receives only failed asynchronous invocations`,
      });
    }
  }
}
