/**
 * Messages the network sent into a room that does not exist on Matrix yet
 * (`ALIAS#<alias>`/`SCROLLBACK#<ts>#<id>`): kept, bounded and expiring, until the
 * alias query creates the room and replays them.
 */
import { BatchWriteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { expiresIn } from './client.js';
import type { Table } from './client.js';

export interface ScrollbackMessage {
  id: string;
  room: string;
  sender: { id: string; displayName?: string };
  msgtype: string;
  body: string;
  ts: number;
}

export const SCROLLBACK_KEEP = 100;
export const SCROLLBACK_TTL_S = 7 * 24 * 3600;

const pk = (alias: string) => `ALIAS#${alias}`;
// Zero-padded so that the sort key orders by time.
const sk = (m: ScrollbackMessage) => `SCROLLBACK#${String(m.ts).padStart(15, '0')}#${m.id}`;

export async function putScrollback(t: Table, alias: string, m: ScrollbackMessage, keep = SCROLLBACK_KEEP): Promise<void> {
  await t.doc.send(
    new PutCommand({ TableName: t.tableName, Item: { pk: pk(alias), sk: sk(m), message: m, expiresAt: expiresIn(SCROLLBACK_TTL_S) } }),
  );
  // Keep the newest `keep`: drop what falls off the end.
  const older = await t.doc.send(
    new QueryCommand({
      TableName: t.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': pk(alias), ':p': 'SCROLLBACK#' },
      ProjectionExpression: 'pk, sk',
      ScanIndexForward: false,
    }),
  );
  const excess = (older.Items ?? []).slice(keep);
  await deleteItems(t, excess.map((i) => ({ pk: i.pk, sk: i.sk })));
}

/** The kept messages, oldest first. */
export async function listScrollback(t: Table, alias: string): Promise<Array<ScrollbackMessage & { key: { pk: string; sk: string } }>> {
  const out: Array<ScrollbackMessage & { key: { pk: string; sk: string } }> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await t.doc.send(
      new QueryCommand({
        TableName: t.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': pk(alias), ':p': 'SCROLLBACK#' },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    for (const i of page.Items ?? []) out.push({ ...(i.message as ScrollbackMessage), key: { pk: i.pk, sk: i.sk } });
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

export async function deleteItems(t: Table, keys: Array<{ pk: string; sk: string }>): Promise<void> {
  for (let i = 0; i < keys.length; i += 25) {
    let requests = keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } }));
    for (let round = 0; requests.length && round < 5; round++) {
      const out = await t.doc.send(new BatchWriteCommand({ RequestItems: { [t.tableName]: requests } }));
      requests = (out.UnprocessedItems?.[t.tableName] ?? []) as typeof requests;
      if (requests.length) await new Promise((r) => setTimeout(r, 50 * 2 ** round));
    }
  }
}
