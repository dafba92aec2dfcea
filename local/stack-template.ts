import { FUNCTION_FOLDER_METADATA } from '../infra/function-metadata.ts';

/** A CloudFormation template as `cdk synth` writes it (`cdk.out/<stack>.template.json`). */
export interface CloudFormationTemplate {
  readonly Resources: Readonly<Record<string, TemplateResource>>;
  readonly [section: string]: unknown;
}

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Readonly<Record<string, unknown>>;
  readonly Metadata?: Readonly<Record<string, unknown>>;
  readonly [attribute: string]: unknown;
}

/** One `AWS::Lambda::Function` of the app: the handler it runs and how it is configured. */
export interface TemplateFunction {
  readonly logicalId: string;
  /** The folder under `functions/` whose `handler.ts` it runs; locally also its function name. */
  readonly folder: string;
  /** `Timeout` (Lambda's default is 3 s). */
  readonly timeoutMs: number;
  /** `MemorySize` (Lambda's default is 128 MB). */
  readonly memoryMb: number;
  /** `Environment.Variables`, CloudFormation intrinsics not yet resolved. */
  readonly environment: Readonly<Record<string, unknown>>;
}

/** One method of the REST API (`AWS::ApiGateway::Method`), a Lambda proxy integration. */
export interface TemplateRestMethod {
  /** `GET`, `HEAD`, …; `ANY` is spelled out as the methods it stands for. */
  readonly httpMethods: readonly string[];
  /** The resource path, `/stream/{key+}` (`/` for the root resource). */
  readonly resource: string;
  /** Folder of the function it invokes. */
  readonly function: string;
  /** `AWS_IAM`, `NONE`, … */
  readonly authorizationType: string;
  /** `ResponseTransferMode: STREAM`: the function's response is streamed. */
  readonly streaming: boolean;
  /** `TimeoutInMillis` of the integration (API Gateway's default is 29 s). */
  readonly integrationTimeoutMs: number;
}

/** A Function URL (`AWS::Lambda::Url`). */
export interface TemplateFunctionUrl {
  readonly function: string;
  /** `AWS_IAM` or `NONE`. */
  readonly authType: string;
  /** `InvokeMode: RESPONSE_STREAM`. */
  readonly streaming: boolean;
}

/** One route of a WebSocket API (`AWS::ApiGatewayV2::Route`). */
export interface TemplateWebSocketRoute {
  readonly routeKey: string;
  readonly function: string;
  /** The route has a route response: what the function returns goes back to the client. */
  readonly returnResponse: boolean;
}

/** A WebSocket API (`AWS::ApiGatewayV2::Api`, protocol WEBSOCKET) with its stage and routes. */
export interface TemplateWebSocketApi {
  readonly logicalId: string;
  readonly routeSelectionExpression: string;
  /** `StageName` of its stage: the last part of its URL and of its `@connections` endpoint. */
  readonly stage: string;
  readonly routes: readonly TemplateWebSocketRoute[];
}

export interface TemplateStateMachine {
  readonly logicalId: string;
  /** `DefinitionString`, intrinsics not yet resolved. */
  readonly definitionString: unknown;
}

/** An EventBridge rule (`AWS::Events::Rule`) whose targets are functions of the app. */
export interface TemplateEventRule {
  readonly logicalId: string;
  /** `EventPattern`, intrinsics not yet resolved. */
  readonly eventPattern: unknown;
  /** Folders of the functions it invokes. */
  readonly targets: readonly string[];
}

export interface TemplateTable {
  readonly logicalId: string;
  /** Name of the `HASH` key attribute. */
  readonly partitionKey: string;
}

/** What the local stack builds from the synthesized template. */
export interface StackModel {
  readonly functions: readonly TemplateFunction[];
  readonly restMethods: readonly TemplateRestMethod[];
  readonly functionUrls: readonly TemplateFunctionUrl[];
  readonly webSocketApis: readonly TemplateWebSocketApi[];
  readonly stateMachines: readonly TemplateStateMachine[];
  readonly eventRules: readonly TemplateEventRule[];
  readonly tables: readonly TemplateTable[];
  /** Logical ids of the buckets. */
  readonly buckets: readonly string[];
}

