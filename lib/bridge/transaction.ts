/**
 * Push: a transaction of events from the HS, processed once.
 *
 * The HS retries a txnId until it gets 200, and Lambda runs copies side by side, so the
 * transaction record (store/transactions.ts) is claimed before any effect and holds a
 * cursor: on a retry, events before the cursor are skipped. The network also gets
 * `Idempotency-Key: <event_id>`, which covers a copy killed between a delivery and the
 * cursor write, and an event the HS resends in a later, different transaction.
 */
import { randomUUID } from 'node:crypto';
import { MatrixError, badRequest, unavailable } from '../matrix/errors.js';
import { isRoomId } from '../matrix/ids.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import { getBridgedRooms } from '../store/aliases.js';
import { claimTransaction, getTransaction, recordProgress } from '../store/transactions.js';
import type { FailedEvent } from '../store/transactions.js';
import { getUser } from '../store/users.js';
import { PermanentDeliveryError } from './network.js';
import type { Bridge } from './runtime.js';
import { registerVirtualUser } from './provision-user.js';

/** The fields of a client event we rely on; anything else is carried along untouched. */
export interface RoomEvent {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  state_key?: string;
}

export interface TransactionBudget {
  /** Stop starting new work after this (epoch ms). */
  deadline: number;
  /** When the Lambda is killed at the latest; our claim on the txn lasts until then. */
  hardStop: number;
}

export type TransactionOutcome = { kind: 'processed'; delivered: number; skipped: number; failed: FailedEvent[] } | { kind: 'duplicate' };

const WAIT_FOR_TWIN_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function parseTransaction(body: unknown): { events: unknown[] } {
  const events = (body as { events?: unknown })?.events;
  if (!Array.isArray(events)) throw badRequest('M_BAD_JSON', '"events" must be an array');
  return { events };
}

/**
 * `$` and printable ASCII, at most 255 bytes (the spec's limit). Every room version's event IDs
 * fit; one that does not could not travel as the network's Idempotency-Key header either, and
 * would fail its delivery on every retry of the transaction, blocking the HS's queue for good.
 */
const EVENT_ID = /^\$[\x21-\x7e]{1,254}$/;

export function isRoomEvent(e: unknown): e is RoomEvent {
  const v = e as Partial<RoomEvent> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.event_id === 'string' &&
    EVENT_ID.test(v.event_id) &&
    isRoomId(v.room_id) &&
    typeof v.sender === 'string' &&
    typeof v.type === 'string' &&
    typeof v.origin_server_ts === 'number' &&
    typeof v.content === 'object' &&
    v.content !== null &&
    !Array.isArray(v.content) &&
    (v.state_key === undefined || typeof v.state_key === 'string')
  );
}

