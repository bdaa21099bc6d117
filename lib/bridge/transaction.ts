/**
 * Push: a transaction of events from the HS. What an event means on the Matrix side (the bot
 * accepting an invite, following a room upgrade) is done at once; what goes to the network is
 * put on the delivery queue (one message group per room, in transaction order), and the push
 * answers once it is there. The deliver function (deliver.ts) sends it, so a slow or failing
 * network never holds up the homeserver's one transaction in flight.
 *
 * The ledger (ledger.ts) claims the transaction before any effect and records a cursor, so a
 * retry skips the Matrix-side effects an earlier attempt did; queueing again is harmless (the
 * queue drops an event it had within 5 minutes, the network's Idempotency-Key beyond).
 */
import { HomeserverError, MatrixError, badJson, invalidParam, unavailable } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { FailedEvent } from '../store/index.js';
import type { QueuedEvent } from '../queue/port.js';
import { actingHandler, bridgedRoomsOf } from './events/router.js';
import { isRoomEvent } from './events/types.js';
import type { EventHandler, RoomEvent } from './events/types.js';
import { claim, recordProgress } from './ledger.js';
import type { TransactionBudget } from './ledger.js';
import { isTransient } from './deliver.js';
import type { Bridge } from './runtime.js';
import { recordMetrics } from '../metrics.js';

export type { TransactionBudget } from './ledger.js';
export type { RoomEvent } from './events/types.js';
export { isRoomEvent } from './events/types.js';

export type TransactionOutcome =
  | { kind: 'processed'; queued: number; skipped: number; failed: FailedEvent[] }
  | { kind: 'duplicate' };

export function parseTransaction(body: unknown): { events: unknown[] } {
  const events = (body as { events?: unknown })?.events;
  if (!Array.isArray(events)) throw badJson('"events" must be an array');
  return { events };
}

/** A delivery as it travels on the queue: what the network gets. */
export const queuedEventOf = (e: RoomEvent, deliver: unknown): QueuedEvent => ({
  roomId: e.room_id as RoomId,
  eventId: e.event_id,
  sender: e.sender,
  body: JSON.stringify(deliver),
});

export async function handleTransaction(b: Bridge, txnId: string, body: unknown, budget: TransactionBudget): Promise<TransactionOutcome> {
  if (!txnId || txnId.length > 255) throw invalidParam('txnId must be 1 to 255 characters');
  const { events } = parseTransaction(body);
  const log = b.log.child({ txnId });
  let skipped = 0;
  events.forEach((event, index) => {
    if (!isRoomEvent(event)) {
      // Only a string, and only so much of it: the event is whatever the HS sent (nested 50,000
      // deep, say, which would break the logger's JSON.stringify).
      const eventId = (event as { event_id?: unknown } | null)?.event_id;
      log.warn('skipped a malformed event', { index, eventId: typeof eventId === 'string' ? eventId.slice(0, 255) : typeof eventId });
      skipped++;
    }
  });
  // Which events lead to anything, decided before any write: a transaction of echoes, events in
  // rooms we do not bridge, kinds we ignore, or ephemeral data only costs no write and queues nothing.
  const rooms = await bridgedRoomsOf(b, events);
  const acting = new Map<number, EventHandler>();
  events.forEach((e, i) => {
    const handler = actingHandler(b, e, rooms);
    if (handler) acting.set(i, handler);
  });
  if (acting.size === 0) {
    recordMetrics({ TransactionProcessed: 1 });
    return { kind: 'processed', queued: 0, skipped, failed: [] };
  }

  const lease = await claim(b.store, txnId, events, budget, log);
  if (!lease) {
    recordMetrics({ TransactionDuplicate: 1 });
    return { kind: 'duplicate' };
  }

  const failed: FailedEvent[] = [];
  const toQueue: QueuedEvent[] = [];
  const refuseTooLarge = (tooLarge: QueuedEvent[]) => {
    for (const e of tooLarge) {
      if (failed.some((f) => f.eventId === e.eventId)) continue;
      // Only a homeserver that breaks its own 64 KiB limit sends these: never deliverable, so not retried.
      failed.push({ eventId: e.eventId, reason: 'too large for the delivery queue' });
      log.warn('an event too large for the delivery queue was not delivered', { eventId: e.eventId, roomId: e.roomId, bytes: e.body.length });
    }
  };
  let cursor = lease.cursor;
  try {
    for (; cursor < events.length; cursor++) {
      const handler = acting.get(cursor);
      if (!handler) continue;
      if (Date.now() >= budget.deadline) throw unavailable(`out of time at event ${cursor} of ${events.length}; retry continues there`);
      const event = events[cursor] as RoomEvent;
      try {
        const outcome = await handler.handle(b, event, { rooms, deadline: budget.deadline });
        if (outcome !== 'ignored') toQueue.push(queuedEventOf(event, outcome.deliver));
      } catch (e) {
        // Our own misconfiguration fails every room alike: the homeserver retries, the log says what to fix.
        if ((e instanceof HomeserverError && e.misconfigured) || isTransient(e)) throw e;
        // Refused for good on the Matrix side (a join we may not make): recorded, and the rest goes on.
        const reason = (e as Error).message.slice(0, 500);
        failed.push({ eventId: event.event_id, reason });
        log.warn('an event was refused for good', { eventId: event.event_id, roomId: event.room_id, reason });
      }
    }
    const { tooLarge } = await b.outbox.enqueue(toQueue);
    recordMetrics({ EventsQueued: toQueue.length - tooLarge.length });
    refuseTooLarge(tooLarge);
  } catch (e) {
    // What was decided before the failure is queued, so the retry can start after it.
    const queuedSoFar = await b.outbox.enqueue(toQueue).then(
      (out) => (recordMetrics({ EventsQueued: toQueue.length - out.tooLarge.length }), refuseTooLarge(out.tooLarge), true),
      () => false,
    );
    await recordProgress(b.store, lease, { cursor: queuedSoFar ? cursor : lease.cursor, done: false, failed }).catch((err) =>
      log.error('could not record progress', { err }),
    );
    log.warn('transaction stopped part-way', { cursor, of: events.length, err: e });
    if (e instanceof MatrixError && e.transient) throw e;
    if ((e as { statusCode?: number }).statusCode === 503) throw e;
    throw unavailable(`event ${cursor} of transaction ${txnId} could not be handled yet; retry continues there`);
  }
  const marked = await recordProgress(b.store, lease, { cursor, done: true, failed }).catch((err) => {
    // Everything is done or queued: the HS's retry finds that out again (the queue drops repeats).
    log.error('could not record progress', { err });
    throw err;
  });
  if (!marked) log.warn('lease was taken over before the transaction was marked done');
  recordMetrics({ TransactionProcessed: 1 });
  return { kind: 'processed', queued: toQueue.length, skipped, failed };
}
