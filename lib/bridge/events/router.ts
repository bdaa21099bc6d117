/**
 * The event router: handlers by event type, registered in one table; where a type has several
 * (a message may be a bot command), the first that acts on an event has it. A new kind of event
 * is one handler file and one line here.
 */
import type { RoomId } from '../../matrix/ids.js';
import type { BridgedRoom } from '../../store/index.js';
import { rememberedRoom } from '../runtime.js';
import type { Bridge } from '../runtime.js';
import { recogniseRooms } from '../heal.js';
import { member } from './member.js';
import { botInvite } from './bot-invite.js';
import { command, unrelayed } from './command.js';
import { message } from './message.js';
import { tombstone } from './tombstone.js';
import { isRoomEvent } from './types.js';
import type { EventContext, EventHandler, EventOutcome, RoomEvent } from './types.js';

const HANDLERS: Readonly<Record<string, readonly EventHandler[]>> = {
  // A command to the bot first: it is never delivered; then a sender who may not relay; then a message.
  'm.room.message': [command, unrelayed, message],
  'm.sticker': [message],
  'm.reaction': [message],
  'm.room.redaction': [message],
  // The bot's own invites, then everyone else's membership.
  'm.room.member': [botInvite, member],
  'm.room.tombstone': [tombstone],
};

const handlersFor = (e: RoomEvent): readonly EventHandler[] => (Object.hasOwn(HANDLERS, e.type) ? HANDLERS[e.type]! : []);

/** The handler of an event that leads to something, given its transaction's bridged rooms. */
export function actingHandler(b: Bridge, e: unknown, rooms: ReadonlyMap<RoomId, BridgedRoom>): EventHandler | undefined {
  if (!isRoomEvent(e)) return undefined;
  return handlersFor(e).find((h) => h.acts(b, e, { rooms }));
}

export async function routeEvent(b: Bridge, e: RoomEvent, ctx: EventContext): Promise<EventOutcome> {
  const handler = actingHandler(b, e, ctx.rooms);
  return handler ? handler.handle(b, e, ctx) : 'ignored';
}

/**
 * The bridged rooms the events need: the warm cache, then one batch read for the rest, then
 * the homeserver for rooms our table has no record of (heal.ts: a lost table heals; a room
 * that is not ours is remembered as such, so it costs a bounded number of calls).
 */
export async function bridgedRoomsOf(b: Bridge, events: unknown[]): Promise<ReadonlyMap<RoomId, BridgedRoom>> {
  const rooms = new Map<RoomId, BridgedRoom>();
  const missing = new Set<RoomId>();
  for (const e of events) {
    if (!isRoomEvent(e) || !handlersFor(e).some((h) => h.needsRoom?.(b, e)) || rooms.has(e.room_id)) continue;
    const cached = rememberedRoom(b, e.room_id);
    if (cached) rooms.set(e.room_id, cached);
    else missing.add(e.room_id);
  }
  if (missing.size) {
    for (const [roomId, room] of await b.store.getBridgedRooms([...missing])) {
      b.roomCache.set(roomId, room);
      rooms.set(roomId, room);
      missing.delete(roomId);
    }
    if (missing.size) for (const [roomId, room] of await recogniseRooms(b, [...missing])) rooms.set(roomId, room);
  }
  return rooms;
}
