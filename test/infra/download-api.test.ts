import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import type { DownloadFunction } from '../../infra/functions.ts';
import { actionsOf, expectStreamingMethod, logicalId, statementsOf, synthesize } from './template.ts';

describe('download API (router and status endpoint)', () => {
  let stack: DownloadStack;
  let template: Template;
  let api: DownloadStack['downloadApi'];
  const arnOf = (fn: DownloadFunction) => ({ 'Fn::GetAtt': [logicalId(stack, fn), 'Arn'] });
  const bucketArn = () => ({ 'Fn::GetAtt': [logicalId(stack, stack.asyncPath.bucket), 'Arn'] });
  const downloadsObjects = () => ({ 'Fn::Join': ['', [bucketArn(), '/downloads/*']] });
  const tableArn = () => ({ 'Fn::GetAtt': [logicalId(stack, stack.asyncPath.table), 'Arn'] });

  beforeAll(() => {
    ({ stack, template } = synthesize());
    api = stack.downloadApi;
  });

  describe('REST routes', () => {
    it.each(['GET', 'HEAD'])(
      '%s /download/{key+} streams the router response for up to 15 minutes',
      (verb) => {
        const resource = stack.restApi.root.getResource('download')?.getResource('{key+}');
        expect(resource).toBeDefined();

        expectStreamingMethod(template, stack, resource as NonNullable<typeof resource>, verb, api.router);
      },
    );

    it('serves GET /downloads/{downloadId} through a plain (buffered) proxy integration', () => {
      const resource = stack.restApi.root.getResource('downloads')?.getResource('{downloadId}');
      expect(resource).toBeDefined();

      template.hasResourceProperties('AWS::ApiGateway::Method', {
        HttpMethod: 'GET',
        ResourceId: { Ref: logicalId(stack, resource as NonNullable<typeof resource>) },
        Integration: {
          Type: 'AWS_PROXY',
          ResponseTransferMode: Match.absent(),
          Uri: { 'Fn::Join': ['', Match.arrayWith([arnOf(api.downloadStatus), '/invocations'])] },
        },
      });
    });
  });

  describe('functions', () => {
    it('runs the router for 15 minutes with the streaming and async settings', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: 900,
        Environment: {
          Variables: Match.objectLike({
            POWERTOOLS_SERVICE_NAME: 'router',
            UPSTREAM_BASE_URL: 'https://example.com/',
            STREAM_MAX_BYTES: '199229440',
            DOWNLOAD_TABLE: { Ref: logicalId(stack, stack.asyncPath.table) },
            STATE_MACHINE_ARN: { Ref: logicalId(stack, stack.asyncPath.stateMachine) },
            WEBSOCKET_URL: {
              'Fn::Join': ['', Match.arrayWith(['wss://', Match.stringLikeRegexp('/live$')])],
            },
            RECORD_TTL_SECONDS: '604800',
          }),
        },
      });
    });
  });

  describe('least privilege', () => {
    it('lets the router write records and start executions, nothing else', () => {
      const statements = statementsOf(template, stack, api.router);

      expect(actionsOf(statements)).toEqual([
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'states:StartExecution',
      ]);
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: 'states:StartExecution',
          Resource: { Ref: logicalId(stack, stack.asyncPath.stateMachine) },
        }),
      );
    });

    it('lets the status function only read records and re-sign download URLs', () => {
      const statements = statementsOf(template, stack, api.downloadStatus);

      expect(statements).toEqual([
        expect.objectContaining({ Action: 'dynamodb:GetItem', Resource: tableArn() }),
        expect.objectContaining({ Action: 's3:GetObject', Resource: downloadsObjects() }),
      ]);
    });
  });
});
