import { App, type CfnResource } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_DOWNLOAD_SETTINGS,
  DownloadStack,
  downloadSettingsFromContext,
} from '../../infra/download-stack.ts';
import { DownloadFunction, FUNCTION_FOLDERS } from '../../infra/functions.ts';
import { synthesize } from './template.ts';

function appFunctions(stack: DownloadStack): DownloadFunction[] {
  return stack.node.findAll().filter((c): c is DownloadFunction => c instanceof DownloadFunction);
}

describe('download stack', () => {
  let stack: DownloadStack;
  let template: Template;
  beforeAll(() => {
    ({ stack, template } = synthesize());
  });

  it('builds one function per functions/ folder', () => {
    expect(
      appFunctions(stack)
        .map((fn) => fn.folder)
        .sort(),
    ).toEqual([...FUNCTION_FOLDERS].sort());
  });

  it('runs every function on Node.js 24, arm64, traced, logging to its own one-month log group', () => {
    const resources = template.findResources('AWS::Lambda::Function');
    for (const fn of appFunctions(stack)) {
      const properties = resources[stack.getLogicalId(fn.node.defaultChild as CfnResource)]?.Properties;
      expect(properties, fn.folder).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
        Environment: {
          Variables: expect.objectContaining({
            NODE_OPTIONS: '--enable-source-maps',
            POWERTOOLS_SERVICE_NAME: fn.folder,
            POWERTOOLS_LOG_LEVEL: 'INFO',
          }),
        },
      });
      const logGroupId = properties?.LoggingConfig.LogGroup.Ref as string;
      expect(template.toJSON().Resources[logGroupId]).toMatchObject({
        Type: 'AWS::Logs::LogGroup',
        Properties: { RetentionInDays: 30 },
      });
    }
  });

  it('has no other functions than ours and the bucket auto-delete provider', () => {
    const ours = new Set(
      appFunctions(stack).map((fn) => stack.getLogicalId(fn.node.defaultChild as CfnResource)),
    );
    const others = Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) => !ours.has(id));

    expect(others).toEqual([expect.stringMatching(/^CustomS3AutoDeleteObjects/)]);
  });

  it('gives the streaming functions and fetch-to-s3 the 15-minute maximum', () => {
    for (const folder of ['stream', 'router', 'fetch-to-s3']) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: 900,
        Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: folder }) },
      });
    }
  });

  it('serves one regional REST API, stage prod, traced, binary pass-through', () => {
    template.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
      BinaryMediaTypes: ['*/*'],
    });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      TracingEnabled: true,
      AccessLogSetting: Match.absent(),
    });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  it('throttles every REST method and every WebSocket route by default', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      MethodSettings: Match.arrayWith([
        Match.objectLike({
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
        }),
      ]),
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'live',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: Match.absent(),
    });
  });

  it('reserves no concurrency for any function by default (new accounts have 10 in all)', () => {
    for (const resource of Object.values(template.findResources('AWS::Lambda::Function'))) {
      expect(resource.Properties.ReservedConcurrentExecutions).toBeUndefined();
    }
  });

  it('names both APIs after the stack', () => {
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { Name: 'TestStack-downloads' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { Name: 'TestStack-notifications' });
  });

  it('logs the workflow under /aws/vendedlogs/states/, named after the stack', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/TestStack-downloads',
      RetentionInDays: 30,
    });
    const [stateMachine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    const destination = stateMachine?.Properties.LoggingConfiguration.Destinations[0];
    const [logGroupId] = Object.keys(
      template.findResources('AWS::Logs::LogGroup', {
        Properties: { LogGroupName: '/aws/vendedlogs/states/TestStack-downloads' },
      }),
    );
    expect(destination.CloudWatchLogsLogGroup.LogGroupArn).toEqual({ 'Fn::GetAtt': [logGroupId, 'Arn'] });
  });

  it('deletes every log group with the stack and keeps it a month', () => {
    for (const [id, resource] of Object.entries(template.findResources('AWS::Logs::LogGroup'))) {
      expect(resource, id).toMatchObject({
        DeletionPolicy: 'Delete',
        Properties: { RetentionInDays: 30 },
      });
    }
  });

  it.each([
    'RestApiUrl',
    'FunctionUrl',
    'WebSocketUrl',
    'BucketName',
    'StateMachineArn',
    'TableName',
    'DashboardName',
  ])('outputs %s', (name) => {
    template.hasOutput(name, { Value: Match.anyValue() });
  });

  it.each([
    ['AWS::Lambda::Function', 'FunctionName'],
    ['AWS::DynamoDB::Table', 'TableName'],
    ['AWS::S3::Bucket', 'BucketName'],
    ['AWS::StepFunctions::StateMachine', 'StateMachineName'],
    ['AWS::IAM::Role', 'RoleName'],
    ['AWS::CloudWatch::Dashboard', 'DashboardName'],
    ['AWS::CloudWatch::Alarm', 'AlarmName'],
  ])('sets no physical name on %s (%s)', (type, property) => {
    for (const resource of Object.values(template.findResources(type))) {
      expect(resource.Properties?.[property]).toBeUndefined();
    }
  });

  it('names no log group but the workflow’s, which carries the stack name', () => {
    const named = Object.values(template.findResources('AWS::Logs::LogGroup'))
      .map((resource) => resource.Properties?.LogGroupName)
      .filter((name) => name !== undefined);
    expect(named).toEqual(['/aws/vendedlogs/states/TestStack-downloads']);
  });

  it('warns when upstreamBaseUrl is left at its placeholder default', () => {
    Annotations.fromStack(stack).hasWarning(
      '/TestStack',
      Match.stringLikeRegexp('upstreamBaseUrl is not set'),
    );
  });
});

