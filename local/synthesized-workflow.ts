import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventPattern } from 'aws-cdk-lib/aws-events';
import type { SynthesizedStateMachine } from '../infra/local-definition.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What the local stack takes from the synthesized CDK stack for its workflow. */
export interface SynthesizedWorkflow {
  stateMachine: SynthesizedStateMachine;
  /** The deployed rule's pattern for the executions that ended TIMED_OUT, ABORTED or FAILED. */
  endedEventPattern: EventPattern;
}

/** Every file the synthesis reads from this repository: the CDK app, the code it imports, its config. */
function synthesisInputs(): string[] {
  const files: string[] = [];
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(path);
    }
  };
  // functions/ counts too: synthesis needs every handler entry, and the set of folders is an input.
  for (const directory of ['infra', 'shared', 'functions']) walk(join(REPO_ROOT, directory));
  files.push(join(REPO_ROOT, 'cdk.json'), join(REPO_ROOT, 'package-lock.json'));
  return files.sort();
}

function cacheKey(parameters: unknown): string {
  const hash = createHash('sha256').update(JSON.stringify(parameters));
  for (const file of synthesisInputs()) {
    hash.update(relative(REPO_ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/**
 * The state machine definition `cdk synth` produces for `DownloadStack` (intrinsics resolved to
 * placeholder ARNs naming the function folders) and the workflow watcher's event pattern.
 * Synthesizing takes seconds (loading aws-cdk-lib, building the whole stack), so the result is
 * kept under `.local/synthesized/`, keyed by a hash of every file synthesis reads; any change to
 * the app, the code or the pinned CDK synthesizes afresh.
 */
export async function loadSynthesizedWorkflow(parameters: {
  region: string;
  accountId: string;
  stateMachineArn: string;
}): Promise<SynthesizedWorkflow> {
  const directory = join(REPO_ROOT, '.local', 'synthesized');
  const file = join(directory, `${cacheKey(parameters)}.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SynthesizedWorkflow;
  } catch {
    // Not synthesized for these inputs yet.
  }
  const { synthesizeStateMachineDefinition } = await import('../infra/local-definition.ts');
  const { workflowEndedEventPattern } = await import('../infra/workflow-watch.ts');
  const workflow: SynthesizedWorkflow = {
    stateMachine: synthesizeStateMachineDefinition({
      region: parameters.region,
      accountId: parameters.accountId,
    }),
    endedEventPattern: workflowEndedEventPattern(parameters.stateMachineArn),
  };
  mkdirSync(directory, { recursive: true });
  // Written whole, then renamed: stacks starting side by side never read half a file.
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(workflow));
  renameSync(partial, file);
  // Entries for earlier inputs are of no more use.
  for (const name of readdirSync(directory)) {
    if (name.endsWith('.json') && join(directory, name) !== file)
      rmSync(join(directory, name), { force: true });
  }
  return workflow;
}
