import { Duration } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import {
  Choice,
  Condition,
  Errors,
  Fail,
  type IChainable,
  JsonPath,
  Map as MapState,
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
  planCopy: 'PlanCopy',
  copyMode: 'CopyMode',
  copyRanges: 'CopyRanges',
  copyRange: 'CopyRange',
  rangeCopied: 'RangeCopied',
  rangeDone: 'RangeDone',
  completeCopy: 'CompleteCopy',
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

/**
 * What Lambda answers when the account's concurrency is used up. A parallel copy starts several
 * workers at once; in an account whose total concurrency is 10 (new accounts) they can be
 * throttled, and a throttled invocation is worth waiting for.
 */
export const LAMBDA_THROTTLED_ERROR = 'Lambda.TooManyRequestsException';

/** The Lambda functions behind the workflow's Task states. */
export interface DownloadWorkflowFunctions {
  readonly planCopy: IFunction;
  readonly copyRange: IFunction;
  readonly completeCopy: IFunction;
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
 * - `PlanCopy` → `$.plan` `{ mode, reason, copy, ranges, concurrency }`: reads upstream's headers
 *   and chooses the copy (`shared/downloads/plan-copy.ts`); for `parallel` it has created the
 *   multipart upload and cut the file into ranges.
 * - `CopyMode` → `CopyRanges` when `$.plan.mode` is `parallel`, else `FetchToS3`.
 * - `CopyRanges` (Map, inline, `MaxConcurrencyPath: $.plan.concurrency`) runs, per range,
 *   `CopyRange` → `RangeCopied` → back to `CopyRange` until the worker answers `done`: a worker
 *   copies for at most one invocation and returns where it stopped, so a range may take any number
 *   of invocations. `CopyRange` retries the retryable errors on its own (the range resumes from its
 *   last stored part) and a throttled invocation; what survives that fails the Map → `MarkFailed`.
 *   Results → `$.copied`.
 * - `CompleteCopy` → `$.object`, the same shape as `FetchToS3`'s; then `Presign`.
 * - `FetchToS3` → `$.object` `{ bucket, objectKey, size, contentType, fileName, checksum }`; retries
 *   the named upstream/S3 errors, every failure goes to `MarkFailed` with the error in `$.error`.
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

  const retryable = {
    errors: FETCH_RETRYABLE_ERRORS,
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 3,
  };
  const planCopy = new LambdaInvoke(scope, STATE_NAMES.planCopy, {
    comment: "Read upstream's headers; choose the single-stream or the parallel ranged copy.",
    lambdaFunction: functions.planCopy,
    payload: TaskInput.fromJsonPathAt('$'),
    resultSelector: {
      mode: JsonPath.stringAt('$.Payload.mode'),
      reason: JsonPath.stringAt('$.Payload.reason'),
      copy: JsonPath.objectAt('$.Payload.copy'),
      ranges: JsonPath.listAt('$.Payload.ranges'),
      concurrency: JsonPath.numberAt('$.Payload.concurrency'),
    },
    resultPath: '$.plan',
  })
    .addRetry(retryable)
    .addCatch(markFailed, catchToMarkFailed);

  const copyRange = new LambdaInvoke(scope, STATE_NAMES.copyRange, {
    comment: 'Copy the range, part by part, for at most one invocation; returns where it stopped.',
    lambdaFunction: functions.copyRange,
    payload: TaskInput.fromJsonPathAt('$'),
    outputPath: '$.Payload',
  })
    .addRetry(retryable)
    .addRetry({
      errors: [LAMBDA_THROTTLED_ERROR],
      interval: Duration.seconds(5),
      backoffRate: 2,
      maxAttempts: 6,
    });
  const rangeCopied = new Choice(scope, STATE_NAMES.rangeCopied)
    .when(Condition.booleanEquals('$.done', true), new Succeed(scope, STATE_NAMES.rangeDone))
    .otherwise(copyRange);
  const copyRanges = new MapState(scope, STATE_NAMES.copyRanges, {
    comment: 'Copy the ranges at once into the one multipart upload.',
    itemsPath: '$.plan.ranges',
    maxConcurrencyPath: '$.plan.concurrency',
    itemSelector: {
      downloadId: JsonPath.stringAt('$.downloadId'),
      copy: JsonPath.objectAt('$.plan.copy'),
      range: JsonPath.objectAt('$$.Map.Item.Value'),
    },
    resultPath: '$.copied',
  })
    .itemProcessor(copyRange.next(rangeCopied))
    .addCatch(markFailed, catchToMarkFailed);

  const objectSelector = {
    bucket: JsonPath.stringAt('$.Payload.bucket'),
    objectKey: JsonPath.stringAt('$.Payload.objectKey'),
    size: JsonPath.numberAt('$.Payload.size'),
    contentType: JsonPath.stringAt('$.Payload.contentType'),
    fileName: JsonPath.stringAt('$.Payload.fileName'),
    checksum: JsonPath.objectAt('$.Payload.checksum'),
  };
  const completeCopy = new LambdaInvoke(scope, STATE_NAMES.completeCopy, {
    comment: "Check the ranges' checksum; complete the multipart upload with every part, in order.",
    lambdaFunction: functions.completeCopy,
    payload: TaskInput.fromObject({
      downloadId: JsonPath.stringAt('$.downloadId'),
      copy: JsonPath.objectAt('$.plan.copy'),
      ranges: JsonPath.listAt('$.copied'),
    }),
    resultSelector: objectSelector,
    resultPath: '$.object',
  })
    .addRetry({ errors: ['S3UploadError'], interval: Duration.seconds(2), backoffRate: 2, maxAttempts: 3 })
    .addCatch(markFailed, catchToMarkFailed);

  const fetchToS3 = new LambdaInvoke(scope, STATE_NAMES.fetchToS3, {
    comment: 'Stream the upstream body into an S3 multipart upload.',
    lambdaFunction: functions.fetchToS3,
    payload: TaskInput.fromJsonPathAt('$'),
    resultSelector: objectSelector,
    resultPath: '$.object',
  })
    .addRetry(retryable)
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

  presign.next(markReady).next(hasConnection);
  fetchToS3.next(presign);
  copyRanges.next(completeCopy).next(presign);
  const copyMode = new Choice(scope, STATE_NAMES.copyMode)
    .when(Condition.stringEquals('$.plan.mode', 'parallel'), copyRanges)
    .otherwise(fetchToS3);
  return planCopy.next(copyMode);
}
