import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FUNCTION_FOLDER_METADATA } from '../../infra/function-metadata.ts';
import type { RestRoute } from '../../local/http-gateway.ts';
import type { AuthDenial } from '../../local/sigv4-auth.ts';
import { methodAuthorizer } from '../../local/stack.ts';
import {
  type CloudFormationTemplate,
  createTemplateResolver,
  readStackTemplate,
  type TemplateResource,
  taskStatesOf,
} from '../../local/stack-template.ts';

const fn = (folder: string, properties: Record<string, unknown> = {}): TemplateResource => ({
  Type: 'AWS::Lambda::Function',
  Properties: properties,
  Metadata: { [FUNCTION_FOLDER_METADATA]: folder },
});
const uri = (logicalId: string) => ({
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      ':apigateway:…/functions/',
      { 'Fn::GetAtt': [logicalId, 'Arn'] },
      '/invocations',
    ],
  ],
});
const method = (
  httpMethod: string,
  resourceId: unknown,
  target: string,
  extra: Record<string, unknown> = {},
) => ({
  Type: 'AWS::ApiGateway::Method',
  Properties: {
    HttpMethod: httpMethod,
    ResourceId: resourceId,
    AuthorizationType: 'AWS_IAM',
    Integration: { Type: 'AWS_PROXY', Uri: uri(target), ...extra },
  },
});

/** A small hand-written template with one of everything the reader knows. */
const TEMPLATE: CloudFormationTemplate = {
  Resources: {
    Api: { Type: 'AWS::ApiGateway::RestApi' },
    Files: {
      Type: 'AWS::ApiGateway::Resource',
      Properties: { ParentId: { 'Fn::GetAtt': ['Api', 'RootResourceId'] }, PathPart: 'files' },
    },
    FilesKey: {
      Type: 'AWS::ApiGateway::Resource',
      Properties: { ParentId: { Ref: 'Files' }, PathPart: '{key+}' },
    },
    RootAny: method('ANY', { 'Fn::GetAtt': ['Api', 'RootResourceId'] }, 'PageFn'),
    FilesGet: method('GET', { Ref: 'FilesKey' }, 'FilesFn', {
      ResponseTransferMode: 'STREAM',
      TimeoutInMillis: 900_000,
    }),
    PageFn: fn('page'),
    FilesFn: fn('files', {
      Timeout: 900,
      MemorySize: 512,
      Environment: { Variables: { TABLE: { Ref: 'Table' } } },
    }),
    ProviderFn: { Type: 'AWS::Lambda::Function', Properties: { Timeout: 900 } },
    Table: {
      Type: 'AWS::DynamoDB::Table',
      Properties: { KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] },
    },
    Bucket: { Type: 'AWS::S3::Bucket' },
    Queue: { Type: 'AWS::SQS::Queue' },
  },
};

describe('readStackTemplate', () => {
  it('reads the app’s functions with Lambda’s defaults, and leaves out those without a folder', () => {
    const model = readStackTemplate(TEMPLATE);

    expect(model.functions).toEqual([
      { logicalId: 'PageFn', folder: 'page', timeoutMs: 3_000, memoryMb: 128, environment: {} },
      {
        logicalId: 'FilesFn',
        folder: 'files',
        timeoutMs: 900_000,
        memoryMb: 512,
        environment: { TABLE: { Ref: 'Table' } },
      },
    ]);
  });

  it('reads REST methods with their paths (the root too), functions, auth, mode and timeout', () => {
    const model = readStackTemplate(TEMPLATE);

    expect(model.restMethods).toEqual([
      {
        httpMethods: ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'],
        resource: '/',
        function: 'page',
        authorizationType: 'AWS_IAM',
        streaming: false,
        integrationTimeoutMs: 29_000,
      },
      {
        httpMethods: ['GET'],
        resource: '/files/{key+}',
        function: 'files',
        authorizationType: 'AWS_IAM',
        streaming: true,
        integrationTimeoutMs: 900_000,
      },
    ]);
    expect(model.tables).toEqual([{ logicalId: 'Table', partitionKey: 'id' }]);
    expect(model.buckets).toEqual(['Bucket']);
  });

  it('refuses an integration the local gateway cannot serve, naming it', () => {
    const template = {
      Resources: {
        ...TEMPLATE.Resources,
        Mock: {
          Type: 'AWS::ApiGateway::Method',
          Properties: { HttpMethod: 'OPTIONS', ResourceId: { Ref: 'Files' }, Integration: { Type: 'MOCK' } },
        },
      },
    };

    expect(() => readStackTemplate(template)).toThrow(/OPTIONS \/files \(Mock\) has a MOCK integration/);
  });
});

