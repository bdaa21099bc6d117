/**
 * The bridge bot in its rooms. The bot makes every bridged room and stays in it: it sets the
 * bridge event, tells senders what became of their messages, and reads the room when the table
 * has lost it. Whether it is still there is asked of the homeserver, never guessed from the class
 * of another call's failure.
 */
import { createHash } from 'node:crypto';
import { ErrCode, isHomeserverError } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import { recordMetrics } from '../metrics.js';
import type { Bridge } from './runtime.js';

/**
 * - joined: the bot is in the room;
 * - departed: the room exists and the bot left it or was kicked (Synapse lets a departed user
 *   read the room as it was when they left: its own membership is "leave");
 * - absent: the homeserver has no such room, or the bot never was in it, or is banned
 *   (Synapse: 403 M_FORBIDDEN "not in room"; 404 from others).
 */
export type BotPresence = 'joined' | 'departed' | 'absent';

/** Asks the homeserver, as the bot, for its own membership: one call. Failures that are no answer (5xx, 429, timeouts) are thrown. */
export async function botPresence(b: Bridge, roomId: RoomId, deadline: number): Promise<BotPresence> {
  try {
    const member = await b.cs.getState(roomId, 'm.room.member', b.ns.botUserId, { deadline });
    return member.membership === 'join' ? 'joined' : member.membership === 'ban' ? 'absent' : 'departed';
  } catch (e) {
    if (isHomeserverError(e, ErrCode.Forbidden) || (isHomeserverError(e) && e.hs.status === 404)) return 'absent';
    throw e;
  }
}

/**
 * A write of the bot's own (a send status, a notice, the bridge event) failed. The bridge goes
 * on without it; when the homeserver refused because the bot is not in the room (a moderator
 * kicked it), the operator is told how to bring it back, and the BotNotInRoom metric counts it.
 */
export function botWriteFailed(b: Bridge, what: string, roomId: RoomId, err: unknown, more: Record<string, unknown> = {}): void {
  if (isHomeserverError(err) && err.hs.status === 403) {
    b.log.warn(`${what}: the bot is not in the room. Invite ${b.ns.botUserId} back (it joins by itself when invited)`, { roomId, ...more, err });
    recordMetrics({ BotNotInRoom: 1 });
    return;
  }
  b.log.warn(what, { roomId, ...more, err });
}

/**
 * An `m.notice` from the bot, in reply to `replyTo` when given. `key` names it for the CS
 * transaction id, so that a notice about one event is sent once however often the event is
 * handled (a retried transaction). Best effort, as every write of the bot's own.
 */
export async function botNotice(b: Bridge, roomId: RoomId, body: string, deadline: number, opts: { key: string; replyTo?: string }): Promise<void> {
  const content: Record<string, unknown> = { msgtype: 'm.notice', body };
  if (opts.replyTo) content['m.relates_to'] = { 'm.in_reply_to': { event_id: opts.replyTo } };
  const txnId = `notice.${createHash('sha256').update(opts.key).digest('base64url').slice(0, 32)}`;
  try {
    await b.cs.sendEvent(roomId, 'm.room.message', txnId, content, { deadline });
  } catch (err) {
    botWriteFailed(b, 'could not send a notice', roomId, err);
  }
}