export async function handleTransaction(b: Bridge, txnId: string, body: unknown, budget: TransactionBudget): Promise<TransactionOutcome> {
  if (!txnId || txnId.length > 255) throw badRequest('M_INVALID_PARAM', 'txnId must be 1 to 255 characters');
  const { events } = parseTransaction(body);
  // Transactions that only carry ephemeral data (typing, receipts, to-device) are common and have
  // no effect here: answering them without a record saves two billed writes each.
  if (events.length === 0) return { kind: 'processed', delivered: 0, skipped: 0, failed: [] };
  const owner = randomUUID();

  let claim = await claimTransaction(b.table, txnId, owner, budget.hardStop + 2000);
  // A twin copy is on it: give it a moment to finish rather than send the HS into back-off.
  const waitUntil = Math.min(Date.now() + WAIT_FOR_TWIN_MS, budget.deadline);
  while (claim.kind === 'busy' && Date.now() + 200 < waitUntil) {
    await sleep(200);
    const item = await getTransaction(b.table, txnId);
    if (item?.state === 'done') claim = { kind: 'done' };
    else if (!item || Number(item.leaseUntil ?? 0) < Date.now()) claim = await claimTransaction(b.table, txnId, owner, budget.hardStop + 2000);
  }
  if (claim.kind === 'done') return { kind: 'duplicate' };
  if (claim.kind === 'busy') throw unavailable(`transaction ${txnId} is being processed by another request; retry`);

  const log = b.log.child({ txnId });
  const failed: FailedEvent[] = [];
  let cursor = claim.cursor;
  let delivered = 0;
  let skipped = 0;
  try {
    const rooms = await bridgedRoomsOf(b, events.slice(cursor));
    for (; cursor < events.length; cursor++) {
      if (Date.now() >= budget.deadline) throw unavailable(`out of time at event ${cursor} of ${events.length}; retry continues there`);
      const event = events[cursor];
      if (!isRoomEvent(event)) {
        // Only a string, and only so much of it: the event is whatever the HS sent (nested 50,000
        // deep, say, which would break the logger's JSON.stringify).
        const eventId = (event as { event_id?: unknown } | null)?.event_id;
        log.warn('skipped a malformed event', { index: cursor, eventId: typeof eventId === 'string' ? eventId.slice(0, 255) : typeof eventId });
        skipped++;
        continue;
      }
      try {
        if (await processEvent(b, event, rooms, budget.deadline)) delivered++;
      } catch (e) {
        if (!(e instanceof PermanentDeliveryError) && !(e instanceof MatrixError && !e.transient)) throw e;
        failed.push({ eventId: event.event_id, reason: e.message.slice(0, 500) });
        log.warn('event failed for good', { eventId: event.event_id, reason: e.message });
      }
    }
  } catch (e) {
    await recordProgress(b.table, txnId, owner, { cursor, done: false, failed }).catch((err) =>
      log.error('could not record progress', { err }),
    );
    log.warn('transaction stopped part-way', { cursor, of: events.length, err: e });
    if (e instanceof MatrixError && e.transient) throw e;
    throw unavailable(`event ${cursor} of transaction ${txnId} could not be delivered yet; retry continues there`);
  }
  if (!(await recordProgress(b.table, txnId, owner, { cursor, done: true, failed }))) {
    log.warn('lease was taken over before the transaction was marked done');
  }
  return { kind: 'processed', delivered, skipped, failed };
}

/** room → bridged room for the events' rooms: the warm cache, then one batch read for the rest. */
async function bridgedRoomsOf(b: Bridge, events: unknown[]): Promise<Map<string, { alias: string; remoteRoom: string }>> {
  const wanted = new Set<string>();
  for (const e of events) if (isRoomEvent(e) && e.type === 'm.room.message' && !b.ns.isOurs(e.sender)) wanted.add(e.room_id);
  const missing = [...wanted].filter((r) => !b.roomCache.has(r));
  if (missing.length) for (const [roomId, room] of await getBridgedRooms(b.table, missing)) b.roomCache.set(roomId, room);
  return b.roomCache;
}

/** True when something went out to the network. */
async function processEvent(
  b: Bridge,
  e: RoomEvent,
  rooms: Map<string, { alias: string; remoteRoom: string }>,
  deadline: number,
): Promise<boolean> {
  if (e.type === 'm.room.member' && e.content.membership === 'invite' && e.state_key && b.ns.isVirtualUser(e.state_key)) {
    await acceptInvite(b, e.state_key as UserId, e.room_id as RoomId, deadline);
    return false;
  }
  // Never echo: what our virtual users or bot said came from the network in the first place.
  if (e.type !== 'm.room.message' || b.ns.isOurs(e.sender)) return false;
  const room = rooms.get(e.room_id);
  if (!room) return false;
  const { msgtype, body } = e.content;
  if (typeof msgtype !== 'string' || typeof body !== 'string') return false;
  await b.network.deliver({
    id: e.event_id,
    room: room.remoteRoom,
    sender: { userId: e.sender },
    msgtype,
    body,
    ts: e.origin_server_ts,
  });
  return true;
}

/** A Matrix user invited one of our virtual users (a DM, or into a room): register it if need be and join. */
async function acceptInvite(b: Bridge, userId: UserId, roomId: RoomId, deadline: number): Promise<void> {
  if (!(await getUser(b.table, userId))) {
    const remote = b.ns.remoteUserOf(userId);
    const profile = remote === undefined ? undefined : await b.network.lookupUser(remote);
    if (!profile) {
      b.log.info('invite for a user the network does not know; ignored', { userId, roomId });
      return;
    }
    await registerVirtualUser(b, userId, profile, deadline);
  }
  await b.cs.join(roomId, { deadline, asUser: userId });
  b.joined.add(`${roomId}|${userId}`);
}
