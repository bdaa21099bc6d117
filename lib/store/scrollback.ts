/**
 * Messages (and network users joining or leaving) the network sent for a room that does not exist on Matrix yet
 * (`ALIAS#<alias>`/`SCROLLBACK#<ts>#<id>`): kept, bounded and expiring, until the
 * alias query creates the room and replays them.
 */
import { BatchWriteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { RoomAlias } from '../matrix/ids.js';
import { expiresIn, untilAllProcessed } from './client.js';
import type { Table } from './client.js';
import { aliasPk } from './aliases.js';
import type { KeptEvent } from './port.js';

export const SCROLLBACK_KEEP = 100;
export const SCROLLBACK_TTL_S = 7 * 24 * 3600;

const PREFIX = 'SCROLLBACK#';
// Zero-padded so that the sort key orders by time.
const key = (alias: RoomAlias, m: Pick<KeptEvent, 'ts' | 'id'>) => ({ pk: aliasPk(alias), sk: `${PREFIX}${String(m.ts).padStart(15, '0')}#${m.id}` });

export async function keepScrollback(t: Table, alias: RoomAlias, m: KeptEvent, keep = SCROLLBACK_KEEP): Promise<void> {
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...key(alias, m), message: m, expiresAt: expiresIn(SCROLLBACK_TTL_S) } }));
  // Keep the newest `keep`: drop what falls off the end.
  const newest = await t.doc.send(
    new QueryCommand({
      TableName: t.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      ExpressionAttributeValues: { ':pk': aliasPk(alias), ':p': PREFIX },
      ProjectionExpression: 'pk, sk',
      ScanIndexForward: false,
    }),
  );
  const excess = (newest.Items ?? []).slice(keep);
  await deleteKeys(t, excess.map((i) => ({ pk: String(i.pk), sk: String(i.sk) })));
}

/** The kept messages that have not expired, oldest first. */
export async function listScrollback(t: Table, alias: RoomAlias): Promise<KeptEvent[]> {
  const out: KeptEvent[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await t.doc.send(
      new QueryCommand({
        TableName: t.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
        ExpressionAttributeValues: { ':pk': aliasPk(alias), ':p': PREFIX },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    const now = Date.now() / 1000;
    // TTL deletes expired items within days, not at once: until then they are not ours to replay.
    for (const i of page.Items ?? []) if (!(Number(i.expiresAt) <= now)) out.push(i.message as KeptEvent);
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

export const dropScrollback = (t: Table, alias: RoomAlias, messages: KeptEvent[]) =>
  deleteKeys(t, messages.map((m) => key(alias, m)));

async function deleteKeys(t: Table, keys: Array<{ pk: string; sk: string }>): Promise<void> {
  for (let i = 0; i < keys.length; i += 25) {
    await untilAllProcessed(
      keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } })),
      async (requests) => {
        const out = await t.doc.send(new BatchWriteCommand({ RequestItems: { [t.tableName]: requests } }));
        return (out.UnprocessedItems?.[t.tableName] ?? []) as typeof requests;
      },
    );
  }
}
