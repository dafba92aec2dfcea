import type { EventBridgeEvent } from 'aws-lambda';
import type { EndedExecutionStatus } from './failure.ts';

/** `source` of the events Step Functions sends to EventBridge. */
export const EXECUTION_EVENT_SOURCE = 'aws.states';

/** `detail-type` of the event Step Functions sends when an execution's status changes. */
export const EXECUTION_STATUS_CHANGE = 'Step Functions Execution Status Change';

/**
 * The statuses that end an execution without the workflow's own `MarkFailed` having run for sure:
 * a timeout or a stop cannot be caught inside the workflow, and `FAILED` also covers `MarkFailed`
 * failing. (`SUCCEEDED` needs nothing: the download is READY.)
 */
export const ENDED_EXECUTION_STATUSES = [
  'TIMED_OUT',
  'ABORTED',
  'FAILED',
] as const satisfies readonly EndedExecutionStatus[];

/** What `DescribeExecution` and the status-change event call an execution's status. */
export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | EndedExecutionStatus | 'PENDING_REDRIVE';

/**
 * `detail` of a "Step Functions Execution Status Change" event: the fields of `DescribeExecution`
 * (AWS Step Functions Developer Guide, "EventBridge for Step Functions execution status changes").
 * Dates are epoch milliseconds. `input`/`output` are `null` when too large to include, and
 * `error`/`cause` are not on every event: nothing here depends on them being there.
 */
export interface ExecutionStatusChangeDetail {
  executionArn: string;
  stateMachineArn: string;
  /** The execution name: this app names every execution after its download id. */
  name: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate: number | null;
  input: string | null;
  output: string | null;
  inputDetails?: { included?: boolean } | null;
  outputDetails?: { included?: boolean } | null;
  error?: string | null;
  cause?: string | null;
}

/** A "Step Functions Execution Status Change" event as EventBridge delivers it to a Lambda target. */
export type ExecutionStatusChangeEvent = EventBridgeEvent<
  typeof EXECUTION_STATUS_CHANGE,
  ExecutionStatusChangeDetail
>;
