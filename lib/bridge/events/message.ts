/** m.room.message from a Matrix user in a bridged room: out to the network. */
import type { EventHandler, RoomEvent } from './types.js';
import type { Bridge } from '../runtime.js';

// Never echo: what our virtual users or bot said came from the network in the first place.
const fromMatrixUser = (b: Bridge, e: RoomEvent) => !b.ns.isOurs(e.sender);

export const message: EventHandler = {
  needsRoom: fromMatrixUser,
  async handle(b, e, { rooms }) {
    if (!fromMatrixUser(b, e)) return 'ignored';
    const room = rooms.get(e.room_id);
    if (!room) return 'ignored';
    const { msgtype, body } = e.content;
    if (typeof msgtype !== 'string' || typeof body !== 'string') return 'ignored';
    await b.network.deliver({
      id: e.event_id,
      room: room.remoteRoom,
      sender: { userId: e.sender },
      msgtype,
      body,
      ts: e.origin_server_ts,
    });
    return 'delivered';
  },
};
