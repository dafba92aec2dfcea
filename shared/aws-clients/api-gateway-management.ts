import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { tracer } from '../tracer.ts';

// One module per SDK client: see `shared/aws-clients/s3.ts`.

/** Client for a WebSocket API's `@connections` endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`). */
export function createManagementClient(endpoint: string): ApiGatewayManagementApiClient {
  return tracer.captureAWSv3Client(new ApiGatewayManagementApiClient({ endpoint }));
}
