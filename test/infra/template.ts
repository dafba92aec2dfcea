import { App, type CfnResource } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IResource } from 'aws-cdk-lib/aws-apigateway';
import { DownloadStack, type DownloadStackProps } from '../../infra/download-stack.ts';
import type { DownloadFunction } from '../../infra/functions.ts';
import { readCdkJsonContext } from '../../infra/local-definition.ts';

/** A fresh app and stack with the project's feature flags, bundling skipped (no esbuild run). */
export function synthesize(props: DownloadStackProps = {}): { stack: DownloadStack; template: Template } {
  const app = new App({ context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new DownloadStack(app, 'TestStack', props);
  return { stack, template: Template.fromStack(stack) };
}

export function logicalId(stack: DownloadStack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnResource);
}

export interface Statement {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
  Condition?: unknown;
}

/** Every statement of the policies attached to a function's role. */
export function allStatementsOf(template: Template, stack: DownloadStack, fn: DownloadFunction): Statement[] {
  const roleId = logicalId(stack, fn.role as unknown as { node: { defaultChild?: unknown } });
  const statements: Statement[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    if (!(policy.Properties.Roles as { Ref: string }[]).some((role) => role.Ref === roleId)) continue;
    statements.push(...(policy.Properties.PolicyDocument.Statement as Statement[]));
  }
  return statements;
}

/** Actions every function's role holds to run at all: tracing, and writing its own log group. */
export const RUNTIME_ACTIONS = [
  'logs:CreateLogStream',
  'logs:PutLogEvents',
  'xray:PutTelemetryRecords',
  'xray:PutTraceSegments',
];

/** True for a statement that grants only runtime actions (`RUNTIME_ACTIONS`). */
export function isRuntimeStatement(statement: Statement): boolean {
  return [statement.Action].flat().every((action) => RUNTIME_ACTIONS.includes(action));
}

/** The statements of a function role's policies, the runtime ones (tracing, own logs) left out. */
export function statementsOf(template: Template, stack: DownloadStack, fn: DownloadFunction): Statement[] {
  return allStatementsOf(template, stack, fn).filter((statement) => !isRuntimeStatement(statement));
}

/** Sorted, distinct actions of some statements. */
export function actionsOf(statements: Statement[]): string[] {
  return [...new Set(statements.flatMap((statement) => [statement.Action].flat()))].sort();
}

/**
 * Asserts that `method` on `resource` is a STREAM-mode Lambda proxy integration with the 15-minute
 * timeout, calling the response-streaming invocation URI of `fn`.
 */
export function expectStreamingMethod(
  template: Template,
  stack: DownloadStack,
  resource: IResource,
  method: string,
  fn: DownloadFunction,
): void {
  template.hasResourceProperties('AWS::ApiGateway::Method', {
    HttpMethod: method,
    ResourceId: { Ref: logicalId(stack, resource) },
    Integration: {
      Type: 'AWS_PROXY',
      ResponseTransferMode: 'STREAM',
      TimeoutInMillis: 900_000,
      Uri: {
        'Fn::Join': [
          '',
          Match.arrayWith([
            Match.stringLikeRegexp(':lambda:path/2021-11-15/functions/$'),
            { 'Fn::GetAtt': [logicalId(stack, fn), 'Arn'] },
            '/response-streaming-invocations',
          ]),
        ],
      },
    },
  });
}
