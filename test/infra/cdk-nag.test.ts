import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { DownloadStack, type DownloadStackProps } from '../../infra/download-stack.ts';
import { readCdkJsonContext } from '../../infra/local-definition.ts';

/** The rule packs the stack must pass, by the plugin name they report under. */
const PACKS = ['AwsSolutions', 'Serverless'];

interface Violation {
  ruleName: string;
  severity: string;
  violatingConstructs?: { constructPath: string }[];
  violatingResources?: { constructPath?: string }[];
}

interface ValidationReport {
  pluginReports: { pluginName: string; violations: Violation[] }[];
}

/**
 * Synthesizes the stack with cdk-nag's packs registered as validation plugins (cdk-nag 3 runs as
 * a CDK policy-validation plugin, not an aspect) and returns the cloud assembly's validation
 * report. Acknowledged findings (`Validations.of(x).acknowledge`, next to each resource) are not
 * in it; everything else, errors and warnings alike, is.
 *
 * The report lists only plugins that found something, so the app also holds `ControlStack`, a
 * bucket and a queue that each pack flags: their findings prove that both packs ran.
 */
function validationReport(props: DownloadStackProps): ValidationReport {
  const outdir = mkdtempSync(path.join(tmpdir(), 'large-downloads-nag-'));
  try {
    const app = new App({
      outdir,
      context: {
        ...readCdkJsonContext(),
        'aws:cdk:bundling-stacks': [],
        // Write the report and return, rather than throw on the first error.
        '@aws-cdk/core:failSynthOnValidationErrors': false,
      },
    });
    new DownloadStack(app, 'NagStack', props);
    const control = new Stack(app, 'ControlStack');
    new Bucket(control, 'Bucket');
    new Queue(control, 'Queue');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
    app.synth();
    return JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

describe('cdk-nag (AwsSolutions and Serverless packs)', () => {
  it.each([
    ['the default settings', {}],
    [
      'every option switched on',
      {
        upstreamBaseUrl: 'https://files.example.org/',
        apiAuth: 'none',
        apiAccessLogs: true,
        streamReservedConcurrency: 5,
        routerReservedConcurrency: 5,
        alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:download-alarms',
      },
    ],
  ] as const)('finds no unacknowledged error or warning with %s', (_name, props) => {
    const report = validationReport(props);
    const packReports = report.pluginReports.filter((r) => PACKS.includes(r.pluginName));
    const findings = packReports.flatMap((r) =>
      r.violations.flatMap((v) =>
        (v.violatingConstructs ?? v.violatingResources ?? []).map(
          (c) => `${v.severity} ${v.ruleName}: ${c.constructPath}`,
        ),
      ),
    );

    expect(packReports.map((r) => r.pluginName).sort()).toEqual(PACKS);
    expect(findings).toContain('error AwsSolutions-S1: ControlStack/Bucket/Resource');
    expect(findings).toContain('error Serverless-SQSRedrivePolicy: ControlStack/Queue/Resource');
    expect(findings.filter((finding) => !finding.includes(': ControlStack/'))).toEqual([]);
  });
});
