import { Duration, Validations } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type EventPattern, Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IDestination, IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  ENDED_EXECUTION_STATUSES,
  EXECUTION_EVENT_SOURCE,
  EXECUTION_STATUS_CHANGE,
} from '../shared/downloads/execution-events.ts';
import { ENV } from '../shared/env-names.ts';
import { DownloadFunction, type FunctionDefaults } from './functions.ts';
import { grantConnectionsApi, grantOnWildcardResources } from './grants.ts';

/**
 * The EventBridge pattern of the watcher's rule: the state machine's executions that ended
 * TIMED_OUT, ABORTED or FAILED. The local stack routes its emulated status changes with the same
 * pattern.
 */
export function workflowEndedEventPattern(stateMachineArn: string): EventPattern {
  return {
    source: [EXECUTION_EVENT_SOURCE],
    detailType: [EXECUTION_STATUS_CHANGE],
    detail: { stateMachineArn: [stateMachineArn], status: [...ENDED_EXECUTION_STATUSES] },
  };
}

/**
 * An SQS on-failure destination that grants the function `sqs:SendMessage` only, all Lambda needs
 * to deliver to it (the CDK's `SqsDestination` also grants `GetQueueAttributes` and `GetQueueUrl`).
 */
function sendOnlyQueueDestination(queue: IQueue): IDestination {
  return {
    bind(_scope, fn) {
      queue.grant(fn, 'sqs:SendMessage');
      return { destination: queue.queueArn };
    },
  };
}

/** How long a failed asynchronous event stays in the dead-letter queue (SQS's maximum). */
export const DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * Events older than this are not worth retrying: a WebSocket connection lives at most 2 hours, and
 * a record left RUNNING that long is better looked at by hand (the dead-letter queue has it).
 */
const MAX_EVENT_AGE = Duration.hours(2);

export interface WorkflowWatchProps {
  readonly stateMachine: IStateMachine;
  readonly table: ITable;
  readonly bucket: IBucket;
  /** Key prefix of the copied files (`downloads/`); the cleanup's S3 grants are scoped to it. */
  readonly objectPrefix: string;
  /** The WebSocket stage whose `@connections` API the watcher posts `failed` messages to. */
  readonly webSocketStage: WebSocketStage;
  /**
   * The notifier, which `$connect` invokes asynchronously: its failed events (after Lambda's two
   * retries) go to the same dead-letter queue.
   */
  readonly notifier: IFunction;
  readonly defaults: FunctionDefaults;
}

/**
 * Watches the download workflow from outside, for the endings no state inside it can catch: an
 * EventBridge rule on the state machine's "Step Functions Execution Status Change" events
 * (TIMED_OUT, ABORTED, FAILED) invokes the `workflow-ended` function, which marks a download its
 * execution left PENDING/RUNNING as FAILED, posts `failed` to its client and removes its S3
 * leftovers (as `MarkFailed` does). FAILED also covers `MarkFailed` failing itself.
 *
 * Asynchronous work that still fails lands in one SQS dead-letter queue, with an alarm on it: the
 * rule's target (events EventBridge could not deliver), the watcher (events it failed on after
 * Lambda's retries) and the notifier (deliveries after `$connect` that failed after its retries).
 */
export class WorkflowWatch extends Construct {
  readonly function: DownloadFunction;
  readonly rule: Rule;
  /** Failed asynchronous events of the watcher and the notifier, kept `DEAD_LETTER_RETENTION`. */
  readonly deadLetterQueue: Queue;
  /** In alarm while the dead-letter queue holds any message; add an action (SNS) to be told. */
  readonly deadLetterAlarm: Alarm;

  constructor(scope: Construct, id: string, props: WorkflowWatchProps) {
    super(scope, id);
    const objects = props.bucket.arnForObjects(`${props.objectPrefix}*`);

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      retentionPeriod: DEAD_LETTER_RETENTION,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    // cdk-nag recognises a queue as a DLQ only from another queue's redrive policy.
    const deadLetterReason =
      'This is the dead-letter queue (Lambda on-failure destination, EventBridge target DLQ); a DLQ of its own would only move its messages';
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason: deadLetterReason },
      { id: 'Serverless-SQSRedrivePolicy', reason: deadLetterReason },
    );
    this.deadLetterAlarm = new Alarm(this, 'DeadLetterAlarm', {
      alarmDescription:
        'An asynchronous download event (workflow-ended watcher or notifier) failed for good; see the dead-letter queue.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const onFailure = sendOnlyQueueDestination(this.deadLetterQueue);

    this.function = new DownloadFunction(this, 'WorkflowEndedFunction', {
      folder: 'workflow-ended',
      description: 'Marks a download FAILED when its execution timed out, was stopped or failed unhandled.',
      environment: {
        [ENV.downloadTable]: props.table.tableName,
        [ENV.downloadBucket]: props.bucket.bucketName,
        [ENV.webSocketManagementUrl]: props.webSocketStage.callbackUrl,
      },
      timeout: Duration.minutes(1),
      defaults: props.defaults,
    });
    // The same grants as `MarkFailed` (same job), plus GetItem to tell a settled download's status.
    props.table.grant(this.function, 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:ListBucketMultipartUploads'],
        resources: [props.bucket.bucketArn],
      }),
    );
    this.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${props.objectPrefix}*`] } },
      }),
    );
    grantOnWildcardResources(
      this.function,
      ['s3:AbortMultipartUpload', 's3:DeleteObject'],
      [objects],
      `Object keys are per download and known only at run time; scoped to ${props.objectPrefix}`,
    );
    grantConnectionsApi(this.function, props.webSocketStage, 'POST');
    this.function.configureAsyncInvoke({ onFailure, retryAttempts: 2, maxEventAge: MAX_EVENT_AGE });
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'EventBridge invokes it asynchronously; failed events go to an on-failure destination (the dead-letter queue), which replaces a DLQ',
    });

    this.rule = new Rule(this, 'ExecutionEndedRule', {
      description: 'Download workflow executions that timed out, were stopped or failed.',
      eventPattern: workflowEndedEventPattern(props.stateMachine.stateMachineArn),
      targets: [
        new LambdaFunction(this.function, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 8,
          maxEventAge: MAX_EVENT_AGE,
        }),
      ],
    });

    props.notifier.configureAsyncInvoke({ onFailure, retryAttempts: 2, maxEventAge: MAX_EVENT_AGE });
  }
}
