import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The endpoints the stack prints on its ready line. */
export interface StackEndpoints {
  restApi: string;
  functionUrl: string;
  upstream: string;
  sampleUpstream?: string;
  webSocket?: string;
  [name: string]: string | undefined;
}

export interface RunningStack {
  endpoints: StackEndpoints;
  process: ChildProcess;
  /** Everything the stack wrote to stderr (logs), for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Starts `local/main.ts` as a child process on free ports (all ports 0) and waits for its ready
 * line. The same command users run, so the tests exercise the real wiring.
 */
export async function startStack(env: Record<string, string> = {}): Promise<RunningStack> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      FUNCTION_URL_PORT: '0',
      UPSTREAM_PORT: '0',
      WS_PORT: '0',
      LOCAL_STACK_READY_JSON: '1',
      POWERTOOLS_LOG_LEVEL: 'WARN',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const endpoints = await new Promise<StackEndpoints>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`local stack did not start in time:\n${stderr}`)),
      90_000,
    );
    lines.on('line', (line) => {
      if (!line.startsWith('{"localStackReady"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { localStackReady: StackEndpoints }).localStackReady);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`local stack exited with ${code}:\n${stderr}`));
    });
  });
  return {
    endpoints,
    process: child,
    logs: () => stderr,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
}
