/** m.room.member: invites of our virtual users, and our users leaving rooms (kicked, banned, parted). */
import { acceptInvite, forgetVirtualUser } from '../provision-user.js';
import type { EventHandler } from './types.js';

export const member: EventHandler = {
  async handle(b, e, { deadline }) {
    const target = e.state_key;
    if (target === undefined || !b.ns.isVirtualUser(target)) return 'ignored';
    const membership = e.content.membership;
    if (membership === 'invite') await acceptInvite(b, target, e.room_id, deadline);
    // The warm Lambda must not go on believing the user is in the room.
    else if (membership === 'leave' || membership === 'ban') forgetVirtualUser(b, target, e.room_id);
    return 'ignored';
  },
};
