/** Posting a 3P message into Matrix as the virtual user who wrote it. */
import { createHash } from 'node:crypto';
import type { BridgedRoom, InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { ensureVirtualUser, joinVirtualUser } from './provision-user.js';

export function csTxnIdFor(networkMessageId: string): string {
  return 'net.' + createHash('sha256').update(networkMessageId).digest('base64url').slice(0, 32);
}

export async function postAsVirtualUser(b: Bridge, room: BridgedRoom, m: InboundMessage, deadline: number): Promise<string> {
  const userId = b.ns.userIdFor(m.sender.id);
  await ensureVirtualUser(b, userId, { displayName: m.sender.displayName ?? m.sender.id }, deadline);
  await joinVirtualUser(b, userId, room.roomId, deadline);
  const { event_id } = await b.cs.sendEvent(
    room.roomId,
    'm.room.message',
    csTxnIdFor(m.id),
    { msgtype: m.msgtype, body: m.body },
    { deadline, asUser: userId, ts: m.ts },
  );
  return event_id;
}
