import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readBoolean } from './config.ts';
import { ENV } from './env-names.ts';
import { tracer } from './observability.ts';

// Endpoints come from the SDK's standard AWS_ENDPOINT_URL_<SERVICE> variables; nothing here knows
// where it runs. Factories keep construction in one place and let tests pass other clients.
// Every client is traced (an X-Ray subsegment per call) when the tracer is on, i.e. on AWS only;
// off, `captureAWSv3Client` returns the client untouched.

/** S3 client; path-style addressing when `S3_FORCE_PATH_STYLE` is true (local S3 servers need it). */
export function createS3Client(env: Readonly<Record<string, string | undefined>> = process.env): S3Client {
  return tracer.captureAWSv3Client(new S3Client({ forcePathStyle: readBoolean(env, ENV.s3ForcePathStyle) }));
}

/** DynamoDB document client that drops `undefined` attributes. */
export function createDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient({})), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

export function createSfnClient(): SFNClient {
  return tracer.captureAWSv3Client(new SFNClient({}));
}

export function createLambdaClient(): LambdaClient {
  return tracer.captureAWSv3Client(new LambdaClient({}));
}

/** Client for a WebSocket API's `@connections` endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`). */
export function createManagementClient(endpoint: string): ApiGatewayManagementApiClient {
  return tracer.captureAWSv3Client(new ApiGatewayManagementApiClient({ endpoint }));
}