describe('createTemplateResolver', () => {
  const resolve = createTemplateResolver(TEMPLATE, {
    region: 'eu-west-1',
    accountId: '000000000000',
    refs: new Map([
      ['Table', 'local-table'],
      ['FilesFn', 'files'],
    ]),
    attributes: new Map([['FilesFn.Arn', 'arn:aws:lambda:eu-west-1:000000000000:function:files']]),
    addresses: [['wss://api.execute-api.eu-west-1.amazonaws.com', 'ws://127.0.0.1:3001']],
  });

  it('resolves Ref, Fn::GetAtt, Fn::Join and Fn::Sub to the local resources', () => {
    expect(resolve({ Ref: 'Table' })).toBe('local-table');
    expect(
      resolve({ 'Fn::Join': ['/', [{ Ref: 'AWS::Region' }, { 'Fn::GetAtt': ['FilesFn', 'Arn'] }]] }),
    ).toBe('eu-west-1/arn:aws:lambda:eu-west-1:000000000000:function:files');
    // Fn::Sub's own `${…}` syntax, not a template literal.
    const sub = ['FilesFn.Arn', 'Name', 'AWS::AccountId'].map((name) => `\${${name}}`).join('|');
    expect(resolve({ 'Fn::Sub': [sub, { Name: { Ref: 'FilesFn' } }] })).toBe(
      'arn:aws:lambda:eu-west-1:000000000000:function:files|files|000000000000',
    );
  });

  it('turns an AWS address into its local stand-in', () => {
    expect(resolve('wss://api.execute-api.eu-west-1.amazonaws.com/live')).toBe('ws://127.0.0.1:3001/live');
    expect(resolve('wss://api.execute-api.eu-west-1.amazonaws.com.example/live')).toBe(
      'wss://api.execute-api.eu-west-1.amazonaws.com.example/live',
    );
  });

  it('refuses a reference to what the local stack does not provide, naming its type', () => {
    expect(() => resolve({ Ref: 'Queue' })).toThrow('cannot resolve Ref Queue (AWS::SQS::Queue) locally');
    expect(() => resolve({ 'Fn::GetAtt': ['Table', 'StreamArn'] })).toThrow(/Table\.StreamArn/);
  });
});

describe('taskStatesOf', () => {
  it('finds the Task states that invoke a known function, inside Map and Parallel states too', () => {
    const arn = 'arn:aws:lambda:eu-west-1:000000000000:function:files';
    const definition = {
      States: {
        Direct: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke',
          Parameters: { FunctionName: arn },
        },
        Each: {
          Type: 'Map',
          ItemProcessor: { States: { Inner: { Type: 'Task', Resource: arn } } },
        },
        Both: {
          Type: 'Parallel',
          Branches: [{ States: { Other: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:putItem' } } }],
        },
      },
    };

    expect(taskStatesOf(definition, new Map([[arn, 'files']]))).toEqual({ Direct: 'files', Inner: 'files' });
  });
});

describe('methodAuthorizer', () => {
  const route = (resource: string): RestRoute => ({
    methods: ['GET'],
    resource,
    functionName: 'f',
    handler: async () => undefined,
    timeoutMs: 1_000,
  });
  const signed = route('/signed/{key+}');
  const open = route('/open');
  const denial: AuthDenial = { statusCode: 403, errorType: 'MissingAuthenticationTokenException', body: {} };
  const authorize = methodAuthorizer(
    [signed, open],
    new Map([
      [signed, 'AWS_IAM'],
      [open, 'NONE'],
    ]),
    async () => denial,
  );
  const request = (url: string) => ({ method: 'GET', url, headers: {} }) as IncomingMessage;

  it('checks SigV4 on AWS_IAM methods only, as the template says method by method', async () => {
    expect(await authorize(request('/signed/a/b'), Buffer.alloc(0))).toBe(denial);
    expect(await authorize(request('/open'), Buffer.alloc(0))).toBeUndefined();
    expect(await authorize(request('/nowhere'), Buffer.alloc(0))).toBeUndefined();
  });
});
