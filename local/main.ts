import { startLocalStack } from './stack.ts';

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

// The SDK warns once that its releases from 2027 need Node 22; the local stack supports Node 20 on
// purpose (see README), so the notice is not repeated on every start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const started = Date.now();
const stack = await startLocalStack({
  port: port('PORT', 3000),
  webSocketPort: port('WS_PORT', 3001),
  upstreamPort: port('UPSTREAM_PORT', 3002),
  functionUrlPort: port('FUNCTION_URL_PORT', 3003),
  s3Port: port('S3_PORT', 0),
  upstreamBaseUrl: process.env.UPSTREAM_BASE_URL || undefined,
  keepData: process.env.KEEP_LOCAL_DATA === '1',
  log: (message) => console.error(message),
});
const { endpoints: e } = stack;

if (process.env.LOCAL_STACK_READY_JSON === '1') {
  // Machine-readable line for tests and benchmarks that start the stack as a child process.
  console.log(JSON.stringify({ localStackReady: e }));
} else {
  const small = e.sampleUpstream ? 'sample/150MB' : '<key>';
  const large = e.sampleUpstream ? 'sample/1GB' : '<large-key>';
  console.log(`
Local stack is up in ${((Date.now() - started) / 1000).toFixed(1)} s.

  REST API (no stage)   ${e.restApi}
    GET /stream/{key+}          stream through Lambda (up to STREAM_MAX_BYTES)
    GET /download/{key+}        router: stream, or 202 + async copy to S3
    GET /downloads/{id}         status of an async download
  Function URL          ${e.functionUrl}/{key+}
  WebSocket API         ${e.webSocket}
  Upstream              ${e.upstream}
  S3 ${e.s3} (bucket ${e.bucket}) · DynamoDB ${e.dynamoDb} · Step Functions ${e.stepFunctions}
  Data                  ${e.dataDirectory}${process.env.KEEP_LOCAL_DATA === '1' ? ' (kept)' : ' (removed on exit)'}

Stream a file:
  curl --no-buffer -o /dev/null -w '%{http_code} %{size_download} bytes in %{time_total}s\\n' ${e.restApi}/stream/${small}
  curl --no-buffer -D - ${e.functionUrl}/sample/report.csv?rows=20

Download a file above the threshold (async):
  curl -s ${e.restApi}/download/${large}            # 202 with downloadId and executionArn
  npx wscat -c '${e.webSocket}?downloadId=<downloadId>'
  npx wscat -c ${e.webSocket} -H 'X-StateMachine-ExecutionArn: <executionArn>'
  curl -s ${e.restApi}/downloads/<downloadId>       # or poll
  (then) curl -o file.bin '<url from the ready message>'

Ctrl-C stops everything.`);
}

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.error(`\n${signal}: stopping the local stack`);
  await stack.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
