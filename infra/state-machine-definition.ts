import { Duration } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  Choice,
  Condition,
  Errors,
  Fail,
  type IChainable,
  JsonPath,
  Succeed,
  TaskInput,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { RETRYABLE_ERROR_NAMES } from '../shared/errors.ts';

/**
 * State names of the async download workflow. The local stack maps Task states to handlers by
 * these names, so they are part of the contract: change them here only.
 */
export const STATE_NAMES = {
  fetchToS3: 'FetchToS3',
  presign: 'Presign',
  markReady: 'MarkReady',
  hasConnection: 'HasConnection',
  notify: 'Notify',
  done: 'Done',
  markFailed: 'MarkFailed',
  downloadFailed: 'DownloadFailed',
} as const;

/**
 * Errors thrown by `fetch-to-s3` that are worth another attempt: the `retryable` names of the
 * error catalogue (`ERRORS` in `shared/errors.ts`).
 */
export const FETCH_RETRYABLE_ERRORS: string[] = [...RETRYABLE_ERROR_NAMES];

/** The Lambda functions behind the workflow's Task states. */
export interface DownloadWorkflowFunctions {
  readonly fetchToS3: IFunction;
  readonly presign: IFunction;
  readonly markReady: IFunction;
  readonly notify: IFunction;
  readonly markFailed: IFunction;
}

/**
 * Builds the async download workflow. Execution input: `{ downloadId, key, query?, range? }`.
 *
 * Each task's `resultSelector` picks named fields from the function's answer, so every listed
 * field must be present in what the handler returns (`null` is fine, `undefined` is not: JSON
 * drops it and the state fails with `States.Runtime`).
 *
 * - `FetchToS3` → `$.object` `{ bucket, objectKey, size, contentType, fileName }`; retries the
 *   named upstream/S3 errors, every failure goes to `MarkFailed` with the error in `$.error`.
 * - `Presign` → `$.presigned` `{ url, expiresAt }`.
 * - `MarkReady` → `$.ready` `{ connectionId }` (a string, or `null` when no client is connected).
 * - `HasConnection` → `Notify` when `$.ready.connectionId` is a string, else `Done`.
 * - `Notify` posts the ready message; its failure never fails a ready download (→ `Done`).
 * - `MarkFailed` records the error, then the execution fails with `DownloadFailed`.
 */
export function buildDownloadDefinition(scope: Construct, functions: DownloadWorkflowFunctions): IChainable {
  const done = new Succeed(scope, STATE_NAMES.done);

  const markFailed = new LambdaInvoke(scope, STATE_NAMES.markFailed, {
    comment: 'Abort the multipart upload, record the failure and tell a connected client.',
    lambdaFunction: functions.markFailed,
    payload: TaskInput.fromObject({
      downloadId: JsonPath.stringAt('$.downloadId'),
      error: JsonPath.objectAt('$.error'),
    }),
    resultPath: JsonPath.DISCARD,
  }).next(
    new Fail(scope, STATE_NAMES.downloadFailed, {
      error: 'DownloadFailed',
      cause: 'see the download record',
    }),
  );
  const catchToMarkFailed = { errors: [Errors.ALL], resultPath: '$.error' };

  const fetchToS3 = new LambdaInvoke(scope, STATE_NAMES.fetchToS3, {
    comment: 'Stream the upstream body into an S3 multipart upload.',
    lambdaFunction: functions.fetchToS3,
    payload: TaskInput.fromJsonPathAt('$'),
    resultSelector: {
      bucket: JsonPath.stringAt('$.Payload.bucket'),
      objectKey: JsonPath.stringAt('$.Payload.objectKey'),
      size: JsonPath.numberAt('$.Payload.size'),
      contentType: JsonPath.stringAt('$.Payload.contentType'),
      fileName: JsonPath.stringAt('$.Payload.fileName'),
    },
    resultPath: '$.object',
  })
    .addRetry({
      errors: FETCH_RETRYABLE_ERRORS,
      interval: Duration.seconds(2),
      backoffRate: 2,
      maxAttempts: 3,
    })
    .addCatch(markFailed, catchToMarkFailed);

  const presign = new LambdaInvoke(scope, STATE_NAMES.presign, {
    comment: 'Presign a GET URL for the copied object.',
    lambdaFunction: functions.presign,
    payload: TaskInput.fromJsonPathAt('$'),
    resultSelector: {
      url: JsonPath.stringAt('$.Payload.url'),
      expiresAt: JsonPath.stringAt('$.Payload.expiresAt'),
    },
    resultPath: '$.presigned',
  }).addCatch(markFailed, catchToMarkFailed);

  const markReady = new LambdaInvoke(scope, STATE_NAMES.markReady, {
    comment: 'Store the URL on the download record; returns the connection to notify, if any.',
    lambdaFunction: functions.markReady,
    payload: TaskInput.fromJsonPathAt('$'),
    resultSelector: {
      connectionId: JsonPath.stringAt('$.Payload.connectionId'),
    },
    resultPath: '$.ready',
  }).addCatch(markFailed, catchToMarkFailed);

  const notify = new LambdaInvoke(scope, STATE_NAMES.notify, {
    comment: 'Post the ready message to the connected client.',
    lambdaFunction: functions.notify,
    payload: TaskInput.fromObject({
      downloadId: JsonPath.stringAt('$.downloadId'),
      connectionId: JsonPath.stringAt('$.ready.connectionId'),
    }),
    resultPath: JsonPath.DISCARD,
  })
    // The URL is stored already: a client that missed this message gets it on (re)connect.
    .addCatch(done, { errors: [Errors.ALL], resultPath: '$.notifyError' })
    .next(done);

  const connectionPath = '$.ready.connectionId';
  const hasConnection = new Choice(scope, STATE_NAMES.hasConnection)
    .when(Condition.and(Condition.isPresent(connectionPath), Condition.isString(connectionPath)), notify)
    .otherwise(done);

  return fetchToS3.next(presign).next(markReady).next(hasConnection);
}
