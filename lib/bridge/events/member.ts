/** m.room.member: invites of our virtual users, and our users leaving rooms (kicked, banned, parted). */
import { acceptInvite, forgetVirtualUser } from '../provision-user.js';
import type { EventHandler } from './types.js';
import type { UserId } from '../../matrix/ids.js';

export const member: EventHandler = {
  acts: (b, e) => e.state_key !== undefined && b.ns.isVirtualUser(e.state_key) && ['invite', 'leave', 'ban'].includes(String(e.content.membership)),
  async handle(b, e, { deadline }) {
    const target = e.state_key as UserId;
    if (e.content.membership === 'invite') await acceptInvite(b, target, e.room_id, deadline);
    // The warm Lambda must not go on believing the user is in the room.
    else forgetVirtualUser(b, target, e.room_id);
    return 'ignored';
  },
};
