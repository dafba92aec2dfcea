import './polyfills.ts';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
  type StateMachineOptions,
} from 'aws-local-stepfunctions';
import {
  EXECUTION_EVENT_SOURCE,
  EXECUTION_STATUS_CHANGE,
  type ExecutionStatusChangeEvent,
} from '../shared/downloads/execution-events.ts';
import {
  detailedLog,
  functionNameOf,
  invokeLocalHandler,
  type LambdaErrorPayload,
  type LocalContext,
  type LocalLog,
} from './lambda-service.ts';
import { listen } from './listen.ts';

/** What runs in place of the Lambda function behind one Task state: gets the `Payload`, returns the result. */
export type TaskHandler = (payload: unknown, context: LocalContext) => Promise<unknown>;

export interface LocalStateMachine {
  /** `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME` */
  arn: string;
  /** The Amazon States Language definition, unchanged (e.g. the one `cdk synth` produced). */
  definition: object;
  /**
   * By Task state name (states inside Map/Parallel included). For `arn:aws:states:::lambda:invoke`
   * states the handler gets the evaluated `Parameters.Payload` and its result comes back as
   * `{ Payload, StatusCode: 200 }`; for any other Task resource it gets the evaluated input and its
   * result is the state's result.
   */
  taskHandlers: Record<string, TaskHandler>;
  /**
   * Local simulation knob: multiplies every retrier's `IntervalSeconds` and `MaxDelaySeconds`
   * (e.g. 0.05 turns 2 s, 4 s, 8 s into 100, 200, 400 ms). The definition itself is not changed.
   */
  retryIntervalScale?: number;
  /** The `getRemainingTimeInMillis()` budget (and hard timeout) of each task handler, by state name. Default 900000. */
  taskTimeoutsMs?: Record<string, number>;
  /** Milliseconds to pause in place of what a `Wait` state says, by state name. */
  waitTimeOverridesMs?: Record<string, number>;
  /**
   * Local test knob: replaces the definition's top-level `TimeoutSeconds` (the execution timeout)
   * in the copy that runs, so a test can make an execution time out in seconds. Without it the
   * definition's own `TimeoutSeconds`, if any, applies. The definition itself is not changed.
   */
  executionTimeoutSeconds?: number;
  /** Passed to aws-local-stepfunctions (asl-validator); e.g. `{ checkArn: false }`. */
  validationOptions?: StateMachineOptions['validationOptions'];
}

export interface StepFunctionsOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  stateMachines: LocalStateMachine[];
  /**
   * Receives every execution status change (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED) as the
   * "Step Functions Execution Status Change" event Step Functions sends to EventBridge. Executions
   * aborted because the service closes are not reported: nobody stopped them.
   */
  onStatusChange?: (event: ExecutionStatusChangeEvent) => void;
  log?: LocalLog;
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** An execution as `DescribeExecution` reports it. */
export interface ExecutionDescription {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
}

