import './polyfills.ts';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { FunctionFolder } from '../infra/functions.ts';
import { ENV } from '../shared/env-names.ts';
import { startDynamoDb } from './dynamodb.ts';
import { createEventBus, type LocalEventBus, type LocalEventPattern } from './event-bus.ts';
import {
  type AnyHandler,
  matchRoute,
  type RestRoute,
  startHttpGateway,
  toRawTarget,
} from './http-gateway.ts';
import {
  configureLocalFunctionMemory,
  LOCAL_ACCOUNT_ID,
  type LocalHandler,
  localRegion,
  startLambdaService,
} from './lambda-service.ts';
import { ensurePageBuilt } from './page.ts';
import { invokeForResult, type RicFunction, startRicFunction } from './ric-runtime.ts';
import { LOCAL_CREDENTIALS, startS3 } from './s3.ts';
import { startSampleUpstreamProcess } from './sample-upstream-process.ts';
import { createSigV4Authorizer, type LocalAuthMode, type RequestAuthorizer } from './sigv4-auth.ts';
import {
  createTemplateResolver,
  type LocalReferences,
  readStackTemplate,
  type StackModel,
  type TemplateFunction,
  taskStatesOf,
} from './stack-template.ts';
import { startStepFunctions } from './step-functions.ts';
import { AWS_STREAM_CAPS, type LocalStreamCaps } from './stream-caps.ts';
import { installAwsLambdaGlobal } from './streaming-runtime.ts';
import { loadSynthesizedTemplate } from './synthesized-stack.ts';
import { startWebSocketGateway, type WebSocketRouteTarget } from './websocket-gateway.ts';

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
   * Where the streaming functions (those behind STREAM-mode REST methods and RESPONSE_STREAM
   * Function URLs: stream, router) run: `in-process` (default) in this process's emulated runtime,
   * or `ric` bundled as CDK bundles them, under the real Lambda runtime client (`aws-lambda-ric` on
   * Node 24; `npm run setup:lambda-runtime` installs it).
   */
  runtime?: LocalRuntime;
  /**
   * `iam`: the REST API and the Function URL check SigV4 (services `execute-api` and `lambda`, the
   * local region, LOCAL_CREDENTIALS) wherever the template says `AWS_IAM`, method by method, as
   * the deployed stack does. Default `none`: open.
   */
  auth?: LocalAuthMode;
  /**
   * `aws`: the REST API and the Function URL cap streamed responses as AWS does (`AWS_STREAM_CAPS`:
   * the first 10 MB and 6 MB at full speed, then 2 MB/s). Default `off`: as fast as the machine.
   */
  streamCaps?: LocalStreamCaps;
  log?: (message: string) => void;
}

/** Where the streaming functions run locally. */
export type LocalRuntime = 'in-process' | 'ric';

