import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./bare-proxy.ts', import.meta.url));
const READY_LINE = /^bare proxy listening on (\S+)$/;

/** The bare proxy of `bench/bare-proxy.ts`, running as its own process. */
export interface BareProxy {
  /** Base URL with a trailing slash: `${url}sample/190MB` is the upstream's `sample/190MB`. */
  url: string;
  pid: number;
  close(): Promise<void>;
}

/**
 * Starts the bare proxy in front of `upstream` (a base URL ending with a slash) the way the stack
 * starts its sample upstream: this Node, `--import tsx`, its own process. Its output goes to `log`.
 */
export async function startBareProxy(upstream: string, log: (line: string) => void): Promise<BareProxy> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, '--upstream', upstream], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr?.on('data', (chunk: Buffer) => log(`bare proxy: ${chunk.toString().trimEnd()}`));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const ready = READY_LINE.exec(line);
      if (ready?.[1]) resolve(ready[1]);
      else log(`bare proxy: ${line}`);
    });
    child.once('exit', (code) => reject(new Error(`the bare proxy exited with ${code} before listening`)));
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the bare proxy has no pid');
  return {
    url,
    pid,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
