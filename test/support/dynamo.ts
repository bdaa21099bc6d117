/**
 * A fresh table in DynamoDB Local for one test file. `npm test` starts one DynamoDB Local
 * for the run (TEST_DYNAMODB_ENDPOINT); a file run on its own starts its own.
 */
import { after } from 'node:test';
import { randomUUID } from 'node:crypto';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startDynamoLocal } from '../../lib/local/dynamodb.js';
import { createLocalTable, localDynamoClient } from '../../lib/local/table.js';
import { createTable } from '../../lib/store/client.js';
import type { Table } from '../../lib/store/client.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let endpoint: Promise<string> | undefined;

export function dynamoEndpoint(): Promise<string> {
  endpoint ??= (async () => {
    if (process.env.TEST_DYNAMODB_ENDPOINT) return process.env.TEST_DYNAMODB_ENDPOINT;
    const local = await startDynamoLocal();
    after(() => local.stop());
    return local.endpoint;
  })();
  return endpoint;
}

export interface TestTable extends Table {
  endpoint: string;
  /** Every item, for asserting on what DynamoDB holds. */
  items(): Promise<Array<Record<string, any>>>;
}

export async function testTable(): Promise<TestTable> {
  const ep = await dynamoEndpoint();
  const tableName = `test-${randomUUID()}`;
  await createLocalTable(ep, tableName);
  const table = createTable({ tableName, endpoint: ep });
  after(async () => {
    const c = localDynamoClient(ep);
    await c.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
    c.destroy();
    table.doc.destroy();
  });
  return {
    ...table,
    endpoint: ep,
    async items() {
      const out: Array<Record<string, any>> = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await table.doc.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start, ConsistentRead: true }));
        out.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      return out;
    },
  };
}
