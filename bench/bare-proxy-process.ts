import { fileURLToPath } from 'node:url';
import { startServerProcess } from '../local/server-process.ts';

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
  return startServerProcess({
    name: 'the bare proxy',
    entry: ENTRY,
    args: ['--upstream', upstream],
    readyLine: READY_LINE,
    log: (line) => log(`bare proxy: ${line}`),
  });
}
