/**
 * Inbound: a message from the 3P network appears in Matrix as the network user who wrote it,
 * at the time it was written there. Before the room exists on Matrix, it is kept as scrollback;
 * a room our table has no record of is looked up on the homeserver first (heal.ts).
 */
import { badJson, invalidParam } from '../matrix/errors.js';
import type { RoomAlias } from '../matrix/ids.js';
import type { AliasRecord, InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { postAndRecord } from './post.js';
import { readyRoom } from './provision-room.js';
import { drainScrollback } from './scrollback.js';
import { adoptAlias, isRoomLost } from './heal.js';
import { countOutcome } from './outcome.js';

export type { InboundMessage } from '../store/index.js';

export type InboundOutcome = { kind: 'sent'; eventId: string } | { kind: 'kept' };

const MSGTYPES = new Set(['m.text', 'm.notice', 'm.emote']);
/**
 * A Matrix event may be at most 64 KiB of JSON (Synapse answers a bigger send with 413
 * M_TOO_LARGE), measured in UTF-8 bytes of the whole event. The content (msgtype and body, as
 * JSON) may take 60,000 of them: the rest is headroom for what the homeserver adds around it
 * (event, room and sender IDs, hashes, signatures, prev and auth events).
 */
export const MAX_CONTENT_BYTES = 60_000;

const field = (name: string, problem: string) => badJson(`${name} ${problem}`);
const nonEmptyString = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** Checks the network's body field by field, naming the first bad one. */
export function parseInbound(json: unknown): InboundMessage {
  const j = json as Record<string, unknown>;
  if (!nonEmptyString(j.id, 255)) throw field('id', 'must be a string of 1 to 255 characters');
  if (!nonEmptyString(j.room, 255)) throw field('room', 'must be a string of 1 to 255 characters');
  const sender = j.sender as Record<string, unknown> | undefined;
  if (!sender || typeof sender !== 'object' || Array.isArray(sender)) throw field('sender', 'must be an object {id, displayName?}');
  if (!nonEmptyString(sender.id, 255)) throw field('sender.id', 'must be a string of 1 to 255 characters');
  if (sender.displayName !== undefined && !nonEmptyString(sender.displayName, 255)) {
    throw field('sender.displayName', 'must be a string of 1 to 255 characters when given');
  }
  const msgtype = j.msgtype ?? 'm.text';
  if (typeof msgtype !== 'string' || !MSGTYPES.has(msgtype)) throw field('msgtype', `must be one of ${[...MSGTYPES].join(', ')}`);
  if (typeof j.body !== 'string' || j.body.length === 0) throw field('body', 'must be a non-empty string');
  const contentBytes = Buffer.byteLength(JSON.stringify({ msgtype, body: j.body }), 'utf8');
  if (contentBytes > MAX_CONTENT_BYTES) {
    throw field('body', `is ${contentBytes} bytes as Matrix event content (UTF-8 JSON); a Matrix event holds at most ${MAX_CONTENT_BYTES}`);
  }
  if (typeof j.ts !== 'number' || !Number.isSafeInteger(j.ts) || j.ts <= 0) throw field('ts', 'must be a positive whole number of milliseconds since 1970');
  return {
    id: j.id,
    room: j.room,
    sender: { id: sender.id, ...(sender.displayName ? { displayName: sender.displayName as string } : {}) },
    msgtype,
    body: j.body,
    ts: j.ts,
  };
}

/** No record of the alias, or a creation lock whose holder died: nobody is making the room. */
const isUnclaimed = (record: AliasRecord | undefined) => !record || (record.state === 'creating' && (record.lockUntil ?? 0) < Date.now());

/** A network message into its Matrix room: sent, or kept until the room exists (scrollback). */
export const handleInbound = (b: Bridge, m: InboundMessage, deadline: number): Promise<InboundOutcome> =>
  countOutcome('InboundMessage', () => handleInboundOnce(b, m, deadline), (r) => r.kind);

async function handleInboundOnce(b: Bridge, m: InboundMessage, deadline: number): Promise<InboundOutcome> {
  let alias: RoomAlias;
  try {
    alias = b.ns.aliasFor(m.room);
    b.ns.userIdFor(m.sender.id);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`room or sender.id makes a Matrix ID over 255 bytes: ${e.message}`);
    throw e;
  }
  // A resend: answered with what it became, even after the homeserver forgot its txn cache.
  const posted = await b.store.getPostedMessage(m.id);
  if (posted) return { kind: 'sent', eventId: posted.eventId };

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
