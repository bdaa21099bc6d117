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

export const isConditionFailed = (e: unknown) =>
  e instanceof Error && (e.name === 'ConditionalCheckFailedException' || e.name === 'TransactionCanceledException');

/** TTL attribute value: epoch seconds. */
export const expiresIn = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;

const RETRY_LATER_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
]);
const NO_CONNECTION = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * DynamoDB throttled us, failed on its side or could not be reached, and the SDK's own retries
 * did not get through: the request may succeed later (answer 503), it is no bug of ours.
 * Only errors that went through the SDK (they carry `$metadata`) qualify.
 */
export function isStoreUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const err = e as Error & { $metadata?: { httpStatusCode?: number }; code?: unknown };
  if (!err.$metadata) return false;
  return (
    RETRY_LATER_ERRORS.has(err.name) ||
    (err.$metadata.httpStatusCode ?? 0) >= 500 ||
    (typeof err.code === 'string' && NO_CONNECTION.has(err.code))
  );
}
