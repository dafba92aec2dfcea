import { Stack, Validations } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';

/** The `@connections` API's HTTP methods: POST sends a message, DELETE closes a connection, GET describes it. */
export type ConnectionsMethod = 'POST' | 'GET' | 'DELETE';

/**
 * Lets `fn` call the `@connections` API of `stage` with the given methods only
 * (`execute-api:ManageConnections` on `{api}/{stage}/{METHOD}/@connections/*`), where the CDK's
 * `grantManagementApiAccess` allows every method of the stage. Connection ids exist only at run
 * time, hence the wildcard after `@connections/`: it is acknowledged for cdk-nag here, on the
 * function's role, with that reason.
 */
export function grantConnectionsApi(
  fn: IFunction,
  stage: WebSocketStage,
  ...methods: ConnectionsMethod[]
): void {
  const role = roleOf(fn);
  const resources = methods.map((method) =>
    Stack.of(stage).formatArn({
      service: 'execute-api',
      resource: stage.api.apiId,
      resourceName: `${stage.stageName}/${method}/@connections/*`,
    }),
  );
  role.addToPrincipalPolicy(new PolicyStatement({ actions: ['execute-api:ManageConnections'], resources }));
  for (const resource of resources) {
    acknowledgeWildcardResource(
      role,
      resource,
      'WebSocket connection ids exist only at run time; scoped to this API, stage and method',
    );
  }
}

/**
 * Grants `actions` on `resources`, some with a wildcard (`downloads/*`), to `fn`'s role and
 * acknowledges cdk-nag's IAM5 finding for each wildcard resource with `reason`.
 */
export function grantOnWildcardResources(
  fn: IFunction,
  actions: string[],
  resources: string[],
  reason: string,
): void {
  const role = roleOf(fn);
  role.addToPrincipalPolicy(new PolicyStatement({ actions, resources }));
  for (const resource of resources) acknowledgeWildcardResource(role, resource, reason);
}

/** The function's execution role (every function of this app has one). */
export function roleOf(fn: IFunction): IRole {
  if (!fn.role) throw new Error(`${fn.node.path} has no execution role`);
  return fn.role;
}

/**
 * Acknowledges cdk-nag's `AwsSolutions-IAM5` finding for one wildcard resource (an ARN that may
 * contain tokens) on `scope` and what lies under it. The finding id is the resource as cdk-nag
 * prints it (`<LogicalId.Arn>/downloads/*`), so only this resource is acknowledged, never every
 * wildcard of the policy.
 */
export function acknowledgeWildcardResource(scope: IConstruct, resource: string, reason: string): void {
  const flat = flattenReference(Stack.of(scope).resolve(resource));
  if (!flat.includes('*')) return;
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${flat}]`, reason });
}

/** A resolved CloudFormation value as cdk-nag flattens it for finding ids (`flattenCfnReference`). */
function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/}/g, '>');
  const node = value as Record<string, unknown>;
  if (Array.isArray(node['Fn::Join'])) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(flattenReference).join(delimiter);
  }
  if (node['Fn::Sub'] !== undefined) return flattenReference(node['Fn::Sub']);
  if (Array.isArray(node['Fn::GetAtt'])) {
    const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
  }
  if (node.Ref !== undefined) return `<${flattenReference(node.Ref)}>`;
  return JSON.stringify(value);
}
