/**
 * Push: a transaction of events from the HS, each event processed once.
 *
 * The ledger (ledger.ts) claims the transaction before any effect and records a cursor, so a
 * retry skips what an earlier attempt did; the router (events/) gives each event to its
 * handler. The network also gets `Idempotency-Key: <event_id>`, which covers a copy killed
 * between a delivery and the cursor write, and an event the HS resends in a later transaction.
 */
import { HomeserverError, MatrixError, badJson, invalidParam, unavailable } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { FailedEvent, ParkedEvent } from '../store/index.js';
import { bridgedRoomsOf, handlerFor, routeEvent } from './events/router.js';
import { isRoomEvent } from './events/types.js';
import type { RoomEvent } from './events/types.js';
import { deadLetter, drainRoom, isTransient, parkOrder, parkRoom } from './parking.js';
import { claim, recordProgress } from './ledger.js';
import type { TransactionBudget } from './ledger.js';
import type { Bridge } from './runtime.js';

export type { TransactionBudget } from './ledger.js';
export type { RoomEvent } from './events/types.js';
export { isRoomEvent } from './events/types.js';

export type TransactionOutcome =
  | { kind: 'processed'; delivered: number; skipped: number; failed: FailedEvent[]; parked: number }
  | { kind: 'duplicate' };

export function parseTransaction(body: unknown): { events: unknown[] } {
  const events = (body as { events?: unknown })?.events;
  if (!Array.isArray(events)) throw badJson('"events" must be an array');
  return { events };
}

export async function handleTransaction(b: Bridge, txnId: string, body: unknown, budget: TransactionBudget): Promise<TransactionOutcome> {
  if (!txnId || txnId.length > 255) throw invalidParam('txnId must be 1 to 255 characters');
  const { events } = parseTransaction(body);
  // Transactions that only carry ephemeral data (typing, receipts, to-device) are common and have
  // no effect here: answering them without a record saves two billed writes each.
  if (events.length === 0) return { kind: 'processed', delivered: 0, skipped: 0, failed: [], parked: 0 };

  const log = b.log.child({ txnId });
  const lease = await claim(b.store, txnId, events, budget, log);
  if (!lease) return { kind: 'duplicate' };

  const failed: FailedEvent[] = [];
  const toPark = new Map<RoomId, { events: ParkedEvent[]; cause: unknown }>();
  let cursor = lease.cursor;
  let delivered = 0;
  let skipped = 0;
  let parkedBefore = new Map<RoomId, number>();
  const writeParks = async () => {
    for (const [roomId, p] of toPark) await parkRoom(b, roomId, p.events, p.cause, budget.deadline);
    toPark.clear();
  };
  try {
    const pending = events.slice(cursor).filter((e): e is RoomEvent => isRoomEvent(e) && handlerFor(e) !== undefined);
    const rooms = await bridgedRoomsOf(b, pending);
    // A room whose earlier events wait in its queue: its later ones wait behind them, in order.
    if (pending.length) parkedBefore = await b.store.getParkedRooms(pending.map((e) => e.room_id));
    const parked = new Set(parkedBefore.keys());
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
      if (!handlerFor(event)) continue;
      const parkHere = (cause: unknown) => {
        parked.add(event.room_id);
        const queue = toPark.get(event.room_id) ?? { events: [], cause };
        queue.events.push({ order: parkOrder(lease.claimedAt, cursor), event: { ...event } });
        toPark.set(event.room_id, queue);
      };
      if (parked.has(event.room_id)) {
        parkHere('earlier events of the room are parked');
        continue;
      }
      try {
        if ((await routeEvent(b, event, { rooms, deadline: budget.deadline })) === 'delivered') delivered++;
      } catch (e) {
        // Our own misconfiguration fails every room alike: the homeserver retries, the log says what to fix.
        if (e instanceof HomeserverError && e.misconfigured) throw e;
        if (isTransient(e)) {
          parkHere(e);
          continue;
        }
        const reason = (e as Error).message.slice(0, 500);
        failed.push({ eventId: event.event_id, reason });
        const now = b.now();
        await deadLetter(
          b,
          { roomId: event.room_id, eventId: event.event_id, sender: event.sender, reason, attempts: 1, firstFailureAt: now, lastFailureAt: now, event: { ...event } },
          budget.deadline,
        );
      }
    }
    await writeParks();
  } catch (e) {
    await writeParks().catch((err) => log.error('could not park events', { err }));
    await recordProgress(b.store, lease, { cursor, done: false, failed }).catch((err) => log.error('could not record progress', { err }));
    log.warn('transaction stopped part-way', { cursor, of: events.length, err: e });
    if (e instanceof MatrixError && e.transient) throw e;
    throw unavailable(`event ${cursor} of transaction ${txnId} could not be handled yet; retry continues there`);
  }
  const marked = await recordProgress(b.store, lease, { cursor, done: true, failed }).catch((err) => {
    // Everything is delivered or parked: the HS's retry finds that out again (Idempotency-Key, parks by key).
    log.error('could not record progress', { err });
    throw err;
  });
  if (!marked) log.warn('lease was taken over before the transaction was marked done');
  const parkedCount = parkedBefore.size;
  // A push runs anyway: rooms that were parked before it and are due get a drain attempt.
  for (const [roomId, dueAt] of parkedBefore) {
    if (Date.now() >= budget.deadline) break;
    if (dueAt > b.now()) continue;
    await drainRoom(b, roomId, budget).catch((err) => log.warn('could not drain a parked room', { roomId, err }));
  }
  return { kind: 'processed', delivered, skipped, failed, parked: parkedCount };
}
