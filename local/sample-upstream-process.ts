import { fileURLToPath } from 'node:url';
import type { SampleUpstream } from './sample-upstream.ts';
import { startServerProcess } from './server-process.ts';

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
  const server = await startServerProcess({
    name: 'sample upstream',
    entry: ENTRY,
    args: ['--port', String(options.port), '--host', options.host, '--exit-with-parent'],
    readyLine: READY_LINE,
    log: options.log,
  });
  return { url: server.url, port: Number(new URL(server.url).port), close: server.close };
}
