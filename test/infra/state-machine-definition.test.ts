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
    expect(synthesized.definition.StartAt).toBe('FetchToS3');
    expect(Object.keys(synthesized.definition.States).sort()).toEqual(Object.values(STATE_NAMES).sort());
    expect(synthesized.definition.TimeoutSeconds).toBe(7200);
  });

  it('maps each Task state to its functions/ folder through placeholder ARNs', () => {
    expect(synthesized.taskStates).toEqual({
      FetchToS3: 'fetch-to-s3',
      Presign: 'presign',
      MarkReady: 'mark-ready',
      Notify: 'notify',
      MarkFailed: 'mark-failed',
    });
    for (const [name, folder] of Object.entries(synthesized.taskStates)) {
      expect(state(name)).toMatchObject({
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

  it.each(['FetchToS3', 'Presign', 'MarkReady'])(
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
