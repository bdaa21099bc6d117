/**
 * What Matrix users say in a bridged room, out to the network (queued by push): messages (text,
 * formatted, media, replies) and their edits (m.room.message), stickers, reactions (m.reaction)
 * and redactions. One handler for all of them: they differ only in the delivery they make
 * (outbound.ts), and they must keep their order in the room's one queue.
 */
import type { EventHandler, RoomEvent } from './types.js';
import type { Bridge } from '../runtime.js';
import { deliveryOf } from '../outbound.js';
import { linkSettings } from '../media.js';
import { may } from '../permissions.js';

// Never echo: what our virtual users or bot said or did came from the network in the first place.
const fromMatrixUser = (b: Bridge, e: RoomEvent) => !b.ns.isOurs(e.sender);
// PERMISSIONS: a user at `none` is not relayed (command.ts says so for their messages).
const relayed = (b: Bridge, e: RoomEvent) => may(b.config.access, e.sender, 'relay');

const outbound = (b: Bridge, e: RoomEvent, room: Parameters<typeof deliveryOf>[2]) => deliveryOf({ ns: b.ns, links: linkSettings(b), now: b.now() }, e, room);

export const message: EventHandler = {
  needsRoom: fromMatrixUser,
  acts: (b, e, { rooms }) => {
    const room = rooms.get(e.room_id);
    return fromMatrixUser(b, e) && room !== undefined && relayed(b, e) && outbound(b, e, room) !== undefined;
  },
  async handle(b, e, { rooms }) {
    // The network room as it is now: a room that moves later does not take queued messages along.
    return { deliver: outbound(b, e, rooms.get(e.room_id)!)! };
  },
};
