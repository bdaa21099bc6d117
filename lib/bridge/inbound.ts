/**
 * Inbound: a message from the 3P network appears in Matrix as the network user who wrote it,
 * at the time it was written there. Before the room exists on Matrix, it is kept as scrollback;
 * a room our table has no record of is looked up on the homeserver first (heal.ts).
 */
import { invalidParam } from '../matrix/errors.js';
import type { RoomAlias } from '../matrix/ids.js';
import type { AliasRecord, InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { postAndRecord } from './post.js';
import { readyRoom } from './provision-room.js';
import { drainScrollback } from './scrollback.js';
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

async function postToNetworkRoom(b: Bridge, m: InboundMessage & { room: string }, alias: RoomAlias, deadline: number): Promise<InboundOutcome> {

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
      return { kind: 'sent', eventId: await postAndRecord(b, room, m, deadline) };
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
  const eventId = drained.posted.get(m.id);
  return eventId ? { kind: 'sent', eventId } : { kind: 'kept' };
}
