/**
 * The message mapping: one record per bridged message, network message id ↔ Matrix event
 * (`NETMSG#<network message id>`/`EVENT`, with `eventId` and `roomId`), written once per message
 * and kept MESSAGE_MAPPING_DAYS (30). Inbound, it is written when a network message is posted:
 * a resend is answered with the event it became, even after the homeserver forgot its own
 * send-transaction cache (Synapse keeps it ~30 minutes, in memory), and the network's edits,
 * replies, reactions and deletions name their target by its network id (a strongly consistent
 * read of the table's own key). Outbound, it is written when the network has taken a message
 * and answered its own id for it (or, when it answers none, under the event id it was given).
 *
 * The other direction, Matrix event → network id (a Matrix user's reply, edit, reaction or
 * redaction of a bridged message), is the table's sparse index `byEvent` on `eventId` (with
 * the sender, for edits): the same single write keeps both directions. An index is read eventually consistently, so a
 * mapping written a moment ago may not show there yet; deliveries always carry the event id
 * as well (the network was given it), so nothing is lost when it does not.
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { expiresIn } from './client.js';
import type { Table } from './client.js';
import type { BridgedMessage } from './port.js';

/** The table's index from Matrix event ID to the mapping (infra/table.yml). */
export const BY_EVENT_INDEX = 'byEvent';
const PK_PREFIX = 'NETMSG#';

const key = (networkId: string) => ({ pk: `${PK_PREFIX}${networkId}`, sk: 'EVENT' });

export async function getBridgedMessage(t: Table, networkId: string): Promise<BridgedMessage | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: key(networkId), ConsistentRead: true }));
  // An expired record is no longer ours to use, even before DynamoDB's TTL deletes it.
  if (!out.Item || Number(out.Item.expiresAt) <= Date.now() / 1000) return undefined;
  return {
    networkId,
    eventId: out.Item.eventId,
    roomId: out.Item.roomId,
    ...(out.Item.sender ? { sender: out.Item.sender } : {}),
    ...(out.Item.reaction ? { reaction: true as const } : {}),
  };
}

export async function recordBridgedMessage(t: Table, m: BridgedMessage, ttlS: number): Promise<void> {
  await t.doc.send(
    new PutCommand({ TableName: t.tableName, Item: { ...key(m.networkId), eventId: m.eventId, roomId: m.roomId, sender: m.sender, reaction: m.reaction, expiresAt: expiresIn(ttlS) } }),
  );
}

/** The network's id of a Matrix event, and who sent it, when recorded (and the index has caught up). */
export async function mappingOfEvent(t: Table, eventId: string): Promise<Pick<BridgedMessage, 'networkId' | 'sender'> | undefined> {
  const out = await t.doc.send(
    new QueryCommand({
      TableName: t.tableName,
      IndexName: BY_EVENT_INDEX,
      KeyConditionExpression: 'eventId = :e',
      ExpressionAttributeValues: { ':e': eventId },
      Limit: 2,
    }),
  );
  const item = out.Items?.find((i) => String(i.pk).startsWith(PK_PREFIX));
  if (!item) return undefined;
  return { networkId: String(item.pk).slice(PK_PREFIX.length), ...(item.sender ? { sender: String(item.sender) } : {}) };
}
