import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import {
  type StepFunctionsService,
  startStepFunctions,
  type TaskHandler,
} from '../../local/step-functions.ts';

class UpstreamUnavailableError extends Error {
  override readonly name = 'UpstreamUnavailableError';
}
class UpstreamNotFoundError extends Error {
  override readonly name = 'UpstreamNotFoundError';
}

const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:downloads';
const lambdaInvoke = (functionName: string) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: {
    FunctionName: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    'Payload.$': '$',
  },
});

/** Fetch (Retry + Catch) → Choice → Publish → Succeed, or → Fail; the Catch branch records and fails. */
const definition = {
  StartAt: 'Fetch',
  States: {
    Fetch: {
      ...lambdaInvoke('fetch'),
      ResultSelector: { 'size.$': '$.Payload.size' },
      ResultPath: '$.fetched',
      Retry: [
        { ErrorEquals: ['UpstreamUnavailableError'], IntervalSeconds: 2, MaxAttempts: 2, BackoffRate: 2 },
      ],
      Catch: [{ ErrorEquals: ['UpstreamNotFoundError'], ResultPath: '$.error', Next: 'MarkFailed' }],
      Next: 'IsBigEnough',
    },
    IsBigEnough: {
      Type: 'Choice',
      Choices: [{ Variable: '$.fetched.size', NumericGreaterThan: 100, Next: 'Publish' }],
      Default: 'TooSmall',
    },
    TooSmall: { Type: 'Fail', Error: 'TooSmall', Cause: 'size at most 100 bytes' },
    Publish: {
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: {
        FunctionName: 'publish',
        Payload: { 'key.$': '$.key', 'size.$': '$.fetched.size', 'executionArn.$': '$$.Execution.Id' },
      },
      OutputPath: '$.Payload',
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
    MarkFailed: { ...lambdaInvoke('mark-failed'), ResultPath: null, Next: 'Failed' },
    Failed: { Type: 'Fail', Error: 'DownloadFailed', Cause: 'see the download record' },
  },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('startStepFunctions', () => {
  let sfn: StepFunctionsService;
  let client: SFNClient;
  const fetchCalls: Array<{ payload: unknown; at: number; functionName: string }> = [];
  const markFailedPayloads: unknown[] = [];
  let fetchBehaviour: TaskHandler;

  beforeAll(async () => {
    sfn = await startStepFunctions({
      port: 0,
      stateMachines: [
        {
          arn: STATE_MACHINE_ARN,
          definition,
          retryIntervalScale: 0.05,
          taskTimeoutsMs: { Fetch: 5_000 },
          taskHandlers: {
            Fetch: async (payload, context) => {
              fetchCalls.push({ payload, at: Date.now(), functionName: context.functionName });
              return fetchBehaviour(payload, context);
            },
            Publish: async (payload) => ({ published: payload }),
            MarkFailed: async (payload) => {
              markFailedPayloads.push(payload);
              return { recorded: true };
            },
          },
        },
      ],
    });
    client = new SFNClient({ endpoint: sfn.endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  });

  afterAll(async () => {
    client.destroy();
    await sfn.close();
  });

  beforeEach(() => {
    fetchCalls.length = 0;
    markFailedPayloads.length = 0;
  });

  const start = async (name: string, input: unknown) => {
    const { executionArn } = await client.send(
      new StartExecutionCommand({ stateMachineArn: STATE_MACHINE_ARN, name, input: JSON.stringify(input) }),
    );
    return executionArn!;
  };

  it('retries a named error with scaled intervals, then succeeds through Choice and a second task', async () => {
    let failuresLeft = 1;
    fetchBehaviour = async () => {
      if (failuresLeft-- > 0) throw new UpstreamUnavailableError('503 from upstream');
      return { size: 500 };
    };

    const executionArn = await start('retry-then-succeed', { key: 'a/b.bin' });
    expect(executionArn).toBe('arn:aws:states:us-east-1:000000000000:execution:downloads:retry-then-succeed');
    await sfn.waitForExecution(executionArn);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));

    expect(described.status).toBe('SUCCEEDED');
    expect(described.stateMachineArn).toBe(STATE_MACHINE_ARN);
    expect(described.startDate).toBeInstanceOf(Date);
    expect(described.stopDate).toBeInstanceOf(Date);
    expect(JSON.parse(described.output!)).toEqual({
      published: { key: 'a/b.bin', size: 500, executionArn },
    });
    expect(fetchCalls).toHaveLength(2);
    expect(fetchCalls[0]!.payload).toEqual({ key: 'a/b.bin' });
    expect(fetchCalls[0]!.functionName).toBe('fetch');
    // IntervalSeconds 2 × 0.05 = 100 ms instead of 2 s.
    const waited = fetchCalls[1]!.at - fetchCalls[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(90);
    expect(waited).toBeLessThan(1_000);
  });

  it('routes a caught named error to the failure branch with Error and a Lambda-shaped Cause', async () => {
    fetchBehaviour = async () => {
      throw new UpstreamNotFoundError('upstream answered 404');
    };

    const executionArn = await start('caught', { key: 'missing.bin' });
    const finished = await sfn.waitForExecution(executionArn);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));

    expect(finished.status).toBe('FAILED');
    expect(described.status).toBe('FAILED');
    expect(described.error).toBe('DownloadFailed');
    expect(described.cause).toBe('see the download record');
    expect(fetchCalls).toHaveLength(1);
    const { error } = markFailedPayloads[0] as { error: { Error: string; Cause: string } };
    expect(error.Error).toBe('UpstreamNotFoundError');
    expect(JSON.parse(error.Cause)).toMatchObject({
      errorType: 'UpstreamNotFoundError',
      errorMessage: 'upstream answered 404',
    });
  });

  it('fails the execution with the error name once the retries are used up', async () => {
    fetchBehaviour = async () => {
      throw new UpstreamUnavailableError('still 503');
    };

    const executionArn = await start('retries-exhausted', { key: 'x' });
    await sfn.waitForExecution(executionArn);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));

    expect(described.status).toBe('FAILED');
    expect(described.error).toBe('UpstreamUnavailableError');
    expect(JSON.parse(described.cause!)).toMatchObject({ errorMessage: 'still 503' });
    expect(fetchCalls).toHaveLength(3);
  });

  it('takes the Choice default into a Fail state', async () => {
    fetchBehaviour = async () => ({ size: 10 });

    const executionArn = await start('too-small', { key: 'tiny' });
    await sfn.waitForExecution(executionArn);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));

    expect(described.status).toBe('FAILED');
    expect(described.error).toBe('TooSmall');
    expect(described.cause).toBe('size at most 100 bytes');
  });

  it('stops a running execution: ABORTED, and no task runs after the stop', async () => {
    fetchBehaviour = async () => {
      await sleep(150);
      throw new UpstreamUnavailableError('slow failure');
    };

    const executionArn = await start('stopped', { key: 'slow' });
    await sleep(20);
    const running = await client.send(new DescribeExecutionCommand({ executionArn }));
    const stopped = await client.send(new StopExecutionCommand({ executionArn, error: 'UserCancelled' }));
    await sleep(400);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));

    expect(running.status).toBe('RUNNING');
    expect(stopped.stopDate).toBeInstanceOf(Date);
    expect(described.status).toBe('ABORTED');
    expect(described.error).toBe('UserCancelled');
    expect(fetchCalls).toHaveLength(1);
  });

  it('refuses an operation nothing in the product sends (ListExecutions)', async () => {
    const error = await client
      .send(new ListExecutionsCommand({ stateMachineArn: STATE_MACHINE_ARN }))
      .catch((e: unknown) => e);

    expect((error as Error).name).toBe('UnknownOperationException');
  });

  it('is idempotent for the same name and input while running, and refuses another input', async () => {
    fetchBehaviour = async () => {
      await sleep(100);
      return { size: 500 };
    };

    const first = await start('same-name', { key: 'k' });
    const again = await start('same-name', { key: 'k' });
    const conflict = await start('same-name', { key: 'other' }).catch((e: unknown) => e);
    await sfn.waitForExecution(first);
    const afterEnd = await start('same-name', { key: 'k' }).catch((e: unknown) => e);

    expect(again).toBe(first);
    expect((conflict as Error).name).toBe('ExecutionAlreadyExists');
    expect((afterEnd as Error).name).toBe('ExecutionAlreadyExists');
  });

  it('answers unknown state machines and executions with the API errors', async () => {
    const unknownMachine = await client
      .send(
        new StartExecutionCommand({
          stateMachineArn: 'arn:aws:states:us-east-1:000000000000:stateMachine:nope',
          input: '{}',
        }),
      )
      .catch((e: unknown) => e);
    const unknownExecution = await client
      .send(
        new DescribeExecutionCommand({
          executionArn: 'arn:aws:states:us-east-1:000000000000:execution:downloads:nope',
        }),
      )
      .catch((e: unknown) => e);
    const badInput = await client
      .send(new StartExecutionCommand({ stateMachineArn: STATE_MACHINE_ARN, input: '{not json' }))
      .catch((e: unknown) => e);

    expect((unknownMachine as Error).name).toBe('StateMachineDoesNotExist');
    expect((unknownMachine as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
    expect((unknownExecution as Error).name).toBe('ExecutionDoesNotExist');
    expect((badInput as Error).name).toBe('InvalidExecutionInput');
  });
});