/** What `ANY` stands for on a REST API. */
const ANY_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'];
/** Lambda's defaults for a function that leaves them out. */
const DEFAULT_TIMEOUT_SECONDS = 3;
const DEFAULT_MEMORY_MB = 128;
/** API Gateway's default integration timeout. */
const DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{Ref: id}` → id. */
function refOf(value: unknown): string | undefined {
  return isObject(value) && typeof value.Ref === 'string' ? value.Ref : undefined;
}

/** Every `{"Fn::GetAtt": [id, attribute]}` inside a value (e.g. an integration URI's `Fn::Join`). */
function getAttsIn(value: unknown, attribute: string): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => getAttsIn(item, attribute));
  if (!isObject(value)) return [];
  const getAtt = value['Fn::GetAtt'];
  if (Array.isArray(getAtt) && getAtt[1] === attribute && typeof getAtt[0] === 'string') return [getAtt[0]];
  return Object.values(value).flatMap((item) => getAttsIn(item, attribute));
}

/** Every `{"Ref": id}` inside a value. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (!isObject(value)) return [];
  const ref = refOf(value);
  if (ref !== undefined) return [ref];
  return Object.values(value).flatMap(refsIn);
}

/**
 * Reads what a local stack needs from a synthesized template: the app's functions (those that
 * carry `FUNCTION_FOLDER_METADATA`; the CDK's own custom-resource providers are left out), the
 * REST API's methods, Function URLs, WebSocket routes, state machines, EventBridge rules, tables
 * and buckets. Anything the local stack could not serve faithfully (an integration that is not a
 * Lambda proxy, a route selection other than `$request.body.action`) is an error, not a guess.
 */
export function readStackTemplate(template: CloudFormationTemplate): StackModel {
  const resources = Object.entries(template.Resources);
  const ofType = (type: string) => resources.filter(([, resource]) => resource.Type === type);
  const properties = (resource: TemplateResource) => resource.Properties ?? {};

  const functions: TemplateFunction[] = [];
  const folderByLogicalId = new Map<string, string>();
  for (const [logicalId, resource] of ofType('AWS::Lambda::Function')) {
    const folder = resource.Metadata?.[FUNCTION_FOLDER_METADATA];
    if (typeof folder !== 'string') continue;
    if ([...folderByLogicalId.values()].includes(folder)) {
      throw new Error(
        `two functions of the template run functions/${folder}; locally a folder names one function`,
      );
    }
    folderByLogicalId.set(logicalId, folder);
    const props = properties(resource);
    const environment = isObject(props.Environment) ? props.Environment.Variables : undefined;
    functions.push({
      logicalId,
      folder,
      timeoutMs: (typeof props.Timeout === 'number' ? props.Timeout : DEFAULT_TIMEOUT_SECONDS) * 1000,
      memoryMb: typeof props.MemorySize === 'number' ? props.MemorySize : DEFAULT_MEMORY_MB,
      environment: isObject(environment) ? environment : {},
    });
  }
  /** The function an integration URI, a target ARN or a Function URL points at. */
  const functionIn = (value: unknown, where: string): string => {
    const folders = [...new Set(getAttsIn(value, 'Arn'))]
      .map((id) => folderByLogicalId.get(id))
      .filter((folder): folder is string => folder !== undefined);
    if (folders.length !== 1 || !folders[0]) {
      throw new Error(`${where} does not invoke exactly one function of the app (${JSON.stringify(value)})`);
    }
    return folders[0];
  };

  // REST API: resources form a tree under the API's root resource (`Fn::GetAtt [api, RootResourceId]`).
  const restResources = new Map(ofType('AWS::ApiGateway::Resource'));
  const resourcePath = (reference: unknown): string => {
    if (getAttsIn(reference, 'RootResourceId').length > 0) return '/';
    const id = refOf(reference);
    const resource = id === undefined ? undefined : restResources.get(id);
    if (!id || !resource) throw new Error(`unknown REST resource ${JSON.stringify(reference)}`);
    const parent = resourcePath(properties(resource).ParentId);
    return `${parent === '/' ? '' : parent}/${String(properties(resource).PathPart)}`;
  };
  const restMethods: TemplateRestMethod[] = ofType('AWS::ApiGateway::Method').map(([logicalId, resource]) => {
    const props = properties(resource);
    const integration = isObject(props.Integration) ? props.Integration : {};
    const httpMethod = String(props.HttpMethod);
    const path = resourcePath(props.ResourceId);
    if (integration.Type !== 'AWS_PROXY') {
      throw new Error(
        `REST method ${httpMethod} ${path} (${logicalId}) has a ${String(integration.Type)} integration; the local gateway serves Lambda proxy integrations only`,
      );
    }
    return {
      httpMethods: httpMethod === 'ANY' ? ANY_METHODS : [httpMethod],
      resource: path,
      function: functionIn(integration.Uri, `REST method ${httpMethod} ${path}`),
      authorizationType: typeof props.AuthorizationType === 'string' ? props.AuthorizationType : 'NONE',
      streaming: integration.ResponseTransferMode === 'STREAM',
      integrationTimeoutMs:
        typeof integration.TimeoutInMillis === 'number'
          ? integration.TimeoutInMillis
          : DEFAULT_INTEGRATION_TIMEOUT_MS,
    };
  });

  const functionUrls: TemplateFunctionUrl[] = ofType('AWS::Lambda::Url').map(([logicalId, resource]) => {
    const props = properties(resource);
    return {
      function: functionIn(props.TargetFunctionArn, `Function URL ${logicalId}`),
      authType: String(props.AuthType),
      streaming: props.InvokeMode === 'RESPONSE_STREAM',
    };
  });

  const integrations = new Map(ofType('AWS::ApiGatewayV2::Integration'));
  const routeResponses = new Set(
    ofType('AWS::ApiGatewayV2::RouteResponse').map(([, resource]) => refOf(properties(resource).RouteId)),
  );
  const webSocketApis: TemplateWebSocketApi[] = ofType('AWS::ApiGatewayV2::Api')
    .filter(([, resource]) => properties(resource).ProtocolType === 'WEBSOCKET')
    .map(([apiId, api]) => {
      const belongs = ([, resource]: [string, TemplateResource]) =>
        refOf(properties(resource).ApiId) === apiId;
      const stages = ofType('AWS::ApiGatewayV2::Stage').filter(belongs);
      const [stage] = stages;
      if (stages.length !== 1 || !stage) throw new Error(`WebSocket API ${apiId} needs exactly one stage`);
      const routeSelectionExpression = String(properties(api).RouteSelectionExpression);
      if (routeSelectionExpression !== '$request.body.action') {
        throw new Error(
          `WebSocket API ${apiId} selects routes by ${routeSelectionExpression}; the local gateway knows $request.body.action`,
        );
      }
      const routes = ofType('AWS::ApiGatewayV2::Route')
        .filter(belongs)
        .map(([routeId, route]) => {
          const props = properties(route);
          const routeKey = String(props.RouteKey);
          const integrationId = refsIn(props.Target).find((id) => integrations.has(id));
          const integration = integrationId === undefined ? undefined : integrations.get(integrationId);
          if (!integration || properties(integration).IntegrationType !== 'AWS_PROXY') {
            throw new Error(`WebSocket route ${routeKey} (${routeId}) is not a Lambda proxy integration`);
          }
          return {
            routeKey,
            function: functionIn(properties(integration).IntegrationUri, `WebSocket route ${routeKey}`),
            returnResponse: routeResponses.has(routeId),
          };
        });
      return {
        logicalId: apiId,
        routeSelectionExpression,
        stage: String(properties(stage[1]).StageName),
        routes,
      };
    });

  const stateMachines = ofType('AWS::StepFunctions::StateMachine').map(([logicalId, resource]) => ({
    logicalId,
    definitionString: properties(resource).DefinitionString,
  }));

  const eventRules: TemplateEventRule[] = [];
  for (const [logicalId, resource] of ofType('AWS::Events::Rule')) {
    const props = properties(resource);
    const targets = (Array.isArray(props.Targets) ? props.Targets : []).map((target, index) =>
      functionIn(
        isObject(target) ? target.Arn : undefined,
        `target ${index} of EventBridge rule ${logicalId}`,
      ),
    );
    eventRules.push({ logicalId, eventPattern: props.EventPattern, targets });
  }

  const tables = ofType('AWS::DynamoDB::Table').map(([logicalId, resource]) => {
    const keySchema = properties(resource).KeySchema;
    const hash = (Array.isArray(keySchema) ? keySchema : []).find(
      (key) => isObject(key) && key.KeyType === 'HASH',
    ) as { AttributeName?: unknown } | undefined;
    if (typeof hash?.AttributeName !== 'string') throw new Error(`table ${logicalId} has no HASH key`);
    return { logicalId, partitionKey: hash.AttributeName };
  });

  return {
    functions,
    restMethods,
    functionUrls,
    webSocketApis,
    stateMachines,
    eventRules,
    tables,
    buckets: ofType('AWS::S3::Bucket').map(([logicalId]) => logicalId),
  };
}

/** What the template's references stand for locally. */
export interface LocalReferences {
  readonly region: string;
  readonly accountId: string;
  /** `Ref` of each resource the local stack provides, by logical id (a function's name, a table's name, …). */
  readonly refs: ReadonlyMap<string, string>;
  /** `Fn::GetAtt` of each resource the local stack provides, by `logicalId.Attribute` (`Fn.Arn`). */
  readonly attributes: ReadonlyMap<string, string>;
  /**
   * AWS addresses and their local stand-ins, as [prefix, replacement]: a resolved string that
   * starts with the prefix (`wss://<api>.execute-api.<region>.amazonaws.com`) starts with the
   * replacement instead (`ws://127.0.0.1:3001`).
   */
  readonly addresses: ReadonlyArray<readonly [string, string]>;
}

