/** Posting a 3P message into Matrix as the virtual user who wrote it. */
import { createHash } from 'node:crypto';
import type { RoomId, UserId } from '../matrix/ids.js';
import type { BridgedRoom } from '../store/aliases.js';
import type { ScrollbackMessage } from '../store/scrollback.js';
import type { Bridge } from './runtime.js';
import { ensureVirtualUser } from './provision-user.js';

export function csTxnIdFor(networkMessageId: string): string {
  return 'net.' + createHash('sha256').update(networkMessageId).digest('base64url').slice(0, 32);
}

export async function postAsVirtualUser(b: Bridge, room: BridgedRoom, m: ScrollbackMessage, deadline: number): Promise<string> {
  const userId = b.ns.userIdFor(m.sender.id) as UserId;
  await ensureVirtualUser(b, userId, { displayName: m.sender.displayName ?? m.sender.id }, deadline);
  const key = `${room.roomId}|${userId}`;
  if (!b.joined.has(key)) {
    await b.cs.join(room.roomId, { deadline, asUser: userId });
    b.joined.add(key);
  }
  const { event_id } = await b.cs.sendEvent(
    room.roomId as RoomId,
    'm.room.message',
    csTxnIdFor(m.id),
    { msgtype: m.msgtype, body: m.body },
    { deadline, asUser: userId, ts: m.ts },
  );
  return event_id;
}
