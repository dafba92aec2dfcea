import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  placeholderFunctionArn,
  type SynthesizedStateMachine,
  synthesizeStateMachineDefinition,
} from '../../infra/local-definition.ts';
import { FETCH_RETRYABLE_ERRORS, STATE_NAMES } from '../../infra/state-machine-definition.ts';
import { RETRYABLE_ERROR_NAMES } from '../../shared/errors.ts';

interface AslValidationResult {
  isValid: boolean;
  errorsText: (separator?: string) => string;
}
// asl-validator 4 is CommonJS without type declarations.
const validateAsl = createRequire(import.meta.url)('asl-validator') as (
  definition: object,
  options?: { checkPaths?: boolean; checkArn?: boolean },
) => AslValidationResult;

const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
];

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Retry?: { ErrorEquals: string[]; IntervalSeconds?: number; MaxAttempts?: number; BackoffRate?: number }[];
  Catch?: { ErrorEquals: string[]; Next: string; ResultPath?: string | null }[];
};

describe('state machine definition', () => {
  let synthesized: SynthesizedStateMachine;
  const state = (name: string): State => synthesized.definition.States[name] as State;

  beforeAll(() => {
    synthesized = synthesizeStateMachineDefinition();
  });

  it('is valid Amazon States Language', () => {
    // The validator adds defaults to what it checks; give it a copy.
    const result = validateAsl(structuredClone(synthesized.definition), { checkPaths: true, checkArn: true });

    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('resolves every CloudFormation intrinsic', () => {
    const json = JSON.stringify(synthesized.definition);

    expect(json).not.toMatch(/Fn::|"Ref"|\$\{Token/);
  });

  it('has exactly the states the local stack maps by name', () => {
    const map = state('CopyRanges') as unknown as { ItemProcessor: { States: Record<string, unknown> } };
    const names = [...Object.keys(synthesized.definition.States), ...Object.keys(map.ItemProcessor.States)];

    expect(synthesized.definition.StartAt).toBe('PlanCopy');
    expect(names.sort()).toEqual(Object.values(STATE_NAMES).sort());
    expect(synthesized.definition.TimeoutSeconds).toBe(7200);
  });

  it('maps each Task state to its functions/ folder through placeholder ARNs', () => {
    expect(synthesized.taskStates).toEqual({
      PlanCopy: 'plan-copy',
      CopyRange: 'copy-range',
      CompleteCopy: 'complete-copy',
      FetchToS3: 'fetch-to-s3',
      Presign: 'presign',
      MarkReady: 'mark-ready',
      Notify: 'notify',
      MarkFailed: 'mark-failed',
    });
    const copyRanges = state('CopyRanges') as unknown as { ItemProcessor: { States: Record<string, State> } };
    const anyState = (name: string) => state(name) ?? copyRanges.ItemProcessor.States[name];
    for (const [name, folder] of Object.entries(synthesized.taskStates)) {
      expect(anyState(name)).toMatchObject({
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke',
        Parameters: { FunctionName: placeholderFunctionArn(folder) },
      });
    }
  });

  it('honours the requested region and account in the placeholder ARNs', () => {
    const other = synthesizeStateMachineDefinition({ region: 'eu-west-1', accountId: '123456789012' });

    expect(other.functionArns.presign).toBe('arn:aws:lambda:eu-west-1:123456789012:function:presign');
    expect(other.definition.States.Presign).toMatchObject({
      Parameters: { FunctionName: other.functionArns.presign },
    });
  });

  it('runs FetchToS3 → Presign → MarkReady → HasConnection, each result in its own field', () => {
    expect(state('FetchToS3')).toMatchObject({
      Next: 'Presign',
      ResultPath: '$.object',
      Parameters: { 'Payload.$': '$' },
      ResultSelector: {
        'bucket.$': '$.Payload.bucket',
        'objectKey.$': '$.Payload.objectKey',
        'size.$': '$.Payload.size',
        'contentType.$': '$.Payload.contentType',
        'fileName.$': '$.Payload.fileName',
      },
    });
    expect(state('Presign')).toMatchObject({
      Next: 'MarkReady',
      ResultPath: '$.presigned',
      ResultSelector: { 'url.$': '$.Payload.url', 'expiresAt.$': '$.Payload.expiresAt' },
    });
    expect(state('MarkReady')).toMatchObject({
      Next: 'HasConnection',
      ResultPath: '$.ready',
      ResultSelector: { 'connectionId.$': '$.Payload.connectionId' },
    });
  });

  it('retries FetchToS3 on the named upstream and S3 errors, after the Lambda service errors', () => {
    // Built from the error catalogue's `retryable` entries; the list itself is the behaviour pinned.
    expect(FETCH_RETRYABLE_ERRORS).toEqual(RETRYABLE_ERROR_NAMES);
    expect(FETCH_RETRYABLE_ERRORS).toEqual([
      'UpstreamUnavailableError',
      'UpstreamTimeoutError',
      'S3UploadError',
    ]);
    expect(state('FetchToS3').Retry).toEqual([
      expect.objectContaining({ ErrorEquals: LAMBDA_SERVICE_ERRORS }),
      { ErrorEquals: FETCH_RETRYABLE_ERRORS, IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2 },
    ]);
    for (const name of ['Presign', 'MarkReady', 'Notify', 'MarkFailed']) {
      expect(state(name).Retry, name).toEqual([
        expect.objectContaining({ ErrorEquals: LAMBDA_SERVICE_ERRORS }),
      ]);
    }
  });

  it('plans the copy first, then copies in parallel ranges or as one stream', () => {
    expect(state('PlanCopy')).toMatchObject({
      Next: 'CopyMode',
      ResultPath: '$.plan',
      Parameters: { 'Payload.$': '$' },
      ResultSelector: {
        'mode.$': '$.Payload.mode',
        'reason.$': '$.Payload.reason',
        'copy.$': '$.Payload.copy',
        'ranges.$': '$.Payload.ranges',
        'concurrency.$': '$.Payload.concurrency',
      },
    });
    expect(state('CopyMode')).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.plan.mode', StringEquals: 'parallel', Next: 'CopyRanges' }],
      Default: 'FetchToS3',
    });
    expect(state('CompleteCopy')).toMatchObject({
      Next: 'Presign',
      ResultPath: '$.object',
      ResultSelector: state('FetchToS3').ResultSelector,
      Parameters: {
        Payload: { 'downloadId.$': '$.downloadId', 'copy.$': '$.plan.copy', 'ranges.$': '$.copied' },
      },
    });
  });

  it('copies every range in a Map whose concurrency the plan sets, looping a worker until its range is done', () => {
    const map = state('CopyRanges') as State & {
      ItemProcessor: { StartAt: string; States: Record<string, State>; ProcessorConfig?: { Mode: string } };
    };

    expect(map).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.plan.ranges',
      MaxConcurrencyPath: '$.plan.concurrency',
      ItemSelector: {
        'downloadId.$': '$.downloadId',
        'copy.$': '$.plan.copy',
        'range.$': '$$.Map.Item.Value',
      },
      ResultPath: '$.copied',
      Next: 'CompleteCopy',
    });
    expect(map.ItemProcessor.ProcessorConfig?.Mode ?? 'INLINE').toBe('INLINE');
    expect(map.ItemProcessor.StartAt).toBe('CopyRange');
    expect(map.ItemProcessor.States.CopyRange).toMatchObject({
      Next: 'RangeCopied',
      OutputPath: '$.Payload',
      Parameters: { 'Payload.$': '$' },
    });
    expect(map.ItemProcessor.States.CopyRange?.Retry).toEqual([
      expect.objectContaining({ ErrorEquals: LAMBDA_SERVICE_ERRORS }),
      { ErrorEquals: FETCH_RETRYABLE_ERRORS, IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2 },
      {
        ErrorEquals: ['Lambda.TooManyRequestsException'],
        IntervalSeconds: 5,
        MaxAttempts: 6,
        BackoffRate: 2,
      },
    ]);
    expect(map.ItemProcessor.States.RangeCopied).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.done', BooleanEquals: true, Next: 'RangeDone' }],
      Default: 'CopyRange',
    });
    expect(map.ItemProcessor.States.RangeDone).toEqual({ Type: 'Succeed' });
    expect(state('CompleteCopy').Retry).toEqual([
      expect.objectContaining({ ErrorEquals: LAMBDA_SERVICE_ERRORS }),
      { ErrorEquals: ['S3UploadError'], IntervalSeconds: 2, MaxAttempts: 3, BackoffRate: 2 },
    ]);
  });

  it.each(['PlanCopy', 'CopyRanges', 'CompleteCopy', 'FetchToS3', 'Presign', 'MarkReady'])(
    'sends every failure of %s to MarkFailed with the error',
    (name) => {
      expect(state(name).Catch).toEqual([
        { ErrorEquals: ['States.ALL'], Next: 'MarkFailed', ResultPath: '$.error' },
      ]);
    },
  );

  it('notifies only when MarkReady returned a connection id string', () => {
    expect(state('HasConnection')).toEqual({
      Type: 'Choice',
      Choices: [
        {
          And: [
            { Variable: '$.ready.connectionId', IsPresent: true },
            { Variable: '$.ready.connectionId', IsString: true },
          ],
          Next: 'Notify',
        },
      ],
      Default: 'Done',
    });
  });

  it('never fails a ready download because the notification failed', () => {
    expect(state('Notify')).toMatchObject({
      Next: 'Done',
      ResultPath: null,
      Parameters: { Payload: { 'downloadId.$': '$.downloadId', 'connectionId.$': '$.ready.connectionId' } },
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Done', ResultPath: '$.notifyError' }],
    });
    expect(state('Done')).toEqual({ Type: 'Succeed' });
  });

  it('records a failure, then fails the execution with DownloadFailed', () => {
    expect(state('MarkFailed')).toMatchObject({
      Next: 'DownloadFailed',
      ResultPath: null,
      Parameters: { Payload: { 'downloadId.$': '$.downloadId', 'error.$': '$.error' } },
    });
    expect(state('MarkFailed').Catch).toBeUndefined();
    expect(state('DownloadFailed')).toEqual({
      Type: 'Fail',
      Error: 'DownloadFailed',
      Cause: 'see the download record',
    });
  });
});