/**
 * Resolves the CloudFormation intrinsics a template uses (`Ref`, `Fn::GetAtt`, `Fn::Join`,
 * `Fn::Sub`) to the local stack's resources. A reference to anything the local stack does not
 * provide is an error that names it.
 */
export function createTemplateResolver(
  template: CloudFormationTemplate,
  references: LocalReferences,
): (value: unknown) => unknown {
  const typeOf = (logicalId: string) => template.Resources[logicalId]?.Type ?? 'no such resource';
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': references.region,
    'AWS::AccountId': references.accountId,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const ref = (name: string): string => {
    const value = pseudo[name] ?? references.refs.get(name);
    if (value === undefined) throw new Error(`cannot resolve Ref ${name} (${typeOf(name)}) locally`);
    return value;
  };
  const getAtt = (logicalId: string, attribute: string): string => {
    const value = references.attributes.get(`${logicalId}.${attribute}`);
    if (value === undefined) {
      throw new Error(`cannot resolve Fn::GetAtt ${logicalId}.${attribute} (${typeOf(logicalId)}) locally`);
    }
    return value;
  };
  const intrinsic = (name: string, argument: unknown): string => {
    switch (name) {
      case 'Ref':
        return ref(String(argument));
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
        return getAtt(String(logicalId), String(attribute));
      }
      case 'Fn::Join': {
        const [separator, parts] = argument as [string, unknown[]];
        return parts.map((part) => String(resolve(part))).join(separator);
      }
      case 'Fn::Sub': {
        const [text, variables] = (Array.isArray(argument) ? argument : [argument, {}]) as [
          string,
          Record<string, unknown>,
        ];
        return text.replace(/\$\{([^}!]+)\}/g, (_match, reference: string) => {
          if (Object.hasOwn(variables, reference)) return String(resolve(variables[reference]));
          const [logicalId = '', attribute] = reference.split('.');
          return attribute ? getAtt(logicalId, attribute) : ref(reference);
        });
      }
      default:
        throw new Error(`cannot resolve ${name} locally`);
    }
  };
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!isObject(value)) return value;
    const entries = Object.entries(value);
    const [first] = entries;
    if (entries.length === 1 && first && (first[0] === 'Ref' || first[0].startsWith('Fn::'))) {
      return intrinsic(first[0], first[1]);
    }
    return Object.fromEntries(entries.map(([key, item]) => [key, resolve(item)]));
  };
  const toLocalAddress = (value: string): string => {
    for (const [prefix, replacement] of references.addresses) {
      if (value === prefix || value.startsWith(`${prefix}/`)) return replacement + value.slice(prefix.length);
    }
    return value;
  };
  return (value) => {
    const resolved = resolve(value);
    return typeof resolved === 'string' ? toLocalAddress(resolved) : resolved;
  };
}

/** Every Task state (in Map and Parallel states too) that invokes one of `functionsByArn`, by state name. */
export function taskStatesOf(
  definition: unknown,
  functionsByArn: ReadonlyMap<string, string>,
): Record<string, string> {
  const found: Record<string, string> = {};
  const visit = (machine: unknown) => {
    if (!isObject(machine) || !isObject(machine.States)) return;
    for (const [name, state] of Object.entries(machine.States)) {
      if (!isObject(state)) continue;
      if (state.Type === 'Task') {
        const parameters = isObject(state.Parameters)
          ? state.Parameters
          : isObject(state.Arguments)
            ? state.Arguments
            : {};
        const target = typeof parameters.FunctionName === 'string' ? parameters.FunctionName : state.Resource;
        const folder = typeof target === 'string' ? functionsByArn.get(target) : undefined;
        if (folder) found[name] = folder;
      }
      visit(state.Iterator);
      visit(state.ItemProcessor);
      if (Array.isArray(state.Branches)) for (const branch of state.Branches) visit(branch);
    }
  };
  visit(definition);
  return found;
}
