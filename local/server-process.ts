import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** A local server running as its own Node process, started with `--import tsx`. */
export interface ServerProcess {
  /** What its ready line announced. */
  url: string;
  pid: number;
  /** Stops it by closing its stdin (not a signal); killed if it is still there after 2 s. */
  close(): Promise<void>;
}

/**
 * Starts `entry` with this Node and tsx, waits for the stdout line `readyLine` matches (its first
 * group is the URL) and sends every other output line to `log`. The process is stopped through its
 * stdin, which it watches: a signal would not do, since these processes hand stop signals on to
 * the local stack. `log` also hears of an exit that nobody asked for.
 */
export async function startServerProcess(options: {
  name: string;
  entry: string;
  args: readonly string[];
  readyLine: RegExp;
  log: (line: string) => void;
}): Promise<ServerProcess> {
  const { name, log } = options;
  const child = spawn(process.execPath, ['--import', 'tsx', options.entry, ...options.args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr?.on('data', (chunk: Buffer) => log(chunk.toString().trimEnd()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const ready = options.readyLine.exec(line);
      if (ready?.[1]) resolve(ready[1]);
      else log(line);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before listening`)));
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} has no pid`);
  let closing: Promise<void> | undefined;
  child.once('exit', (code, signal) => {
    if (!closing) log(`exited unexpectedly (${signal ?? `code ${code}`})`);
  });
  return {
    url,
    pid,
    close() {
      closing ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.stdin?.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
