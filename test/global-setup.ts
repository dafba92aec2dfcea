/**
 * One temporary directory for the whole run, removed at the end: CDK apps synthesize into a fresh
 * `cdk.outXXXX` under the system's temp directory and never delete it, and the local stacks, the
 * CLI and the browser tests write their own temporary files. Pointing `TMPDIR` at a directory of
 * the run's own (workers inherit it) leaves nothing behind, whatever a test forgets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let directory: string | undefined;

export function setup(): void {
  directory = mkdtempSync(join(tmpdir(), 'large-downloads-tests-'));
  process.env.TMPDIR = directory;
}

export function teardown(): void {
  if (directory) rmSync(directory, { recursive: true, force: true });
}
