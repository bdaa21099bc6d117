/**
 * The room record (`ROOM#<roomId>`/`MAPPING`): which network room or conversation a Matrix room
 * is, by kind (an alias room, a linked room, a direct chat). One record per bridged room, whatever made it;
 * the alias and direct-chat records (aliases.ts, direct-chats.ts) are the locks that make them.
 *
 * Rooms recorded before rooms had kinds have `ROOM#<roomId>`/`ALIAS` {alias, remoteRoom}
 * instead: read when the record is missing, and moved to the record on the way (two writes,
 * once per room), so an existing deployment needs no migration step.
 */
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { RoomAlias, RoomId, UserId } from '../matrix/ids.js';
import { isConditionFailed, untilAllProcessed } from './client.js';
import type { Table } from './client.js';
import type { BridgedRoom } from './port.js';

const PREFIX = 'ROOM#';
export const roomKey = (roomId: RoomId) => ({ pk: `${PREFIX}${roomId}`, sk: 'MAPPING' });
/** Before rooms had kinds: alias rooms only. */
const legacyKey = (roomId: RoomId) => ({ pk: `${PREFIX}${roomId}`, sk: 'ALIAS' });

/** The record's attributes (its key aside) for a room. */
export function attributesOf(room: BridgedRoom): Record<string, unknown> {
  switch (room.kind) {
    case 'alias':
      return { kind: room.kind, alias: room.alias, remoteRoom: room.remoteRoom };
    case 'linked':
      return { kind: room.kind, alias: room.alias, remoteRoom: room.remoteRoom, linkedBy: room.linkedBy, linkedAt: room.linkedAt };
    case 'direct':
      return { kind: room.kind, matrixUser: room.matrixUser, remoteUser: room.remoteUser };
  }
}

export function roomOf(item: Record<string, unknown>): BridgedRoom | undefined {
  const roomId = String(item.pk).slice(PREFIX.length) as RoomId;
  // A legacy item has no kind: it is an alias room.
  const kind = item.kind ?? 'alias';
  if (kind === 'alias') return { kind, roomId, alias: item.alias as RoomAlias, remoteRoom: String(item.remoteRoom) };
  if (kind === 'direct') return { kind, roomId, matrixUser: item.matrixUser as UserId, remoteUser: String(item.remoteUser) };
  if (kind === 'linked') {
    return { kind, roomId, alias: item.alias as RoomAlias, remoteRoom: String(item.remoteRoom), linkedBy: item.linkedBy as UserId, linkedAt: Number(item.linkedAt) };
  }
  // A kind this version does not know (written by a later one): not carried, rather than carried wrong.
  return undefined;
}

export async function putRoom(t: Table, room: BridgedRoom): Promise<void> {
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...roomKey(room.roomId), ...attributesOf(room) } }));
}

/** The room is no longer bridged: its record goes (and a legacy item, for alias rooms, which may have one). */
export async function deleteRoom(t: Table, room: BridgedRoom): Promise<void> {
  await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: roomKey(room.roomId) }));
  if (room.kind === 'alias') await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: legacyKey(room.roomId) }));
}

/** The room's record alone, read consistently (a link just made must show). */
export async function getRoom(t: Table, roomId: RoomId): Promise<BridgedRoom | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: roomKey(roomId), ConsistentRead: true }));
  return out.Item ? roomOf(out.Item) : undefined;
}

async function batchGet(t: Table, keys: Array<{ pk: string; sk: string }>): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  for (let i = 0; i < keys.length; i += 100) {
    await untilAllProcessed(keys.slice(i, i + 100), async (batch) => {
      const out = await t.doc.send(new BatchGetCommand({ RequestItems: { [t.tableName]: { Keys: batch } } }));
      items.push(...(out.Responses?.[t.tableName] ?? []));
      return (out.UnprocessedKeys?.[t.tableName]?.Keys ?? []) as typeof batch;
    });
  }
  return items;
}

/**
 * One BatchGetItem per 100 rooms; a second only for rooms without a record (rooms we do not
 * bridge, or recorded before rooms had kinds), whose legacy items are moved to records.
 */
export async function getBridgedRooms(t: Table, roomIds: RoomId[]): Promise<Map<RoomId, BridgedRoom>> {
  const found = new Map<RoomId, BridgedRoom>();
  const unique = [...new Set(roomIds)];
  for (const item of await batchGet(t, unique.map(roomKey))) {
    const room = roomOf(item);
    if (room) found.set(room.roomId, room);
  }
  const missing = unique.filter((id) => !found.has(id));
  if (!missing.length) return found;
  for (const item of await batchGet(t, missing.map(legacyKey))) {
    const room = roomOf(item);
    if (!room) continue;
    found.set(room.roomId, room);
    await migrate(t, room);
  }
  return found;
}

/**
 * A legacy item becomes a record: written only where there is none (a copy that moved or ended
 * the room meanwhile wrote its own), then the legacy item goes. Two copies doing it at once
 * both end with the one record.
 */
async function migrate(t: Table, room: BridgedRoom): Promise<void> {
  try {
    await t.doc.send(
      new PutCommand({ TableName: t.tableName, Item: { ...roomKey(room.roomId), ...attributesOf(room) }, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
  }
  await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: legacyKey(room.roomId) }));
}
