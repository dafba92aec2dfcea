import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { LOCAL_CREDENTIALS } from '../../local/s3.ts';
import type { StackEndpoints } from './local-stack.ts';

/** A real S3 client for a local S3 server: path-style, the local credentials, no newer default checksums. */
export function localS3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: { ...LOCAL_CREDENTIALS },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Real SDK clients for the local S3 and DynamoDB servers of a running stack. */
export function localClients(endpoints: StackEndpoints) {
  const credentials = { ...LOCAL_CREDENTIALS };
  const s3 = localS3Client(endpoints.s3 as string);
  const dynamo = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: endpoints.dynamoDb, region: 'us-east-1', credentials }),
  );
  const bucket = endpoints.bucket as string;
  const table = endpoints.table as string;
  return {
    s3,
    dynamo,
    async objectsUnder(prefix: string): Promise<string[]> {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (listed.Contents ?? []).map((object) => object.Key ?? '');
    },
    async uploadsUnder(prefix: string): Promise<string[]> {
      const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
      return (listed.Uploads ?? []).map((upload) => upload.Key ?? '');
    },
    async record(downloadId: string): Promise<Record<string, unknown> | undefined> {
      const { Item } = await dynamo.send(new GetCommand({ TableName: table, Key: { downloadId } }));
      return Item;
    },
    async itemCount(): Promise<number> {
      const { Count } = await dynamo.send(new ScanCommand({ TableName: table, Select: 'COUNT' }));
      return Count ?? 0;
    },
    close() {
      s3.destroy();
      dynamo.destroy();
    },
  };
}
