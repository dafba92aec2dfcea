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
    for (const folder of ['stream', 'download', 'fetch-to-s3']) {
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

  it.each(['RestApiUrl', 'FunctionUrl', 'WebSocketUrl', 'BucketName', 'StateMachineArn', 'TableName'])(
    'outputs %s',
    (name) => {
      template.hasOutput(name, { Value: Match.anyValue() });
    },
  );

  it.each([
    ['AWS::Lambda::Function', 'FunctionName'],
    ['AWS::DynamoDB::Table', 'TableName'],
    ['AWS::S3::Bucket', 'BucketName'],
    ['AWS::StepFunctions::StateMachine', 'StateMachineName'],
    ['AWS::Logs::LogGroup', 'LogGroupName'],
    ['AWS::IAM::Role', 'RoleName'],
  ])('sets no physical name on %s (%s)', (type, property) => {
    for (const resource of Object.values(template.findResources(type))) {
      expect(resource.Properties?.[property]).toBeUndefined();
    }
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

  it('writes access logs to a one-month log group when apiAccessLogs is on', () => {
    const { template } = synthesize({ apiAccessLogs: true });

    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
    });
  });

  it.each([
    [{ uploadPartSizeBytes: 1024 * 1024 }, /uploadPartSizeBytes must be an integer from 5242880/],
    [{ streamMaxBytes: 300_000_000 }, /streamMaxBytes must be an integer from 0 to 200000000/],
    [{ presignTtlSeconds: 1.5 }, /presignTtlSeconds/],
    [{ upstreamBaseUrl: 'ftp://files.example.org/' }, /upstreamBaseUrl must be an absolute http\(s\) URL/],
    [{ upstreamAllowedOrigins: 'https://ok.example.org, not a url' }, /invalid origin "not a url"/],
    [{ apiAuth: 'basic' as 'iam' }, /apiAuth must be "iam" or "none"/],
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
        apiAccessLogs: 'true',
      },
    });

    expect(downloadSettingsFromContext(app)).toEqual({
      upstreamBaseUrl: 'https://files.example.org/',
      streamMaxBytes: 1000,
      presignTtlSeconds: 60,
      apiAuth: 'none',
      apiAccessLogs: true,
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
    });
  });
});
