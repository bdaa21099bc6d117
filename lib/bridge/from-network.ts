/**
 * What the network sends the AS, by path (`POST /network/{kind}`, `/network/rooms/{id}`): a new
 * message, an edit, a deletion, a reaction, a user joining or leaving, a profile, a room's
 * details; each parsed and handed to its use case.
 */
import { unrecognized } from '../matrix/errors.js';
import type { Bridge } from './runtime.js';
import { handleInbound, handleInboundMembership } from './inbound.js';
import { handleInboundDeletion, handleInboundEdit, handleInboundReaction } from './inbound-changes.js';
import { parseDeletion, parseEdit, parseInbound, parseMembership, parseProfile, parseReaction, parseRoomDetails } from './network-requests.js';
import { updateVirtualUserProfile } from './provision-user.js';
import { updateRoomDetails } from './room-details.js';

/**
 * Posted (the event it is in Matrix), kept as scrollback until the room exists (messages and
 * memberships), or done, with what to answer.
 */
export type FromNetworkOutcome = { kind: 'sent'; eventId: string } | { kind: 'kept' } | { kind: 'done'; answer: Record<string, unknown> };

type Handler = (b: Bridge, json: unknown, deadline: number) => Promise<FromNetworkOutcome>;

const KINDS: Record<string, Handler> = {
  messages: (b, json, deadline) => handleInbound(b, parseInbound(json), deadline),
  edits: async (b, json, deadline) => sent(await handleInboundEdit(b, parseEdit(json), deadline)),
  deletions: async (b, json, deadline) => sent(await handleInboundDeletion(b, parseDeletion(json), deadline)),
  reactions: async (b, json, deadline) => sent(await handleInboundReaction(b, parseReaction(json), deadline)),
  members: async (b, json, deadline) => {
    const out = await handleInboundMembership(b, parseMembership(json, b.now()), deadline);
    return out.kind === 'kept' ? out : done({ room_id: out.roomId });
  },
  profile: async (b, json, deadline) => {
    const user = parseProfile(json);
    return done({ user_id: await updateVirtualUserProfile(b, user.id, user, deadline) });
  },
};

const sent = ({ eventId }: { eventId: string }): FromNetworkOutcome => ({ kind: 'sent', eventId });
const done = (answer: Record<string, unknown>): FromNetworkOutcome => ({ kind: 'done', answer });

/** `path`: what follows `/network/`, percent-decoded once. */
export async function handleFromNetwork(b: Bridge, path: string, json: unknown, deadline: number): Promise<FromNetworkOutcome> {
  if (path.startsWith('rooms/') && path.length > 'rooms/'.length) {
    const { roomId } = await updateRoomDetails(b, path.slice('rooms/'.length), parseRoomDetails(json), deadline);
    return done(roomId ? { room_id: roomId } : {});
  }
  if (!Object.hasOwn(KINDS, path)) throw unrecognized(`POST /network/${path} is not part of the network contract`);
  return KINDS[path]!(b, json, deadline);
}
