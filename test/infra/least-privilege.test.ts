import { fileURLToPath } from 'node:url';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import { DownloadFunction, FUNCTION_FOLDERS, handlerEntry } from '../../infra/functions.ts';
import { SdkUsageAnalyzer } from './sdk-usage.ts';
import {
  allStatementsOf,
  isRuntimeStatement,
  logicalId,
  type Statement,
  statementsOf,
  synthesize,
} from './template.ts';

/**
 * The permissions each SDK operation needs, as `action` or, for the `@connections` API whose
 * grants are scoped per HTTP method, `action METHOD`. An operation the code uses that is missing
 * here fails the test below: map it, then grant it.
 */
const PERMISSIONS_BY_OPERATION: Readonly<Record<string, readonly string[]>> = {
  '@aws-sdk/lib-dynamodb#GetCommand': ['dynamodb:GetItem'],
  '@aws-sdk/lib-dynamodb#PutCommand': ['dynamodb:PutItem'],
  '@aws-sdk/lib-dynamodb#UpdateCommand': ['dynamodb:UpdateItem'],
  '@aws-sdk/client-sfn#StartExecutionCommand': ['states:StartExecution'],
  '@aws-sdk/client-lambda#InvokeCommand': ['lambda:InvokeFunction'],
  '@aws-sdk/client-apigatewaymanagementapi#PostToConnectionCommand': ['execute-api:ManageConnections POST'],
  '@aws-sdk/client-apigatewaymanagementapi#DeleteConnectionCommand': ['execute-api:ManageConnections DELETE'],
  '@aws-sdk/client-apigatewaymanagementapi#GetConnectionCommand': ['execute-api:ManageConnections GET'],
  // Only ever presigned: the URL carries the signer's s3:GetObject.
  '@aws-sdk/client-s3#GetObjectCommand': ['s3:GetObject'],
  '@aws-sdk/client-s3#ListMultipartUploadsCommand': ['s3:ListBucketMultipartUploads'],
  '@aws-sdk/client-s3#AbortMultipartUploadCommand': ['s3:AbortMultipartUpload'],
  '@aws-sdk/client-s3#ListObjectsV2Command': ['s3:ListBucket'],
  '@aws-sdk/client-s3#DeleteObjectCommand': ['s3:DeleteObject'],
  // The parallel copy's own multipart calls (`plan-copy`, `copy-range`, `complete-copy`).
  '@aws-sdk/client-s3#CreateMultipartUploadCommand': ['s3:PutObject'],
  '@aws-sdk/client-s3#UploadPartCommand': ['s3:PutObject'],
  '@aws-sdk/client-s3#CompleteMultipartUploadCommand': ['s3:PutObject'],
  '@aws-sdk/client-s3#ListPartsCommand': ['s3:ListMultipartUploadParts'],
  // PutObject, or CreateMultipartUpload + UploadPart + CompleteMultipartUpload (all s3:PutObject),
  // and AbortMultipartUpload on failure (`leavePartsOnError: false`) or `abort()`. Never ListParts.
  '@aws-sdk/lib-storage#Upload': ['s3:PutObject', 's3:AbortMultipartUpload'],
};

/** What a set of SDK operations needs; unmapped operations are returned apart. */
function neededPermissions(operations: readonly string[]): { needed: string[]; unmapped: string[] } {
  const needed = new Set<string>();
  const unmapped: string[] = [];
  for (const operation of operations) {
    const permissions = PERMISSIONS_BY_OPERATION[operation];
    if (permissions) for (const permission of permissions) needed.add(permission);
    else unmapped.push(operation);
  }
  return { needed: [...needed].sort(), unmapped };
}

/** `{"Fn::Join": ["", ["arn:", {"Ref": …}, "/live/POST/@connections/*"]]}` → its literal parts joined. */
function literalText(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  return join ? join[1].map(literalText).join(join[0]) : '';
}

/** What statements grant, in the form of `PERMISSIONS_BY_OPERATION` (`@connections` per method). */
function grantedPermissions(statements: readonly Statement[]): string[] {
  const granted = new Set<string>();
  for (const statement of statements) {
    if (statement.Effect !== 'Allow') continue;
    for (const action of [statement.Action].flat()) {
      if (action !== 'execute-api:ManageConnections') {
        granted.add(action);
        continue;
      }
      for (const resource of [statement.Resource].flat()) {
        const method = /\/([^/]+)\/@connections\//.exec(literalText(resource))?.[1] ?? '?';
        granted.add(`${action} ${method}`);
      }
    }
  }
  return [...granted].sort();
}

