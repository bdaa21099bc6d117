/**
 * The network changes a message Matrix already has: an edit (an `m.replace` event), a deletion
 * (a redaction) or a reaction (`m.annotation`), each as the virtual user of the network user who
 * made it. The message is found by its network id in the message mapping (store/messages.ts), in
 * the room the network names: one consistent read. A target the mapping does not know (never
 * bridged, older than MESSAGE_MAPPING_DAYS, or in another room) is `404`: nothing to change.
 */
import { ErrCode, MatrixError, invalidParam, isHomeserverError, notFound } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { BridgedMessage, BridgedRoom } from '../store/index.js';
import { rememberedRoom } from './runtime.js';
import type { Bridge } from './runtime.js';
import { countOutcome } from './outcome.js';
import { actAsVirtualUser, csTxnIdFor, textContent } from './post.js';
import { ensureVirtualUser, joinVirtualUser } from './provision-user.js';
import type { InboundChange, InboundDeletion, InboundEdit, InboundReaction } from './network-requests.js';

export interface ChangeOutcome {
  eventId: string;
}

/**
 * The mapped message a change is about, and its bridged room (the one the network named). Only a
 * deletion may be about a reaction (taking it back): a reaction is not edited or reacted to.
 */
async function targetOf(b: Bridge, c: InboundChange, reactionTargets = false): Promise<{ room: BridgedRoom; target: BridgedMessage }> {
  try {
    b.ns.userIdFor(c.sender.id);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`sender.id makes a Matrix ID over 255 bytes: ${e.message}`);
    throw e;
  }
  const target = await b.store.getBridgedMessage(c.target);
  if (!target) throw notFound(`no bridged message has the id ${c.target} (never bridged, or older than the mapping is kept)`);
  if (target.reaction && !reactionTargets) throw notFound(`${c.target} is a reaction, not a message: only a deletion can be about it`);
  let room = rememberedRoom(b, target.roomId);
  if (!room) {
    room = (await b.store.getBridgedRooms([target.roomId])).get(target.roomId);
    if (room) b.roomCache.set(target.roomId, room);
  }
  if (!room || !isWhere(room, c)) throw notFound(`the message ${c.target} is not in ${c.to === undefined ? `the room ${c.room}` : `the direct chat of ${c.sender.id} with ${c.to}`}`);
  return { room, target };
}

/** The room is where the network says: its network room, or the direct chat of the sender with `to`. */
const isWhere = (room: BridgedRoom, c: InboundChange) =>
  room.kind !== 'direct' ? room.remoteRoom === c.room : c.to === room.matrixUser && c.sender.id === room.remoteUser;

const counted = (run: () => Promise<ChangeOutcome>) => countOutcome('InboundMessage', run, () => 'sent');

/** POST /network/edits → an `m.replace` of the mapped event, new content in `m.new_content`. */
export const handleInboundEdit = (b: Bridge, edit: InboundEdit, deadline: number) =>
  counted(async () => {
    const { room, target } = await targetOf(b, edit);
    // Matrix shows an edit only from whoever sent the message (Synapse stores another's, and no client shows it).
    const editor = b.ns.userIdFor(edit.sender.id);
    if (target.sender !== undefined && target.sender !== editor) {
      throw new MatrixError(403, ErrCode.Forbidden, `only the sender of ${edit.target} may edit it in Matrix (${editor} is not)`);
    }
    const next = textContent(b, edit);
    // What clients without edits show: the new text marked as an edit.
    const fallback = textContent(b, { ...edit, body: `* ${edit.body}`, formattedBody: edit.formattedBody === undefined ? undefined : `* ${edit.formattedBody}` });
    const content = { ...fallback, 'm.new_content': next, 'm.relates_to': { rel_type: 'm.replace', event_id: target.eventId } };
    const eventId = await actAsVirtualUser(b, room.roomId, edit.sender, deadline, async (userId) =>
      (await b.cs.sendEvent(room.roomId, 'm.room.message', csTxnIdFor(edit.id), content, { deadline, asUser: userId, ts: edit.ts })).event_id,
    );
    return { eventId };
  });

/**
 * POST /network/reactions → `m.reaction` as the virtual user, recorded in the message mapping
 * (one write) so that the network can take it back with a deletion. A resend is answered with
 * the event it became.
 */
export const handleInboundReaction = (b: Bridge, r: InboundReaction, deadline: number) =>
  counted(async () => {
    const posted = await b.store.getBridgedMessage(r.id);
    if (posted) return { eventId: posted.eventId };
    const { room, target } = await targetOf(b, r);
    const content = { 'm.relates_to': { rel_type: 'm.annotation', event_id: target.eventId, key: r.key } };
    let eventId: string;
    try {
      eventId = await actAsVirtualUser(b, room.roomId, r.sender, deadline, async (userId) =>
        (await b.cs.sendEvent(room.roomId, 'm.reaction', csTxnIdFor(r.id), content, { deadline, asUser: userId, ts: r.ts })).event_id,
      );
    } catch (e) {
      // Matrix takes one reaction per user, target and key (Synapse: 400 M_DUPLICATE_ANNOTATION).
      if (isHomeserverError(e, 'M_DUPLICATE_ANNOTATION')) {
        throw new MatrixError(409, 'M_DUPLICATE_ANNOTATION', `${b.ns.userIdFor(r.sender.id)} has already reacted ${r.key} to ${r.target}`);
      }
      throw e;
    }
    await b.store.recordBridgedMessage({ networkId: r.id, eventId, roomId: room.roomId, sender: b.ns.userIdFor(r.sender.id), reaction: true });
    return { eventId };
  });

/**
 * POST /network/deletions → a redaction of the mapped event: as the network user who deleted it
 * (anyone may redact their own events), else as the bridge bot (a moderator deleting someone
 * else's message on the network; the bot made the room and holds its power).
 */
export const handleInboundDeletion = (b: Bridge, d: InboundDeletion, deadline: number) =>
  counted(async () => {
    const { room, target } = await targetOf(b, d, true);
    const txnId = csTxnIdFor(d.id);
    const userId = b.ns.userIdFor(d.sender.id);
    try {
      await ensureVirtualUser(b, userId, { displayName: d.sender.displayName ?? d.sender.id }, deadline);
      await joinVirtualUser(b, userId, room.roomId, deadline);
      return { eventId: (await b.cs.redact(room.roomId, target.eventId, txnId, d.reason, { deadline, asUser: userId })).event_id };
    } catch (e) {
      if (!isForbidden(e)) throw e;
      b.log.info('the network user may not redact this event: redacting as the bot', { userId, roomId: room.roomId, eventId: target.eventId });
    }
    try {
      return { eventId: (await b.cs.redact(room.roomId, target.eventId, txnId, d.reason, { deadline })).event_id };
    } catch (e) {
      if (isForbidden(e)) throw cannotRedact(room.roomId, target.eventId);
      throw e;
    }
  });

const isForbidden = (e: unknown) => isHomeserverError(e) && e.hs.status === 403;

const cannotRedact = (roomId: RoomId, eventId: string) =>
  new MatrixError(403, ErrCode.Forbidden, `neither the network user nor the bridge bot may redact ${eventId} in ${roomId}`);
