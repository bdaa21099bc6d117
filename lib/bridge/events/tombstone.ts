/** m.room.tombstone: a bridged room was upgraded (replaced by a new room); the bridge follows it. */
import { isRoomId } from '../../matrix/ids.js';
import type { RoomId } from '../../matrix/ids.js';
import type { EventHandler } from './types.js';
import { isNetworkRoom } from '../../store/index.js';
import type { NetworkRoom } from '../../store/index.js';

export const tombstone: EventHandler = {
  needsRoom: (_b, e) => e.state_key === '',
  // Network rooms (alias and linked) only: a direct chat that is upgraded is opened again by whoever writes next.
  acts: (_b, e, { rooms }) => e.state_key === '' && isNetworkRoom(rooms.get(e.room_id)) && isRoomId(e.content.replacement_room) && e.content.replacement_room !== e.room_id,
  async handle(b, e, { rooms, deadline }) {
    const room = rooms.get(e.room_id) as NetworkRoom;
    const replacement = e.content.replacement_room as RoomId;
    // The bot joins the new room; virtual users join it when they next speak.
    await b.cs.join(replacement, { deadline });
    const moved = await b.store.moveRoom(room, replacement);
    b.roomCache.delete(room.roomId);
    if (moved) b.roomCache.set(replacement, { ...room, roomId: replacement });
    b.log.info('a bridged room was upgraded: the bridge follows it to the new room', { alias: room.alias, from: room.roomId, to: replacement, moved });
    return 'ignored';
  },
};
