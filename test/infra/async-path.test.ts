import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import type { DownloadFunction } from '../../infra/functions.ts';
import { actionsOf, logicalId, type Statement, statementsOf, synthesize } from './template.ts';

describe('async path', () => {
  let stack: DownloadStack;
  let template: Template;
  let fns: DownloadStack['asyncPath']['functions'];
  const arnOf = (fn: DownloadFunction) => ({ 'Fn::GetAtt': [logicalId(stack, fn), 'Arn'] });
  const bucketArn = () => ({ 'Fn::GetAtt': [logicalId(stack, stack.asyncPath.bucket), 'Arn'] });
  const downloadsObjects = () => ({ 'Fn::Join': ['', [bucketArn(), '/downloads/*']] });

  beforeAll(() => {
    ({ stack, template } = synthesize());
    fns = stack.asyncPath.functions;
  });

  describe('functions', () => {
    it('runs fetch-to-s3 for 15 minutes with 1024 MB and the upload settings', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: 900,
        MemorySize: 1024,
        Environment: {
          Variables: Match.objectLike({
            POWERTOOLS_SERVICE_NAME: 'fetch-to-s3',
            UPSTREAM_BASE_URL: 'https://example.com/',
            DOWNLOAD_BUCKET: { Ref: logicalId(stack, stack.asyncPath.bucket) },
            WEBSOCKET_MANAGEMENT_URL: {
              'Fn::Join': ['', Match.arrayWith(['https://', Match.stringLikeRegexp('/live$')])],
            },
            UPLOAD_PART_SIZE_BYTES: String(8 * 1024 * 1024),
            UPLOAD_QUEUE_SIZE: '4',
          }),
        },
      });
    });

    it('tells the websocket function the notifier by name, and not the management URL', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectEquals({
            NODE_OPTIONS: '--enable-source-maps',
            POWERTOOLS_SERVICE_NAME: 'websocket',
            POWERTOOLS_LOG_LEVEL: 'INFO',
            POWERTOOLS_METRICS_NAMESPACE: 'LargeDownloads',
            DOWNLOAD_TABLE: { Ref: logicalId(stack, stack.asyncPath.table) },
            NOTIFIER_FUNCTION_NAME: { Ref: logicalId(stack, fns.notify) },
            WEBSOCKET_AUTH: 'token',
          }),
        },
      });
    });

    it('gives presign its TTL and the bucket', () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'presign', PRESIGN_TTL_SECONDS: '900' }),
        },
      });
    });
  });

  describe('least privilege', () => {
    it('lets presign read copied downloads only', () => {
      const statements = statementsOf(template, stack, fns.presign);

      expect(statements).toEqual([
        expect.objectContaining({ Action: 's3:GetObject', Resource: downloadsObjects() }),
      ]);
    });

    it('lets the websocket function invoke only the notifier', () => {
      const statements = statementsOf(template, stack, fns.websocket);

      expect(actionsOf(statements)).toEqual([
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'lambda:InvokeFunction',
      ]);
      const invoke = statements.filter((statement) => statement.Action === 'lambda:InvokeFunction');
      expect(invoke).toHaveLength(1);
      // Invoked by its unqualified name: no versions or aliases (`<arn>:*`).
      expect(invoke[0]?.Resource).toEqual(arnOf(fns.notify));
      expect(actionsOf(statements)).not.toContain('execute-api:ManageConnections');
    });

    it('lets fetch-to-s3 upload under downloads/, update records and post to connections', () => {
      const statements = statementsOf(template, stack, fns.fetchToS3);

      expect(actionsOf(statements)).toEqual([
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'execute-api:ManageConnections',
        's3:AbortMultipartUpload',
        's3:PutObject',
      ]);
      for (const statement of statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:')))) {
        expect(statement.Resource).toEqual(downloadsObjects());
      }
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: 'execute-api:ManageConnections',
          Resource: {
            'Fn::Join': [
              '',
              expect.arrayContaining([
                { Ref: logicalId(stack, stack.asyncPath.webSocketApi) },
                '/live/POST/@connections/*',
              ]),
            ],
          },
        }),
      );
    });

    it.each([
      ['markReady', ['dynamodb:UpdateItem']],
      // sqs:SendMessage: its failed asynchronous invocations go to the WorkflowWatch dead-letter queue.
      ['notify', ['dynamodb:GetItem', 'execute-api:ManageConnections', 's3:GetObject', 'sqs:SendMessage']],
      [
        'markFailed',
        [
          'dynamodb:UpdateItem',
          'execute-api:ManageConnections',
          's3:AbortMultipartUpload',
          's3:DeleteObject',
          's3:ListBucket',
          's3:ListBucketMultipartUploads',
        ],
      ],
    ] as const)('grants %s exactly %j', (name, expected) => {
      expect(actionsOf(statementsOf(template, stack, fns[name]))).toEqual(expected);
    });

    it('scopes mark-failed to the bucket for listing and to downloads/ for deleting', () => {
      const statements = statementsOf(template, stack, fns.markFailed);

      expect(statements).toContainEqual(
        expect.objectContaining({ Action: 's3:ListBucketMultipartUploads', Resource: bucketArn() }),
      );
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: 's3:ListBucket',
          Resource: bucketArn(),
          Condition: { StringLike: { 's3:prefix': ['downloads/*'] } },
        }),
      );
      expect(statements).toContainEqual(
        expect.objectContaining({
          Action: ['s3:AbortMultipartUpload', 's3:DeleteObject'],
          Resource: downloadsObjects(),
        }),
      );
    });

    it('grants no function any action on every resource, apart from X-Ray', () => {
      for (const fn of [
        ...Object.values(fns),
        stack.downloadApi.router,
        stack.downloadApi.downloadStatus,
        stack.streamingPath.function,
      ]) {
        for (const statement of statementsOf(template, stack, fn)) expect(statement.Resource).not.toBe('*');
      }
    });
  });

  describe('storage', () => {
    it('encrypts the bucket, blocks public access and denies plain HTTP', () => {
      template.hasResourceProperties('AWS::S3::Bucket', {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
      });
      template.hasResourceProperties('AWS::S3::BucketPolicy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 's3:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    });

    it('expires copied downloads after a day and aborts incomplete uploads', () => {
      template.hasResourceProperties('AWS::S3::Bucket', {
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ Prefix: 'downloads/', ExpirationInDays: 1, Status: 'Enabled' }),
            Match.objectLike({
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
              Status: 'Enabled',
            }),
          ]),
        },
      });
    });

    it('keeps records in an on-demand table keyed by downloadId, expired by TTL', () => {
      template.resourceCountIs('AWS::DynamoDB::Table', 1);
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'downloadId', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'downloadId', AttributeType: 'S' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      });
    });
  });

  describe('WebSocket API', () => {
    it('routes $connect, $disconnect, $default and status to the websocket function', () => {
      template.resourceCountIs('AWS::ApiGatewayV2::Route', 4);
      template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
      template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
        ProtocolType: 'WEBSOCKET',
        RouteSelectionExpression: '$request.body.action',
      });
      template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
        IntegrationType: 'AWS_PROXY',
        IntegrationUri: { 'Fn::Join': ['', Match.arrayWith([arnOf(fns.websocket)])] },
      });
      const routeKeys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map(
        (route) => route.Properties.RouteKey,
      );
      expect(routeKeys.sort()).toEqual(['$connect', '$default', '$disconnect', 'status']);
    });

    it('answers the client on $default and status only', () => {
      const routes = template.findResources('AWS::ApiGatewayV2::Route');
      const responses = Object.values(template.findResources('AWS::ApiGatewayV2::RouteResponse'));

      const answered = responses.map(
        (response) => routes[response.Properties.RouteId.Ref]?.Properties.RouteKey,
      );
      expect(answered.sort()).toEqual(['$default', 'status']);
    });

    it('deploys the live stage automatically, after the routes exist', () => {
      const stages = template.findResources('AWS::ApiGatewayV2::Stage', {
        Properties: { StageName: 'live', AutoDeploy: true },
      });
      expect(Object.keys(stages)).toHaveLength(1);

      const dependsOn = Object.values(stages)[0]?.DependsOn as string[];
      for (const routeId of Object.keys(template.findResources('AWS::ApiGatewayV2::Route'))) {
        expect(dependsOn).toContain(routeId);
      }
    });
  });

  describe('state machine', () => {
    it('is a traced Standard workflow that logs everything except execution data', () => {
      template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
      template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
        StateMachineType: 'STANDARD',
        TracingConfiguration: { Enabled: true },
        LoggingConfiguration: {
          Level: 'ALL',
          IncludeExecutionData: false,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: Match.anyValue() } }],
        },
      });
    });

    it('may invoke exactly the eight task functions', () => {
      const role = stack.asyncPath.stateMachine.role as unknown as { node: { defaultChild?: unknown } };
      const roleId = logicalId(stack, role);
      const invoked = Object.values(template.findResources('AWS::IAM::Policy'))
        .filter((policy) => (policy.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
        .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[])
        .filter((statement) => statement.Action === 'lambda:InvokeFunction')
        .flatMap((statement) => [statement.Resource].flat())
        .filter((resource) => JSON.stringify(resource).startsWith('{"Fn::GetAtt"'));

      expect(invoked).toHaveLength(8);
      expect(invoked).toEqual(
        expect.arrayContaining(
          [
            fns.planCopy,
            fns.copyRange,
            fns.completeCopy,
            fns.fetchToS3,
            fns.presign,
            fns.markReady,
            fns.notify,
            fns.markFailed,
          ].map((fn) => arnOf(fn)),
        ),
      );
    });
  });
});

describe('async path settings', () => {
  it('passes the tunables to the bucket lifecycle and the functions', () => {
    const { template } = synthesize({
      objectExpirationDays: 3,
      presignTtlSeconds: 300,
      recordTtlSeconds: 3600,
      uploadPartSizeBytes: 16 * 1024 * 1024,
      uploadQueueSize: 2,
    });

    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'downloads/', ExpirationInDays: 3 })]),
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ PRESIGN_TTL_SECONDS: '300' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ RECORD_TTL_SECONDS: '3600' }) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          UPLOAD_PART_SIZE_BYTES: String(16 * 1024 * 1024),
          UPLOAD_QUEUE_SIZE: '2',
        }),
      },
    });
  });
});
