/** Creates the table in DynamoDB Local from the same definition CloudFormation deploys (infra/table.yml). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CreateTableCommand, DynamoDBClient, ResourceInUseException, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
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

export async function createLocalTable(endpoint: string, tableName: string): Promise<void> {
  const def = tableDefinition();
  const client = localDynamoClient(endpoint);
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: def.BillingMode,
        AttributeDefinitions: def.AttributeDefinitions,
        KeySchema: def.KeySchema,
      }),
    );
    await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: def.TimeToLiveSpecification }));
  } catch (e) {
    if (!(e instanceof ResourceInUseException)) throw e;
  } finally {
    client.destroy();
  }
}
