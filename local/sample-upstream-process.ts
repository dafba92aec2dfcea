import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SampleUpstream } from './sample-upstream.ts';

const ENTRY = fileURLToPath(new URL('./sample-upstream.ts', import.meta.url));
const READY_LINE = /^sample upstream listening on (\S+)$/;

/**
 * Runs the sample upstream in its own process, as a real upstream would be: the gateway's process
 * then carries only the function's work, and "direct from upstream" is a fair baseline. Its access
 * log lines go to `log`. It is part of the stack (`--exit-with-parent`): it exits when its stdin
 * closes, which is how it is stopped and what happens when the stack is killed, and a stop signal
 * sent to it is handed to the stack, which then stops everything.
 */
export async function startSampleUpstreamProcess(options: {
  port: number;
  host: string;
  log: (line: string) => void;
}): Promise<SampleUpstream> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', ENTRY, '--port', String(options.port), '--host', options.host, '--exit-with-parent'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stderr?.on('data', (chunk: Buffer) => options.log(chunk.toString().trimEnd()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const ready = READY_LINE.exec(line);
      if (ready?.[1]) resolve(ready[1]);
      else options.log(line);
    });
    child.once('exit', (code) => reject(new Error(`sample upstream exited with ${code} before listening`)));
    child.once('error', reject);
  });
  let closing: Promise<void> | undefined;
  child.once('exit', (code, signal) => {
    if (!closing) options.log(`exited unexpectedly (${signal ?? `code ${code}`})`);
  });
  return {
    url,
    port: Number(new URL(url).port),
    close() {
      closing ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        // Not SIGTERM: the child hands signals to the stack as requests to stop.
        child.stdin?.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
