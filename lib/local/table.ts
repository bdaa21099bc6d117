/**
 * The table in DynamoDB Local, from the same definition CloudFormation deploys (infra/table.yml):
 * made when it does not exist yet, kept (with its data) when it does.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import type { GlobalSecondaryIndex } from '@aws-sdk/client-dynamodb';
import type { KeySchemaElement } from '@aws-sdk/client-dynamodb';
import { parseDocument } from 'yaml';

const TABLE_YML = fileURLToPath(new URL('../../infra/table.yml', import.meta.url));

export function tableDefinition() {
  // customTags: CloudFormation's short forms (!Ref, !Sub…) parse as plain values here.
  const doc = parseDocument(readFileSync(TABLE_YML, 'utf8'), {
    customTags: [{ tag: '!Ref', resolve: (v: string) => ({ Ref: v }) }],
  }).toJS();
  return doc.Resources.StateTable.Properties;
}

export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

const keysOf = (k: KeySchemaElement[] | undefined) => JSON.stringify((k ?? []).map((e) => [e.AttributeName, e.KeyType]));

/**
 * Makes the table unless it exists: `'created'`, or `'existing'` for a table kept from an earlier
 * run (its TTL switched on if a run stopped before it could). A kept table whose keys are not
 * infra/table.yml's is refused: the code could not use it.
 */
export async function createLocalTable(endpoint: string, tableName: string): Promise<'created' | 'existing'> {
  const def = tableDefinition();
  const client = localDynamoClient(endpoint);
  try {
    let existing: KeySchemaElement[] | undefined;
    try {
      existing = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.KeySchema;
    } catch (e) {
      if (!(e instanceof ResourceNotFoundException)) throw e;
    }
    if (existing === undefined) {
      try {
        await client.send(
          new CreateTableCommand({
            TableName: tableName,
            BillingMode: def.BillingMode,
            AttributeDefinitions: def.AttributeDefinitions,
            KeySchema: def.KeySchema,
            GlobalSecondaryIndexes: def.GlobalSecondaryIndexes,
          }),
        );
        await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: def.TimeToLiveSpecification }));
        return 'created';
      } catch (e) {
        // Made meanwhile by someone else: theirs stands.
        if (!(e instanceof ResourceInUseException)) throw e;
        return 'existing';
      }
    }
    if (keysOf(existing) !== keysOf(def.KeySchema)) {
      throw new Error(`the kept table ${tableName} has the keys ${keysOf(existing)}, not infra/table.yml's ${keysOf(def.KeySchema)}: start clean (npm start -- --fresh)`);
    }
    await addMissingIndexes(client, tableName, def);
    const ttl = (await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }))).TimeToLiveDescription;
    if (ttl?.TimeToLiveStatus !== 'ENABLED' && ttl?.TimeToLiveStatus !== 'ENABLING') {
      await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: def.TimeToLiveSpecification }));
    }
    return 'existing';
  } finally {
    client.destroy();
  }
}

/**
 * A table kept from a run of an older version lacks the indexes added since: they are added in
 * place, as CloudFormation does on a deploy, so `npm start` keeps its data across an upgrade.
 */
async function addMissingIndexes(client: DynamoDBClient, tableName: string, def: ReturnType<typeof tableDefinition>): Promise<void> {
  const table = (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  const have = new Set((table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
  for (const index of (def.GlobalSecondaryIndexes ?? []) as GlobalSecondaryIndex[]) {
    if (have.has(index.IndexName)) continue;
    await client.send(
      new UpdateTableCommand({
        TableName: tableName,
        AttributeDefinitions: def.AttributeDefinitions,
        GlobalSecondaryIndexUpdates: [{ Create: { IndexName: index.IndexName, KeySchema: index.KeySchema, Projection: index.Projection } }],
      }),
    );
  }
}
