import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

/** The folders under `functions/`; each holds a `handler.ts` that exports `handler`. */
export const FUNCTION_FOLDERS = [
  'stream',
  'download',
  'download-status',
  'websocket',
  'fetch-to-s3',
  'presign',
  'mark-ready',
  'notify',
  'mark-failed',
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
  readonly defaults: FunctionDefaults;
}

/**
 * A `NodejsFunction` with the app's defaults: Node.js 24 on arm64, ESM bundle with source maps
 * (bundled locally by esbuild, no Docker), X-Ray tracing, its own log group kept for a month.
 * It remembers its `functions/` folder, which is how the local stack maps state machine tasks
 * back to handlers.
 */
export class DownloadFunction extends NodejsFunction {
  /** The folder under `functions/` this function was built from. */
  readonly folder: FunctionFolder;

  constructor(scope: Construct, id: string, props: DownloadFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
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
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.folder,
        POWERTOOLS_LOG_LEVEL: props.defaults.logLevel,
        ...props.environment,
      },
      bundling: FUNCTION_BUNDLING,
    });
    this.folder = props.folder;
  }
}