export interface LocalEndpoints {
  restApi: string;
  functionUrl: string;
  /** The WebSocket API with its stage (`ws://127.0.0.1:3001/live`), as `wss://…/live` is deployed. */
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

/** One function as the local stack runs it: what the template declares, resolved locally. */
export interface LocalFunctionLayout {
  timeoutMs: number;
  memoryMb: number;
  /** Its environment, as its own process would get it (`ric`); in-process functions share theirs. */
  environment: Record<string, string>;
}

/** What the local stack built from the template, for tests that compare the two. */
export interface LocalStackLayout {
  /** By function name (its folder under `functions/`). */
  functions: Record<string, LocalFunctionLayout>;
  restRoutes: Array<{
    methods: readonly string[];
    resource: string;
    functionName: string;
    timeoutMs: number;
    authorizationType: string;
  }>;
  functionUrl?: { functionName: string; authType: string };
  webSocketRoutes: Array<{ routeKey: string; functionName: string; returnResponse: boolean }>;
  /** Task state → function, of each state machine by ARN. */
  taskStates: Record<string, Record<string, string>>;
  /** EventBridge rule → the functions it invokes. */
  eventRules: Record<string, readonly string[]>;
}

export interface LocalStack {
  endpoints: LocalEndpoints;
  layout: LocalStackLayout;
  close(): Promise<void>;
}

const NAME = 'large-downloads-local';
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The id the local WebSocket API reports (`requestContext.apiId`) and its AWS host name carries. */
const WEBSOCKET_API_ID = 'localwsapi';
const REST_API_ID = 'localrestapi';

/**
 * Variables a function's own process gets but the in-process runtime cannot give each function:
 * they differ per function (`POWERTOOLS_SERVICE_NAME`) or act only when a process starts.
 */
const PER_PROCESS_VARIABLES = new Set(['POWERTOOLS_SERVICE_NAME', 'NODE_OPTIONS']);

/**
 * Variables of this process that reach the functions over what the template sets: the
 * functions' own (`ENV`, e.g. `STREAM_MAX_BYTES=1000 npm start`), the log level, the SDK notice.
 */
function operatorEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const names: string[] = [
    ...Object.values(ENV),
    'POWERTOOLS_LOG_LEVEL',
    'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
  ];
  const result: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) result[name] = value;
  }
  return result;
}

/**
 * What only the local stack sets, over the template's values: where the local servers are (the
 * standard `AWS_ENDPOINT_URL_<SERVICE>` variables), the local credentials and region, path-style
 * S3, the checksums the local S3 lacks, tracing and metrics off, and the local upstream.
 */
function localOnlyEnvironment(local: {
  s3: string;
  dynamoDb: string;
  stepFunctions: string;
  lambda: string;
  upstreamBaseUrl: string;
}): Record<string, string> {
  return {
    AWS_REGION: localRegion(),
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_S3: local.s3,
    AWS_ENDPOINT_URL_DYNAMODB: local.dynamoDb,
    AWS_ENDPOINT_URL_SFN: local.stepFunctions,
    AWS_ENDPOINT_URL_LAMBDA: local.lambda,
    // Local S3 servers speak path-style and do not implement the newer default checksums.
    [ENV.s3ForcePathStyle]: 'true',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    // No X-Ray daemon listens here. Powertools' Tracer is off without AWS_EXECUTION_ENV anyway,
    // but the real runtime client (`--runtime ric`) sets it, and tracing would then log
    // "missing context" errors for every SDK call.
    POWERTOOLS_TRACE_ENABLED: 'false',
    // EMF lines are plain stdout JSON, not log records, so no log level hides them; off unless
    // the caller asks for them (POWERTOOLS_METRICS_DISABLED=false npm start).
    POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
    [ENV.upstreamBaseUrl]: local.upstreamBaseUrl,
  };
}

/**
 * The one environment of the functions that run in this process: every variable the template
 * gives any of them, which must agree across them, without the per-process ones.
 */
function sharedInProcessEnvironment(
  environments: Record<string, Record<string, string>>,
): Record<string, string> {
  const shared: Record<string, string> = {};
  const setBy: Record<string, string> = {};
  for (const [functionName, environment] of Object.entries(environments)) {
    for (const [name, value] of Object.entries(environment)) {
      if (PER_PROCESS_VARIABLES.has(name)) continue;
      if (name in shared && shared[name] !== value) {
        throw new Error(
          `functions ${setBy[name]} and ${functionName} set ${name} differently ("${shared[name]}", "${value}"); the functions that run in-process share one environment`,
        );
      }
      shared[name] = value;
      setBy[name] = functionName;
    }
  }
  return shared;
}

/** One of a kind, or none: the local stack serves one of each on its fixed ports. */
function atMostOne<T>(items: readonly T[], what: string): T | undefined {
  if (items.length > 1)
    throw new Error(`the template has ${items.length} ${what}; the local stack serves one`);
  return items[0];
}

