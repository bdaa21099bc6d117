/**
 * What the network sends the AS, by kind (the last segment of `POST /network/{kind}`): a new
 * message, an edit, a deletion or a reaction, each parsed and handed to its use case.
 */
import { unrecognized } from '../matrix/errors.js';
import type { Bridge } from './runtime.js';
import { handleInbound } from './inbound.js';
import { handleInboundDeletion, handleInboundEdit, handleInboundReaction } from './inbound-changes.js';
import { parseDeletion, parseEdit, parseInbound, parseReaction } from './network-requests.js';

/** Posted (the event it is in Matrix), or kept as scrollback until the room exists (messages only). */
export type FromNetworkOutcome = { kind: 'sent'; eventId: string } | { kind: 'kept' };

const KINDS = {
  messages: (b: Bridge, json: unknown, deadline: number) => handleInbound(b, parseInbound(json), deadline),
  edits: async (b: Bridge, json: unknown, deadline: number) => sent(await handleInboundEdit(b, parseEdit(json), deadline)),
  deletions: async (b: Bridge, json: unknown, deadline: number) => sent(await handleInboundDeletion(b, parseDeletion(json), deadline)),
  reactions: async (b: Bridge, json: unknown, deadline: number) => sent(await handleInboundReaction(b, parseReaction(json), deadline)),
} as const;

const sent = ({ eventId }: { eventId: string }): FromNetworkOutcome => ({ kind: 'sent', eventId });

export type FromNetworkKind = keyof typeof KINDS;

export function handleFromNetwork(b: Bridge, kind: string, json: unknown, deadline: number): Promise<FromNetworkOutcome> {
  if (!Object.hasOwn(KINDS, kind)) throw unrecognized(`POST /network/${kind} is not part of the network contract`);
  return KINDS[kind as FromNetworkKind](b, json, deadline);
}
