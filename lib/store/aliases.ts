/**
 * alias → room (`ALIAS#<alias>`/`ROOM`) and room → alias (`ROOM#<roomId>`/`ALIAS`).
 * The alias item doubles as the lock that makes sure one alias gets one room.
 */
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RoomAlias, RoomId } from '../matrix/ids.js';
import { isConditionFailed, untilAllProcessed } from './client.js';
import type { Table } from './client.js';
import type { AliasRecord, BridgedRoom } from './port.js';

/** The partition of everything kept about one alias (its record, its scrollback). */
export const aliasPk = (alias: RoomAlias) => `ALIAS#${alias}`;
const aliasKey = (alias: RoomAlias) => ({ pk: aliasPk(alias), sk: 'ROOM' });
const ROOM_PREFIX = 'ROOM#';
const roomKey = (roomId: RoomId) => ({ pk: `${ROOM_PREFIX}${roomId}`, sk: 'ALIAS' });

export async function getAlias(t: Table, alias: RoomAlias): Promise<AliasRecord | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: aliasKey(alias), ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { state, roomId, lockUntil, owner, scrollbackPending } = out.Item;
  return { alias, state, roomId, lockUntil, owner, scrollbackPending };
}

export async function lockAlias(t: Table, alias: RoomAlias, owner: string, lockMs: number): Promise<boolean> {
  const now = Date.now();
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...aliasKey(alias), state: 'creating', owner, lockUntil: now + lockMs },
        ConditionExpression: 'attribute_not_exists(pk) OR (#s = :creating AND lockUntil < :now)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':creating': 'creating', ':now': now },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}

const probeKey = (alias: RoomAlias) => ({ pk: aliasPk(alias), sk: 'PROBE' });

export async function markAliasProbe(t: Table, alias: RoomAlias, until: number): Promise<void> {
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...probeKey(alias), until, expiresAt: Math.ceil(until / 1000) + 3600 } }));
}

export async function isAliasProbed(t: Table, alias: RoomAlias): Promise<boolean> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: probeKey(alias), ConsistentRead: true }));
  return Number(out.Item?.until ?? 0) > Date.now();
}

export async function clearAliasProbe(t: Table, alias: RoomAlias): Promise<void> {
  await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: probeKey(alias) }));
}

export async function reclaimAlias(t: Table, alias: RoomAlias, roomId: RoomId, owner: string, lockMs: number): Promise<boolean> {
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...aliasKey(alias), state: 'creating', owner, lockUntil: Date.now() + lockMs },
        // Only the record we read: a copy that replaced it already holds the lock, or is done.
        ConditionExpression: '#s = :ready AND roomId = :roomId',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':ready': 'ready', ':roomId': roomId },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}

/**
 * Writes room → alias, then alias → room (ready) under our lock; false when our lock was taken
 * over meanwhile. Two plain writes cost 2 write units where a TransactWriteItems costs 4; the
 * order keeps it safe: a room → alias item without a ready alias is harmless (it names the room
 * the alias resolves to anyway), while a ready alias always has its room → alias item.
 */
export async function markRoomReady(t: Table, room: BridgedRoom, owner: string, scrollbackPending: boolean): Promise<boolean> {
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...roomKey(room.roomId), alias: room.alias, remoteRoom: room.remoteRoom } }));
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...aliasKey(room.alias), state: 'ready', roomId: room.roomId, remoteRoom: room.remoteRoom, ...(scrollbackPending ? { scrollbackPending } : {}) },
        ConditionExpression: '#o = :owner',
        ExpressionAttributeNames: { '#o': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}

export async function releaseAlias(t: Table, alias: RoomAlias, owner: string): Promise<void> {
  try {
    await t.doc.send(
      new DeleteCommand({
        TableName: t.tableName,
        Key: aliasKey(alias),
        ConditionExpression: '#o = :owner AND #s = :creating',
        ExpressionAttributeNames: { '#o': 'owner', '#s': 'state' },
        ExpressionAttributeValues: { ':owner': owner, ':creating': 'creating' },
      }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
  }
}

export async function setScrollbackPending(t: Table, alias: RoomAlias, pending: boolean): Promise<void> {
  await t.doc.send(
    new UpdateCommand({
      TableName: t.tableName,
      Key: aliasKey(alias),
      UpdateExpression: pending ? 'SET scrollbackPending = :t' : 'REMOVE scrollbackPending',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: pending ? { ':t': true } : undefined,
    }),
  );
}

/** Three writes: new room → alias, alias → new room (if it still named the old one), old room's item gone. */
export async function moveRoom(t: Table, room: BridgedRoom, to: RoomId): Promise<boolean> {
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...roomKey(to), alias: room.alias, remoteRoom: room.remoteRoom } }));
  try {
    await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: aliasKey(room.alias),
        UpdateExpression: 'SET roomId = :to',
        ConditionExpression: '#s = :ready AND roomId = :from',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':ready': 'ready', ':from': room.roomId, ':to': to },
      }),
    );
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
  await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: roomKey(room.roomId) }));
  return true;
}

/** One BatchGetItem per 100 rooms. */
export async function getBridgedRooms(t: Table, roomIds: RoomId[]): Promise<Map<RoomId, BridgedRoom>> {
  const found = new Map<RoomId, BridgedRoom>();
  const unique = [...new Set(roomIds)];
  for (let i = 0; i < unique.length; i += 100) {
    await untilAllProcessed(unique.slice(i, i + 100).map(roomKey), async (keys) => {
      const out = await t.doc.send(new BatchGetCommand({ RequestItems: { [t.tableName]: { Keys: keys } } }));
      for (const item of out.Responses?.[t.tableName] ?? []) {
        const roomId = String(item.pk).slice(ROOM_PREFIX.length) as RoomId;
        found.set(roomId, { roomId, alias: item.alias, remoteRoom: item.remoteRoom });
      }
      return (out.UnprocessedKeys?.[t.tableName]?.Keys ?? []) as typeof keys;
    });
  }
  return found;
}

/**
 * Records room ↔ alias, ready, for a room the homeserver has and our table lost (or never had):
 * the bridge recognised it there. Alias → room first, only where there is no record (or a
 * creation lock that ran out), then room → alias; true when both now name the room, false when
 * the alias is recorded for another room or is being created. Two writes; a copy that dies
 * between them leaves a ready alias whose room item the next recognition writes (a record
 * naming this room counts as done).
 */
export async function adoptRoom(t: Table, room: BridgedRoom, scrollbackPending: boolean): Promise<boolean> {
  const now = Date.now();
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...aliasKey(room.alias), state: 'ready', roomId: room.roomId, remoteRoom: room.remoteRoom, ...(scrollbackPending ? { scrollbackPending } : {}) },
        ConditionExpression: 'attribute_not_exists(pk) OR (#s = :creating AND lockUntil < :now)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':creating': 'creating', ':now': now },
      }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    const record = await getAlias(t, room.alias);
    if (record?.state !== 'ready' || record.roomId !== room.roomId) return false;
  }
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...roomKey(room.roomId), alias: room.alias, remoteRoom: room.remoteRoom } }));
  return true;
}
