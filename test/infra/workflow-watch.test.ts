import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import { actionsOf, logicalId, statementsOf, synthesize } from './template.ts';

describe('workflow watch', () => {
  let stack: DownloadStack;
  let template: Template;
  const ref = (construct: { node: { defaultChild?: unknown } }) => ({ Ref: logicalId(stack, construct) });
  const arnOf = (construct: { node: { defaultChild?: unknown } }) => ({
    'Fn::GetAtt': [logicalId(stack, construct), 'Arn'],
  });

  beforeAll(() => {
    ({ stack, template } = synthesize());
  });

  it("sends the state machine's TIMED_OUT, ABORTED and FAILED status changes to the watcher", () => {
    const watch = stack.asyncPath.workflowWatch;

    template.hasResourceProperties('AWS::Events::Rule', {
      State: 'ENABLED',
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          stateMachineArn: [ref(stack.asyncPath.stateMachine)],
          status: ['TIMED_OUT', 'ABORTED', 'FAILED'],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: arnOf(watch.function),
          DeadLetterConfig: { Arn: arnOf(watch.deadLetterQueue) },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: arnOf(watch.function),
      Principal: 'events.amazonaws.com',
      SourceArn: arnOf(watch.rule),
    });
  });

  it('runs the workflow-ended handler with the table, bucket and @connections endpoint', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 60,
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'workflow-ended',
          DOWNLOAD_TABLE: ref(stack.asyncPath.table),
          DOWNLOAD_BUCKET: ref(stack.asyncPath.bucket),
          WEBSOCKET_MANAGEMENT_URL: Match.anyValue(),
        }),
      },
    });
  });

  it('grants the watcher only what settling a download takes, scoped like mark-failed', () => {
    const watch = stack.asyncPath.workflowWatch;
    const bucketArn = arnOf(stack.asyncPath.bucket);
    const statements = statementsOf(template, stack, watch.function);

    expect(actionsOf(statements)).toEqual([
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
      'execute-api:ManageConnections',
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:ListBucket',
      's3:ListBucketMultipartUploads',
      'sqs:SendMessage',
    ]);
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        Resource: arnOf(stack.asyncPath.table),
      }),
    );
    // Posting only: no GET or DELETE on the connections.
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 'execute-api:ManageConnections',
        Resource: {
          'Fn::Join': ['', expect.arrayContaining(['/live/POST/@connections/*'])],
        },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['downloads/*'] } },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['s3:AbortMultipartUpload', 's3:DeleteObject'],
        Resource: { 'Fn::Join': ['', [bucketArn, '/downloads/*']] },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({ Action: 'sqs:SendMessage', Resource: arnOf(watch.deadLetterQueue) }),
    );
    for (const statement of statements) expect(statement.Resource).not.toBe('*');
  });

  it("sends the notifier's and the watcher's failed asynchronous events to the dead-letter queue", () => {
    const watch = stack.asyncPath.workflowWatch;
    for (const fn of [stack.asyncPath.functions.notify, watch.function]) {
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: ref(fn),
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 7200,
        DestinationConfig: { OnFailure: { Destination: arnOf(watch.deadLetterQueue) } },
      });
    }
    expect(statementsOf(template, stack, stack.asyncPath.functions.notify)).toContainEqual(
      expect.objectContaining({ Action: 'sqs:SendMessage', Resource: arnOf(watch.deadLetterQueue) }),
    );
  });

  it('keeps dead letters 14 days, encrypted, TLS only, and alarms on the first one', () => {
    const watch = stack.asyncPath.workflowWatch;

    template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: 1_209_600,
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [ref(watch.deadLetterQueue)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          // EventBridge may put the events it could not deliver, for this rule only.
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': arnOf(watch.rule) } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalId(stack, watch.deadLetterQueue), 'QueueName'] },
        },
      ],
      Statistic: 'Maximum',
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it('keeps the workflow timeout of the definition the watcher reports on', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      DefinitionString: Match.objectLike({
        'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('"TimeoutSeconds":7200')])],
      }),
    });
  });
});
