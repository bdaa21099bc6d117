/**
 * Direct chats: a Matrix user and a network user talking privately, both ways.
 *
 * - Matrix opens one: the Matrix user invites the virtual user with `is_direct` (what clients
 *   send for "start a direct chat"); the virtual user joins and the room is recorded as the
 *   pair's direct chat (events/member.ts). What is said there goes to the network with
 *   `direct: {with}` in place of `room`.
 * - The network opens one: a private message (`to`, a Matrix user ID) goes to the pair's direct
 *   chat, made by the virtual user when there is none (`is_direct`, the Matrix user invited).
 *   The pair's record is a lock, as the alias record is for alias rooms: parallel first
 *   messages make one room.
 * - A Matrix user who leaves ends it (events/member.ts): the next private message makes a new one.
 */
import { randomUUID } from 'node:crypto';
import { invalidParam, isHomeserverError, unavailable } from '../matrix/errors.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import type { DirectChat, DirectChatRecord, InboundMessage } from '../store/index.js';
import { sleep } from '../time.js';
import type { Bridge } from './runtime.js';
import { forgetNotOurs } from './heal.js';
import { postAndRecord } from './post.js';
import { ensureVirtualUser, forgetVirtualUser } from './provision-user.js';
import type { NetworkUser } from './network-requests.js';

const POLL_MS = 150;

const readyChat = (record: DirectChatRecord | undefined, remoteUser: string, matrixUser: UserId): DirectChat | undefined =>
  record?.state === 'ready' && record.roomId ? { kind: 'direct', roomId: record.roomId, matrixUser, remoteUser } : undefined;

/**
 * The room of the network user's private messages to `matrixUser`: the pair's direct chat,
 * made when there is none. One copy makes it; the others wait for it, or for the maker's lock
 * to run out (it lasts as long as the maker's own deadline).
 */
export async function openDirectChat(b: Bridge, sender: NetworkUser, matrixUser: UserId, deadline: number): Promise<DirectChat> {
  if (b.ns.isOurs(matrixUser)) throw invalidParam(`to must be a Matrix user, not one of the bridge's own (${matrixUser})`);
  let record = await b.store.getDirectChat(sender.id, matrixUser);
  const recorded = readyChat(record, sender.id, matrixUser);
  if (recorded) return recorded;
  const owner = randomUUID();
  for (;;) {
    const lockMs = Math.max(deadline - Date.now(), 0) + 1000;
    if (await b.store.lockDirectChat(sender.id, matrixUser, owner, lockMs)) return createDirectChat(b, sender, matrixUser, owner, deadline);
    do {
      if (Date.now() + POLL_MS >= deadline) throw unavailable(`the direct chat of ${sender.id} with ${matrixUser} is still being made; try again`);
      await sleep(POLL_MS);
      record = await b.store.getDirectChat(sender.id, matrixUser);
      const made = readyChat(record, sender.id, matrixUser);
      if (made) return made;
    } while (record && record.state === 'creating' && (record.lockUntil ?? 0) >= Date.now());
  }
}

async function createDirectChat(b: Bridge, sender: NetworkUser, matrixUser: UserId, owner: string, deadline: number): Promise<DirectChat> {
  const userId = b.ns.userIdFor(sender.id);
  let roomId: RoomId;
  try {
    await ensureVirtualUser(b, userId, sender, deadline);
    // What clients make for "start a direct chat": the invite carries is_direct, so the Matrix
    // user's client files the room under the network user in its m.direct list.
    ({ room_id: roomId } = await b.cs.createRoom({ preset: 'trusted_private_chat', is_direct: true, invite: [matrixUser] }, { deadline, asUser: userId }));
  } catch (e) {
    await b.store.releaseDirectChat(sender.id, matrixUser, owner).catch((err) => b.log.warn('could not release a direct chat lock', { matrixUser, err }));
    throw e;
  }
  b.joined.add(`${roomId}|${userId}`);
  const chat: DirectChat = { kind: 'direct', roomId, matrixUser, remoteUser: sender.id };
  if (!(await b.store.markDirectChatReady(chat, owner))) {
    // Our lock ran out and another copy made one meanwhile: its room is the pair's, ours stays unused.
    const theirs = readyChat(await b.store.getDirectChat(sender.id, matrixUser), sender.id, matrixUser);
    if (!theirs) throw unavailable(`the direct chat of ${sender.id} with ${matrixUser} is being made by another request; try again`);
    b.log.warn('made a direct chat room another request had made too: left unused', { roomId, used: theirs.roomId, matrixUser });
    return theirs;
  }
  remember(b, chat);
  b.log.info('opened a direct chat for a network user\'s private message', { roomId, matrixUser, userId });
  return chat;
}

/** A private message from the network, into the pair's direct chat. */
export async function postPrivateMessage(b: Bridge, m: InboundMessage & { to: UserId }, deadline: number): Promise<string> {
  const chat = await openDirectChat(b, m.sender, m.to, deadline);
  try {
    return await postAndRecord(b, chat, m, deadline);
  } catch (e) {
    // The virtual user may no longer post there even after joining again (kicked, banned, the
    // room gone from the homeserver): that chat is over, and a new one takes the message.
    if (!isHomeserverError(e) || (e.hs.status !== 403 && e.hs.status !== 404)) throw e;
    await endDirectChat(b, chat, `the network user can no longer post there (${e.message})`, deadline);
    return postAndRecord(b, await openDirectChat(b, m.sender, m.to, deadline), m, deadline);
  }
}

/** A Matrix user opened a direct chat with a virtual user (which has joined it): recorded both ways. */
export async function recordDirectChat(b: Bridge, chat: DirectChat): Promise<void> {
  await b.store.recordDirectChat(chat);
  remember(b, chat);
  b.log.info('a Matrix user opened a direct chat with a network user', { roomId: chat.roomId, matrixUser: chat.matrixUser, remoteUser: chat.remoteUser });
}

/**
 * The chat is over (its Matrix user left, or the virtual user can no longer post): the room is
 * no longer bridged, and the virtual user leaves it too (best effort), so nobody talks into a
 * room the network no longer hears.
 */
export async function endDirectChat(b: Bridge, chat: DirectChat, why: string, deadline: number): Promise<void> {
  await b.store.endDirectChat(chat);
  b.roomCache.delete(chat.roomId);
  const userId = b.ns.userIdFor(chat.remoteUser);
  forgetVirtualUser(b, userId, chat.roomId);
  try {
    await b.cs.leave(chat.roomId, 'the direct chat ended', { deadline, asUser: userId });
  } catch (err) {
    b.log.info('the virtual user could not leave an ended direct chat', { roomId: chat.roomId, userId, err });
  }
  b.log.info('a direct chat ended', { roomId: chat.roomId, matrixUser: chat.matrixUser, why });
}

function remember(b: Bridge, chat: DirectChat): void {
  b.roomCache.set(chat.roomId, chat);
  forgetNotOurs(b, chat.roomId);
}
