/** Posting a 3P message into Matrix as the virtual user who wrote it. */
import { createHash } from 'node:crypto';
import { ErrCode, MatrixError, isHomeserverError } from '../matrix/errors.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import type { BridgedRoom, InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import type { RemoteUser } from './network.js';
import { ensureVirtualUser, forgetVirtualUser, joinVirtualUser, reregisterVirtualUser } from './provision-user.js';
import { HTML_FORMAT } from './formatting.js';

export function csTxnIdFor(networkMessageId: string): string {
  return 'net.' + createHash('sha256').update(networkMessageId).digest('base64url').slice(0, 32);
}

/** The answer the network gets when its user is banned from the Matrix room: documented in the README. */
export const bannedError = (userId: UserId, roomId: RoomId) =>
  new MatrixError(403, ErrCode.Forbidden, `${userId} is banned from the Matrix room ${roomId}`, { reason: 'banned' });

/**
 * Acts in a room as the virtual user behind a network user: registered and joined first, and
 * once more after a refusal that shows this warm Lambda's memory is out of date (kicked, left,
 * lost by the homeserver). `act` must be idempotent (a CS transaction id does it).
 */
export async function actAsVirtualUser<T>(b: Bridge, roomId: RoomId, sender: InboundMessage['sender'], deadline: number, act: (userId: UserId) => Promise<T>): Promise<T> {
  const userId = b.ns.userIdFor(sender.id);
  const profile = await ensureVirtualUser(b, userId, sender, deadline);
  try {
    await joinVirtualUser(b, userId, roomId, deadline);
    return await act(userId);
  } catch (e) {
    // "Not in room" (kicked, left) or "not registered" (the HS lost the user): what this warm
    // Lambda remembered is out of date. Learn it again from the homeserver, once.
    if (!isHomeserverError(e) || e.hs.status !== 403) throw e;
    b.log.info('acting was refused: joining again once', { userId, roomId, error: e.message });
    forgetVirtualUser(b, userId);
    await rejoin(b, userId, profile, roomId, deadline);
    return act(userId);
  }
}

export async function postAsVirtualUser(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const content = await messageContent(b, room, m);
  return actAsVirtualUser(b, room.roomId, m.sender, deadline, async (userId) =>
    (await b.cs.sendEvent(room.roomId, 'm.room.message', csTxnIdFor(m.id), content, { deadline, asUser: userId, ts: m.ts })).event_id,
  );
}

/** The network's message as `m.room.message` content; its reply target looked up in the message mapping. */
async function messageContent(b: Bridge, room: BridgedRoom, m: InboundMessage): Promise<Record<string, unknown>> {
  const content = textContent(b, m);
  if (m.media) {
    const { contentUri, filename, mimetype, size, width, height, duration } = m.media;
    content.url = contentUri;
    const info = Object.fromEntries(Object.entries({ mimetype, size, w: width, h: height, duration }).filter(([, v]) => v !== undefined));
    if (Object.keys(info).length) content.info = info;
    if (filename !== undefined && filename !== m.body) content.filename = filename;
  }
  if (m.replyTo) {
    const target = await b.store.getBridgedMessage(m.replyTo);
    // A reply to what Matrix never saw (or long ago) is still a message: sent without the reference.
    if (target?.roomId === room.roomId) content['m.relates_to'] = { 'm.in_reply_to': { event_id: target.eventId } };
  }
  return content;
}

/** msgtype, body, the (sanitised) HTML and the mentions of a network message, as Matrix content. */
export function textContent(b: Pick<Bridge, 'ns'>, m: Pick<InboundMessage, 'msgtype' | 'body' | 'formattedBody' | 'mentions'>): Record<string, unknown> {
  const content: Record<string, unknown> = { msgtype: m.msgtype, body: m.body };
  if (m.formattedBody !== undefined) {
    content.format = HTML_FORMAT;
    // Sanitised when it came in (network-requests.ts).
    content.formatted_body = m.formattedBody;
  }
  if (m.mentions) {
    const userIds = m.mentions.map((x) => ('userId' in x ? x.userId : b.ns.userIdFor(x.id)));
    content['m.mentions'] = { user_ids: [...new Set(userIds)] };
  }
  return content;
}

/**
 * Posts a network message once, durably: a message already posted (by an earlier attempt, a
 * replay, another copy) is answered with the event it became. One read and one write per message.
 */
export async function postOnce(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const posted = await b.store.getBridgedMessage(m.id);
  if (posted) return posted.eventId;
  return postAndRecord(b, room, m, deadline);
}

/** Posts, then records what it became (for when the caller has just checked there is no record). */
export async function postAndRecord(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const eventId = await postAsVirtualUser(b, room, m, deadline);
  await b.store.recordBridgedMessage({ networkId: m.id, eventId, roomId: room.roomId, sender: b.ns.userIdFor(m.sender.id) });
  return eventId;
}

async function rejoin(b: Bridge, userId: UserId, profile: RemoteUser, roomId: RoomId, deadline: number): Promise<void> {
  await reregisterVirtualUser(b, userId, profile, deadline);
  b.knownUsers.set(userId, profile);
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
