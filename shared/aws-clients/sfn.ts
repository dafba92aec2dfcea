import { SFNClient } from '@aws-sdk/client-sfn';
import { tracer } from '../tracer.ts';

// One module per SDK client: see `shared/aws-clients/s3.ts`.

/** Step Functions client (the router starts executions). */
export function createSfnClient(): SFNClient {
  return tracer.captureAWSv3Client(new SFNClient({}));
}
