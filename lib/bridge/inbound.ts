/**
 * Inbound: a message from the 3P network appears in Matrix as the network user who wrote it,
 * at the time it was written there; a private one (`to`) in the pair's direct chat
 * (direct-chat.ts). Before a network room exists on Matrix, what is said and who comes and goes
 * there is kept as scrollback; a room our table has no record of is looked up on the homeserver
 * first (heal.ts).
 */
import { invalidParam } from '../matrix/errors.js';
import type { RoomAlias, RoomId } from '../matrix/ids.js';
import type { AliasRecord, InboundMembership, InboundMessage, KeptEvent } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { postAndRecord } from './post.js';
import { readyRoom } from './provision-room.js';
import { drainScrollback, isMembership } from './scrollback.js';
import { applyMembership } from './membership.js';
import { adoptAlias, isRoomLost } from './heal.js';
import { countOutcome } from './outcome.js';
import { postPrivateMessage } from './direct-chat.js';

export type { InboundMessage } from '../store/index.js';

export type InboundOutcome = { kind: 'sent'; eventId: string } | { kind: 'kept' };

/** No record of the alias, or a creation lock whose holder died: nobody is making the room. */
const isUnclaimed = (record: AliasRecord | undefined) => !record || (record.state === 'creating' && (record.lockUntil ?? 0) < Date.now());

/** A network message into its Matrix room: sent, or kept until the room exists (scrollback). */
export const handleInbound = (b: Bridge, m: InboundMessage, deadline: number): Promise<InboundOutcome> =>
  countOutcome('InboundMessage', () => handleInboundOnce(b, m, deadline), (r) => r.kind);

async function handleInboundOnce(b: Bridge, m: InboundMessage, deadline: number): Promise<InboundOutcome> {
  let alias: RoomAlias | undefined;
  try {
    if (m.room !== undefined) alias = b.ns.aliasFor(m.room);
    b.ns.userIdFor(m.sender.id);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`room or sender.id makes a Matrix ID over 255 bytes: ${e.message}`);
    throw e;
  }
  // A resend: answered with what it became, even after the homeserver forgot its txn cache.
  const posted = await b.store.getBridgedMessage(m.id);
  if (posted) return { kind: 'sent', eventId: posted.eventId };
  if (m.to !== undefined) return { kind: 'sent', eventId: await postPrivateMessage(b, { ...m, to: m.to }, deadline) };
  return postToNetworkRoom(b, m as InboundMessage & { room: string }, alias as RoomAlias, deadline);
}

/** A network user joined or left a network room: applied, or kept until the room exists (scrollback). */
export const handleInboundMembership = (b: Bridge, m: InboundMembership, deadline: number): Promise<{ kind: 'applied'; roomId: RoomId } | { kind: 'kept' }> =>
  // Counted with the messages: the dashboard's one line for what the network sends.
  countOutcome('InboundMessage', async () => {
    let alias: RoomAlias;
    try {
      alias = b.ns.aliasFor(m.room);
      b.ns.userIdFor(m.user.id);
    } catch (e) {
      if (e instanceof RangeError) throw invalidParam(`room or user.id makes a Matrix ID over 255 bytes: ${e.message}`);
      throw e;
    }
    const done = await intoNetworkRoom(b, m, alias, deadline);
    return done.kind === 'kept' ? done : { kind: 'applied', roomId: done.roomId };
  }, (r) => r.kind);

async function postToNetworkRoom(b: Bridge, m: InboundMessage & { room: string }, alias: RoomAlias, deadline: number): Promise<InboundOutcome> {
  const done = await intoNetworkRoom(b, m, alias, deadline);
  return done.kind === 'kept' ? done : { kind: 'sent', eventId: done.eventId as string };
}

/**
 * A message or membership into its network room's Matrix room, or kept (scrollback) until the
 * room exists; while messages are kept for the room, it waits its turn behind them.
 */
async function intoNetworkRoom(
  b: Bridge,
  m: KeptEvent & { room: string },
  alias: RoomAlias,
  deadline: number,
): Promise<{ kind: 'done'; roomId: RoomId; eventId?: string } | { kind: 'kept' }> {

  const record = await b.store.getAlias(alias);
  let room = readyRoom(record, m.room);
  let scrollbackPending = record?.scrollbackPending ?? false;
  if (!room && isUnclaimed(record)) {
    // No record (a lost table), or a creation that died: the homeserver may have the room all the
    // same, and then it will never ask us about the alias again. Ask it; keep the message only
    // when it truly has no such alias.
    const adopted = await adoptAlias(b, alias, m.room, deadline, record !== undefined);
    if (adopted) ({ room, scrollbackPending } = adopted);
  }
  if (room && !scrollbackPending) {
    try {
      const eventId = isMembership(m) ? (await applyMembership(b, room, m, deadline), undefined) : await postAndRecord(b, room, m, deadline);
      return { kind: 'done', roomId: room.roomId, eventId };
    } catch (e) {
      if (!(await isRoomLost(b, room, e, deadline))) throw e;
      // The homeserver lost the room (a reset): the message waits for the next join, as before a first one.
      room = undefined;
    }
  }

  // Kept messages go first: this one waits its turn behind them.
  await b.store.keepScrollback(alias, m);
  // The room may have become ready between our read and our write, and its replay may have
  // listed the kept messages before ours: drain what is left ourselves.
  const readyNow = room ?? readyRoom(await b.store.getAlias(alias), m.room);
  if (!readyNow) return { kind: 'kept' };
  const drained = await drainScrollback(b, readyNow, deadline);
  const refused = drained.refused.get(m.id);
  if (refused) throw refused;
  return drained.posted.has(m.id) ? { kind: 'done', roomId: readyNow.roomId, eventId: drained.posted.get(m.id) } : { kind: 'kept' };
}
