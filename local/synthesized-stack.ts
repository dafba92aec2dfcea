import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CloudFormationTemplate } from './stack-template.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

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

function cacheKey(): string {
  const hash = createHash('sha256');
  for (const file of synthesisInputs()) {
    hash.update(relative(REPO_ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

/**
 * The CloudFormation template `cdk synth` produces for `DownloadStack` with the default settings
 * (bundling skipped: no esbuild run, no Docker, no network). Synthesizing takes seconds (loading
 * aws-cdk-lib, building the whole stack), so the template is kept under `.local/synthesized/`,
 * keyed by a hash of every file synthesis reads; any change to the app, the code or the pinned
 * CDK synthesizes afresh, and a warm start only reads a file.
 */
export async function loadSynthesizedTemplate(): Promise<CloudFormationTemplate> {
  const directory = join(REPO_ROOT, '.local', 'synthesized');
  const file = join(directory, `${cacheKey()}.template.json`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CloudFormationTemplate;
  } catch {
    // Not synthesized for these inputs yet.
  }
  const template = await synthesizeTemplate();
  mkdirSync(directory, { recursive: true });
  // Written whole, then renamed: stacks starting side by side never read half a file.
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(template));
  renameSync(partial, file);
  // Entries for earlier inputs are of no more use.
  for (const name of readdirSync(directory)) {
    if (name.endsWith('.json') && join(directory, name) !== file)
      rmSync(join(directory, name), { force: true });
  }
  return template;
}

/** Synthesizes the app's stack in this process, as `cdk synth` would (the project's feature flags). */
async function synthesizeTemplate(): Promise<CloudFormationTemplate> {
  const [{ App }, { DownloadStack }, { readCdkJsonContext }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../infra/download-stack.ts'),
    import('../infra/local-definition.ts'),
  ]);
  const outdir = mkdtempSync(join(tmpdir(), 'large-downloads-synth-'));
  try {
    const app = new App({ outdir, context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const stack = new DownloadStack(app, 'LocalStack');
    return app.synth().getStackArtifact(stack.artifactId).template as CloudFormationTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
