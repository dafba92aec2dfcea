import type { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import { FUNCTION_FOLDER_METADATA } from '../../infra/function-metadata.ts';
import { DownloadFunction } from '../../infra/functions.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { logicalId, synthesize } from '../infra/template.ts';

type Resource = {
  Type: string;
  Properties: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
};

/** Variables whose template value the local stack replaces on purpose (`localOnlyEnvironment`). */
const LOCAL_ONLY = new Set(['UPSTREAM_BASE_URL']);
/** Set in this process before the stack starts: they reach the functions over the template's values. */
const OPERATOR_SET = new Set(Object.keys(process.env));

/**
 * The local stack, started in this process, against the template `cdk synth` produces (read here
 * on its own, through the CDK's constructs and the raw resources): every function, route, timeout,
 * memory size and variable the template declares is what the local stack runs.
 */
describe('local stack built from the synthesized template', () => {
  let stack: DownloadStack;
  let template: Template;
  let resources: Record<string, Resource>;
  let local: LocalStack;
  const folderOf = new Map<string, string>();
  /** The folder of the function an integration URI or target ARN points at. */
  const functionIn = (value: unknown): string | undefined =>
    [...folderOf].find(([id]) => JSON.stringify(value).includes(`{"Fn::GetAtt":["${id}","Arn"]}`))?.[1];

  beforeAll(async () => {
    ({ stack, template } = synthesize());
    resources = template.toJSON().Resources as Record<string, Resource>;
    for (const fn of stack.node.findAll()) {
      if (fn instanceof DownloadFunction) folderOf.set(logicalId(stack, fn), fn.folder);
    }
    local = await startLocalStack({ port: 0, webSocketPort: 0, upstreamPort: 0, functionUrlPort: 0 });
  });

  afterAll(async () => {
    await local?.close();
  });

  const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);

  it('runs every function of the app with the timeout and memory size the template declares', () => {
    const declared = ofType('AWS::Lambda::Function')
      .filter(([id]) => folderOf.has(id))
      .map(([id, resource]) => ({
        folder: folderOf.get(id),
        timeoutMs: (resource.Properties.Timeout as number) * 1000,
        memoryMb: resource.Properties.MemorySize ?? 128,
      }));
    const running = Object.entries(local.layout.functions).map(([folder, fn]) => ({
      folder,
      timeoutMs: fn.timeoutMs,
      memoryMb: fn.memoryMb,
    }));

    expect(declared.length).toBeGreaterThan(0);
    expect(running).toEqual(expect.arrayContaining(declared));
    expect(running).toHaveLength(declared.length);
  });

  it('leaves out only the CDK’s own custom-resource providers, which carry no folder', () => {
    const withoutFolder = ofType('AWS::Lambda::Function').filter(
      ([, resource]) => resource.Metadata?.[FUNCTION_FOLDER_METADATA] === undefined,
    );
    const providers = Object.values(resources)
      .filter((resource) => resource.Type.startsWith('Custom::'))
      .map((resource) => JSON.stringify(resource.Properties.ServiceToken));

    for (const [id] of withoutFolder) {
      expect(
        providers.some((token) => token.includes(`"${id}"`)),
        id,
      ).toBe(true);
    }
  });

  it('no longer drifts from the deployed timeouts (download-status 10 s, notify 30 s, websocket 30 s)', () => {
    expect(local.layout.functions['download-status']?.timeoutMs).toBe(10_000);
    expect(local.layout.functions.notify?.timeoutMs).toBe(30_000);
    expect(local.layout.functions.websocket?.timeoutMs).toBe(30_000);
    expect(local.layout.functions['mark-failed']?.timeoutMs).toBe(60_000);
    expect(local.layout.functions['fetch-to-s3']).toMatchObject({ timeoutMs: 900_000, memoryMb: 1024 });
  });

  it('gives each function the variables the template sets, references resolved to the local resources', () => {
    const { endpoints } = local;
    const localValues: Record<string, string> = {
      DOWNLOAD_TABLE: endpoints.table,
      DOWNLOAD_BUCKET: endpoints.bucket,
      STATE_MACHINE_ARN: endpoints.stateMachineArn,
      WEBSOCKET_URL: endpoints.webSocket,
      WEBSOCKET_MANAGEMENT_URL: endpoints.webSocket.replace(/^ws:/, 'http:'),
      NOTIFIER_FUNCTION_NAME: 'notify',
    };
    for (const [id, resource] of ofType('AWS::Lambda::Function')) {
      const folder = folderOf.get(id);
      if (!folder) continue;
      const environment = local.layout.functions[folder]?.environment ?? {};
      const variables = (resource.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(Object.keys(variables).length, folder).toBeGreaterThan(0);
      for (const [name, value] of Object.entries(variables)) {
        if (LOCAL_ONLY.has(name) || OPERATOR_SET.has(name)) continue;
        const expected = typeof value === 'string' ? value : localValues[name];
        expect(expected, `${folder}: ${name} has a reference this test does not know`).toBeDefined();
        expect(environment[name], `${folder}: ${name}`).toBe(expected);
      }
    }
  });

  it('serves every REST method of the template, with its function and its authorization', () => {
    const declared = stack.restApi.methods.map((method) => {
      const resource = resources[logicalId(stack, method)] as Resource;
      const integration = resource.Properties.Integration as { Uri: unknown };
      return {
        method: method.httpMethod,
        resource: method.resource.path,
        functionName: functionIn(integration.Uri),
        authorizationType: resource.Properties.AuthorizationType,
      };
    });
    const running = local.layout.restRoutes.flatMap((route) =>
      route.methods.map((method) => ({
        method,
        resource: route.resource,
        functionName: route.functionName,
        authorizationType: route.authorizationType,
      })),
    );

    expect(declared.length).toBeGreaterThan(0);
    expect(running).toEqual(expect.arrayContaining(declared));
    expect(running).toHaveLength(declared.length);
  });

  it('serves the Function URL of the template with its function and auth type', () => {
    const urls = ofType('AWS::Lambda::Url').map(([, resource]) => ({
      functionName: functionIn(resource.Properties.TargetFunctionArn),
      authType: resource.Properties.AuthType,
    }));

    expect(urls).toEqual([local.layout.functionUrl]);
  });

  it('routes every WebSocket route of the template to its function, route responses included', () => {
    const integrations = Object.fromEntries(ofType('AWS::ApiGatewayV2::Integration'));
    const withResponse = new Set(
      ofType('AWS::ApiGatewayV2::RouteResponse').map(
        ([, resource]) => (resource.Properties.RouteId as { Ref: string }).Ref,
      ),
    );
    const declared = ofType('AWS::ApiGatewayV2::Route').map(([id, resource]) => {
      const integrationId = Object.keys(integrations).find((key) =>
        JSON.stringify(resource.Properties.Target).includes(`"${key}"`),
      ) as string;
      return {
        routeKey: resource.Properties.RouteKey,
        functionName: functionIn(integrations[integrationId]?.Properties.IntegrationUri),
        returnResponse: withResponse.has(id),
      };
    });

    expect(declared.length).toBeGreaterThan(0);
    expect(local.layout.webSocketRoutes).toEqual(expect.arrayContaining(declared));
    expect(local.layout.webSocketRoutes).toHaveLength(declared.length);
  });

  it('runs every Task state of the state machine with the function the definition names', () => {
    const [[, machine]] = ofType('AWS::StepFunctions::StateMachine') as [[string, Resource]];
    const definition = JSON.stringify(machine.Properties.DefinitionString);
    const invoked = [...folderOf].filter(([id]) => definition.includes(`{"Fn::GetAtt":["${id}","Arn"]}`));
    const tasks = local.layout.taskStates[local.endpoints.stateMachineArn] ?? {};

    expect(invoked.length).toBeGreaterThan(0);
    expect(new Set(Object.values(tasks))).toEqual(new Set(invoked.map(([, folder]) => folder)));
  });

  it('sends the EventBridge rules of the template to their functions', () => {
    const declared = Object.fromEntries(
      ofType('AWS::Events::Rule').map(([id, resource]) => [
        id,
        (resource.Properties.Targets as { Arn: unknown }[]).map((target) => functionIn(target.Arn)),
      ]),
    );

    expect(local.layout.eventRules).toEqual(declared);
  });
});
