/** m.room.member: a Matrix user invited one of our virtual users (a DM, or into a room). */
import { acceptInvite } from '../provision-user.js';
import type { EventHandler } from './types.js';

export const member: EventHandler = {
  async handle(b, e, { deadline }) {
    if (e.content.membership === 'invite' && e.state_key !== undefined && b.ns.isVirtualUser(e.state_key)) {
      await acceptInvite(b, e.state_key, e.room_id, deadline);
    }
    return 'ignored';
  },
};
