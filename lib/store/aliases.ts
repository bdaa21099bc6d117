/**
 * alias → room (`ALIAS#<alias>`/`ROOM`), beside the room's record (rooms.ts). The alias item
 * doubles as the lock that makes sure one alias gets one room, and carries its scrollback flag.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RoomAlias, RoomId } from '../matrix/ids.js';
import { deleteWhile, isConditionFailed } from './client.js';
import type { Table } from './client.js';
import type { AliasLookup, AliasRecord, AliasRoom, NetworkRoom } from './port.js';
import { deleteRoom, putRoom } from './rooms.js';
import { markReadyUnderLock, releaseCreationLock, takeCreationLock } from './creation-lock.js';

/** The partition of everything kept about one alias (its record, its scrollback). */
export const aliasPk = (alias: RoomAlias) => `ALIAS#${alias}`;
export const aliasKey = (alias: RoomAlias) => ({ pk: aliasPk(alias), sk: 'ROOM' });

export async function getAlias(t: Table, alias: RoomAlias): Promise<AliasRecord | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: aliasKey(alias), ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { state, roomId, lockUntil, owner, scrollbackPending, linkedBy, linkedAt } = out.Item;
  return { alias, state, roomId, lockUntil, owner, scrollbackPending, ...(linkedBy ? { linked: { by: linkedBy, at: Number(linkedAt) } } : {}) };
}

export const lockAlias = (t: Table, alias: RoomAlias, owner: string, lockMs: number) => takeCreationLock(t, aliasKey(alias), owner, lockMs);

const lookupKey = (alias: RoomAlias) => ({ pk: aliasPk(alias), sk: 'LOOKUP' });
/** Kept a day past its use, so that DynamoDB's TTL tidies what nobody ends. */
const ttlAfter = (until: number) => Math.ceil(until / 1000) + 86_400;

export async function getAliasLookup(t: Table, alias: RoomAlias): Promise<AliasLookup | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: lookupKey(alias), ConsistentRead: true }));
  const item = out.Item;
  if (!item) return undefined;
  if (item.state === 'asking') return { state: 'asking', owner: item.owner, until: Number(item.until), queries: Number(item.queries ?? 0) };
  if (item.state === 'absent') return { state: 'absent', until: Number(item.until) };
  return undefined;
}

export async function startAliasLookup(t: Table, alias: RoomAlias, owner: string, now: number, until: number, overAbsent: boolean): Promise<boolean> {
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...lookupKey(alias), state: 'asking', owner, until, queries: 0, expiresAt: ttlAfter(until) },
        // Nobody else asking, and nothing learned that still holds.
        ConditionExpression: `attribute_not_exists(pk) OR #u < :now${overAbsent ? ' OR #s = :absent' : ''}`,
        ExpressionAttributeNames: { '#u': 'until', ...(overAbsent ? { '#s': 'state' } : {}) },
        ExpressionAttributeValues: { ':now': now, ...(overAbsent ? { ':absent': 'absent' } : {}) },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}

export async function recordAliasAbsent(t: Table, alias: RoomAlias, owner: string, until: number): Promise<void> {
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...lookupKey(alias), state: 'absent', until, expiresAt: ttlAfter(until) },
        ConditionExpression: '#s = :asking AND #o = :owner',
        ExpressionAttributeNames: { '#s': 'state', '#o': 'owner' },
        ExpressionAttributeValues: { ':asking': 'asking', ':owner': owner },
      }),
    );
  } catch (e) {
    // Our lease ran out and another lookup took over: its answer stands.
    if (!isConditionFailed(e)) throw e;
  }
}

export async function endAliasLookup(t: Table, alias: RoomAlias, owner: string): Promise<void> {
  await deleteWhile(t, lookupKey(alias), '#s = :asking AND #o = :owner', { '#s': 'state', '#o': 'owner' }, { ':asking': 'asking', ':owner': owner });
}

export async function countAliasQuery(t: Table, alias: RoomAlias, now: number): Promise<number | undefined> {
  try {
    const out = await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: lookupKey(alias),
        UpdateExpression: 'ADD queries :one',
        ConditionExpression: '#s = :asking AND #u >= :now',
        ExpressionAttributeNames: { '#s': 'state', '#u': 'until' },
        ExpressionAttributeValues: { ':asking': 'asking', ':now': now, ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(out.Attributes?.queries);
  } catch (e) {
    if (isConditionFailed(e)) return undefined;
    throw e;
  }
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
 * Writes the room's record, then alias → room (ready) under our lock; false when our lock was
 * taken over meanwhile. Two plain writes cost 2 write units where a TransactWriteItems costs 4;
 * the order keeps it safe: a room record without a ready alias is harmless (it names the room
 * the alias resolves to anyway), while a ready alias always has its room record.
 */
export async function markRoomReady(t: Table, room: AliasRoom, owner: string, scrollbackPending: boolean): Promise<boolean> {
  await putRoom(t, room);
  return markReadyUnderLock(t, aliasKey(room.alias), owner, { roomId: room.roomId, remoteRoom: room.remoteRoom, ...(scrollbackPending ? { scrollbackPending } : {}) });
}

export const releaseAlias = (t: Table, alias: RoomAlias, owner: string) => releaseCreationLock(t, aliasKey(alias), owner).then(() => undefined);

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

/** New room's record, alias → new room (if it still named the old one), old room's record gone. */
export async function moveRoom(t: Table, room: NetworkRoom, to: RoomId): Promise<boolean> {
  await putRoom(t, { ...room, roomId: to });
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
  await deleteRoom(t, room);
  return true;
}

/**
 * Records alias → room and the room's record, ready, for a room the homeserver has and our table lost (or never had):
 * the bridge recognised it there. Alias → room first, only where there is no record (or a
 * creation lock that ran out), then room → alias; true when both now name the room, false when
 * the alias is recorded for another room or is being created. Two writes; a copy that dies
 * between them leaves a ready alias whose room item the next recognition writes (a record
 * naming this room counts as done).
 */
export async function adoptRoom(t: Table, room: AliasRoom, scrollbackPending: boolean): Promise<boolean> {
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
  await putRoom(t, room);
  return true;
}

/**
 * The homeserver no longer has the room: both mapping items go, the alias item only while it
 * still names that room (a copy that made the room again meanwhile keeps its record).
 */
export async function forgetRoom(t: Table, room: NetworkRoom): Promise<void> {
  await deleteWhile(t, aliasKey(room.alias), '#s = :ready AND roomId = :roomId', { '#s': 'state' }, { ':ready': 'ready', ':roomId': room.roomId });
  await deleteRoom(t, room);
}
