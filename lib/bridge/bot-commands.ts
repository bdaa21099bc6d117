/**
 * The bot's commands, said in a room it is in: `!bridge link <network room>`, `!bridge unlink`,
 * `!bridge status`, `!bridge help`. Each is answered in the room with an `m.notice` in reply:
 * what happened, or why not. A command is never delivered to the network.
 */
import { ACCESS } from '../defaults.js';
import { MatrixError } from '../matrix/errors.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import type { Bridge } from './runtime.js';
import { botNotice } from './bot.js';
import { describeBridged, linkRoom, roomStatus, unlinkRoom } from './link-room.js';

export interface BotCommand {
  roomId: RoomId;
  sender: UserId;
  /** The event the command came in, which the bot's answer replies to. */
  eventId: string;
  body: string;
}

/** The words after the prefix, or undefined when the message is not a command to the bot. */
export function commandWords(body: unknown): string[] | undefined {
  if (typeof body !== 'string') return undefined;
  const words = body.trim().split(/\s+/);
  return words[0]?.toLowerCase() === ACCESS.COMMAND_PREFIX ? words.slice(1) : undefined;
}

export function helpText(b: Bridge): string {
  const p = ACCESS.COMMAND_PREFIX;
  return [
    `I bridge rooms to ${b.config.thirdParty.networkName}. Commands:`,
    `${p} link <network room>: bridge this room to a room of the network (moderators, power level ${b.config.access.linkPowerLevel} or more)`,
    `${p} unlink: stop bridging this room`,
    `${p} status: what this room is bridged to, and what you may do`,
    `${p} help: this text`,
  ].join('\n');
}

async function answerOf(b: Bridge, c: BotCommand, words: string[], deadline: number): Promise<string> {
  const [verb, ...args] = words;
  switch (verb?.toLowerCase()) {
    case 'link': {
      if (args.length !== 1) return `Say ${ACCESS.COMMAND_PREFIX} link <network room>, naming one network room.`;
      const room = await linkRoom(b, { roomId: c.roomId, remoteRoom: args[0]!, requestedBy: c.sender }, deadline);
      return `Linked: messages now go both ways between this room and ${room.remoteRoom}.`;
    }
    case 'unlink': {
      const room = await unlinkRoom(b, { roomId: c.roomId, requestedBy: c.sender }, deadline);
      return `Unlinked from ${room.remoteRoom}: nothing is bridged here any more.`;
    }
    case 'status': {
      const s = await roomStatus(b, c.roomId, c.sender, deadline);
      const what = s.bridged ? `This room is bridged to ${describeBridged(s.bridged)}.` : 'This room is not bridged.';
      const you = `Your permission: ${s.permission}; your power level here: ${s.powerLevel ?? 'unknown'} (linking takes ${s.neededPowerLevel}).`;
      const can = s.canUnlink ? 'You may unlink it.' : s.canLink ? `You may link it: ${ACCESS.COMMAND_PREFIX} link <network room>.` : '';
      return [what, you, can].filter(Boolean).join('\n');
    }
    default:
      return helpText(b);
  }
}

/**
 * Runs a command and answers it. A refusal is the answer; a failure that may pass (the network
 * or the table unreachable) is answered too, asking to try again, rather than holding up the
 * homeserver's transactions behind a command.
 */
export async function runBotCommand(b: Bridge, c: BotCommand, deadline: number): Promise<void> {
  const words = commandWords(c.body) ?? [];
  let answer: string;
  try {
    answer = await answerOf(b, c, words, deadline);
  } catch (e) {
    if (!(e instanceof MatrixError) || e.transient) b.log.warn('a bot command failed', { roomId: c.roomId, sender: c.sender, command: words[0], err: e });
    const why = e instanceof MatrixError ? e.message : 'something went wrong on the bridge';
    answer = e instanceof MatrixError && !e.transient ? `Not done: ${why}.` : `Not done just now (${why}); try again in a moment.`;
  }
  await botNotice(b, c.roomId, answer, deadline, { key: `command|${c.eventId}`, replyTo: c.eventId });
}
