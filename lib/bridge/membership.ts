/**
 * Network users coming and going (POST /network/members): the virtual user joins or leaves the
 * network room's Matrix room. Like messages, a membership for a room nobody has joined yet is
 * kept as scrollback (inbound.ts) and replayed in order when the room is made, so the room
 * starts with the people the network has in it.
 */
import { isHomeserverError } from '../matrix/errors.js';
import type { NetworkRoom, InboundMembership } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { actAsVirtualUser } from './post.js';
import { forgetVirtualUser } from './provision-user.js';

/** Joins are idempotent on the homeserver, and so are leaves of a user who is not there: a resend changes nothing. */
export async function applyMembership(b: Bridge, room: NetworkRoom, m: InboundMembership, deadline: number): Promise<void> {
  const userId = b.ns.userIdFor(m.user.id);
  // The network says where its user is: what this warm Lambda remembers does not count.
  forgetVirtualUser(b, userId, room.roomId);
  if (m.membership === 'join') {
    // Registered (with the profile given), joined, and joined again after a refusal that shows
    // the homeserver lost or removed the user; a ban is refused (403 with reason "banned").
    await actAsVirtualUser(b, room.roomId, m.user, deadline, async () => undefined);
    return;
  }
  try {
    await b.cs.leave(room.roomId, m.reason, { deadline, asUser: userId });
  } catch (e) {
    // Not in the room (never joined, kicked, banned) or never registered: nothing to leave.
    if (isHomeserverError(e) && (e.hs.status === 403 || e.hs.status === 404)) {
      b.log.info('a network user left a room its virtual user was not in: nothing to do', { userId, roomId: room.roomId });
      return;
    }
    throw e;
  }
}
