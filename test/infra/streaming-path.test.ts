import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import { actionsOf, expectStreamingMethod, logicalId, statementsOf, synthesize } from './template.ts';

describe('streaming path', () => {
  let stack: DownloadStack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synthesize());
  });

  it.each(['GET', 'HEAD'])(
    '%s /stream/{key+} streams the function response for up to 15 minutes',
    (httpMethod) => {
      const resource = stack.restApi.root.getResource('stream')?.getResource('{key+}');
      expect(resource).toBeDefined();

      expectStreamingMethod(
        template,
        stack,
        resource as NonNullable<typeof resource>,
        httpMethod,
        stack.streamingPath.function,
      );
    },
  );

  it('gives the stream function a Function URL that streams and requires IAM', () => {
    template.resourceCountIs('AWS::Lambda::Url', 1);
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'AWS_IAM',
      InvokeMode: 'RESPONSE_STREAM',
      TargetFunctionArn: { 'Fn::GetAtt': [logicalId(stack, stack.streamingPath.function), 'Arn'] },
    });
  });

  it('runs the stream function for 15 minutes with 512 MB and the upstream settings', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Timeout: 900,
      MemorySize: 512,
      Environment: {
        Variables: Match.objectEquals({
          NODE_OPTIONS: '--enable-source-maps',
          POWERTOOLS_SERVICE_NAME: 'stream',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          POWERTOOLS_METRICS_NAMESPACE: 'LargeDownloads',
          UPSTREAM_BASE_URL: 'https://example.com/',
          UPSTREAM_HEADERS_TIMEOUT_MS: '10000',
          UPSTREAM_BODY_TIMEOUT_MS: '30000',
          STREAM_MAX_BYTES: '199229440',
        }),
      },
    });
  });

  it('grants the stream function no AWS permissions beyond tracing and its own logs', () => {
    expect(actionsOf(statementsOf(template, stack, stack.streamingPath.function))).toEqual([]);
  });

  it('declares the {key+} path parameter required, checked by the API’s request validator', () => {
    const resource = stack.restApi.root.getResource('stream')?.getResource('{key+}');
    const validators = template.findResources('AWS::ApiGateway::RequestValidator');
    expect(Object.values(validators)).toEqual([
      expect.objectContaining({
        Properties: expect.objectContaining({ ValidateRequestParameters: true, ValidateRequestBody: true }),
      }),
    ]);
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      ResourceId: { Ref: logicalId(stack, resource as NonNullable<typeof resource>) },
      RequestParameters: { 'method.request.path.key': true },
      RequestValidatorId: { Ref: Object.keys(validators)[0] },
    });
  });

  it('lets only API Gateway invoke the stream function, per method', () => {
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')).filter(
      (permission) =>
        JSON.stringify(permission.Properties.FunctionName) ===
        JSON.stringify({ 'Fn::GetAtt': [logicalId(stack, stack.streamingPath.function), 'Arn'] }),
    );

    expect(permissions.length).toBeGreaterThan(0);
    for (const permission of permissions) {
      expect(permission.Properties).toMatchObject({
        Action: 'lambda:InvokeFunction',
        Principal: 'apigateway.amazonaws.com',
      });
      expect(permission.Properties.SourceArn).toBeDefined();
    }
  });
});

describe.each([
  ['iam', 'AWS_IAM'],
  ['none', 'NONE'],
] as const)('apiAuth %s', (apiAuth, authorizationType) => {
  it(`sets AuthorizationType ${authorizationType} on every REST method`, () => {
    const { template } = synthesize({ apiAuth });

    const methods = Object.values(template.findResources('AWS::ApiGateway::Method'));
    // GET and HEAD on /stream/{key+} and /download/{key+}, GET /downloads/{downloadId}, GET and HEAD / (the page).
    expect(methods).toHaveLength(7);
    for (const method of methods) expect(method.Properties.AuthorizationType).toBe(authorizationType);
    // The Function URL does not follow apiAuth: it is always IAM.
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
  });
});

describe('upstream settings', () => {
  it('passes allowed origins and limits to the stream function only when set', () => {
    const { template } = synthesize({
      upstreamBaseUrl: 'https://files.example.org/exports/',
      upstreamAllowedOrigins: 'https://cdn.example.org',
      streamMaxBytes: 50_000_000,
    });

    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'stream',
          UPSTREAM_BASE_URL: 'https://files.example.org/exports/',
          UPSTREAM_ALLOWED_ORIGINS: 'https://cdn.example.org',
          STREAM_MAX_BYTES: '50000000',
        }),
      },
    });
  });
});
