import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat`'s times (`getconf CLK_TCK`; 100 on Linux nearly always). */
const CLOCK_TICKS_PER_SECOND = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** Resolution of {@link readCpuMs}: one clock tick. */
export const CPU_TICK_MS = 1000 / CLOCK_TICKS_PER_SECOND;

/**
 * CPU time a process has used so far, user + system, all its threads (the living and the exited,
 * the GC's and libuv's included), in milliseconds, from `/proc/<pid>/stat` (Linux only). Its
 * resolution is one clock tick ({@link CPU_TICK_MS}), so sum many transfers before dividing.
 */
export function readCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after the last `)`.
  // What follows is field 3 (state) onwards; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`/proc/${pid}/stat has no utime/stime: ${stat}`);
  return ticks * CPU_TICK_MS;
}

/** CPU time of this process (the bench's client), user + system, in milliseconds; microsecond resolution. */
export function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** The pids of `pid`'s children whose command line contains `marker`. */
export function childPidsMatching(pid: number, marker: string): number[] {
  let children: string;
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    return [];
  }
  return children
    .trim()
    .split(/\s+/)
    .filter((token) => token !== '')
    .map(Number)
    .filter((child) => {
      try {
        return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });
}
