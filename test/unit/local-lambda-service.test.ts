import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalContext,
  functionNameOf,
  type LambdaService,
  type LocalContext,
  startLambdaService,
} from '../../local/lambda-service.ts';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';

class UpstreamUnavailableError extends Error {
  override readonly name = 'UpstreamUnavailableError';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
describe('createLocalContext', () => {
  it('counts the remaining time down from the timeout and gives each invocation its own request id', async () => {
    const first = createLocalContext('notify', 1_000);
    const second = createLocalContext('notify', 1_000);
    await sleep(30);
    expect(first.getRemainingTimeInMillis()).toBeLessThanOrEqual(975);
    expect(first.getRemainingTimeInMillis()).toBeGreaterThan(500);
    expect(first.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.awsRequestId).not.toBe(second.awsRequestId);
    expect(first.invokedFunctionArn).toMatch(/^arn:aws:lambda:[^:]+:\d{12}:function:notify$/);
    expect(createLocalContext('x', 0).getRemainingTimeInMillis()).toBe(0);
  });

  it('finds the function name in names, partial ARNs and ARNs with qualifiers', () => {
    expect(functionNameOf('notify')).toBe('notify');
    expect(functionNameOf('notify:live')).toBe('notify');
    expect(functionNameOf('123456789012:function:notify')).toBe('notify');
    expect(functionNameOf('arn:aws:lambda:eu-west-1:123456789012:function:notify:7')).toBe('notify');
  });
});

describe('startLambdaService', () => {
  let service: LambdaService;
  let client: LambdaClient;
  const calls: Array<{ event: unknown; context: LocalContext }> = [];
  let flakyFailuresLeft = 0;
  let alwaysFailingCalls = 0;
  let slowCalls = 0;

  beforeAll(async () => {
    service = await startLambdaService({
      port: 0,
      asyncRetryDelaysMs: [10, 20],
      functions: {
        echo: {
          timeoutMs: 3_000,
          handler: async (event, context) => {
            calls.push({ event, context });
            return {
              echoed: event,
              functionName: context.functionName,
              remaining: context.getRemainingTimeInMillis(),
            };
          },
        },
        slow: {
          timeoutMs: 50,
          handler: async () => {
            slowCalls += 1;
            await sleep(300);
            return 'late';
          },
        },
        flaky: {
          timeoutMs: 3_000,
          handler: async (event, context) => {
            calls.push({ event, context });
            if (flakyFailuresLeft > 0) {
              flakyFailuresLeft -= 1;
              throw new UpstreamUnavailableError('not yet');
            }
            return 'done';
          },
        },
        alwaysFailing: {
          timeoutMs: 3_000,
          handler: async () => {
            alwaysFailingCalls += 1;
            throw new Error('always');
          },
        },
      },
    });
    client = new LambdaClient({
      endpoint: service.endpoint,
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
    });
  });

  afterAll(async () => {
    client.destroy();
    await service.close();
  });

  it('runs an Event invocation with the event and a context counting down from the timeout', async () => {
    calls.length = 0;

    const response = await client.send(
      new InvokeCommand({
        FunctionName: 'echo',
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify({ downloadId: 'd1' })),
      }),
    );
    await service.idle();

    expect(response.StatusCode).toBe(202);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.event).toEqual({ downloadId: 'd1' });
    expect(calls[0]?.context.functionName).toBe('echo');
    expect(calls[0]?.context.getRemainingTimeInMillis()).toBeLessThanOrEqual(3_000);
  });

  it('accepts a function ARN and an empty payload (the handler sees {})', async () => {
    calls.length = 0;

    await client.send(
      new InvokeCommand({
        FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:echo',
        InvocationType: 'Event',
      }),
    );
    await service.idle();

    expect(calls.map((call) => call.event)).toEqual([{}]);
  });

  it.each(['RequestResponse', 'DryRun'] as const)(
    'refuses a %s invocation, which nothing in the product sends',
    async (invocationType) => {
      const error = await client
        .send(new InvokeCommand({ FunctionName: 'echo', InvocationType: invocationType }))
        .catch((e: unknown) => e);

      expect((error as Error).name).toBe('InvalidParameterValueException');
      expect((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
    },
  );

  it('counts a handler that outlives its timeout as a failure and retries it', async () => {
    slowCalls = 0;

    await client.send(new InvokeCommand({ FunctionName: 'slow', InvocationType: 'Event' }));
    await service.idle();

    expect(slowCalls).toBe(3);
  });

  it('answers an unknown function with ResourceNotFoundException', async () => {
    const error = await client
      .send(new InvokeCommand({ FunctionName: 'nope', InvocationType: 'Event' }))
      .catch((e: unknown) => e);

    expect((error as Error).name).toBe('ResourceNotFoundException');
    expect((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(404);
  });

  it('answers an Event invocation with 202 at once and retries a failing handler twice', async () => {
    calls.length = 0;
    flakyFailuresLeft = 2;

    const response = await client.send(
      new InvokeCommand({ FunctionName: 'flaky', InvocationType: 'Event', Payload: Buffer.from('{"n":1}') }),
    );
    expect(response.StatusCode).toBe(202);
    await service.idle();

    expect(calls.map((call) => call.event)).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }]);
    expect(new Set(calls.map((call) => call.context.awsRequestId)).size).toBe(3);
  });

  it('gives up on an Event invocation after the third failure', async () => {
    alwaysFailingCalls = 0;

    await client.send(new InvokeCommand({ FunctionName: 'alwaysFailing', InvocationType: 'Event' }));
    await service.idle();
    await sleep(50);

    expect(alwaysFailingCalls).toBe(3);
  });
});

describe('startLambdaService close()', () => {
  it('waits for a background invocation still running', async () => {
    let finished = false;
    const service = await startLambdaService({
      port: 0,
      functions: {
        notify: {
          timeoutMs: 1_000,
          handler: async () => {
            await sleep(100);
            finished = true;
          },
        },
      },
    });
    const client = new LambdaClient({
      endpoint: service.endpoint,
      region: 'us-east-1',
      credentials: LOCAL_CREDENTIALS,
    });
    await client.send(new InvokeCommand({ FunctionName: 'notify', InvocationType: 'Event' }));
    client.destroy();

    await service.close();

    expect(finished).toBe(true);
  });
});
