/**
 * Push: a transaction of events from the HS, each event processed once.
 *
 * The ledger (ledger.ts) claims the transaction before any effect and records a cursor, so a
 * retry skips what an earlier attempt did; the router (events/) gives each event to its
 * handler. The network also gets `Idempotency-Key: <event_id>`, which covers a copy killed
 * between a delivery and the cursor write, and an event the HS resends in a later transaction.
 */
import { MatrixError, badJson, invalidParam, unavailable } from '../matrix/errors.js';
import type { FailedEvent } from '../store/index.js';
import { bridgedRoomsOf, routeEvent } from './events/router.js';
import { isRoomEvent } from './events/types.js';
import { claim, recordProgress } from './ledger.js';
import type { TransactionBudget } from './ledger.js';
import { PermanentDeliveryError } from './network.js';
import type { Bridge } from './runtime.js';

export type { TransactionBudget } from './ledger.js';
export type { RoomEvent } from './events/types.js';
export { isRoomEvent } from './events/types.js';

export type TransactionOutcome = { kind: 'processed'; delivered: number; skipped: number; failed: FailedEvent[] } | { kind: 'duplicate' };

export function parseTransaction(body: unknown): { events: unknown[] } {
  const events = (body as { events?: unknown })?.events;
  if (!Array.isArray(events)) throw badJson('"events" must be an array');
  return { events };
}

/** A failure retrying cannot mend: the network refused the event (4xx), or the HS did, for good. */
const failedForGood = (e: unknown) => e instanceof PermanentDeliveryError || (e instanceof MatrixError && !e.transient);

export async function handleTransaction(b: Bridge, txnId: string, body: unknown, budget: TransactionBudget): Promise<TransactionOutcome> {
  if (!txnId || txnId.length > 255) throw invalidParam('txnId must be 1 to 255 characters');
  const { events } = parseTransaction(body);
  // Transactions that only carry ephemeral data (typing, receipts, to-device) are common and have
  // no effect here: answering them without a record saves two billed writes each.
  if (events.length === 0) return { kind: 'processed', delivered: 0, skipped: 0, failed: [] };

  const log = b.log.child({ txnId });
  const lease = await claim(b.store, txnId, events, budget, log);
  if (!lease) return { kind: 'duplicate' };

  const failed: FailedEvent[] = [];
  let cursor = lease.cursor;
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
        if ((await routeEvent(b, event, { rooms, deadline: budget.deadline })) === 'delivered') delivered++;
      } catch (e) {
        if (!failedForGood(e)) throw e;
        const reason = (e as Error).message;
        failed.push({ eventId: event.event_id, reason: reason.slice(0, 500) });
        log.warn('event failed for good', { eventId: event.event_id, reason });
      }
    }
  } catch (e) {
    await recordProgress(b.store, lease, { cursor, done: false, failed }).catch((err) => log.error('could not record progress', { err }));
    log.warn('transaction stopped part-way', { cursor, of: events.length, err: e });
    if (e instanceof MatrixError && e.transient) throw e;
    throw unavailable(`event ${cursor} of transaction ${txnId} could not be delivered yet; retry continues there`);
  }
  if (!(await recordProgress(b.store, lease, { cursor, done: true, failed }))) {
    log.warn('lease was taken over before the transaction was marked done');
  }
  return { kind: 'processed', delivered, skipped, failed };
}
