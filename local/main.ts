import { rmSync } from 'node:fs';
import { type LocalAuthMode, parseLocalAuthMode } from './sigv4-auth.ts';
import { type LocalRuntime, type LocalStack, startLocalStack } from './stack.ts';
import { type LocalStreamCaps, parseLocalStreamCaps } from './stream-caps.ts';

function runtime(): LocalRuntime {
  const raw = process.env.LOCAL_RUNTIME || 'in-process';
  if (raw !== 'in-process' && raw !== 'ric') {
    console.error(`LOCAL_RUNTIME must be "in-process" or "ric", got "${raw}"`);
    process.exit(2);
  }
  return raw;
}

function localAuth(): LocalAuthMode {
  const mode = parseLocalAuthMode(process.env.LOCAL_AUTH);
  if (!mode) {
    console.error(`LOCAL_AUTH must be "none" or "iam", got "${process.env.LOCAL_AUTH}"`);
    process.exit(2);
  }
  return mode;
}

function streamCaps(): LocalStreamCaps {
  const mode = parseLocalStreamCaps(process.env.LOCAL_STREAM_CAPS);
  if (!mode) {
    console.error(`LOCAL_STREAM_CAPS must be "off" or "aws", got "${process.env.LOCAL_STREAM_CAPS}"`);
    process.exit(2);
  }
  return mode;
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`${name} must be a port number, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

/** A positive whole number of seconds from the environment, or undefined when unset. */
function seconds(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a whole number of seconds, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

// The SDK warns once that its releases from 2027 need Node 22; the local stack supports Node 20 on
// purpose (see README), so the notice is not repeated on every start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The signals that stop the stack: Ctrl-C, and how systemd, Docker, CI runners and `timeout` stop a process. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
// One Ctrl-C reaches this process several times within milliseconds: from the terminal (it signals
// the whole foreground process group), from npm (which forwards SIGINT and SIGTERM to its script)
// and from the sample upstream (which hands its signals to the stack). A repeat within this window
// is the same request; a later one asks to stop now.
const SAME_REQUEST_MS = 500;
/** Past this, closing the stack is abandoned and the process exits anyway. */
const STOP_DEADLINE_MS = 5_000;
// If whoever started the stack goes away without a signal (npm killed with SIGKILL), this process is
// re-parented; nothing tells it, so it looks.
const PARENT_CHECK_MS = 1_000;

const keepData = process.env.KEEP_LOCAL_DATA === '1';
const started = Date.now();
const starting = startLocalStack({
  port: port('PORT', 3000),
  webSocketPort: port('WS_PORT', 3001),
  upstreamPort: port('UPSTREAM_PORT', 3002),
  functionUrlPort: port('FUNCTION_URL_PORT', 3003),
  s3Port: port('S3_PORT', 0),
  upstreamBaseUrl: process.env.UPSTREAM_BASE_URL || undefined,
  keepData,
  // Local test knob: makes executions time out after this many seconds instead of the workflow's 2 hours.
  workflowTimeoutSeconds: seconds('LOCAL_WORKFLOW_TIMEOUT_SECONDS'),
  runtime: runtime(),
  auth: localAuth(),
  streamCaps: streamCaps(),
  log: (message) => console.error(message),
});
// Installed before the stack is up: a stop requested while it starts waits for the start, then closes.
const stopRequested = handleStopRequests();
const stack = await starting;
// A stop requested while the stack started is under way already: no banner then.
if (!stopRequested()) printReady(stack);

/** `GET|HEAD /stream/{key+}  → stream`: the REST methods the template declares, by resource. */
function restRouteLines(layout: LocalStack['layout']): string {
  const byResource = new Map<string, { methods: string[]; resource: string; functionName: string }>();
  for (const route of layout.restRoutes) {
    const key = `${route.resource} ${route.functionName}`;
    const entry = byResource.get(key) ?? {
      methods: [],
      resource: route.resource,
      functionName: route.functionName,
    };
    entry.methods.push(...route.methods);
    byResource.set(key, entry);
  }
  const routes = [...byResource.values()]
    .sort((a, b) => (a.resource < b.resource ? -1 : 1))
    .map((route) => ({
      left: `${route.methods.join('|')} ${route.resource}`,
      functionName: route.functionName,
    }));
  const width = Math.max(0, ...routes.map((route) => route.left.length));
  return routes.map((route) => `    ${route.left.padEnd(width)}  → ${route.functionName}`).join('\n');
}

function printReady({ endpoints: e, layout }: LocalStack): void {
  if (process.env.LOCAL_STACK_READY_JSON === '1') {
    // Machine-readable line for tests and benchmarks that start the stack as a child process.
    console.log(JSON.stringify({ localStackReady: e }));
  } else {
    const small = e.sampleUpstream ? 'sample/150MB' : '<key>';
    const large = e.sampleUpstream ? 'sample/1GB' : '<large-key>';
    console.log(`
Local stack is up in ${((Date.now() - started) / 1000).toFixed(1)} s.

  REST API (no stage)   ${e.restApi}
${restRouteLines(layout)}
  Function URL          ${e.functionUrl}/{key+}
  WebSocket API         ${e.webSocket}
  Upstream              ${e.upstream}
  S3 ${e.s3} (bucket ${e.bucket}) · DynamoDB ${e.dynamoDb} · Step Functions ${e.stepFunctions}
  Data                  ${e.dataDirectory}${keepData ? ' (kept)' : ' (removed on exit)'}

Stream a file:
  curl --no-buffer -o /dev/null -w '%{http_code} %{size_download} bytes in %{time_total}s\\n' ${e.restApi}/stream/${small}
  curl --no-buffer -D - ${e.functionUrl}/sample/report.csv?rows=20

Download a file above the threshold (async):
  curl -s ${e.restApi}/download/${large}            # 202 with webSocketUrl, statusUrl, executionArn, token
  npx wscat -c '<webSocketUrl>'                     # progress…, then ready (the URL carries the token)
  npx wscat -c ${e.webSocket} -H 'X-StateMachine-ExecutionArn: <executionArn>' -H 'X-Download-Token: <token>'
  curl -s '<statusUrl>'                             # or poll (the URL carries the token)
  (then) curl -o file.bin '<url from the ready message>'

Ctrl-C stops everything.`);
  }
}

/**
 * The one way this process ends once started: a stop signal, or the parent gone, closes the stack
 * and exits; a second request while that runs, or the deadline, exits at once. Returns whether a
 * stop was requested.
 */
function handleStopRequests(): () => boolean {
  // A closed terminal or a reader that went away must not end the process before the cleanup.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  let dataDirectory: string | undefined;
  starting.then(
    (stack) => {
      if (!keepData) dataDirectory = stack.endpoints.dataDirectory;
    },
    () => undefined,
  );
  const forceExit = (reason: string): never => {
    console.error(`${reason}: exiting without finishing the cleanup`);
    // The sample upstream ends with this process (its stdin closes); the data would stay behind.
    if (dataDirectory) rmSync(dataDirectory, { recursive: true, force: true });
    process.exit(1);
  };

  const parent = process.ppid;
  let requestedAt: number | undefined;
  const request = (reason: string): void => {
    const now = Date.now();
    if (requestedAt !== undefined) {
      if (now - requestedAt >= SAME_REQUEST_MS) forceExit(`${reason} again`);
      return;
    }
    requestedAt = now;
    clearInterval(parentCheck);
    console.error(`\n${reason}: stopping the local stack`);
    starting
      .then((stack) => {
        // From the end of the start: a stop requested while the stack starts waits for it.
        setTimeout(() => forceExit(`still stopping after ${STOP_DEADLINE_MS / 1000} s`), STOP_DEADLINE_MS);
        return stack.close();
      })
      .then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
  };
  const parentCheck = setInterval(() => {
    if (process.ppid !== parent) request(`parent process ${parent} exited`);
  }, PARENT_CHECK_MS).unref();
  for (const signal of STOP_SIGNALS) process.on(signal, () => request(signal));
  return () => requestedAt !== undefined;
}
