import { App } from 'aws-cdk-lib';
import { DownloadStack, downloadSettingsFromContext } from './download-stack.ts';

/**
 * `cdk synth|deploy` entry point. Settings come from CDK context (see `DownloadSettings`);
 * `stackName` picks the CloudFormation stack name, so a second copy can live in the same account:
 * `cdk deploy -c stackName=LargeDownloadsTest -c upstreamBaseUrl=https://files.example.com/`.
 */
const app = new App();
const stackName = String(app.node.tryGetContext('stackName') ?? 'LargeDownloads');

new DownloadStack(app, stackName, {
  description: 'Large-file downloads through API Gateway and Lambda (streaming + async via S3)',
  ...downloadSettingsFromContext(app),
});

app.synth();
