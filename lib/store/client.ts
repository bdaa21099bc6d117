import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsCredentials } from '../aws-credentials.js';
import { awsRequestHandler } from '../aws-http.js';
import { sleep } from '../time.js';
import { backoffMs } from '../backoff.js';

/** Rounds of a batch call's unprocessed keys: 50 ms, doubling (AWS's advice). */
const UNPROCESSED_RETRIES = { firstMs: 50, maxMs: 1000 };
import { StoreUnavailableError } from './port.js';

export interface Table {
  doc: DynamoDBDocumentClient;
  tableName: string;
}

/**
 * One client per cold start. Against DynamoDB Local (an endpoint is set) any credentials do; on
 * Lambda the role's, from the environment (lib/aws-credentials.ts says why explicitly);
 * the SDK's standard retry mode retries throttling and 5xx on its own.
 */
export function createTable(opts: { tableName: string; endpoint?: string; client?: DynamoDBClient }): Table {
  const local = Boolean(opts.endpoint);
  const credentials = awsCredentials(opts.endpoint);
  const client =
    opts.client ??
    new DynamoDBClient({
      endpoint: opts.endpoint,
      region: process.env.AWS_REGION ?? (local ? 'us-east-1' : undefined),
      retryMode: 'standard',
      maxAttempts: 4,
      requestHandler: awsRequestHandler(),
      ...(credentials ? { credentials } : {}),
    });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return { doc, tableName: opts.tableName };
}

/**
 * Runs a batch call (BatchGetItem, BatchWriteItem) until DynamoDB has done all of it, backing off
 * between rounds as AWS advises for unprocessed keys. What is still left after the last round
 * throws: a batch that is silently cut short would lose writes or hide rooms.
 */
export async function untilAllProcessed<T>(first: T[], run: (batch: T[]) => Promise<T[]>, rounds = 5): Promise<void> {
  let left = first;
  for (let round = 0; left.length && round < rounds; round++) {
    if (round > 0) await sleep(backoffMs(round, UNPROCESSED_RETRIES));
    left = await run(left);
  }
  if (left.length) throw new StoreUnavailableError(new Error(`DynamoDB left ${left.length} batch items unprocessed after ${rounds} rounds`));
}

export const isConditionFailed = (e: unknown) => e instanceof Error && e.name === 'ConditionalCheckFailedException';

/** TTL attribute value: epoch seconds. */
export const expiresIn = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;

/** Deletes an item only while `condition` holds; false (and no error) when it no longer does. */
export async function deleteWhile(t: Table, Key: Record<string, string>, condition: string, names: Record<string, string>, values: Record<string, unknown>): Promise<boolean> {
  try {
    await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key, ConditionExpression: condition, ExpressionAttributeNames: names, ExpressionAttributeValues: values }));
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}
