import { S3Client } from '@aws-sdk/client-s3';
import { readBoolean } from '../config.ts';
import { ENV } from '../env-names.ts';
import { tracer } from '../tracer.ts';

// One module per SDK client, so that a function bundles and loads only the clients it calls
// (`test/infra/bundle-contents.test.ts`). Endpoints come from the SDK's standard
// AWS_ENDPOINT_URL_<SERVICE> variables; nothing here knows where it runs. Every client is traced
// (an X-Ray subsegment per call) when the tracer is on, i.e. on AWS only; off,
// `captureAWSv3Client` returns the client untouched.

/** S3 client; path-style addressing when `S3_FORCE_PATH_STYLE` is true (local S3 servers need it). */
export function createS3Client(env: Readonly<Record<string, string | undefined>> = process.env): S3Client {
  return tracer.captureAWSv3Client(new S3Client({ forcePathStyle: readBoolean(env, ENV.s3ForcePathStyle) }));
}
