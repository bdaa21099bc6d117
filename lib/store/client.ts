import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface Table {
  doc: DynamoDBDocumentClient;
  tableName: string;
}

/**
 * One client per cold start. Against DynamoDB Local (an endpoint is set) any credentials do;
 * the SDK's standard retry mode retries throttling and 5xx on its own.
 */
export function createTable(opts: { tableName: string; endpoint?: string; client?: DynamoDBClient }): Table {
  const local = Boolean(opts.endpoint);
  const client =
    opts.client ??
    new DynamoDBClient({
      endpoint: opts.endpoint,
      region: process.env.AWS_REGION ?? (local ? 'us-east-1' : undefined),
      retryMode: 'standard',
      maxAttempts: 4,
      ...(local && !process.env.AWS_ACCESS_KEY_ID
        ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
        : {}),
    });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { doc, tableName: opts.tableName };
}

export const isConditionFailed = (e: unknown) => e instanceof Error && e.name === 'ConditionalCheckFailedException';

/** TTL attribute value: epoch seconds. */
export const expiresIn = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;
