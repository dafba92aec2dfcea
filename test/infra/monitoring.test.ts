import { Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DownloadStack } from '../../infra/download-stack.ts';
import { DownloadFunction } from '../../infra/functions.ts';
import { logicalId, synthesize } from './template.ts';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:download-alarms';

describe('monitoring', () => {
  let stack: DownloadStack;
  let template: Template;
  let functions: DownloadFunction[];
  const ref = (construct: { node: { defaultChild?: unknown } }) => ({ Ref: logicalId(stack, construct) });
  const alarmsOn = (metricName: string, dimensions: unknown) =>
    Object.values(
      template.findResources('AWS::CloudWatch::Alarm', {
        Properties: { MetricName: metricName, Dimensions: dimensions },
      }),
    );

  beforeAll(() => {
    ({ stack, template } = synthesize());
    functions = stack.node.findAll().filter((c): c is DownloadFunction => c instanceof DownloadFunction);
  });

  it('alarms when a download workflow execution fails, times out or is aborted', () => {
    const stateMachine = [{ Name: 'StateMachineArn', Value: ref(stack.asyncPath.stateMachine) }];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'failed + timedOut + aborted', ReturnData: true }),
        ...['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'].map((metricName) =>
          Match.objectLike({
            MetricStat: Match.objectLike({
              Metric: { Namespace: 'AWS/States', MetricName: metricName, Dimensions: stateMachine },
              Period: 300,
              Stat: 'Sum',
            }),
            ReturnData: false,
          }),
        ),
      ]),
    });
  });

  it('alarms on 5xx answers of the REST stage', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5XXError',
      Dimensions: Match.arrayWith([
        { Name: 'ApiName', Value: 'TestStack-downloads' },
        { Name: 'Stage', Value: ref(stack.restApi.deploymentStage) },
      ]),
      Statistic: 'Sum',
      Period: 300,
      Threshold: 5,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it.each(['Errors', 'Throttles'])('alarms on %s of every function, one alarm each', (metricName) => {
    for (const fn of functions) {
      const alarms = alarmsOn(metricName, [{ Name: 'FunctionName', Value: ref(fn) }]);
      expect(alarms, fn.folder).toHaveLength(1);
      expect(alarms[0]?.Properties).toMatchObject({
        Namespace: 'AWS/Lambda',
        Threshold: 1,
        Statistic: 'Sum',
      });
    }
  });

  it('sends no alarm anywhere unless alarmTopicArn is set', () => {
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).toBeUndefined();
      expect(alarm.Properties.OKActions).toBeUndefined();
    }
  });

  it('builds one dashboard with the key metrics and outputs its name', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties.DashboardBody);
    for (const metric of [
      '5XXError',
      'Latency',
      'Count',
      'Duration',
      'Errors',
      'Throttles',
      'ConcurrentExecutions',
      'ExecutionsStarted',
      'ExecutionsSucceeded',
      'ExecutionsFailed',
      'ExecutionTime',
      'ConnectCount',
      'MessageCount',
    ]) {
      expect(body).toContain(`\\"${metric}\\"`);
    }
    expect(body).toContain('\\"type\\":\\"alarm\\"');
    template.hasOutput('DashboardName', {
      Value: { Ref: logicalId(stack, stack.monitoring.dashboard as never) },
    });
  });
});

describe('monitoring with alarmTopicArn', () => {
  it('sends every alarm of the stack, the others’ too, to the topic, on ALARM and on OK', () => {
    const { template } = synthesize({ alarmTopicArn: TOPIC_ARN });

    const alarms = Object.entries(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThan(2);
    for (const [id, alarm] of alarms) {
      expect(alarm.Properties, id).toMatchObject({ AlarmActions: [TOPIC_ARN], OKActions: [TOPIC_ARN] });
    }
  });
});
