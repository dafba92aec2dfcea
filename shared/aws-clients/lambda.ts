import { LambdaClient } from '@aws-sdk/client-lambda';
import { tracer } from '../tracer.ts';

// One module per SDK client: see `shared/aws-clients/s3.ts`.

/** Lambda client (`$connect` invokes the notifier asynchronously). */
export function createLambdaClient(): LambdaClient {
  return tracer.captureAWSv3Client(new LambdaClient({}));
}
