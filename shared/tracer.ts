import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * The process's X-Ray tracer (Powertools). It turns itself off outside Lambda (no
 * `AWS_EXECUTION_ENV`) and when `POWERTOOLS_TRACE_ENABLED=false` (the local stack sets it: its real
 * runtime client sets `AWS_EXECUTION_ENV`, but no X-Ray daemon listens); off, every call is a no-op.
 *
 * Only the SDK client factories (`shared/aws-clients/`) use it, to trace each AWS call: a function
 * that calls no AWS service (the stream function) does not load the X-Ray SDK at all.
 */
export const tracer = new Tracer();
