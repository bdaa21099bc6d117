/**
 * The bridge bot invited into a room: it joins when the inviter may link rooms (PERMISSIONS
 * `link` or `admin`), and says how to link the room; otherwise it declines, saying why in the
 * leave's reason (it cannot speak in a room it has not joined).
 */
import type { UserId } from '../../matrix/ids.js';
import { botNotice } from '../bot.js';
import { helpText } from '../bot-commands.js';
import { permissionOf, allows } from '../permissions.js';
import type { EventHandler } from './types.js';

export const botInvite: EventHandler = {
  acts: (b, e) => e.state_key === b.ns.botUserId && e.content.membership === 'invite' && !b.ns.isOurs(e.sender),
  async handle(b, e, { deadline }) {
    const level = permissionOf(b.config.access, e.sender as UserId);
    if (!allows(level, 'link')) {
      const reason = `${e.sender} may not link rooms to ${b.config.thirdParty.networkName} (the bridge gives them "${level}")`;
      await b.cs.leave(e.room_id, reason, { deadline }).catch((err) => b.log.warn('could not decline an invite of the bot', { roomId: e.room_id, err }));
      b.log.info('declined an invite of the bot from a user who may not link rooms', { roomId: e.room_id, inviter: e.sender, level });
      return 'ignored';
    }
    await b.cs.join(e.room_id, { deadline });
    b.log.info('the bot joined a room it was invited into', { roomId: e.room_id, inviter: e.sender });
    await botNotice(b, e.room_id, helpText(b), deadline, { key: `invited|${e.event_id}` });
    return 'ignored';
  },
};
