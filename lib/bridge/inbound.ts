/**
 * Inbound: a message from the 3P network appears in Matrix as the network user who wrote it,
 * at the time it was written there. Before the room exists on Matrix, it is kept as scrollback.
 */
import { badJson, invalidParam } from '../matrix/errors.js';
import type { RoomAlias } from '../matrix/ids.js';
import type { InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { postAsVirtualUser } from './post.js';
import { readyRoom } from './provision-room.js';
import { replayScrollback } from './scrollback.js';

export type { InboundMessage } from '../store/index.js';

export type InboundOutcome = { kind: 'sent'; eventId: string } | { kind: 'kept' };

const MSGTYPES = new Set(['m.text', 'm.notice', 'm.emote']);
// Matrix events may be at most 64 KiB; leave room for the envelope.
const MAX_BODY_CHARS = 60_000;

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
  if (j.body.length > MAX_BODY_CHARS) throw field('body', `must be at most ${MAX_BODY_CHARS} characters`);
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

export async function handleInbound(b: Bridge, m: InboundMessage, deadline: number): Promise<InboundOutcome> {
  let alias: RoomAlias;
  try {
    alias = b.ns.aliasFor(m.room);
    b.ns.userIdFor(m.sender.id);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`room or sender.id makes a Matrix ID over 255 bytes: ${e.message}`);
    throw e;
  }
  const record = await b.store.getAlias(alias);
  const room = readyRoom(record, m.room);
  if (room) {
    // A replay cut short by an HS failure during the alias query finishes first, so order holds.
    if (record?.scrollbackPending) {
      await replayScrollback(b, room, deadline);
      await b.store.setScrollbackPending(alias, false);
    }
    return { kind: 'sent', eventId: await postAsVirtualUser(b, room, m, deadline) };
  }
  await b.store.keepScrollback(alias, m);
  // The room may have become ready between our read and our write; its replay may then have
  // missed this message, so replay what is left ourselves (the CS txnIds make it idempotent).
  const readyNow = readyRoom(await b.store.getAlias(alias), m.room);
  if (readyNow) await replayScrollback(b, readyNow, deadline);
  return { kind: 'kept' };
}
