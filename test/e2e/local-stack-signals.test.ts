/**
 * `npm start` stops as a whole, however it is asked to: a stop signal to npm, to the stack's node
 * process, to the sample upstream or to the whole process group (Ctrl-C), or npm killed outright.
 * Each case starts its own `npm start` (about 10 s), in its own process group so that whatever
 * survives is found, and killed afterwards.
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { StackEndpoints } from '../helpers/local-stack.ts';
import {
  isConnectionRefused,
  killProcessGroup,
  listProcessGroup,
  waitForGroupExit,
} from '../helpers/process-tree.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STOPPED_WITHIN_MS = 10_000;

interface NpmStart {
  /** npm's pid, also the process group of the whole tree. */
  group: number;
  endpoints: StackEndpoints;
  stderr(): string;
}

/** Runs `npm start` as a user would, on free ports, and waits for the ready line. */
async function npmStart(onSpawn: (group: number) => void): Promise<NpmStart> {
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      WS_PORT: '0',
      UPSTREAM_PORT: '0',
      FUNCTION_URL_PORT: '0',
      LOCAL_STACK_READY_JSON: '1',
      POWERTOOLS_LOG_LEVEL: 'WARN',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (npm.pid === undefined) throw new Error('npm did not start');
  onSpawn(npm.pid);
  let stderr = '';
  npm.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: npm.stdout as NodeJS.ReadableStream });
  const endpoints = await new Promise<StackEndpoints>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('{"localStackReady"')) {
        resolve((JSON.parse(line) as { localStackReady: StackEndpoints }).localStackReady);
      }
    });
    npm.once('exit', (code, signal) => reject(new Error(`npm start ended (${signal ?? code}):\n${stderr}`)));
  });
  return { group: npm.pid, endpoints, stderr: () => stderr };
}

type Target = 'npm' | 'the stack' | 'the sample upstream' | 'the process group';

const cases: [NodeJS.Signals, Target][] = [
  ...(['SIGINT', 'SIGTERM', 'SIGHUP'] as const).flatMap((signal): [NodeJS.Signals, Target][] => [
    [signal, 'npm'],
    [signal, 'the stack'],
  ]),
  ['SIGKILL', 'npm'],
  // Ctrl-C in a terminal.
  ['SIGINT', 'the process group'],
  ['SIGTERM', 'the sample upstream'],
];

describe.each(cases)('%s to %s', (signal, target) => {
  // Whatever a failed case leaves behind.
  let group: number | undefined;
  let dataDirectory: string | undefined;
  afterEach(() => {
    if (group !== undefined) killProcessGroup(group);
    if (dataDirectory) rmSync(dataDirectory, { recursive: true, force: true });
    group = undefined;
    dataDirectory = undefined;
  });

  it('stops every process, closes every port and removes the data directory', async () => {
    // Prepare
    const started = await npmStart((pid) => {
      group = pid;
    });
    const processes = await listProcessGroup(started.group);
    const upstream = processes.find((p) => p.args.includes('sample-upstream.ts'));
    // The stack is the sample upstream's parent, however many processes npm puts in between.
    const stack = processes.find((p) => p.pid === upstream?.ppid);
    expect(upstream, JSON.stringify(processes)).toBeDefined();
    expect(stack, JSON.stringify(processes)).toBeDefined();
    const pid = {
      npm: started.group,
      'the stack': stack?.pid ?? 0,
      'the sample upstream': upstream?.pid ?? 0,
      'the process group': -started.group,
    }[target];
    dataDirectory = started.endpoints.dataDirectory;
    const listening = Object.values(started.endpoints).filter(
      (value): value is string => value !== undefined && /^(https?|wss?):\/\//.test(value),
    );

    // Act
    process.kill(pid, signal);
    const left = await waitForGroupExit(started.group, STOPPED_WITHIN_MS);

    // Assess
    expect(left, `${JSON.stringify(left)}\n${started.stderr()}`).toEqual([]);
    expect(listening.length).toBeGreaterThanOrEqual(8);
    for (const url of listening) expect(await isConnectionRefused(url), url).toBe(true);
    expect(dataDirectory).toBeDefined();
    expect(existsSync(dataDirectory ?? '')).toBe(false);
    // One request to stop, however many copies of the signal arrived, and a clean stop.
    expect(started.stderr().match(/stopping the local stack/g), started.stderr()).toHaveLength(1);
    expect(started.stderr()).not.toContain('without finishing the cleanup');
  }, 120_000);
});