export interface StepFunctionsService {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_SFN` or the client's `endpoint`. */
  endpoint: string;
  port: number;
  /** Resolves with the execution once it is no longer RUNNING (rejects after `timeoutMs`, default 30000). */
  waitForExecution(executionArn: string, timeoutMs?: number): Promise<ExecutionDescription>;
  close(): Promise<void>;
}

const LAMBDA_INVOKE_RESOURCE = 'arn:aws:states:::lambda:invoke';
const DEFAULT_TASK_TIMEOUT_MS = 900_000;
// aws-local-stepfunctions gives a Task without TimeoutSeconds a 60 s timeout; Step Functions gives
// it none (the Lambda timeout applies). One day still fits in a Node timer (< 2^31 ms).
const UNBOUNDED_TASK_TIMEOUT_SECONDS = 86_400;
// Step Functions' limit on the data passed between states.
const MAX_STATE_PAYLOAD_BYTES = 256 * 1024;
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';

/**
 * A task that failed the way a Lambda function fails. aws-local-stepfunctions matches `Retry` and
 * `Catch` on `error.name` and gives a catcher `{ Error: error.name, Cause: error.message }`; so the
 * name is the function's `errorType` and the message is the JSON error document, which is what a
 * real `lambda:invoke` task failure puts in `Error` and `Cause`.
 */
export class LambdaTaskFailedError extends Error {
  constructor(payload: LambdaErrorPayload) {
    super(JSON.stringify(payload));
    this.name = payload.errorType;
  }
}

/** Errors no `Retry` or `Catch` may handle (read by aws-local-stepfunctions through these getters). */
class TerminalStatesError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
  get isRetryable(): boolean {
    return false;
  }
  get isCatchable(): boolean {
    return false;
  }
}

interface TaskState {
  resource: string;
}

interface ExecutionRecord extends ExecutionDescription {
  abort(): void;
  done: Promise<void>;
}

interface PreparedMachine {
  config: LocalStateMachine;
  name: string;
  runner: StateMachine;
  tasks: Map<string, TaskState>;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The Step Functions operations served: what the product sends (the router's StartExecution) and
 * what the end-to-end tests drive a workflow with (DescribeExecution, StopExecution: README, "Local
 * differences"). `test/unit/emulated-operations.test.ts` keeps the list exact.
 */
export const STEP_FUNCTIONS_OPERATIONS = ['StartExecution', 'DescribeExecution', 'StopExecution'] as const;
export type StepFunctionsOperation = (typeof STEP_FUNCTIONS_OPERATIONS)[number];

/**
 * Emulates the Step Functions API (AWS JSON 1.0, `STEP_FUNCTIONS_OPERATIONS`) for the real
 * `@aws-sdk/client-sfn`, running each execution in the background with aws-local-stepfunctions
 * and the given task handlers. SigV4 signatures are not checked.
 */
export async function startStepFunctions(options: StepFunctionsOptions): Promise<StepFunctionsService> {
  const log = detailedLog(options.log);
  const machines = new Map<string, PreparedMachine>();
  for (const config of options.stateMachines) {
    machines.set(config.arn, prepareMachine(config));
  }
  const executions = new Map<string, ExecutionRecord>();
  const sockets = new Set<Socket>();
  let closing = false;
  const reportStatus = (record: ExecutionRecord) => {
    if (!options.onStatusChange || closing) return;
    try {
      options.onStatusChange(toStatusChangeEvent(record));
    } catch (error) {
      log('sfn: status change listener failed', { error: String(error) });
    }
  };

  const startExecution = (machine: PreparedMachine, name: string, input: string): ExecutionRecord => {
    const executionArn = executionArnOf(machine.config.arn, name);
    const record: ExecutionRecord = {
      executionArn,
      stateMachineArn: machine.config.arn,
      name,
      status: 'RUNNING',
      startDate: new Date(),
      input,
      abort: () => {},
      done: Promise.resolve(),
    };
    const taskResourceLocalHandlers = Object.fromEntries(
      [...machine.tasks].map(([stateName, task]) => [
        stateName,
        (stateInput: unknown) => runTask(machine, record, stateName, task, stateInput),
      ]),
    );
    const execution = machine.runner.run(JSON.parse(input), {
      overrides: {
        taskResourceLocalHandlers,
        ...(machine.config.waitTimeOverridesMs
          ? { waitTimeOverrides: machine.config.waitTimeOverridesMs }
          : {}),
      },
      // The context object ($$) the definition may read.
      context: {
        Execution: { Id: executionArn, Name: name },
        StateMachine: { Id: machine.config.arn, Name: machine.name },
      },
    });
    record.abort = execution.abort;
    record.done = execution.result.then(
      (output) => {
        if (record.status !== 'RUNNING') return;
        record.status = 'SUCCEEDED';
        record.output = JSON.stringify(output);
        record.stopDate = new Date();
      },
      (error: unknown) => {
        if (record.status !== 'RUNNING') return;
        record.stopDate = new Date();
        if (error instanceof ExecutionAbortedError) {
          record.status = 'ABORTED';
        } else if (error instanceof ExecutionTimeoutError) {
          record.status = 'TIMED_OUT';
          record.error = 'States.Timeout';
        } else if (error instanceof ExecutionError && error.cause instanceof Error) {
          record.status = 'FAILED';
          record.error = error.cause.name;
          record.cause = error.cause.message;
        } else {
          record.status = 'FAILED';
          record.error = 'States.Runtime';
          record.cause = String(error);
        }
      },
    );
    void record.done.then(() => {
      log('sfn: execution finished', {
        executionArn,
        status: record.status,
        ...(record.error ? { error: record.error } : {}),
      });
      // Also after StopExecution, which sets ABORTED itself: the event follows the stop.
      reportStatus(record);
    });
    void logEvents(execution.eventLogs, executionArn, log);
    return record;
  };

  const runTask = async (
    machine: PreparedMachine,
    record: ExecutionRecord,
    stateName: string,
    task: TaskState,
    stateInput: unknown,
  ): Promise<never> => {
    // The library re-enters a state after an abort that interrupted a retry wait; a stopped
    // execution must not invoke anything any more.
    if (record.status !== 'RUNNING') throw new TerminalStatesError('States.Runtime', 'execution stopped');
    const handler = machine.config.taskHandlers[stateName];
    if (!handler)
      throw new TerminalStatesError('States.Runtime', `no local handler for Task state ${stateName}`);
    const isLambdaInvoke = task.resource === LAMBDA_INVOKE_RESOURCE;
    const parameters = isObject(stateInput) ? stateInput : {};
    const payload = isLambdaInvoke
      ? Object.hasOwn(parameters, 'Payload')
        ? parameters.Payload
        : {}
      : stateInput;
    const functionName = isLambdaInvoke
      ? functionNameOf(typeof parameters.FunctionName === 'string' ? parameters.FunctionName : stateName)
      : task.resource.startsWith('arn:aws:lambda:')
        ? functionNameOf(task.resource)
        : stateName;
    const timeoutMs = machine.config.taskTimeoutsMs?.[stateName] ?? DEFAULT_TASK_TIMEOUT_MS;
    const outcome = await invokeLocalHandler(handler, payload, functionName, timeoutMs);
    if (!outcome.ok) throw new LambdaTaskFailedError(outcome.error);
    const serialized = JSON.stringify(outcome.result ?? null);
    if (Buffer.byteLength(serialized) > MAX_STATE_PAYLOAD_BYTES) {
      throw new TerminalStatesError(
        'States.DataLimitExceeded',
        `The state/task '${stateName}' returned a result with a size exceeding the maximum number of bytes service limit.`,
      );
    }
    const result: unknown = JSON.parse(serialized);
    // The result type is the library's JSONValue; `never` keeps it out of this module's types.
    return (
      isLambdaInvoke ? { ExecutedVersion: '$LATEST', Payload: result, StatusCode: 200 } : result
    ) as never;
  };

  const handlers: Record<StepFunctionsOperation, (body: Record<string, unknown>) => unknown> = {
    StartExecution(body) {
      const stateMachineArn = requireString(body, 'stateMachineArn');
      const machine = machines.get(stateMachineArn);
      if (!machine) {
        throw new ApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
      }
      const name = optionalString(body, 'name') ?? randomUUID();
      if (!/^[^\s<>{}[\]?*"#%\\^|~`$&,;:/]{1,80}$/.test(name)) {
        throw new ApiError('InvalidName', `Invalid Name: '${name}'`);
      }
      const input = optionalString(body, 'input') ?? '{}';
      try {
        JSON.parse(input);
      } catch {
        throw new ApiError('InvalidExecutionInput', `Invalid State Machine Execution Input: '${input}'`);
      }
      const executionArn = executionArnOf(stateMachineArn, name);
      const existing = executions.get(executionArn);
      if (existing) {
        // Idempotent while the same execution is still running with the same input.
        if (existing.status === 'RUNNING' && existing.input === input) {
          return { executionArn, startDate: toEpochSeconds(existing.startDate) };
        }
        throw new ApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
      }
      const record = startExecution(machine, name, input);
      executions.set(executionArn, record);
      log('sfn: execution started', { executionArn });
      reportStatus(record);
      return { executionArn, startDate: toEpochSeconds(record.startDate) };
    },
    DescribeExecution(body) {
      return toWire(findExecution(requireString(body, 'executionArn')));
    },
    StopExecution(body) {
      const record = findExecution(requireString(body, 'executionArn'));
      if (record.status === 'RUNNING') {
        record.status = 'ABORTED';
        record.stopDate = new Date();
        const error = optionalString(body, 'error');
        const cause = optionalString(body, 'cause');
        if (error !== undefined) record.error = error;
        if (cause !== undefined) record.cause = cause;
        record.abort();
      }
      return { stopDate: toEpochSeconds(record.stopDate ?? new Date()) };
    },
  };

  const findExecution = (executionArn: string): ExecutionRecord => {
    const record = executions.get(executionArn);
    if (!record) throw new ApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  };

  const server: Server = createServer((req, res) => {
    handleRequest(req, res).catch((error: unknown) => {
      if (error instanceof ApiError) {
        sendJson(res, 400, { __type: error.type, message: error.message }, error.type);
        return;
      }
      log('sfn: request failed', { error: String(error) });
      sendJson(
        res,
        500,
        { __type: 'InternalFailure', message: 'Internal error in local Step Functions' },
        'InternalFailure',
      );
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('AWSStepFunctions.') ? target.slice('AWSStepFunctions.'.length) : '';
    const handler =
      req.method === 'POST' && Object.hasOwn(handlers, operation)
        ? handlers[operation as StepFunctionsOperation]
        : undefined;
    if (!handler) throw new ApiError('UnknownOperationException', `Unknown operation ${target}`);
    let body: unknown;
    try {
      const text = Buffer.concat(chunks).toString('utf8');
      body = text ? JSON.parse(text) : {};
    } catch {
      throw new ApiError('SerializationException', 'Request body is not valid JSON');
    }
    if (!isObject(body)) throw new ApiError('SerializationException', 'Request body must be a JSON object');
    sendJson(res, 200, handler(body));
  }

  const port = await listen(server, options.port, options.host);

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async waitForExecution(executionArn, timeoutMs = 30_000) {
      const record = findExecution(executionArn);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`execution ${executionArn} still ${record.status} after ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([record.done, timeout]);
      } finally {
        clearTimeout(timer);
      }
      return describe(record);
    },
    async close() {
      closing = true;
      for (const record of executions.values()) {
        if (record.status === 'RUNNING') {
          record.status = 'ABORTED';
          record.stopDate = new Date();
          record.abort();
        }
      }
      await Promise.allSettled([...executions.values()].map((record) => record.done));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function prepareMachine(config: LocalStateMachine): PreparedMachine {
  const definition = config.definition as StateMachineDefinition;
  // Validate the definition as given (throws with asl-validator's messages) ...
  new StateMachine(definition, { validationOptions: config.validationOptions ?? {} });
  const tasks = new Map<string, TaskState>();
  collectTasks(definition, tasks);
  for (const [stateName, task] of tasks) {
    if (task.resource.startsWith(`${LAMBDA_INVOKE_RESOURCE}.`)) {
      throw new Error(`Task state ${stateName}: ${task.resource} is not supported locally`);
    }
  }
  const missing = [...tasks.keys()].filter((stateName) => !Object.hasOwn(config.taskHandlers, stateName));
  const unknown = Object.keys(config.taskHandlers).filter((stateName) => !tasks.has(stateName));
  if (missing.length > 0 || unknown.length > 0) {
    throw new Error(
      `State machine ${config.arn}: ${missing.length > 0 ? `no task handler for ${missing.join(', ')}` : ''}${
        missing.length > 0 && unknown.length > 0 ? '; ' : ''
      }${unknown.length > 0 ? `no Task state named ${unknown.join(', ')}` : ''}`,
    );
  }
  // ... and run a copy with the local timing adjustments, which the validator need not see.
  const runnable = adjustForLocalRun(
    structuredClone(definition) as unknown as Record<string, unknown>,
    config,
  );
  if (config.executionTimeoutSeconds !== undefined) runnable.TimeoutSeconds = config.executionTimeoutSeconds;
  const runner = new StateMachine(runnable as unknown as StateMachineDefinition, {
    validationOptions: { noValidate: true },
  });
  const name = config.arn.split(':').at(-1) ?? config.arn;
  return { config, name, runner, tasks };
}

/** Every Task state by name, including those inside Map and Parallel states. */
function collectTasks(definition: unknown, into: Map<string, TaskState>): void {
  if (!isObject(definition) || !isObject(definition.States)) return;
  for (const [stateName, state] of Object.entries(definition.States)) {
    if (!isObject(state)) continue;
    if (state.Type === 'Task') into.set(stateName, { resource: String(state.Resource) });
    collectTasks(state.Iterator, into);
    collectTasks(state.ItemProcessor, into);
    if (Array.isArray(state.Branches)) for (const branch of state.Branches) collectTasks(branch, into);
  }
}

function adjustForLocalRun(
  definition: Record<string, unknown>,
  config: LocalStateMachine,
): Record<string, unknown> {
  if (!isObject(definition.States)) return definition;
  const scale = config.retryIntervalScale;
  for (const state of Object.values(definition.States)) {
    if (!isObject(state)) continue;
    if (
      state.Type === 'Task' &&
      state.TimeoutSeconds === undefined &&
      state.TimeoutSecondsPath === undefined
    ) {
      state.TimeoutSeconds = UNBOUNDED_TASK_TIMEOUT_SECONDS;
    }
    if (scale !== undefined && Array.isArray(state.Retry)) {
      for (const retrier of state.Retry) {
        if (!isObject(retrier)) continue;
        retrier.IntervalSeconds =
          (typeof retrier.IntervalSeconds === 'number' ? retrier.IntervalSeconds : 1) * scale;
        if (typeof retrier.MaxDelaySeconds === 'number') retrier.MaxDelaySeconds *= scale;
      }
    }
    for (const nested of [state.Iterator, state.ItemProcessor]) {
      if (isObject(nested)) adjustForLocalRun(nested, config);
    }
    if (Array.isArray(state.Branches)) {
      for (const branch of state.Branches) if (isObject(branch)) adjustForLocalRun(branch, config);
    }
  }
  return definition;
}

async function logEvents(
  events: AsyncGenerator<unknown>,
  executionArn: string,
  log: ReturnType<typeof detailedLog>,
): Promise<void> {
  try {
    for await (const event of events) {
      if (!isObject(event) || !isObject(event.state)) continue;
      if (event.type === 'StateFailed' || event.type === 'StateRetried' || event.type === 'StateCaught') {
        log(`sfn: ${String(event.type)}`, {
          executionArn,
          state: event.state.name,
          ...(event.type === 'StateFailed' ? { error: event.Error } : {}),
        });
      }
    }
  } catch {
    // Logging only.
  }
}

/**
 * The event Step Functions sends to EventBridge for an execution's status, whose `detail` holds
 * what `DescribeExecution` reports, dates in epoch milliseconds (Step Functions Developer Guide,
 * "EventBridge for Step Functions execution status changes").
 */
function toStatusChangeEvent(record: ExecutionRecord): ExecutionStatusChangeEvent {
  // arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME
  const [, , , region = '', account = ''] = record.executionArn.split(':');
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': EXECUTION_STATUS_CHANGE,
    source: EXECUTION_EVENT_SOURCE,
    account,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources: [record.executionArn],
    detail: {
      executionArn: record.executionArn,
      stateMachineArn: record.stateMachineArn,
      name: record.name,
      status: record.status,
      startDate: record.startDate.getTime(),
      stopDate: record.stopDate?.getTime() ?? null,
      input: record.input,
      inputDetails: { included: true },
      output: record.output ?? null,
      outputDetails: record.output === undefined ? null : { included: true },
      ...(record.error === undefined ? {} : { error: record.error }),
      ...(record.cause === undefined ? {} : { cause: record.cause }),
    },
  };
}

function describe(record: ExecutionRecord): ExecutionDescription {
  const { abort: _abort, done: _done, ...description } = record;
  return { ...description };
}

function toWire(record: ExecutionRecord): Record<string, unknown> {
  const description = describe(record);
  return {
    ...description,
    startDate: toEpochSeconds(description.startDate),
    ...(description.stopDate ? { stopDate: toEpochSeconds(description.stopDate) } : {}),
    inputDetails: { included: true },
    ...(description.output !== undefined ? { outputDetails: { included: true } } : {}),
  };
}

/** `arn:aws:states:R:A:stateMachine:M` + name → `arn:aws:states:R:A:execution:M:name` */
export function executionArnOf(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

// The JSON protocols carry timestamps as epoch seconds.
function toEpochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '')
    throw new ApiError('ValidationException', `${key} is required`);
  return value;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  return typeof value === 'string' ? value : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': JSON_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(text)),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}
