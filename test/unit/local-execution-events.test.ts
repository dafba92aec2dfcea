import { SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEventBus, type LocalEvent, matchesEventPattern } from '../../local/event-bus.ts';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import { type StepFunctionsService, startStepFunctions } from '../../local/step-functions.ts';
import type { ExecutionStatusChangeEvent } from '../../shared/downloads/execution-events.ts';

const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:downloads';
const OTHER_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:other';

class UpstreamNotFoundError extends Error {
  override readonly name = 'UpstreamNotFoundError';
}

/** Work (slow, or failing) then Succeed; no Catch, so a failure fails the execution. */
const definition = {
  StartAt: 'Work',
  TimeoutSeconds: 3600,
  States: {
    Work: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: 'work', 'Payload.$': '$' },
      ResultPath: null,
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
  },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('local Step Functions status change events', () => {
  let sfn: StepFunctionsService;
  let client: SFNClient;
  const events: ExecutionStatusChangeEvent[] = [];

  beforeAll(async () => {
    const work = async (payload: unknown) => {
      const { sleepMs = 0, fail = false } = payload as { sleepMs?: number; fail?: boolean };
      await sleep(sleepMs);
      if (fail) throw new UpstreamNotFoundError('no such file');
      return {};
    };
    sfn = await startStepFunctions({
      port: 0,
      stateMachines: [
        { arn: STATE_MACHINE_ARN, definition, taskHandlers: { Work: work } },
        // The same definition, its execution timeout replaced by the local test knob.
        { arn: OTHER_MACHINE_ARN, definition, taskHandlers: { Work: work }, executionTimeoutSeconds: 1 },
      ],
      onStatusChange: (event) => events.push(event),
    });
    client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  });

  afterAll(async () => {
    client?.destroy();
    await sfn?.close();
  });

  beforeEach(() => {
    events.length = 0;
  });

  const start = async (name: string, input: unknown, stateMachineArn = STATE_MACHINE_ARN) => {
    const { executionArn } = await client.send(
      new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
    );
    return executionArn as string;
  };
  const statuses = (executionArn: string) =>
    events.filter((event) => event.detail.executionArn === executionArn).map((event) => event.detail.status);

  it('sends RUNNING, then SUCCEEDED, shaped like the EventBridge event (dates in epoch ms)', async () => {
    const executionArn = await start('succeeds', {});
    await sfn.waitForExecution(executionArn);

    expect(statuses(executionArn)).toEqual(['RUNNING', 'SUCCEEDED']);
    const [, succeeded] = events;
    expect(succeeded).toMatchObject({
      version: '0',
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      account: '000000000000',
      region: 'us-east-1',
      resources: [executionArn],
      detail: {
        executionArn,
        stateMachineArn: STATE_MACHINE_ARN,
        name: 'succeeds',
        status: 'SUCCEEDED',
        input: '{}',
        output: '{}',
      },
    });
    expect(succeeded?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(succeeded?.detail.stopDate).toBeGreaterThanOrEqual(succeeded?.detail.startDate as number);
    expect(succeeded?.detail.startDate).toBeGreaterThan(1e12);
  });

  it('sends ABORTED after StopExecution, with the error and cause given to the stop', async () => {
    const executionArn = await start('stopped', { sleepMs: 5_000 });
    await client.send(new StopExecutionCommand({ executionArn, error: 'Cancelled', cause: 'by a test' }));
    await sfn.waitForExecution(executionArn);

    expect(statuses(executionArn)).toEqual(['RUNNING', 'ABORTED']);
    expect(events.at(-1)?.detail).toMatchObject({ error: 'Cancelled', cause: 'by a test', output: null });
  });

  it('sends FAILED with the error that failed the execution', async () => {
    const executionArn = await start('fails', { fail: true });
    await sfn.waitForExecution(executionArn);

    expect(statuses(executionArn)).toEqual(['RUNNING', 'FAILED']);
    expect(events.at(-1)?.detail).toMatchObject({ status: 'FAILED', error: 'UpstreamNotFoundError' });
  });

  it('honours the execution timeout, replaced by the local knob, and sends TIMED_OUT', async () => {
    const started = Date.now();
    const executionArn = await start('times-out', { sleepMs: 5_000 }, OTHER_MACHINE_ARN);
    const described = await sfn.waitForExecution(executionArn);

    expect(described).toMatchObject({ status: 'TIMED_OUT', error: 'States.Timeout' });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(statuses(executionArn)).toEqual(['RUNNING', 'TIMED_OUT']);
  });
});

describe('local EventBridge bus', () => {
  // The watcher rule's pattern as the synthesized template carries it (the local stack reads it there).
  const pattern = {
    source: ['aws.states'],
    'detail-type': ['Step Functions Execution Status Change'],
    detail: { stateMachineArn: [STATE_MACHINE_ARN], status: ['TIMED_OUT', 'ABORTED', 'FAILED'] },
  };
  const event = (status: string, stateMachineArn = STATE_MACHINE_ARN) => ({
    source: 'aws.states',
    'detail-type': 'Step Functions Execution Status Change',
    detail: { stateMachineArn, status, name: 'x' },
  });

  it.each([
    ['TIMED_OUT', STATE_MACHINE_ARN, true],
    ['ABORTED', STATE_MACHINE_ARN, true],
    ['FAILED', STATE_MACHINE_ARN, true],
    ['SUCCEEDED', STATE_MACHINE_ARN, false],
    ['RUNNING', STATE_MACHINE_ARN, false],
    ['ABORTED', OTHER_MACHINE_ARN, false],
  ])('matches %s of %s: %s', (status, arn, expected) => {
    expect(matchesEventPattern(pattern, event(status, arn))).toBe(expected);
  });

  it('does not match an event that lacks a field the pattern names', () => {
    expect(matchesEventPattern(pattern, { source: 'aws.states', detail: { status: 'FAILED' } })).toBe(false);
  });

  it('hands only matching events to the target, and survives a failing target', async () => {
    const delivered: LocalEvent[] = [];
    let failNext = true;
    const bus = createEventBus({
      rules: [
        {
          name: 'watch',
          pattern,
          target: async (received) => {
            if (failNext) {
              failNext = false;
              throw new Error('target down');
            }
            delivered.push(received);
          },
        },
      ],
    });

    bus.put(event('FAILED'));
    bus.put(event('SUCCEEDED'));
    bus.put(event('ABORTED'));
    await bus.idle();

    expect(delivered).toEqual([event('ABORTED')]);
  });
});
