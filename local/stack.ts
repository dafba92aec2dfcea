import './polyfills.ts';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionFolder } from '../infra/functions.ts';
import { ENV } from '../shared/env-names.ts';
import { startDynamoDb } from './dynamodb.ts';
import { createEventBus, fromCdkEventPattern, type LocalEventBus } from './event-bus.ts';
import { type AnyHandler, type RestRoute, startHttpGateway } from './http-gateway.ts';
import { LOCAL_ACCOUNT_ID, type LocalHandler, localRegion, startLambdaService } from './lambda-service.ts';
import { type RicFunction, startRicFunction } from './ric-runtime.ts';
import { LOCAL_CREDENTIALS, startS3 } from './s3.ts';
import { startSampleUpstreamProcess } from './sample-upstream-process.ts';
import { createSigV4Authorizer, type LocalAuthMode } from './sigv4-auth.ts';
import { startStepFunctions } from './step-functions.ts';
import { installAwsLambdaGlobal } from './streaming-runtime.ts';
import { loadSynthesizedWorkflow } from './synthesized-workflow.ts';
import { startWebSocketGateway } from './websocket-gateway.ts';

/** Options of the local stack; every port may be 0 (pick a free one). */
export interface LocalStackOptions {
  host?: string;
  /** REST API port (default 3000). */
  port?: number;
  /** WebSocket API port (default 3001). */
  webSocketPort?: number;
  /** Sample upstream port (default 3002); unused when `upstreamBaseUrl` is set. */
  upstreamPort?: number;
  /** Function URL port (default 3003). */
  functionUrlPort?: number;
  /** Local S3 port (default: a free one). Clients download presigned URLs from it. */
  s3Port?: number;
  /** A real upstream instead of the built-in sample server. */
  upstreamBaseUrl?: string;
  /** Extra environment for the functions (e.g. STREAM_MAX_BYTES). */
  functionEnvironment?: Record<string, string>;
  /** Where S3 objects live (default `.local/` in the repository); removed on close unless `keepData`. */
  dataDirectory?: string;
  keepData?: boolean;
  /**
   * Local simulation knob: scales the state machine's retry intervals (default 0.05, so 2 s, 4 s
   * become 100, 200 ms). The definition itself is the synthesized one, unchanged.
   */
  retryIntervalScale?: number;
  /**
   * Local test knob: the workflow's execution timeout in seconds, in place of the synthesized
   * definition's `TimeoutSeconds` (2 hours), so a test sees an execution time out in seconds.
   */
  workflowTimeoutSeconds?: number;
  /**
   * Where the streaming functions (stream, router) run: `in-process` (default) in this process's
   * emulated runtime, or `ric` bundled as CDK bundles them, under the real Lambda runtime client
   * (`aws-lambda-ric` on Node 24; `npm run setup:lambda-runtime` installs it).
   */
  runtime?: LocalRuntime;
  /**
   * `iam`: the REST API and the Function URL accept only requests signed with SigV4 (services
   * `execute-api` and `lambda`, the local region) by LOCAL_CREDENTIALS, as the deployed stack's
   * AWS_IAM auth does. Default `none`: open.
   */
  auth?: LocalAuthMode;
  log?: (message: string) => void;
}

/** Where the streaming functions run locally. */
export type LocalRuntime = 'in-process' | 'ric';

/** The functions behind the REST streaming routes and the Function URL. */
const STREAMING_FOLDERS = ['stream', 'router'] as const satisfies readonly FunctionFolder[];

/** Variables of this process that reach the functions: theirs (`ENV`), the log level, Node's options. */
function functionEnvironmentOf(env: NodeJS.ProcessEnv): Record<string, string> {
  const names: string[] = [
    ...Object.values(ENV),
    'POWERTOOLS_LOG_LEVEL',
    'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
  ];
  const result: Record<string, string> = { NODE_OPTIONS: '--enable-source-maps' };
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) result[name] = value;
  }
  return result;
}

export interface LocalEndpoints {
  restApi: string;
  functionUrl: string;
  webSocket: string;
  upstream: string;
  s3: string;
  dynamoDb: string;
  stepFunctions: string;
  lambda: string;
  bucket: string;
  table: string;
  stateMachineArn: string;
  dataDirectory: string;
  /** Set when the built-in sample upstream runs. */
  sampleUpstream?: string;
}

export interface LocalStack {
  endpoints: LocalEndpoints;
  close(): Promise<void>;
}

const FIFTEEN_MINUTES = 15 * 60 * 1000;
const BUCKET = 'large-downloads-local';
const TABLE = 'large-downloads-local';
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const FUNCTION_TIMEOUTS_MS: Record<FunctionFolder, number> = {
  stream: FIFTEEN_MINUTES,
  router: FIFTEEN_MINUTES,
  'download-status': 29_000,
  websocket: 29_000,
  'fetch-to-s3': FIFTEEN_MINUTES,
  presign: 30_000,
  'mark-ready': 30_000,
  notify: 60_000,
  'mark-failed': 60_000,
  'workflow-ended': 60_000,
};

