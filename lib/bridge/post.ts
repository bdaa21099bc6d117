/** Posting a 3P message into Matrix as the virtual user who wrote it. */
import { createHash } from 'node:crypto';
import { ErrCode, MatrixError, isHomeserverError } from '../matrix/errors.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import type { BridgedRoom, InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import type { RemoteUser } from './network.js';
import { ensureVirtualUser, forgetVirtualUser, joinVirtualUser, reregisterVirtualUser } from './provision-user.js';

export function csTxnIdFor(networkMessageId: string): string {
  return 'net.' + createHash('sha256').update(networkMessageId).digest('base64url').slice(0, 32);
}

/** The answer the network gets when its user is banned from the Matrix room: documented in the README. */
export const bannedError = (userId: UserId, roomId: RoomId) =>
  new MatrixError(403, ErrCode.Forbidden, `${userId} is banned from the Matrix room ${roomId}`, { reason: 'banned' });

export async function postAsVirtualUser(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const userId = b.ns.userIdFor(m.sender.id);
  const profile = { displayName: m.sender.displayName ?? m.sender.id };
  await ensureVirtualUser(b, userId, profile, deadline);
  const send = async () =>
    (await b.cs.sendEvent(room.roomId, 'm.room.message', csTxnIdFor(m.id), { msgtype: m.msgtype, body: m.body }, { deadline, asUser: userId, ts: m.ts }))
      .event_id;
  try {
    await joinVirtualUser(b, userId, room.roomId, deadline);
    return await send();
  } catch (e) {
    // "Not in room" (kicked, left) or "not registered" (the HS lost the user): what this warm
    // Lambda remembered is out of date. Learn it again from the homeserver, once.
    if (!isHomeserverError(e) || e.hs.status !== 403) throw e;
    b.log.info('sending was refused: joining again once', { userId, roomId: room.roomId, error: e.message });
    forgetVirtualUser(b, userId);
    await rejoin(b, userId, profile, room.roomId, deadline);
    return send();
  }
}

/**
 * Posts a network message once, durably: a message already posted (by an earlier attempt, a
 * replay, another copy) is answered with the event it became. One read and one write per message.
 */
export async function postOnce(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const posted = await b.store.getPostedMessage(m.id);
  if (posted) return posted.eventId;
  return postAndRecord(b, room, m, deadline);
}

/** Posts, then records what it became (for when the caller has just checked there is no record). */
export async function postAndRecord(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const eventId = await postAsVirtualUser(b, room, m, deadline);
  await b.store.recordPostedMessage(m.id, { eventId, roomId: room.roomId });
  return eventId;
}

async function rejoin(b: Bridge, userId: UserId, profile: RemoteUser, roomId: RoomId, deadline: number): Promise<void> {
  await reregisterVirtualUser(b, userId, profile, deadline);
  b.knownUsers.set(userId, profile.displayName);
  try {
    await joinVirtualUser(b, userId, roomId, deadline);
  } catch (e) {
    if (isHomeserverError(e) && e.hs.status === 403 && (await isBanned(b, roomId, userId, deadline))) {
      b.log.warn('a network user is banned from the Matrix room: its message is refused', { userId, roomId });
      throw bannedError(userId, roomId);
    }
    throw e;
  }
}

/** Asked as the bot, who made the room; any failure to tell counts as "not banned". */
async function isBanned(b: Bridge, roomId: RoomId, userId: UserId, deadline: number): Promise<boolean> {
  try {
    return (await b.cs.getState(roomId, 'm.room.member', userId, { deadline })).membership === 'ban';
  } catch {
    return false;
  }
}
