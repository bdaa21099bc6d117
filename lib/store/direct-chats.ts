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
import { markReadyUnderLock, releaseCreationLock, takeCreationLock } from './creation-lock.js';

const pairKey = (remoteUser: string, matrixUser: UserId) => ({ pk: `DIRECT#${remoteUser}`, sk: `WITH#${matrixUser}` });

export async function getDirectChat(t: Table, remoteUser: string, matrixUser: UserId): Promise<DirectChatRecord | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: pairKey(remoteUser, matrixUser), ConsistentRead: true }));
  if (!out.Item) return undefined;
  const { state, roomId, lockUntil, owner } = out.Item;
  return { state, roomId, lockUntil, owner };
}

export const lockDirectChat = (t: Table, remoteUser: string, matrixUser: UserId, owner: string, lockMs: number) =>
  takeCreationLock(t, pairKey(remoteUser, matrixUser), owner, lockMs);

/** The room's record first, then the pair (ready) under our lock: a ready pair always has its room's record. */
export async function markDirectChatReady(t: Table, chat: DirectChat, owner: string): Promise<boolean> {
  await putRoom(t, chat);
  return markReadyUnderLock(t, pairKey(chat.remoteUser, chat.matrixUser), owner, { roomId: chat.roomId });
}

export const releaseDirectChat = (t: Table, remoteUser: string, matrixUser: UserId, owner: string) =>
  releaseCreationLock(t, pairKey(remoteUser, matrixUser), owner).then(() => undefined);

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