describe('download stack settings', () => {
  it('does not warn once upstreamBaseUrl is set', () => {
    const { stack } = synthesize({ upstreamBaseUrl: 'https://files.example.org/' });

    Annotations.fromStack(stack).hasNoWarning('*', Match.stringLikeRegexp('upstreamBaseUrl'));
  });

  describe('with the optional settings', () => {
    let template: Template;
    beforeAll(() => {
      ({ template } = synthesize({
        apiAccessLogs: true,
        restThrottlingRateLimit: 20,
        restThrottlingBurstLimit: 40,
        webSocketThrottlingRateLimit: 5,
        webSocketThrottlingBurstLimit: 10,
        streamReservedConcurrency: 20,
        routerReservedConcurrency: 30,
      }));
    });

    it('writes REST and WebSocket access logs as JSON to one-month log groups (apiAccessLogs)', () => {
      const logGroups = template.findResources('AWS::Logs::LogGroup');
      // `Fn::GetAtt [id, Arn]`, or an ARN joined around `Ref id` (REST, without the `:*` suffix).
      const destinationOf = (arn: unknown) => {
        const id = /"(?:Ref|Fn::GetAtt)":\[?"([A-Za-z0-9]+)"/.exec(JSON.stringify(arn))?.[1] ?? '';
        return logGroups[id];
      };
      const [restStage] = Object.values(
        template.findResources('AWS::ApiGateway::Stage', { Properties: { StageName: 'prod' } }),
      );
      const [webSocketStage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'));
      const rest = restStage?.Properties.AccessLogSetting;
      const webSocket = webSocketStage?.Properties.AccessLogSettings;

      for (const setting of [rest, webSocket]) {
        expect(destinationOf(setting.DestinationArn)).toMatchObject({
          DeletionPolicy: 'Delete',
          Properties: { RetentionInDays: 30 },
        });
        expect(JSON.parse(setting.Format)).toMatchObject({ requestId: '$context.requestId' });
      }
      expect(JSON.parse(webSocket.Format)).toMatchObject({
        eventType: '$context.eventType',
        routeKey: '$context.routeKey',
        connectionId: '$context.connectionId',
      });
    });

    it('throttles with the configured rates and bursts', () => {
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        MethodSettings: Match.arrayWith([
          Match.objectLike({ ResourcePath: '/*', ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 }),
        ]),
      });
      template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
        DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
      });
    });

    it.each([
      ['stream', 20],
      ['router', 30],
    ])('reserves concurrency for %s, and for no other function', (folder, reserved) => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: folder }) },
        ReservedConcurrentExecutions: reserved,
      });
      const reserving = Object.values(template.findResources('AWS::Lambda::Function')).filter(
        (resource) => resource.Properties.ReservedConcurrentExecutions !== undefined,
      );
      expect(reserving).toHaveLength(2);
    });
  });

  it.each([
    [{ uploadPartSizeBytes: 1024 * 1024 }, /uploadPartSizeBytes must be an integer from 5242880/],
    [{ streamMaxBytes: 300_000_000 }, /streamMaxBytes must be an integer from 0 to 200000000/],
    [{ presignTtlSeconds: 1.5 }, /presignTtlSeconds/],
    [{ upstreamBaseUrl: 'ftp://files.example.org/' }, /upstreamBaseUrl must be an absolute http\(s\) URL/],
    [{ upstreamAllowedOrigins: 'https://ok.example.org, not a url' }, /invalid origin "not a url"/],
    [{ apiAuth: 'basic' as 'iam' }, /apiAuth must be one of iam, none/],
    [{ webSocketAuth: 'none' as 'token' }, /webSocketAuth must be one of token, execution-arn-header/],
    [{ restThrottlingRateLimit: 0 }, /restThrottlingRateLimit must be an integer from 1 to 10000/],
    [
      { webSocketThrottlingBurstLimit: 6000 },
      /webSocketThrottlingBurstLimit must be an integer from 1 to 5000/,
    ],
    [{ streamReservedConcurrency: -1 }, /streamReservedConcurrency must be an integer from 0 to 10000/],
    [{ routerReservedConcurrency: 2.5 }, /routerReservedConcurrency must be an integer/],
    [
      { alarmTopicArn: 'arn:aws:sqs:eu-west-1:123456789012:alarms' },
      /alarmTopicArn must be an SNS topic ARN/,
    ],
  ])('refuses %j', (props, message) => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });

    expect(() => new DownloadStack(app, 'TestStack', props)).toThrow(message);
  });

  it('reads settings from context, converting strings from -c', () => {
    const app = new App({
      context: {
        upstreamBaseUrl: ' https://files.example.org/ ',
        streamMaxBytes: '1000',
        presignTtlSeconds: 60,
        apiAuth: 'none',
        webSocketAuth: 'execution-arn-header',
        apiAccessLogs: 'true',
        restThrottlingRateLimit: '200',
        streamReservedConcurrency: 5,
        alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
      },
    });

    expect(downloadSettingsFromContext(app)).toEqual({
      upstreamBaseUrl: 'https://files.example.org/',
      streamMaxBytes: 1000,
      presignTtlSeconds: 60,
      apiAuth: 'none',
      webSocketAuth: 'execution-arn-header',
      apiAccessLogs: true,
      restThrottlingRateLimit: 200,
      streamReservedConcurrency: 5,
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
    });
  });

  it.each([
    [{ streamMaxBytes: 'lots' }, /context streamMaxBytes must be a number/],
    [{ uploadQueueSize: '' }, /context uploadQueueSize must be a number/],
    [{ apiAccessLogs: 'yes please' }, /context apiAccessLogs must be true or false/],
  ])('refuses context %j', (context, message) => {
    expect(() => downloadSettingsFromContext(new App({ context }))).toThrow(message);
  });

  it('documents defaults that match the functions’ own', () => {
    expect(DEFAULT_DOWNLOAD_SETTINGS).toMatchObject({
      streamMaxBytes: 199_229_440,
      presignTtlSeconds: 900,
      recordTtlSeconds: 604_800,
      objectExpirationDays: 1,
      uploadPartSizeBytes: 8 * 1024 * 1024,
      uploadQueueSize: 4,
      apiAuth: 'iam',
      webSocketAuth: 'token',
    });
  });

  it('lets the WebSocket accept the execution ARN header alone only when webSocketAuth opts in', () => {
    const { template } = synthesize({ webSocketAuth: 'execution-arn-header' });

    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'websocket',
          WEBSOCKET_AUTH: 'execution-arn-header',
        }),
      },
    });
  });
});
