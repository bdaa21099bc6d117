/**
 * Linked rooms: an existing Matrix room linked to a network room. A link is the two records a
 * bridged network room always has, written together: the room's record (rooms.ts, kind
 * `linked`) and the network room's alias record (aliases.ts), which is the lock that gives a
 * network room one Matrix room, whichever made it. Nothing else is kept for a link.
 */
import { PutCommand, ScanCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { RoomId } from '../matrix/ids.js';
import { expiresIn, isConditionFailed } from './client.js';
import type { Table } from './client.js';
import type { LinkedRoom, LinkRefusal, NetworkRoom } from './port.js';
import { aliasKey, getAlias } from './aliases.js';
import { attributesOf, deleteRoom, getRoom, roomKey, roomOf } from './rooms.js';

const isCancelled = (e: unknown) => e instanceof Error && e.name === 'TransactionCanceledException';

/**
 * One TransactWriteItems (4 write units): the room's record only where there is none, and the
 * network room's record, ready, only under our creation lock. Which condition failed is read
 * back rather than taken from the cancellation reasons, which not every DynamoDB gives.
 */
export async function recordLink(t: Table, room: LinkedRoom, owner: string): Promise<LinkRefusal | undefined> {
  try {
    await t.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: t.tableName, Item: { ...roomKey(room.roomId), ...attributesOf(room) }, ConditionExpression: 'attribute_not_exists(pk)' } },
          {
            Put: {
              TableName: t.tableName,
              Item: { ...aliasKey(room.alias), state: 'ready', roomId: room.roomId, remoteRoom: room.remoteRoom, linkedBy: room.linkedBy, linkedAt: room.linkedAt },
              ConditionExpression: '#o = :owner',
              ExpressionAttributeNames: { '#o': 'owner' },
              ExpressionAttributeValues: { ':owner': owner },
            },
          },
        ],
      }),
    );
    return undefined;
  } catch (e) {
    if (!isCancelled(e)) throw e;
  }
  if (await getRoom(t, room.roomId)) return { kind: 'room-bridged' };
  const record = await getAlias(t, room.alias);
  // Our lock ran out and another request took the network room: what it holds now is named.
  if (record) return { kind: 'network-room-taken', record };
  throw new Error(`the link of ${room.roomId} to ${room.remoteRoom} was cancelled and neither record explains why`);
}

/** Both records go in one transaction, the network room's only while it names this room; else the room's alone. */
export async function removeLink(t: Table, room: NetworkRoom): Promise<boolean> {
  try {
    await t.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: t.tableName,
              Key: aliasKey(room.alias),
              ConditionExpression: 'roomId = :roomId',
              ExpressionAttributeValues: { ':roomId': room.roomId },
            },
          },
          { Delete: { TableName: t.tableName, Key: roomKey(room.roomId), ConditionExpression: 'attribute_exists(pk)' } },
        ],
      }),
    );
    // An alias room may still have its record from before rooms had kinds.
    if (room.kind === 'alias') await deleteRoom(t, room);
    return true;
  } catch (e) {
    if (!isCancelled(e)) throw e;
  }
  await deleteRoom(t, room);
  return false;
}

const encodeKey = (key: Record<string, unknown> | undefined) => (key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined);
function decodeKey(from: string | undefined): Record<string, unknown> | undefined {
  if (!from) return undefined;
  try {
    const key = JSON.parse(Buffer.from(from, 'base64url').toString('utf8')) as unknown;
    // Exactly the table's key, as a Scan's LastEvaluatedKey is: anything else DynamoDB refuses (a 500 otherwise).
    const ok = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && Buffer.byteLength(v) <= max;
    if (typeof key === 'object' && key !== null && !Array.isArray(key) && Object.keys(key).length === 2) {
      const { pk, sk } = key as { pk?: unknown; sk?: unknown };
      if (ok(pk, 2048) && ok(sk, 1024)) return { pk, sk };
    }
  } catch {
    // not one of ours
  }
  throw new RangeError('not a page token this bridge gave');
}

/**
 * A Scan with a filter, paged by DynamoDB's own LastEvaluatedKey: reading every link is an
 * operator's rare request (an admin's list), not worth an index that every write would pay for.
 */
export async function listLinks(t: Table, from?: string, limit = 100): Promise<{ links: LinkedRoom[]; next?: string }> {
  const links: LinkedRoom[] = [];
  let start = decodeKey(from);
  do {
    const out = await t.doc.send(
      new ScanCommand({
        TableName: t.tableName,
        FilterExpression: 'sk = :mapping AND #k = :linked',
        ExpressionAttributeNames: { '#k': 'kind' },
        ExpressionAttributeValues: { ':mapping': 'MAPPING', ':linked': 'linked' },
        ExclusiveStartKey: start,
        Limit: 500,
      }),
    );
    for (const item of out.Items ?? []) {
      const room = roomOf(item);
      if (room?.kind === 'linked') links.push(room);
    }
    start = out.LastEvaluatedKey;
  } while (start && links.length < limit);
  return { links, next: encodeKey(start) };
}

/** How long the bot remembers that it gave a once-per-room notice. */
const NOTICE_DAYS = 90;

export async function firstNotice(t: Table, roomId: RoomId, topic: string): Promise<boolean> {
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { pk: `ROOM#${roomId}`, sk: `NOTICE#${topic}`, expiresAt: expiresIn(NOTICE_DAYS * 86_400) },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}
