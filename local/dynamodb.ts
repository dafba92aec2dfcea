import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { detailedLog, type LocalLog, localRegion } from './lambda-service.ts';
import { listen } from './listen.ts';
import { LOCAL_CREDENTIALS } from './s3.ts';

export { LOCAL_CREDENTIALS };

export interface LocalTable {
  name: string;
  /** String partition key attribute. */
  partitionKey: string;
  /** Optional string sort key attribute. */
  sortKey?: string;
}

export interface DynamoDbOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** LevelDB directory; in memory when absent. */
  directory?: string;
  tables: LocalTable[];
  log?: LocalLog;
}

export interface LocalDynamoDb {
  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_DYNAMODB` or the client's `endpoint`. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}

// dynalite is CommonJS without type declarations; it returns a plain http.Server.
const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: DynaliteOptions) => Server;

/**
 * Starts dynalite (DynamoDB on LevelDB) and creates the tables (PAY_PER_REQUEST), waiting until
 * they are ACTIVE. Tables already in a persisted `directory` are kept. dynalite does not enforce
 * TTL and ignores credentials.
 */
export async function startDynamoDb(options: DynamoDbOptions): Promise<LocalDynamoDb> {
  const server = dynalite({
    ...(options.directory ? { path: options.directory } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  const port = await listen(server, options.port, options.host);
  const endpoint = `http://127.0.0.1:${port}`;
  const close = async (): Promise<void> => {
    const closed = new Promise<void>((resolve, reject) =>
      server.close((error) => (error ? reject(error) : resolve())),
    );
    server.closeAllConnections();
    await closed;
  };

  const client = new DynamoDBClient({ endpoint, region: localRegion(), credentials: LOCAL_CREDENTIALS });
  try {
    for (const table of options.tables) {
      await createTable(client, table);
      detailedLog(options.log)('dynamodb: table ready', { table: table.name });
    }
  } catch (error) {
    client.destroy();
    await close();
    throw error;
  }
  client.destroy();
  return { endpoint, port, close };
}

async function createTable(client: DynamoDBClient, table: LocalTable): Promise<void> {
  const keys = [table.partitionKey, ...(table.sortKey ? [table.sortKey] : [])];
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table.name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: keys.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
        KeySchema: [
          { AttributeName: table.partitionKey, KeyType: 'HASH' },
          ...(table.sortKey ? [{ AttributeName: table.sortKey, KeyType: 'RANGE' as const }] : []),
        ],
      }),
    );
  } catch (error) {
    // Already there (persisted directory): keep it.
    if (!(error instanceof Error && error.name === 'ResourceInUseException')) throw error;
  }
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: table.name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > deadline)
      throw new Error(`table ${table.name} is still ${Table?.TableStatus} after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
