/**
 * m.room.member, both sides of it:
 * - our virtual users: invites (accepted; one with `is_direct` from a Matrix user opens a direct
 *   chat), and leaving rooms (kicked, banned, parted: forgotten by this warm Lambda);
 * - Matrix users in bridged rooms: joins, leaves, kicks, bans and display-name changes go to the
 *   network (outbound.ts says which), and a Matrix user leaving a direct chat ends it.
 * Nothing about our own users goes back to the network: it came from there.
 */
import { acceptInvite, forgetVirtualUser } from '../provision-user.js';
import { endDirectChat, recordDirectChat } from '../direct-chat.js';
import { deliveryOf } from '../outbound.js';
import { linkSettings } from '../media.js';
import type { EventHandler, RoomEvent } from './types.js';
import type { Bridge } from '../runtime.js';
import type { BridgedRoom, DirectChat } from '../../store/index.js';
import type { UserId } from '../../matrix/ids.js';

const ofVirtualUser = (b: Bridge, e: RoomEvent) => e.state_key !== undefined && b.ns.isVirtualUser(e.state_key);
const ofMatrixUser = (b: Bridge, e: RoomEvent) => e.state_key !== undefined && !b.ns.isOurs(e.state_key);

/** The Matrix user of a direct chat left it (or was kicked or banned from it). */
const endsDirectChat = (e: RoomEvent, room: BridgedRoom | undefined): room is DirectChat =>
  room?.kind === 'direct' && e.state_key === room.matrixUser && (e.content.membership === 'leave' || e.content.membership === 'ban');

const outbound = (b: Bridge, e: RoomEvent, room: BridgedRoom) => deliveryOf({ ns: b.ns, links: linkSettings(b), now: b.now() }, e, room);

/** A Matrix user's invite of a virtual user as a direct chat. */
const opensDirectChat = (b: Bridge, e: RoomEvent) => ofVirtualUser(b, e) && e.content.membership === 'invite' && e.content.is_direct === true && !b.ns.isOurs(e.sender);

export const member: EventHandler = {
  // A direct-chat invite too: a room bridged already (an alias room) is not made a direct chat.
  needsRoom: (b, e) => ofMatrixUser(b, e) || opensDirectChat(b, e),
  acts: (b, e, { rooms }) => {
    if (ofVirtualUser(b, e)) return ['invite', 'leave', 'ban'].includes(String(e.content.membership));
    if (!ofMatrixUser(b, e)) return false;
    const room = rooms.get(e.room_id);
    return room !== undefined && (endsDirectChat(e, room) || outbound(b, e, room) !== undefined);
  },
  async handle(b, e, { rooms, deadline }) {
    const room = rooms.get(e.room_id);
    if (!ofVirtualUser(b, e)) {
      if (endsDirectChat(e, room)) {
        await endDirectChat(b, room, `${e.state_key} left it`, deadline);
        return 'ignored';
      }
      return { deliver: outbound(b, e, room!)! };
    }
    const target = e.state_key as UserId;
    if (e.content.membership !== 'invite') {
      // The warm Lambda must not go on believing the user is in the room.
      forgetVirtualUser(b, target, e.room_id);
      return 'ignored';
    }
    const joined = await acceptInvite(b, target, e.room_id, deadline);
    // "Start a direct chat" in a client: an invite with is_direct from a Matrix user. An invite
    // into a group room only joins; that room is not bridged.
    if (joined && opensDirectChat(b, e) && room === undefined) {
      const remoteUser = b.ns.remoteUserOf(target);
      if (remoteUser !== undefined) await recordDirectChat(b, { kind: 'direct', roomId: e.room_id, matrixUser: e.sender as UserId, remoteUser });
    }
    return 'ignored';
  },
};
