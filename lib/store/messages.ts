/**
 * Network message → Matrix event (`NETMSG#<network message id>`/`EVENT`), kept 7 days: a resend
 * from the network is answered with the event it became, without posting again, even after the
 * homeserver forgot its own send-transaction cache (Synapse keeps it ~30 minutes, in memory).
 * The same record is what edits, replies and redactions from the network will look up.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { expiresIn } from './client.js';
import type { Table } from './client.js';
import type { PostedMessage } from './port.js';

export const POSTED_TTL_S = 7 * 24 * 3600;

const key = (networkMessageId: string) => ({ pk: `NETMSG#${networkMessageId}`, sk: 'EVENT' });

export async function getPostedMessage(t: Table, networkMessageId: string): Promise<PostedMessage | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: key(networkMessageId), ConsistentRead: true }));
  return out.Item ? { eventId: out.Item.eventId, roomId: out.Item.roomId } : undefined;
}

export async function recordPostedMessage(t: Table, networkMessageId: string, posted: PostedMessage): Promise<void> {
  await t.doc.send(
    new PutCommand({ TableName: t.tableName, Item: { ...key(networkMessageId), ...posted, expiresAt: expiresIn(POSTED_TTL_S) } }),
  );
}
