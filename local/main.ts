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

const stack = await startLocalStack({
  port: port('PORT', 3000),
  functionUrlPort: port('FUNCTION_URL_PORT', 3003),
  upstreamPort: port('UPSTREAM_PORT', 3002),
  upstreamBaseUrl: process.env.UPSTREAM_BASE_URL || undefined,
  log: (message) => console.error(message),
});
const { endpoints } = stack;

if (process.env.LOCAL_STACK_READY_JSON === '1') {
  // Machine-readable line for tests and benchmarks that start the stack as a child process.
  console.log(JSON.stringify({ localStackReady: endpoints }));
} else {
  const sample = endpoints.sampleUpstream ? 'sample/150MB' : '<key>';
  console.log(`
Local stack is up.

  REST API (stage-less)   ${endpoints.restApi}/stream/{key+}
  Function URL            ${endpoints.functionUrl}/{key+}
  Upstream                ${endpoints.upstream}

Try:
  curl --no-buffer -o /dev/null -w '%{http_code} %{size_download} bytes in %{time_total}s\\n' ${endpoints.restApi}/stream/${sample}
  curl --no-buffer -D - ${endpoints.functionUrl}/sample/report.csv?rows=20

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
