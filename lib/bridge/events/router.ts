/**
 * The event router: one handler per event type, registered in one table. A new kind of event
 * is one handler file and one line here.
 */
import type { RoomId } from '../../matrix/ids.js';
import type { BridgedRoom } from '../../store/index.js';
import type { Bridge } from '../runtime.js';
import { recogniseRooms } from '../heal.js';
import { member } from './member.js';
import { message } from './message.js';
import { tombstone } from './tombstone.js';
import { isRoomEvent } from './types.js';
import type { EventContext, EventHandler, EventOutcome, RoomEvent } from './types.js';

const HANDLERS: Readonly<Record<string, EventHandler>> = {
  'm.room.message': message,
  'm.sticker': message,
  'm.reaction': message,
  'm.room.redaction': message,
  'm.room.member': member,
  'm.room.tombstone': tombstone,
};

export const handlerFor = (e: RoomEvent): EventHandler | undefined => (Object.hasOwn(HANDLERS, e.type) ? HANDLERS[e.type] : undefined);

/** The handler of an event that leads to something, given its transaction's bridged rooms. */
export function actingHandler(b: Bridge, e: unknown, rooms: ReadonlyMap<RoomId, BridgedRoom>): EventHandler | undefined {
  if (!isRoomEvent(e)) return undefined;
  const handler = handlerFor(e);
  return handler?.acts(b, e, { rooms }) ? handler : undefined;
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
    if (!isRoomEvent(e) || !handlerFor(e)?.needsRoom?.(b, e) || rooms.has(e.room_id)) continue;
    const cached = b.roomCache.get(e.room_id);
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
