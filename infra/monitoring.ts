import { Duration, Stack } from 'aws-cdk-lib';
import type { Stage } from 'aws-cdk-lib/aws-apigateway';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  type Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { DownloadFunction } from './functions.ts';

/** Every alarm looks at sums over this period. */
export const ALARM_PERIOD = Duration.minutes(5);

/** The alarms' thresholds, per `ALARM_PERIOD`; the README's Operations section lists them. */
export const ALARM_THRESHOLDS = {
  /** Executions that failed, timed out or were aborted: each one is a download that did not arrive. */
  failedDownloads: 1,
  /** REST 5xx answers: 502/504 name an upstream failure, 503 a download that could not start, 500 a bug. */
  restServerErrors: 5,
  /** Invocations of one function that failed (an error thrown, a timeout, a runtime crash). */
  functionErrors: 1,
  /** Invocations of one function refused for lack of concurrency (account limit or reservation). */
  functionThrottles: 1,
} as const;

export interface MonitoringProps {
  /** The REST API's stage (`prod`). */
  readonly restStage: Stage;
  readonly webSocketStage: WebSocketStage;
  readonly stateMachine: StateMachine;
  /** Every function of the app; each gets an errors and a throttles alarm and a line on each Lambda graph. */
  readonly functions: readonly DownloadFunction[];
}

/**
 * CloudWatch alarms on what needs a person (failed downloads, REST 5xx, Lambda errors and
 * throttles) and one dashboard with the key metrics of every part: REST API, functions,
 * workflow, WebSocket API, and the state of every alarm in the stack. Alarms have no action
 * until `notifyAlarms` names an SNS topic.
 */
export class Monitoring extends Construct {
  readonly dashboard: Dashboard;
  /** The alarms this construct created. */
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const sum = { period: ALARM_PERIOD, statistic: 'Sum' };
    const alarmOn = (alarmId: string, metric: IMetric, threshold: number, description: string): Alarm => {
      const alarm = new Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      this.alarms.push(alarm);
      return alarm;
    };

    const { stateMachine, restStage, webSocketStage, functions } = props;
    const endedBadly = new MathExpression({
      label: 'failed + timed out + aborted',
      expression: 'failed + timedOut + aborted',
      usingMetrics: {
        failed: stateMachine.metricFailed(sum),
        timedOut: stateMachine.metricTimedOut(sum),
        aborted: stateMachine.metricAborted(sum),
      },
      period: ALARM_PERIOD,
    });
    alarmOn(
      'FailedDownloadsAlarm',
      endedBadly,
      ALARM_THRESHOLDS.failedDownloads,
      'Async downloads failed: executions of the download workflow failed, timed out or were aborted.',
    );
    alarmOn(
      'RestServerErrorsAlarm',
      restStage.metricServerError(sum),
      ALARM_THRESHOLDS.restServerErrors,
      'The REST API answered 5xx (upstream failing or timing out, downloads not starting, or a bug).',
    );
    for (const fn of functions) {
      const name = toPascalCase(fn.folder);
      alarmOn(
        `${name}ErrorsAlarm`,
        fn.metricErrors(sum),
        ALARM_THRESHOLDS.functionErrors,
        `The ${fn.folder} function failed (error, timeout or crash); see its log group.`,
      );
      alarmOn(
        `${name}ThrottlesAlarm`,
        fn.metricThrottles(sum),
        ALARM_THRESHOLDS.functionThrottles,
        `The ${fn.folder} function was throttled: the account's (or its reserved) concurrency is used up.`,
      );
    }

    const perFunction = (metric: (fn: DownloadFunction) => Metric): IMetric[] =>
      functions.map((fn) => metric(fn).with({ label: fn.folder }));
    const graph = (title: string, left: IMetric[], width = 8) =>
      new GraphWidget({ title, left, width, height: 6 });
    const minute = Duration.minutes(1);

    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      graph('REST requests and errors', [
        restStage.metricCount({ period: minute, statistic: 'Sum' }),
        restStage.metricClientError({ period: minute, statistic: 'Sum' }),
        restStage.metricServerError({ period: minute, statistic: 'Sum' }),
      ]),
      graph('REST latency (to the first byte of a streamed body)', [
        restStage.metricLatency({ period: minute, statistic: 'p50' }),
        restStage.metricLatency({ period: minute, statistic: 'p99' }),
        restStage.metricIntegrationLatency({ period: minute, statistic: 'p99' }),
      ]),
      graph('WebSocket connections and messages', [
        webSocketStage.metric('ConnectCount', { period: minute, statistic: 'Sum' }),
        webSocketStage.metric('MessageCount', { period: minute, statistic: 'Sum' }),
        webSocketStage.metric('ClientError', { period: minute, statistic: 'Sum' }),
        webSocketStage.metric('IntegrationError', { period: minute, statistic: 'Sum' }),
        webSocketStage.metric('ExecutionError', { period: minute, statistic: 'Sum' }),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Lambda duration p99 (ms)',
        perFunction((fn) => fn.metricDuration({ period: minute, statistic: 'p99' })),
        6,
      ),
      graph(
        'Lambda errors',
        perFunction((fn) => fn.metricErrors({ period: minute, statistic: 'Sum' })),
        6,
      ),
      graph(
        'Lambda throttles',
        perFunction((fn) => fn.metricThrottles({ period: minute, statistic: 'Sum' })),
        6,
      ),
      graph(
        'Lambda concurrency (max)',
        perFunction((fn) => fn.metric('ConcurrentExecutions', { period: minute, statistic: 'Maximum' })),
        6,
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Download workflow executions',
        [
          stateMachine.metricStarted({ period: minute, statistic: 'Sum' }),
          stateMachine.metricSucceeded({ period: minute, statistic: 'Sum' }),
          stateMachine.metricFailed({ period: minute, statistic: 'Sum' }),
          stateMachine.metricTimedOut({ period: minute, statistic: 'Sum' }),
          stateMachine.metricAborted({ period: minute, statistic: 'Sum' }),
        ],
        12,
      ),
      graph(
        'Download workflow duration (ms)',
        [
          stateMachine.metricTime({ period: minute, statistic: 'p50' }),
          stateMachine.metricTime({ period: minute, statistic: 'p99' }),
        ],
        12,
      ),
    );
  }

  /**
   * Adds an alarm-status widget for `alarms` (every alarm of the stack, this construct's and
   * others') and, when `topicArn` is set, sends their ALARM and OK transitions to that SNS topic.
   */
  notifyAlarms(alarms: readonly Alarm[], topicArn: string): void {
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', alarms: [...alarms], width: 24, height: 4 }),
    );
    if (!topicArn) return;
    const action = new SnsAction(Topic.fromTopicArn(this, 'AlarmTopic', topicArn));
    for (const alarm of alarms) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
  }
}

/** `fetch-to-s3` → `FetchToS3`: construct ids of a function's alarms. */
function toPascalCase(folder: string): string {
  return folder
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** The stack's alarms, wherever they were created. */
export function alarmsOf(scope: Construct): Alarm[] {
  return Stack.of(scope)
    .node.findAll()
    .filter((construct): construct is Alarm => construct instanceof Alarm);
}