/**
 * What Lambda itself does with the function's role, beyond its code: deliver failed asynchronous
 * invocations to an SQS on-failure destination (`sqs:SendMessage` on that queue only).
 */
function platformStatements(template: Template, stack: DownloadStack, fn: DownloadFunction): Statement[] {
  const functionRef = { Ref: logicalId(stack, fn) };
  return Object.values(template.findResources('AWS::Lambda::EventInvokeConfig'))
    .filter((config) => JSON.stringify(config.Properties.FunctionName) === JSON.stringify(functionRef))
    .map((config) => config.Properties.DestinationConfig?.OnFailure?.Destination)
    .filter((destination) => JSON.stringify(destination ?? '').includes('Queue'))
    .map((destination) => ({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: destination }));
}

describe('least privilege, derived from the code', () => {
  let stack: DownloadStack;
  let template: Template;
  let functions: Map<string, DownloadFunction>;
  let analyzer: SdkUsageAnalyzer;

  beforeAll(() => {
    ({ stack, template } = synthesize());
    functions = new Map(
      stack.node
        .findAll()
        .filter((c): c is DownloadFunction => c instanceof DownloadFunction)
        .map((fn) => [fn.folder, fn]),
    );
    analyzer = new SdkUsageAnalyzer(FUNCTION_FOLDERS.map(handlerEntry));
  });

  it.each(FUNCTION_FOLDERS)('grants %s exactly what the SDK operations its code reaches need', (folder) => {
    const fn = functions.get(folder);
    expect(fn, `no function for functions/${folder}`).toBeDefined();
    const operations = analyzer.operationsOf(handlerEntry(folder));
    const { needed, unmapped } = neededPermissions(operations);

    const platform = platformStatements(template, stack, fn as DownloadFunction);
    const statements = statementsOf(template, stack, fn as DownloadFunction);
    const [sendMessage, others] = [
      statements.filter((statement) => statement.Action === 'sqs:SendMessage'),
      statements.filter((statement) => statement.Action !== 'sqs:SendMessage'),
    ];

    expect(unmapped, 'SDK operations missing from PERMISSIONS_BY_OPERATION').toEqual([]);
    expect(
      grantedPermissions(others),
      `${folder} reaches ${operations.join(', ') || 'no SDK operation'}`,
    ).toEqual(needed);
    expect(sendMessage, 'sqs:SendMessage only to its on-failure destination').toEqual(
      platform.map((statement) => expect.objectContaining(statement)),
    );
  });

  it.each(FUNCTION_FOLDERS)('gives %s only tracing and its own log group besides', (folder) => {
    const fn = functions.get(folder) as DownloadFunction;
    const runtime = allStatementsOf(template, stack, fn).filter(isRuntimeStatement);
    const logGroup = fn.logGroup as unknown as { node: { defaultChild?: unknown } };

    expect(runtime).toEqual([
      expect.objectContaining({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [logicalId(stack, logGroup), 'Arn'] },
      }),
      expect.objectContaining({
        Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
        Resource: '*',
      }),
    ]);
    const role =
      template.toJSON().Resources[
        logicalId(stack, fn.role as unknown as { node: { defaultChild?: unknown } })
      ];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
  });

  it('scopes @connections grants to POST or DELETE on the live stage, never every method', () => {
    for (const fn of functions.values()) {
      for (const statement of statementsOf(template, stack, fn)) {
        if (![statement.Action].flat().includes('execute-api:ManageConnections')) continue;
        for (const resource of [statement.Resource].flat()) {
          expect(literalText(resource)).toMatch(/\/live\/(POST|DELETE)\/@connections\/\*$/);
        }
      }
    }
  });
});

describe('SDK usage analysis', () => {
  const fixture = (name: string) =>
    fileURLToPath(new URL(`./fixtures/sdk-usage/${name}.ts`, import.meta.url));
  let analyzer: SdkUsageAnalyzer;
  beforeAll(() => {
    analyzer = new SdkUsageAnalyzer([fixture('reads'), fixture('aggregated')]);
  });

  it('follows calls into methods, not whole classes, and through interfaces', () => {
    expect(analyzer.operationsOf(fixture('reads'))).toEqual([
      '@aws-sdk/client-apigatewaymanagementapi#PostToConnectionCommand',
      '@aws-sdk/lib-dynamodb#GetCommand',
    ]);
  });

  it('names commands through re-exports and reports SDK uses that bypass commands', () => {
    expect(analyzer.operationsOf(fixture('aggregated'))).toEqual([
      '@aws-sdk/client-s3#S3',
      '@aws-sdk/lib-dynamodb#UpdateCommand',
    ]);
  });
});