/** Local names of the template's resources of one type: the stack's name, or one per logical id. */
function localNames(logicalIds: readonly string[], name: string): Map<string, string> {
  return new Map(
    logicalIds.map((id) => [id, logicalIds.length === 1 ? name : `${name}-${id.toLowerCase()}`.slice(0, 63)]),
  );
}

/**
 * Checks a REST request as its method's `AuthorizationType` says: `AWS_IAM` with `check` (SigV4),
 * `NONE` not at all. A path no method serves passes: the gateway answers it 403 either way.
 */
export function methodAuthorizer(
  routes: readonly RestRoute[],
  authorizationOf: ReadonlyMap<RestRoute, string>,
  check: RequestAuthorizer,
): RequestAuthorizer {
  return async (req, body) => {
    const matched = matchRoute(routes, req.method ?? 'GET', toRawTarget(req.url).pathname);
    const type = matched ? (authorizationOf.get(matched.route) ?? 'NONE') : 'NONE';
    return type === 'AWS_IAM' ? check(req, body) : undefined;
  };
}

async function loadHandler(folder: string): Promise<AnyHandler> {
  const module = (await import(`../functions/${folder}/handler.ts`)) as { handler: AnyHandler };
  return module.handler;
}

/**
 * Starts everything on this machine around the unchanged handlers, built from the template `cdk
 * synth` produces (`loadSynthesizedTemplate`): the functions with their timeouts, memory and
 * environments; the REST API's methods with their authorization; the Function URL; the WebSocket
 * API's routes; the state machines (their very definitions), the EventBridge rules, the tables
 * and the buckets; so what CDK adds appears here with no edit. Around them: the sample upstream,
 * S3 (@20minutes/s3rver), DynamoDB (dynalite), Step Functions, Lambda async invoke and the
 * gateways. The functions' environment is set once, before any handler module loads; the local
 * addresses and credentials come from `localOnlyEnvironment`.
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
    const region = localRegion();
    const operator = operatorEnvironment(process.env);
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

    const template = await loadSynthesizedTemplate();
    const model: StackModel = readStackTemplate(template);
    const functions = new Map(model.functions.map((fn) => [fn.folder, fn]));
    const functionOf = (name: string): TemplateFunction => {
      const fn = functions.get(name);
      if (!fn) throw new Error(`function ${name} is not in the template`);
      return fn;
    };
    const tableNames = localNames(
      model.tables.map((table) => table.logicalId),
      NAME,
    );
    const bucketNames = localNames(model.buckets, NAME);
    const stateMachineArns = new Map(
      [
        ...localNames(
          model.stateMachines.map((machine) => machine.logicalId),
          'DownloadWorkflow',
        ),
      ].map(([id, name]) => [id, `arn:aws:states:${region}:${LOCAL_ACCOUNT_ID}:stateMachine:${name}`]),
    );
    const functionArn = (name: string) => `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${name}`;

    const s3 = await startS3({
      port: options.s3Port ?? 0,
      host,
      directory: join(dataDirectory, 's3'),
      buckets: [...bucketNames.values()],
    });
    closers.push(s3.close);
    const dynamoDb = await startDynamoDb({
      port: 0,
      host,
      tables: model.tables.map((table) => ({
        name: tableNames.get(table.logicalId) as string,
        partitionKey: table.partitionKey,
      })),
    });
    closers.push(dynamoDb.close);

    // Handlers load after the environment is set; the emulators call them through this table.
    const handlers = new Map<string, AnyHandler>();
    const lazy =
      (name: string): LocalHandler =>
      (event, context) => {
        const handler = handlers.get(name);
        if (!handler) return Promise.reject(new Error(`${name} is not loaded yet`));
        return handler(event, context);
      };

    const webSocketApi = atMostOne(model.webSocketApis, 'WebSocket APIs');
    const webSocket = await startWebSocketGateway({
      port: options.webSocketPort ?? 3001,
      host,
      apiId: WEBSOCKET_API_ID,
      ...(webSocketApi ? { stage: webSocketApi.stage } : {}),
      routes: Object.fromEntries(
        (webSocketApi?.routes ?? []).map((route): [string, WebSocketRouteTarget] => [
          route.routeKey,
          {
            handler: lazy(route.function),
            functionName: route.function,
            timeoutMs: functionOf(route.function).timeoutMs,
            returnResponse: route.returnResponse,
          },
        ]),
      ),
      log,
    });
    closers.push(webSocket.close);

    // What the template's references stand for here.
    const refs = new Map<string, string>();
    const attributes = new Map<string, string>();
    for (const fn of model.functions) {
      refs.set(fn.logicalId, fn.folder);
      attributes.set(`${fn.logicalId}.Arn`, functionArn(fn.folder));
    }
    for (const [id, name] of tableNames) {
      refs.set(id, name);
      attributes.set(`${id}.Arn`, `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT_ID}:table/${name}`);
    }
    for (const [id, name] of bucketNames) {
      refs.set(id, name);
      attributes.set(`${id}.Arn`, `arn:aws:s3:::${name}`);
    }
    for (const [id, arn] of stateMachineArns) {
      refs.set(id, arn);
      attributes.set(`${id}.Name`, arn.split(':').at(-1) as string);
    }
    const webSocketHost = `${WEBSOCKET_API_ID}.execute-api.${region}.amazonaws.com`;
    if (webSocketApi) refs.set(webSocketApi.logicalId, WEBSOCKET_API_ID);
    for (const [id, resource] of Object.entries(template.Resources)) {
      if (resource.Type === 'AWS::ApiGateway::RestApi') refs.set(id, REST_API_ID);
    }
    const references: LocalReferences = {
      region,
      accountId: LOCAL_ACCOUNT_ID,
      refs,
      attributes,
      addresses: [
        [`wss://${webSocketHost}`, `ws://127.0.0.1:${webSocket.port}`],
        [`https://${webSocketHost}`, `http://127.0.0.1:${webSocket.port}`],
      ],
    };
    const resolve = createTemplateResolver(template, references);
    const functionsByArn = new Map(model.functions.map((fn) => [functionArn(fn.folder), fn.folder]));

    // The very definitions `cdk synth` produces, their functions resolved to the local ones.
    const taskStates: Record<string, Record<string, string>> = {};
    const stateMachines = model.stateMachines.map((machine) => {
      const arn = stateMachineArns.get(machine.logicalId) as string;
      const definition = JSON.parse(String(resolve(machine.definitionString))) as object;
      const tasks = taskStatesOf(definition, functionsByArn);
      taskStates[arn] = tasks;
      return {
        arn,
        definition,
        taskHandlers: Object.fromEntries(Object.entries(tasks).map(([state, name]) => [state, lazy(name)])),
        taskTimeoutsMs: Object.fromEntries(
          Object.entries(tasks).map(([state, name]) => [state, functionOf(name).timeoutMs]),
        ),
        retryIntervalScale: options.retryIntervalScale ?? 0.05,
        ...(options.workflowTimeoutSeconds === undefined
          ? {}
          : { executionTimeoutSeconds: options.workflowTimeoutSeconds }),
      };
    });
    // The local EventBridge default bus, up once the Lambda service its rules invoke is.
    let eventBus: LocalEventBus | undefined;
    const stepFunctions = await startStepFunctions({
      port: 0,
      host,
      stateMachines,
      onStatusChange: (event) => eventBus?.put(event),
      log,
    });
    closers.push(stepFunctions.close);

    const lambda = await startLambdaService({
      port: 0,
      host,
      functions: Object.fromEntries(
        model.functions.map((fn) => [fn.folder, { handler: lazy(fn.folder), timeoutMs: fn.timeoutMs }]),
      ),
      log,
    });
    closers.push(lambda.close);

    // The template's rules, with their own patterns; EventBridge invokes Lambda targets
    // asynchronously, so does this bus.
    const lambdaClient = new LambdaClient({
      endpoint: lambda.endpoint,
      region,
      credentials: LOCAL_CREDENTIALS,
    });
    closers.push(async () => lambdaClient.destroy());
    const eventRules = Object.fromEntries(model.eventRules.map((rule) => [rule.logicalId, rule.targets]));
    eventBus = createEventBus({
      rules: model.eventRules.flatMap((rule) =>
        rule.targets.map((target) => ({
          name: `${rule.logicalId} → ${target}`,
          pattern: resolve(rule.eventPattern) as LocalEventPattern,
          target: async (event: object) => {
            await lambdaClient.send(
              new InvokeCommand({
                FunctionName: target,
                InvocationType: 'Event',
                Payload: Buffer.from(JSON.stringify(event)),
              }),
            );
          },
        })),
      ),
      log,
    });

    // Each function's environment: the template's, then what the operator set for the functions,
    // then the caller's, then what only the local stack knows.
    const localOnly = localOnlyEnvironment({
      s3: s3.endpoint,
      dynamoDb: dynamoDb.endpoint,
      stepFunctions: stepFunctions.endpoint,
      lambda: lambda.endpoint,
      upstreamBaseUrl,
    });
    const overrides = { ...operator, ...options.functionEnvironment, ...localOnly };
    const templateEnvironments = Object.fromEntries(
      model.functions.map((fn) => [
        fn.folder,
        Object.fromEntries(
          Object.entries(fn.environment).map(([name, value]) => [name, String(resolve(value))]),
        ),
      ]),
    );
    const layoutFunctions: Record<string, LocalFunctionLayout> = Object.fromEntries(
      model.functions.map((fn) => [
        fn.folder,
        {
          timeoutMs: fn.timeoutMs,
          memoryMb: fn.memoryMb,
          environment: { ...templateEnvironments[fn.folder], ...overrides },
        },
      ]),
    );
    configureLocalFunctionMemory(Object.fromEntries(model.functions.map((fn) => [fn.folder, fn.memoryMb])));
    Object.assign(process.env, { ...sharedInProcessEnvironment(templateEnvironments), ...overrides });
    for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_DEFAULT_PROFILE']) delete process.env[name];
    installAwsLambdaGlobal();

    // The browser page's module imports its build: build it first when stale.
    if (functions.has('page')) ensurePageBuilt(log);
    // The functions whose responses stream: with `ric` their responses come from a runtime process.
    const streamingFunctions = new Set([
      ...model.restMethods.filter((method) => method.streaming).map((method) => method.function),
      ...model.functionUrls.filter((url) => url.streaming).map((url) => url.function),
    ]);
    // With `ric` every function runs under the real Lambda runtime client, bundled as CDK bundles
    // it: one process per warm execution environment, each with its own environment, started on
    // demand as Lambda starts them (eight copy workers at once are eight processes). The others
    // run in this process. The streaming functions are also loaded here, where the gateways learn
    // from the handler that its response streams.
    const realRuntime = new Map<string, RicFunction>();
    for (const fn of model.functions) {
      const name = fn.folder;
      if (options.runtime === 'ric') {
        const started = await startRicFunction({
          name,
          folder: name as FunctionFolder,
          environment: layoutFunctions[name]?.environment ?? {},
          timeoutMs: fn.timeoutMs,
          memoryMb: fn.memoryMb,
          log: (line) => log(line),
        });
        closers.push(started.close);
        realRuntime.set(name, started);
        if (!streamingFunctions.has(name)) {
          handlers.set(name, (event: unknown) => invokeForResult(started, event));
          continue;
        }
      }
      handlers.set(name, await loadHandler(name));
    }
    const handler = (name: string) => handlers.get(name) as AnyHandler;
    const target = (name: string) => {
      const invokeStreaming = streamingFunctions.has(name) ? realRuntime.get(name)?.invoke : undefined;
      return {
        functionName: name,
        handler: handler(name),
        timeoutMs: functionOf(name).timeoutMs,
        ...(invokeStreaming ? { invokeStreaming } : {}),
      };
    };

    // REST API: one route per method, literal paths before greedy ones (as API Gateway prefers).
    const authorizationOf = new Map<RestRoute, string>();
    const routes: RestRoute[] = [...model.restMethods]
      .sort((a, b) => Number(a.resource.includes('+}')) - Number(b.resource.includes('+}')))
      .map((method) => {
        const route: RestRoute = {
          methods: method.httpMethods,
          resource: method.resource,
          ...target(method.function),
        };
        authorizationOf.set(route, method.authorizationType);
        return route;
      });
    const sigV4 = (service: 'execute-api' | 'lambda') =>
      createSigV4Authorizer({ service, region, credentials: LOCAL_CREDENTIALS });
    const requires = (authorizationType: string, where: string): boolean => {
      if (authorizationType === 'NONE') return false;
      if (authorizationType === 'AWS_IAM') return true;
      throw new Error(
        `${where} uses ${authorizationType} authorization, which the local stack does not emulate`,
      );
    };
    let restAuthorizer: RequestAuthorizer | undefined;
    if (options.auth === 'iam') {
      for (const [route, type] of authorizationOf) requires(type, `REST ${route.methods} ${route.resource}`);
      restAuthorizer = methodAuthorizer(routes, authorizationOf, sigV4('execute-api'));
    }
    const restApi = await startHttpGateway({
      mode: { kind: 'rest', routes },
      port: options.port ?? 3000,
      host,
      log,
      ...(restAuthorizer ? { authorize: restAuthorizer } : {}),
      ...(options.streamCaps === 'aws' ? { streamCap: AWS_STREAM_CAPS.restApi } : {}),
    });
    closers.push(restApi.close);

    const url = atMostOne(model.functionUrls, 'Function URLs');
    let functionUrl = '';
    if (url) {
      const signed = options.auth === 'iam' && requires(url.authType, `the Function URL of ${url.function}`);
      const gateway = await startHttpGateway({
        mode: { kind: 'function-url', ...target(url.function) },
        port: options.functionUrlPort ?? 3003,
        host,
        log,
        ...(signed ? { authorize: sigV4('lambda') } : {}),
        ...(options.streamCaps === 'aws' ? { streamCap: AWS_STREAM_CAPS.functionUrl } : {}),
      });
      closers.push(gateway.close);
      functionUrl = gateway.url;
    }

    return {
      endpoints: {
        restApi: restApi.url,
        functionUrl,
        webSocket: webSocket.url,
        upstream: upstreamBaseUrl,
        s3: s3.endpoint,
        dynamoDb: dynamoDb.endpoint,
        stepFunctions: stepFunctions.endpoint,
        lambda: lambda.endpoint,
        bucket: [...bucketNames.values()][0] ?? '',
        table: [...tableNames.values()][0] ?? '',
        stateMachineArn: [...stateMachineArns.values()][0] ?? '',
        dataDirectory,
        ...(sampleUpstream ? { sampleUpstream } : {}),
      },
      layout: {
        functions: layoutFunctions,
        restRoutes: routes.flatMap((route) => {
          const authorizationType = authorizationOf.get(route);
          return authorizationType === undefined
            ? []
            : [
                {
                  methods: route.methods,
                  resource: route.resource,
                  functionName: route.functionName,
                  timeoutMs: route.timeoutMs,
                  authorizationType,
                },
              ];
        }),
        ...(url ? { functionUrl: { functionName: url.function, authType: url.authType } } : {}),
        webSocketRoutes: (webSocketApi?.routes ?? []).map((route) => ({
          routeKey: route.routeKey,
          functionName: route.function,
          returnResponse: route.returnResponse,
        })),
        taskStates,
        eventRules,
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
