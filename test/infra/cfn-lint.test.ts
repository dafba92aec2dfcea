import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { DownloadStack, type DownloadStackProps } from '../../infra/download-stack.ts';
import { readCdkJsonContext } from '../../infra/local-definition.ts';

/**
 * The linter to run: `CFN_LINT=/path/to/cfn-lint`, else `cfn-lint` on the PATH, else the machine
 * image's pip install under pyenv (its shims may be missing from a non-login shell's PATH).
 */
const CFN_LINT =
  process.env.CFN_LINT ??
  ['cfn-lint', path.join(homedir(), '.pyenv', 'shims', 'cfn-lint')].find(
    (candidate) => spawnSync(candidate, ['--version'], { encoding: 'utf8' }).status === 0,
  ) ??
  'cfn-lint';

/** Rules whose findings are expected in a CDK template, and why they are harmless here. */
const IGNORED_RULES: Readonly<Record<string, string>> = {
  // CDK makes each function depend on its role's default policy, and so names the role in
  // DependsOn too, although the function's `Role: Fn::GetAtt` already orders it after the role.
  W3005: 'redundant DependsOn that CDK writes next to a GetAtt',
};

interface CfnLintMatch {
  Rule: { Id: string };
  Level: string;
  Message: string;
  Filename: string;
  Location: { Path: (string | number)[] };
}

const installed = spawnSync(CFN_LINT, ['--version'], { encoding: 'utf8' });
const version = installed.status === 0 ? installed.stdout.trim() : undefined;
const underCi = Boolean(process.env.CI) && process.env.CI !== 'false';

/** Synthesizes the stack (bundling skipped) and returns the template's path inside `outdir`. */
function synthesizeTemplate(outdir: string, id: string, props: DownloadStackProps): string {
  const app = new App({ outdir, context: { ...readCdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new DownloadStack(app, id, props);
  return path.join(outdir, app.synth().getStackArtifact(stack.artifactId).templateFile);
}

describe('cfn-lint', () => {
  // Outside CI a machine without cfn-lint skips this (`pip install cfn-lint`; Debian 12 has no
  // package for it); under CI a missing linter is a failure, not a silent skip.
  it.skipIf(!version && !underCi)(
    `finds no error or warning in the synthesized template (${version ?? `${CFN_LINT} is not installed`})`,
    () => {
      expect(version, `${CFN_LINT} is not installed, and CI needs it`).toBeDefined();
      const outdir = mkdtempSync(path.join(tmpdir(), 'large-downloads-cfn-lint-'));
      try {
        // Every option on: the defaults' template has the same resources, minus the optional ones.
        const templates = [
          synthesizeTemplate(outdir, 'LintStack', {
            apiAccessLogs: true,
            streamReservedConcurrency: 5,
            routerReservedConcurrency: 5,
            alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:download-alarms',
          }),
        ];
        const run = spawnSync(
          CFN_LINT,
          [
            '--format',
            'json',
            ...Object.keys(IGNORED_RULES).flatMap((id) => ['--ignore-checks', id]),
            '--',
            ...templates,
          ],
          { encoding: 'utf8' },
        );
        // Exit codes are a bit mask of the levels found (2 error, 4 warning, 8 informational); 1 is a crash.
        expect(run.status === 1 || run.error, run.stderr || String(run.error)).toBeFalsy();
        const matches = JSON.parse(run.stdout || '[]') as CfnLintMatch[];
        const problems = matches
          .filter((match) => match.Level === 'Error' || match.Level === 'Warning')
          .map(
            (match) =>
              `${match.Rule.Id} ${path.basename(match.Filename)} ${match.Location.Path.join('/')}: ${match.Message}`,
          );
        expect(problems).toEqual([]);
      } finally {
        rmSync(outdir, { recursive: true, force: true });
      }
    },
  );
});
