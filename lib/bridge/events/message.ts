/** m.room.message from a Matrix user in a bridged room: out to the network (queued by push). */
import type { EventHandler, RoomEvent } from './types.js';
import type { Bridge } from '../runtime.js';

// Never echo: what our virtual users or bot said came from the network in the first place.
const fromMatrixUser = (b: Bridge, e: RoomEvent) => !b.ns.isOurs(e.sender);

export const message: EventHandler = {
  needsRoom: fromMatrixUser,
  acts: (b, e, { rooms }) => fromMatrixUser(b, e) && rooms.has(e.room_id) && typeof e.content.msgtype === 'string' && typeof e.content.body === 'string',
  async handle(_b, e, { rooms }) {
    const room = rooms.get(e.room_id)!;
    const { msgtype, body } = e.content as { msgtype: string; body: string };
    // The network room as it is now: a room that moves later does not take queued messages along.
    return { deliver: { id: e.event_id, room: room.remoteRoom, sender: { userId: e.sender }, msgtype, body, ts: e.origin_server_ts } };
  },
};
