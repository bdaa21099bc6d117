/**
 * Direct chats, by pair (`DIRECT#<network user id>`/`WITH#<Matrix user ID>`): the room the
 * network's private messages between the two go to. The item doubles as the lock that makes
 * sure parallel first messages make one room, as the alias item does for alias rooms; the room's
 * own record (rooms.ts) says what the room is, for Matrix's side.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { UserId } from '../matrix/ids.js';
import { deleteWhile, isConditionFailed } from './client.js';
import type { Table } from './client.js';
import type { DirectChat, DirectChatRecord } from './port.js';
import { deleteRoom, putRoom } from './rooms.js';

const pairKey = (remoteUser: string, matrixUser: UserId) => ({ pk: `DIRECT#${remoteUser}`, sk: `WITH#${matrixUser}` });

export async function getDirectChat(t: Table, remoteUser: string, matrixUser: UserId): Promise<DirectChatRecord | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: pairKey(remoteUser, matrixUser), ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { state, roomId, lockUntil, owner } = out.Item;
  return { state, roomId, lockUntil, owner };
}

export async function lockDirectChat(t: Table, remoteUser: string, matrixUser: UserId, owner: string, lockMs: number): Promise<boolean> {
  const now = Date.now();
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...pairKey(remoteUser, matrixUser), state: 'creating', owner, lockUntil: now + lockMs },
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

/** The room's record first, then the pair (ready) under our lock: a ready pair always has its room's record. */
export async function markDirectChatReady(t: Table, chat: DirectChat, owner: string): Promise<boolean> {
  await putRoom(t, chat);
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...pairKey(chat.remoteUser, chat.matrixUser), state: 'ready', roomId: chat.roomId },
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

export async function releaseDirectChat(t: Table, remoteUser: string, matrixUser: UserId, owner: string): Promise<void> {
  await deleteWhile(t, pairKey(remoteUser, matrixUser), '#o = :owner AND #s = :creating', { '#o': 'owner', '#s': 'state' }, { ':owner': owner, ':creating': 'creating' });
}

/**
 * A direct chat the Matrix user opened: the room's record, then the pair, which now names the
 * newest room, unless the network is opening one under a lock that still holds (that one wins).
 */
export async function recordDirectChat(t: Table, chat: DirectChat): Promise<void> {
  await putRoom(t, chat);
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...pairKey(chat.remoteUser, chat.matrixUser), state: 'ready', roomId: chat.roomId },
        ConditionExpression: 'attribute_not_exists(pk) OR #s = :ready OR lockUntil < :now',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':ready': 'ready', ':now': Date.now() },
      }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
  }
}

/** The pair's record goes only while it names this room (a newer direct chat keeps its own). */
export async function endDirectChat(t: Table, chat: DirectChat): Promise<void> {
  await deleteWhile(t, pairKey(chat.remoteUser, chat.matrixUser), '#s = :ready AND roomId = :roomId', { '#s': 'state' }, { ':ready': 'ready', ':roomId': chat.roomId });
  await deleteRoom(t, chat);
}
