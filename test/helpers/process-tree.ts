import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A process as `ps` lists it. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  args: string;
}

/** The live processes of a process group (zombies left out), from `ps` (Linux and macOS). */
export async function listProcessGroup(pgid: number): Promise<ProcessInfo[]> {
  const { stdout } = await run('ps', ['-A', '-ww', '-o', 'pid=,ppid=,pgid=,stat=,args=']);
  const group: ProcessInfo[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!match || Number(match[3]) !== pgid || match[4]?.startsWith('Z')) continue;
    group.push({ pid: Number(match[1]), ppid: Number(match[2]), args: match[5] ?? '' });
  }
  return group;
}

/** Waits until no process of the group is left, or `timeoutMs` passed; returns those still there. */
export async function waitForGroupExit(pgid: number, timeoutMs: number): Promise<ProcessInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await listProcessGroup(pgid);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await sleep(100);
  }
}

/** SIGKILL to every process of the group; nothing if it is gone already. */
export function killProcessGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: no process left in the group.
  }
}

/** Whether a TCP connection to the URL's host and port is refused, i.e. nothing listens there. */
export function isConnectionRefused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve(true);
      else reject(error);
    });
  });
}