describe('startStepFunctions configuration', () => {
  it('refuses a definition whose Task states have no handler, naming them', async () => {
    await expect(
      startStepFunctions({
        port: 0,
        stateMachines: [{ arn: STATE_MACHINE_ARN, definition, taskHandlers: { Fetch: async () => ({}) } }],
      }),
    ).rejects.toThrow(/no task handler for Publish, MarkFailed/);
  });

  it('refuses an invalid definition', async () => {
    await expect(
      startStepFunctions({
        port: 0,
        stateMachines: [
          { arn: STATE_MACHINE_ARN, definition: { StartAt: 'Nowhere', States: {} }, taskHandlers: {} },
        ],
      }),
    ).rejects.toThrow(/invalid/);
  });

  it('fails a task whose result exceeds the 256 KiB state payload limit', async () => {
    const sfn = await startStepFunctions({
      port: 0,
      stateMachines: [
        {
          arn: STATE_MACHINE_ARN,
          definition: { StartAt: 'Big', States: { Big: { ...lambdaInvoke('big'), End: true } } },
          taskHandlers: { Big: async () => 'x'.repeat(300 * 1024) },
        },
      ],
    });
    const client = new SFNClient({
      endpoint: sfn.endpoint,
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
    });
    try {
      const { executionArn } = await client.send(
        new StartExecutionCommand({ stateMachineArn: STATE_MACHINE_ARN }),
      );
      const finished = await sfn.waitForExecution(executionArn!);

      expect(finished.status).toBe('FAILED');
      expect(finished.error).toBe('States.DataLimitExceeded');
    } finally {
      client.destroy();
      await sfn.close();
    }
  });
});
