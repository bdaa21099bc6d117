/**
 * Telling a Matrix user that their message is late or lost, the way bridges and clients already
 * do: a `com.beeper.message_send_status` event related to their message (PENDING once its first
 * delivery failed, SUCCESS when it finally goes out, FAIL_PERMANENT when it is dropped or
 * dead-lettered), and for those an `m.notice` from the bot replying to it. Never for our own virtual users' events
 * (they came from the network). Best effort: a status that cannot be sent is logged, and costs
 * the delivery nothing.
 */
import { createHash } from 'node:crypto';
import type { RoomId } from '../matrix/ids.js';
import type { Bridge } from './runtime.js';
import { botWriteFailed } from './bot.js';

export type SendStatus = 'PENDING' | 'FAIL_RETRIABLE' | 'FAIL_PERMANENT' | 'SUCCESS';

export const SEND_STATUS_TYPE = 'com.beeper.message_send_status';

interface About {
  roomId: RoomId;
  eventId: string;
  sender: string;
  type?: string;
}

/** Only a Matrix user's own message gets a status. */
const concernsAUser = (b: Bridge, e: About) => (e.type === undefined || e.type === 'm.room.message') && !b.ns.isOurs(e.sender);

/** One status of one kind per event: the CS transaction id makes a repeat (a redelivered message) a no-op. */
const txnIdFor = (eventId: string, what: string) => `status.${createHash('sha256').update(`${eventId}|${what}`).digest('base64url').slice(0, 24)}`;

export async function sendStatus(b: Bridge, e: About, status: SendStatus, deadline: number, detail?: { error?: string; attempt?: number }): Promise<void> {
  if (!concernsAUser(b, e)) return;
  const content: Record<string, unknown> = {
    network: b.config.asId,
    'm.relates_to': { rel_type: 'm.reference', event_id: e.eventId },
    status,
  };
  if (status !== 'SUCCESS' && status !== 'PENDING') {
    content.reason = 'm.foreign_network_error';
    if (detail?.error) content.error = detail.error;
    content.message = status === 'FAIL_PERMANENT' ? 'Your message was not delivered to the other network.' : 'Your message is waiting: the other network is failing.';
  }
  if (detail?.attempt !== undefined) content.retry_num = detail.attempt;
  try {
    await b.cs.sendEvent(e.roomId, SEND_STATUS_TYPE, txnIdFor(e.eventId, `${status}|${detail?.attempt ?? ''}`), content, { deadline });
  } catch (err) {
    botWriteFailed(b, 'could not tell the sender the state of their message', e.roomId, err, { eventId: e.eventId, status });
  }
}

/** The bot's reply to a message that was dropped or dead-lettered, on unless DEAD_LETTER_NOTICES is off. */
export async function sendDeadLetterNotice(b: Bridge, e: About, reason: string, deadline: number): Promise<void> {
  if (!b.delivery.notices || !concernsAUser(b, e)) return;
  try {
    await b.cs.sendEvent(
      e.roomId,
      'm.room.message',
      txnIdFor(e.eventId, 'notice'),
      { msgtype: 'm.notice', body: `not delivered to ${b.config.asId}: ${reason}`, 'm.relates_to': { 'm.in_reply_to': { event_id: e.eventId } } },
      { deadline },
    );
  } catch (err) {
    botWriteFailed(b, 'could not send the dead-letter notice', e.roomId, err, { eventId: e.eventId });
  }
}