/** An `Event` (asynchronous) invocation through the local Lambda service, which retries failures. */
async function invokeAsynchronously(endpoint: string, functionName: string, event: unknown): Promise<void> {
  const response = await fetch(`${endpoint}/2015-03-31/functions/${functionName}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
    body: JSON.stringify(event),
  });
  await response.arrayBuffer();
  if (response.status !== 202) throw new Error(`invoking ${functionName} answered ${response.status}`);
}

async function loadHandler(functionName: FunctionFolder): Promise<AnyHandler> {
  const module = (await import(`../functions/${functionName}/handler.ts`)) as { handler: AnyHandler };
  return module.handler;
}

/**
 * Starts everything on this machine around the unchanged handlers: sample upstream, S3
 * (@20minutes/s3rver), DynamoDB (dynalite), Step Functions running the synthesized definition,
 * Lambda async invoke, the WebSocket API, the REST API and the Function URL. The functions'
 * environment is set once, before any handler module loads, with the standard
 * `AWS_ENDPOINT_URL_<SERVICE>` variables pointing at the local servers.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const closers: Array<() => Promise<void>> = [];
  const baseDirectory = options.dataDirectory ?? join(REPO_ROOT, '.local');
  mkdirSync(baseDirectory, { recursive: true });
  const dataDirectory = mkdtempSync(join(baseDirectory, 'stack-'));
  if (!options.keepData) closers.push(async () => rmSync(dataDirectory, { recursive: true, force: true }));
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer().catch(() => {});
  };

  try {
    let upstreamBaseUrl = options.upstreamBaseUrl;
    let sampleUpstream: string | undefined;
    if (!upstreamBaseUrl) {
      const upstream = await startSampleUpstreamProcess({
        port: options.upstreamPort ?? 3002,
        host,
        log: (line) => log(`upstream: ${line}`),
      });
      closers.push(upstream.close);
      upstreamBaseUrl = upstream.url;
      sampleUpstream = upstream.url;
    }

    const s3 = await startS3({
      port: options.s3Port ?? 0,
      host,
      directory: join(dataDirectory, 's3'),
      buckets: [BUCKET],
    });
    closers.push(s3.close);
    const dynamoDb = await startDynamoDb({
      port: 0,
      host,
      tables: [{ name: TABLE, partitionKey: 'downloadId' }],
    });
    closers.push(dynamoDb.close);

    // Handlers load after the environment is set; the emulators call them through this table.
    const handlers = new Map<FunctionFolder, AnyHandler>();
    const lazy =
      (name: FunctionFolder): LocalHandler =>
      (event, context) => {
        const handler = handlers.get(name);
        if (!handler) return Promise.reject(new Error(`${name} is not loaded yet`));
        return handler(event, context);
      };

    // The very definition `cdk synth` produces, with placeholder ARNs naming the function folders.
    const stateMachineArn = `arn:aws:states:${localRegion()}:${LOCAL_ACCOUNT_ID}:stateMachine:DownloadWorkflow`;
    const workflow = await loadSynthesizedWorkflow({
      region: localRegion(),
      accountId: LOCAL_ACCOUNT_ID,
      stateMachineArn,
    });
    const synthesized = workflow.stateMachine;
    const taskHandlers = Object.fromEntries(
      Object.entries(synthesized.taskStates).map(([state, folder]) => [state, lazy(folder)]),
    );
    const taskTimeoutsMs = Object.fromEntries(
      Object.entries(synthesized.taskStates).map(([state, folder]) => [state, FUNCTION_TIMEOUTS_MS[folder]]),
    );
    // The local EventBridge default bus, up once the Lambda service its rule invokes is.
    let eventBus: LocalEventBus | undefined;
    const stepFunctions = await startStepFunctions({
      port: 0,
      host,
      stateMachines: [
        {
          arn: stateMachineArn,
          definition: synthesized.definition,
          taskHandlers,
          taskTimeoutsMs,
          retryIntervalScale: options.retryIntervalScale ?? 0.05,
          ...(options.workflowTimeoutSeconds === undefined
            ? {}
            : { executionTimeoutSeconds: options.workflowTimeoutSeconds }),
        },
      ],
      onStatusChange: (event) => eventBus?.put(event),
      log,
    });
    closers.push(stepFunctions.close);

    const lambda = await startLambdaService({
      port: 0,
      host,
      functions: {
        notify: { handler: lazy('notify'), timeoutMs: FUNCTION_TIMEOUTS_MS.notify },
        'workflow-ended': {
          handler: lazy('workflow-ended'),
          timeoutMs: FUNCTION_TIMEOUTS_MS['workflow-ended'],
        },
      },
      log,
    });
    closers.push(lambda.close);

    // The deployed stack's rule: the workflow's executions that ended TIMED_OUT, ABORTED or FAILED
    // go to the watcher, invoked asynchronously as EventBridge invokes Lambda targets.
    eventBus = createEventBus({
      rules: [
        {
          name: 'WorkflowEnded',
          pattern: fromCdkEventPattern(workflow.endedEventPattern),
          target: (event) => invokeAsynchronously(lambda.endpoint, 'workflow-ended', event),
        },
      ],
      log,
    });

    const webSocket = await startWebSocketGateway({
      port: options.webSocketPort ?? 3001,
      host,
      handler: lazy('websocket'),
      routes: ['status'],
      log,
    });
    closers.push(webSocket.close);

    const stackEnvironment: Record<string, string> = {
      AWS_REGION: localRegion(),
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamoDb.endpoint,
      AWS_ENDPOINT_URL_SFN: stepFunctions.endpoint,
      AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
      // Local S3 servers speak path-style and do not implement the newer default checksums.
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      // No X-Ray daemon listens here. Powertools' Tracer is off without AWS_EXECUTION_ENV anyway,
      // but the real runtime client (`--runtime ric`) sets it, and tracing would then log
      // "missing context" errors for every SDK call.
      POWERTOOLS_TRACE_ENABLED: 'false',
      // EMF lines are plain stdout JSON, not log records, so no log level hides them; off unless
      // the caller asks for them (POWERTOOLS_METRICS_DISABLED=false npm start).
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      [ENV.s3ForcePathStyle]: 'true',
      [ENV.upstreamBaseUrl]: upstreamBaseUrl,
      [ENV.downloadBucket]: BUCKET,
      [ENV.downloadTable]: TABLE,
      [ENV.stateMachineArn]: stateMachineArn,
      [ENV.webSocketUrl]: webSocket.url,
      [ENV.webSocketManagementUrl]: webSocket.managementUrl,
      [ENV.notifierFunctionName]: 'notify',
      ...options.functionEnvironment,
    };
    Object.assign(process.env, stackEnvironment);
    for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_DEFAULT_PROFILE']) delete process.env[name];
    installAwsLambdaGlobal();
    for (const name of Object.keys(FUNCTION_TIMEOUTS_MS) as FunctionFolder[])
      handlers.set(name, await loadHandler(name));

    const handler = (name: FunctionFolder) => handlers.get(name) as AnyHandler;
    // The streaming functions under the real Lambda runtime client, one process per warm
    // environment, with the same environment the in-process handlers see.
    const realRuntime: Partial<Record<FunctionFolder, RicFunction>> = {};
    if (options.runtime === 'ric') {
      const environment = { ...functionEnvironmentOf(process.env), ...stackEnvironment };
      for (const folder of STREAMING_FOLDERS) {
        const fn = await startRicFunction({
          name: folder,
          folder,
          environment: { ...environment, POWERTOOLS_SERVICE_NAME: folder },
          timeoutMs: FUNCTION_TIMEOUTS_MS[folder],
          log: (line) => log(line),
        });
        closers.push(fn.close);
        realRuntime[folder] = fn;
      }
    }
    const invokeStreaming = (name: FunctionFolder) => realRuntime[name]?.invoke;
    const routes: RestRoute[] = [
      {
        methods: ['GET', 'HEAD'],
        resource: '/stream/{key+}',
        functionName: 'stream',
        handler: handler('stream'),
        timeoutMs: FIFTEEN_MINUTES,
        invokeStreaming: invokeStreaming('stream'),
      },
      {
        methods: ['GET', 'HEAD'],
        resource: '/download/{key+}',
        functionName: 'router',
        handler: handler('router'),
        timeoutMs: FIFTEEN_MINUTES,
        invokeStreaming: invokeStreaming('router'),
      },
      {
        methods: ['GET'],
        resource: '/downloads/{downloadId}',
        functionName: 'download-status',
        handler: handler('download-status'),
        timeoutMs: 29_000,
      },
    ];
    const authorizer = (service: 'execute-api' | 'lambda') =>
      options.auth === 'iam'
        ? createSigV4Authorizer({ service, region: localRegion(), credentials: LOCAL_CREDENTIALS })
        : undefined;
    const restApi = await startHttpGateway({
      mode: { kind: 'rest', routes },
      port: options.port ?? 3000,
      host,
      log,
      authorize: authorizer('execute-api'),
    });
    closers.push(restApi.close);
    const functionUrl = await startHttpGateway({
      mode: {
        kind: 'function-url',
        functionName: 'stream',
        handler: handler('stream'),
        timeoutMs: FIFTEEN_MINUTES,
        invokeStreaming: invokeStreaming('stream'),
      },
      port: options.functionUrlPort ?? 3003,
      host,
      log,
      authorize: authorizer('lambda'),
    });
    closers.push(functionUrl.close);

    return {
      endpoints: {
        restApi: restApi.url,
        functionUrl: functionUrl.url,
        webSocket: webSocket.url,
        upstream: upstreamBaseUrl,
        s3: s3.endpoint,
        dynamoDb: dynamoDb.endpoint,
        stepFunctions: stepFunctions.endpoint,
        lambda: lambda.endpoint,
        bucket: BUCKET,
        table: TABLE,
        stateMachineArn,
        dataDirectory,
        ...(sampleUpstream ? { sampleUpstream } : {}),
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
