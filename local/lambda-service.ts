import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Context } from 'aws-lambda';
import { listen } from './listen.ts';

/** The Lambda context handed to handlers locally: the full `aws-lambda` `Context` shape. */
export type LocalContext = Context;

/** A Lambda handler as the emulators call it (async style, no callback). */
export type LocalHandler = (event: unknown, context: LocalContext) => Promise<unknown>;

/** Where the emulators report what they do, one line per call; `console.log` fits. */
export type LocalLog = (message: string) => void;

/** A logger that appends `details` as JSON to the message; silent without `log`. */
export function detailedLog(
  log: LocalLog | undefined,
): (message: string, details?: Record<string, unknown>) => void {
  if (!log) return () => {};
  return (message, details) => log(details ? `${message} ${JSON.stringify(details)}` : message);
}

/** Account id in the ARNs the emulators make up. */
export const LOCAL_ACCOUNT_ID = '000000000000';

/** The region the emulators put in ARNs: `AWS_REGION`, else us-east-1. */
export function localRegion(): string {
  return process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

/** Memory sizes the local stack configured, by function name (from the synthesized template). */
const configuredMemoryMb = new Map<string, number>();

/**
 * Records each local function's `MemorySize`, which the contexts of its invocations then report
 * (`memoryLimitInMB`), wherever they are created (this service, the gateways, Step Functions).
 */
export function configureLocalFunctionMemory(memoryMbByName: Readonly<Record<string, number>>): void {
  for (const [name, memoryMb] of Object.entries(memoryMbByName)) configuredMemoryMb.set(name, memoryMb);
}

/** Reported for a function nobody configured (emulator tests). */
const DEFAULT_MEMORY_MB = 1024;

/**
 * A Lambda `Context` for one invocation: a fresh `awsRequestId` and a `getRemainingTimeInMillis()`
 * that counts down from `timeoutMs`, as the runtime's does; `memoryLimitInMB` is the function's
 * configured memory (`configureLocalFunctionMemory`).
 */
export function createLocalContext(functionName: string, timeoutMs: number): LocalContext {
  const deadline = Date.now() + timeoutMs;
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const unsupported = (): never => {
    throw new Error('callback-style completion (context.done/fail/succeed) is not supported locally');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${localRegion()}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: String(configuredMemoryMb.get(functionName) ?? DEFAULT_MEMORY_MB),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/** The error document Lambda returns for a failed invocation (`X-Amz-Function-Error: Unhandled`). */
export interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export type InvocationOutcome = { ok: true; result: unknown } | { ok: false; error: LambdaErrorPayload };

/** Converts what a handler threw the way the Node.js runtime does: `errorType` is `error.name`. */
export function toLambdaErrorPayload(error: unknown): LambdaErrorPayload {
  if (error instanceof Error) {
    return {
      errorType: error.name,
      errorMessage: error.message,
      trace: (error.stack ?? '').split('\n'),
    };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

/**
 * Runs one invocation with a fresh context. A handler still running at `timeoutMs` is reported as
 * `Sandbox.Timedout` (what Lambda reports); locally it cannot be killed, so it runs on unobserved.
 */
export async function invokeLocalHandler(
  handler: LocalHandler,
  event: unknown,
  functionName: string,
  timeoutMs: number,
): Promise<InvocationOutcome> {
  const context = createLocalContext(functionName, timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<InvocationOutcome>((resolve) => {
    timer = setTimeout(() => {
      resolve({
        ok: false,
        error: {
          errorType: 'Sandbox.Timedout',
          errorMessage: `RequestId: ${context.awsRequestId} Error: Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`,
          trace: [],
        },
      });
    }, timeoutMs);
    timer.unref();
  });
  const run = (async (): Promise<InvocationOutcome> => {
    try {
      return { ok: true, result: await handler(event, context) };
    } catch (error) {
      return { ok: false, error: toLambdaErrorPayload(error) };
    }
  })();
  try {
    return await Promise.race([run, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** One function the Lambda service can invoke. */
export interface LocalFunction {
  handler: LocalHandler;
  /** The function's configured timeout; drives `getRemainingTimeInMillis()`. */
  timeoutMs: number;
}

export interface LambdaServiceOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** By function name; callers may address them by name or by ARN. */
  functions: Record<string, LocalFunction>;
  /**
   * Delays before the retries of a failed `Event` invocation. Lambda retries twice (after about 1
   * and 2 minutes); locally the same two retries come quickly. Default `[100, 200]`.
   */
  asyncRetryDelaysMs?: readonly number[];
  /** How long `close()` waits for background invocations still running. Default 5000. */
  closeTimeoutMs?: number;
  log?: LocalLog;
}

export interface LambdaService {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_LAMBDA` or the client's `endpoint`. */
  endpoint: string;
  port: number;
  /** Resolves once no `Event` invocation (or pending retry) is left. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;
// Invoke payload quota of asynchronous invocations: 1 MB (256 KB before October 2025).
const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;

/**
 * The Lambda operations served, each with the invocation types it accepts: exactly what the
 * product sends (`test/unit/emulated-operations.test.ts` keeps it so). Synchronous invocations
 * are not among them: the local stack calls its functions directly, as the services do.
 */
export const LAMBDA_OPERATIONS = { Invoke: ['Event'] } as const;

/** `my-fn`, `my-fn:alias`, `123456789012:function:my-fn` or a full ARN → `my-fn`. */
export function functionNameOf(nameOrArn: string): string {
  const parts = nameOrArn.split(':');
  const functionIndex = parts.indexOf('function');
  if (functionIndex >= 0) return parts[functionIndex + 1] ?? '';
  return parts[0] ?? '';
}

/**
 * Emulates the Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) for the real
 * `@aws-sdk/client-lambda`, for asynchronous (`Event`) invocations: it answers 202 and runs the
 * handler in the background with Lambda's two retries. Other invocation types are refused
 * (`LAMBDA_OPERATIONS`). SigV4 signatures are not checked.
 */
export async function startLambdaService(options: LambdaServiceOptions): Promise<LambdaService> {
  const log = detailedLog(options.log);
  const retryDelaysMs = options.asyncRetryDelaysMs ?? [100, 200];
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000;
  const background = new Set<Promise<void>>();
  const retryTimers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let closing = false;

  const runInBackground = (name: string, fn: LocalFunction, event: unknown): void => {
    const attempt = async (attemptNumber: number): Promise<void> => {
      const outcome = await invokeLocalHandler(fn.handler, event, name, fn.timeoutMs);
      if (outcome.ok) return;
      const delay = retryDelaysMs[attemptNumber - 1];
      log('lambda: asynchronous invocation failed', {
        functionName: name,
        attempt: attemptNumber,
        willRetry: delay !== undefined && !closing,
        errorType: outcome.error.errorType,
        errorMessage: outcome.error.errorMessage,
      });
      if (delay === undefined || closing) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          retryTimers.delete(timer);
          resolve();
        }, delay);
        retryTimers.add(timer);
      });
      if (!closing) await attempt(attemptNumber + 1);
    };
    const task = attempt(1).finally(() => background.delete(task));
    background.add(task);
  };

  const server: Server = createServer((req, res) => {
    handleRequest(req, res).catch((error: unknown) => {
      log('lambda: request failed', { error: String(error) });
      if (!res.headersSent)
        sendError(res, 500, 'ServiceException', 'Internal error in the local Lambda service');
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = INVOKE_PATH.exec(url.pathname);
    if (req.method !== 'POST' || !match?.[1]) {
      req.resume();
      sendError(
        res,
        404,
        'UnknownOperationException',
        `No local Lambda operation at ${req.method} ${url.pathname}`,
      );
      return;
    }
    const requested = decodeURIComponent(match[1]);
    const name = functionNameOf(requested);
    const fn = Object.hasOwn(options.functions, name) ? options.functions[name] : undefined;
    if (!fn) {
      req.resume();
      sendError(
        res,
        404,
        'ResourceNotFoundException',
        `Function not found: arn:aws:lambda:${localRegion()}:${LOCAL_ACCOUNT_ID}:function:${name}`,
      );
      return;
    }
    const invocationType = headerValue(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (!(LAMBDA_OPERATIONS.Invoke as readonly string[]).includes(invocationType)) {
      req.resume();
      sendError(
        res,
        400,
        'InvalidParameterValueException',
        `The local Lambda service serves ${LAMBDA_OPERATIONS.Invoke.join(', ')} invocations only, not ${invocationType}`,
      );
      return;
    }
    const body = await readBody(req, MAX_ASYNC_PAYLOAD_BYTES);
    if (body === undefined) {
      sendError(
        res,
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${MAX_ASYNC_PAYLOAD_BYTES} bytes`,
      );
      return;
    }
    let event: unknown;
    try {
      // An empty payload reaches the handler as {} on Lambda.
      event = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    } catch {
      sendError(res, 400, 'InvalidRequestContentException', 'Could not parse request body into json');
      return;
    }
    runInBackground(name, fn, event);
    res.writeHead(202, { 'content-length': '0' }).end();
  }

  const port = await listen(server, options.port, options.host);

  const idle = async (): Promise<void> => {
    while (background.size > 0) await Promise.allSettled([...background]);
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    idle,
    async close() {
      closing = true;
      for (const timer of retryTimers) clearTimeout(timer);
      retryTimers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      let capTimer: NodeJS.Timeout | undefined;
      const cap = new Promise<void>((resolve) => {
        capTimer = setTimeout(resolve, closeTimeoutMs);
      });
      await Promise.race([idle(), cap]);
      clearTimeout(capTimer);
      await closed;
    },
  };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The body, or undefined once it grows past `limit` (the rest is drained). */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) tooLarge = true;
    if (!tooLarge) chunks.push(buffer);
  }
  return tooLarge ? undefined : Buffer.concat(chunks);
}

/** A REST-JSON error the SDK maps to a named exception (it reads `x-amzn-errortype`). */
function sendError(res: ServerResponse, status: number, errorType: string, message: string): void {
  const body = JSON.stringify({ Type: 'User', message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'x-amzn-errortype': errorType,
  });
  res.end(body);
}
