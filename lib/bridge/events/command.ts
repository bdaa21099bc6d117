/**
 * m.room.message, before it is a message for the network:
 * - `command`: a `!bridge …` command to the bot (bot-commands.ts), in any room the bot is in,
 *   bridged or not; answered in the room, never delivered;
 * - `unrelayed`: a message from a user whose permission is `none` in a bridged room: not
 *   delivered, and the bot says so, once per room and user.
 */
import type { UserId } from '../../matrix/ids.js';
import { commandWords, runBotCommand } from '../bot-commands.js';
import { botNotice } from '../bot.js';
import { may } from '../permissions.js';
import type { Bridge } from '../runtime.js';
import type { EventHandler, RoomEvent } from './types.js';

const fromMatrixUser = (b: Bridge, e: RoomEvent) => !b.ns.isOurs(e.sender);
const isEdit = (e: RoomEvent) => (e.content['m.relates_to'] as { rel_type?: unknown } | undefined)?.rel_type === 'm.replace';

export const isCommand = (b: Bridge, e: RoomEvent) => fromMatrixUser(b, e) && e.content.msgtype === 'm.text' && !isEdit(e) && commandWords(e.content.body) !== undefined;

export const command: EventHandler = {
  acts: (b, e) => isCommand(b, e),
  async handle(b, e, { deadline }) {
    await runBotCommand(b, { roomId: e.room_id, sender: e.sender as UserId, eventId: e.event_id, body: String(e.content.body) }, deadline);
    return 'ignored';
  },
};

export const unrelayed: EventHandler = {
  needsRoom: fromMatrixUser,
  acts: (b, e, { rooms }) => fromMatrixUser(b, e) && rooms.has(e.room_id) && !may(b.config.access, e.sender, 'relay'),
  async handle(b, e, { deadline }) {
    if (await b.store.firstNotice(e.room_id, `unrelayed|${e.sender}`)) {
      await botNotice(b, e.room_id, `${e.sender}: what you say here is not bridged to ${b.config.thirdParty.networkName}: the bridge does not relay your messages.`, deadline, {
        key: `unrelayed|${e.room_id}|${e.sender}`,
        replyTo: e.event_id,
      });
    }
    b.log.info('a message from a user the bridge does not relay: not delivered', { roomId: e.room_id, sender: e.sender });
    return 'ignored';
  },
};
