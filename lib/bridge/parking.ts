/**
 * One failing room never holds up the bridge. A delivery that fails for now parks its room: that
 * event and every later one of the same room wait, durably and in order, in the room's queue
 * (store/parking.ts), while the transaction is answered 200 and other rooms flow. A drainer —
 * the scheduled function, `npm start`'s timer, or a push that runs anyway — retries each parked
 * room on its own backoff, one drainer per room. What cannot be delivered becomes a dead letter
 * an operator can list and redrive.
 */
import { randomUUID } from 'node:crypto';
import { MatrixError } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { DeadLetter, ParkedEvent } from '../store/index.js';
import { bridgedRoomsOf, routeEvent } from './events/router.js';
import { isRoomEvent } from './events/types.js';
import type { RoomEvent } from './events/types.js';
import { PermanentDeliveryError, RetryLaterError } from './network.js';
import type { Bridge } from './runtime.js';
import { sleep } from '../time.js';
import { sendDeadLetterNotice, sendStatus } from './send-status.js';
import { emitMetrics } from '../log.js';
import { SERVICE } from '../defaults.js';

export interface DrainBudget {
  /** Start no delivery after this (epoch ms). */
  deadline: number;
  /** The drainer's lease on a room lasts until then. */
  hardStop: number;
}

export const FIRST_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 60_000;
const LEASE_MARGIN_MS = 2000;
const PAGE = 25;

/** The wait before a parked room's next attempt: from about 1 s, doubling, at most 60 s; a network's Retry-After wins. */
export function backoffMs(failedAttempts: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(retryAfterMs, 0), 3600_000);
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, failedAttempts));
  // Jitter: many rooms failing together do not come back together.
  return Math.round(base * (0.8 + Math.random() * 0.2));
}

/** A failure worth another try later (the room parks), as opposed to one refused for good (a dead letter). */
export function isTransient(e: unknown): boolean {
  if (e instanceof PermanentDeliveryError) return false;
  if (e instanceof MatrixError) return e.transient;
  return true;
}

const retryAfterOf = (e: unknown) => (e instanceof RetryLaterError ? e.retryAfterMs : undefined);
const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 500);

/** The order key of a pushed event: its transaction's first claim, then its place in it. */
export const parkOrder = (claimedAt: number, index: number) => `${String(claimedAt).padStart(15, '0')}#${String(index).padStart(5, '0')}`;

/** Parks events of one room; says so in the log, and tells each sender their message waits. */
export async function parkRoom(b: Bridge, roomId: RoomId, events: ParkedEvent[], cause: unknown, deadline: number): Promise<void> {
  const now = b.now();
  const added = await b.store.park(roomId, events, { error: reasonOf(cause), at: now, retryAt: now + backoffMs(0, retryAfterOf(cause)) });
  b.log.warn('room parked: its events wait for the network to recover', {
    roomId,
    eventIds: events.map((e) => e.event.event_id),
    added,
    error: reasonOf(cause),
  });
  if (added === 0) return;
  for (const p of events) {
    if (!isRoomEvent(p.event) || Date.now() >= deadline) continue;
    await sendStatus(b, { roomId, eventId: p.event.event_id, sender: p.event.sender, type: p.event.type }, 'PENDING', deadline);
  }
}

export async function deadLetter(b: Bridge, letter: DeadLetter, deadline: number): Promise<void> {
  await b.store.putDeadLetter(letter);
  b.log.warn('dead letter: an event was not delivered to the network', {
    roomId: letter.roomId,
    eventId: letter.eventId,
    sender: letter.sender,
    reason: letter.reason,
    attempts: letter.attempts,
  });
  const about = { roomId: letter.roomId, eventId: letter.eventId, sender: letter.sender, type: String(letter.event.type ?? '') };
  await sendStatus(b, about, 'FAIL_PERMANENT', deadline, { error: letter.reason });
  await sendDeadLetterNotice(b, about, letter.reason, deadline);
}

/**
 * Sends dead letters again: each goes back into its room's queue, at its end (so it keeps the
 * room's order from then on), and the drainer delivers it. Parked once, even if a redrive is
 * repeated after a crash: the letter keeps the queue position it was first given.
 */
export async function redrive(b: Pick<Bridge, 'store' | 'log' | 'now'>, filter: { roomId?: RoomId; eventId?: string } = {}): Promise<DeadLetter[]> {
  const letters = (await b.store.listDeadLetters(filter.roomId)).filter((d) => !filter.eventId || d.eventId === filter.eventId);
  for (const d of letters) {
    const order = await b.store.markRedrive(d.roomId, d.eventId, `${String(b.now()).padStart(15, '0')}#redrive`);
    if (!order) continue;
    await b.store.park(d.roomId, [{ order, event: d.event }], { error: `redriven: ${d.reason}`, at: b.now(), retryAt: b.now() });
    await b.store.deleteDeadLetter(d.roomId, d.eventId);
    b.log.info('dead letter redriven: back in its room\'s queue', { roomId: d.roomId, eventId: d.eventId });
  }
  return letters;
}

export type DrainResult = 'drained' | 'deferred' | 'busy' | 'out of time';

/**
 * Delivers a parked room's events in order, while it holds the room's lease. A transient failure
 * defers the room (its backoff grows); a refusal, or an event still failing after the
 * dead-letter age, becomes a dead letter and the room moves on.
 */
export async function drainRoom(b: Bridge, roomId: RoomId, budget: DrainBudget): Promise<DrainResult> {
  const owner = randomUUID();
  // Due by the bridge's clock (backoff); the lease itself is wall-clock time, as long as this invocation.
  const room = await b.store.leaseParkedRoom(roomId, owner, budget.hardStop + LEASE_MARGIN_MS, b.now());
  if (!room) return 'busy';
  const log = b.log.child({ roomId });
  // Bounded: past the limit, the oldest parked events become dead letters and the room moves on.
  for (let over = room.count - b.parking.maxParkedEvents; over > 0 && Date.now() < budget.deadline; ) {
    const oldest = await b.store.listParkedEvents(roomId, Math.min(over, 100));
    if (oldest.length === 0) break;
    for (const p of oldest) {
      if (isRoomEvent(p.event)) await deadLetter(b, letterFor(b, p.event, 'room backlog full', room), budget.deadline);
      await b.store.unpark(roomId, p.order);
      over--;
    }
    log.warn('parked room over its limit: its oldest events are dead letters', { limit: b.parking.maxParkedEvents });
  }
  for (;;) {
    const parked = await b.store.listParkedEvents(roomId, PAGE);
    if (parked.length === 0) {
      if (await b.store.releaseParkedRoom(roomId, owner)) {
        log.info('room drained: its parked events are delivered', { attempts: room.attempts });
        return 'drained';
      }
      return 'deferred';
    }
    for (const p of parked) {
      if (Date.now() >= budget.deadline) return 'out of time';
      const event = p.event;
      if (!isRoomEvent(event)) {
        await b.store.unpark(roomId, p.order);
        continue;
      }
      const failingForMs = b.now() - (p.parkedAt || room.firstFailureAt);
      if (failingForMs >= b.parking.deadLetterAfterMs) {
        await deadLetter(b, letterFor(b, event, `still failing after ${Math.round(failingForMs / 3600_000)} h: ${room.lastError ?? 'unknown'}`, room), budget.deadline);
        await b.store.unpark(roomId, p.order);
        continue;
      }
      try {
        const rooms = await bridgedRoomsOf(b, [event]);
        await routeEvent(b, event, { rooms, deadline: budget.deadline });
      } catch (e) {
        if (isTransient(e)) {
          const retryIn = backoffMs(room.attempts + 1, retryAfterOf(e));
          await b.store.deferParkedRoom(roomId, owner, { error: reasonOf(e), at: b.now(), retryAt: b.now() + retryIn });
          log.info('parked room still failing: deferred', { eventId: event.event_id, retryInMs: retryIn, attempts: room.attempts + 1, error: reasonOf(e) });
          return 'deferred';
        }
        await deadLetter(b, letterFor(b, event, reasonOf(e), room), budget.deadline);
        await b.store.unpark(roomId, p.order);
        continue;
      }
      await b.store.unpark(roomId, p.order);
      await sendStatus(b, { roomId, eventId: event.event_id, sender: event.sender, type: event.type }, 'SUCCESS', budget.deadline);
    }
  }
}

function letterFor(b: Bridge, event: RoomEvent, reason: string, room: { attempts: number; firstFailureAt: number; lastFailureAt: number }): DeadLetter {
  const now = b.now();
  return {
    roomId: event.room_id,
    eventId: event.event_id,
    sender: event.sender,
    reason,
    attempts: room.attempts + 1,
    firstFailureAt: room.firstFailureAt || now,
    lastFailureAt: now,
    event: { ...event },
  };
}

/**
 * The scheduled drainer's run: it drains what is due, then waits for the next room to come due
 * (at most a second: new rooms park meanwhile), until the budget ends or no room is parked.
 * Scheduled every minute and running most of it while rooms are parked, it retries each room on
 * its own backoff from about a second; with nothing parked it costs one query a minute.
 */
export async function drainWhileParked(b: Bridge, budget: DrainBudget): Promise<Record<DrainResult, number>> {
  const total: Record<DrainResult, number> = { drained: 0, deferred: 0, busy: 0, 'out of time': 0 };
  for (;;) {
    const { results, parked } = await drainDueRoomsOnce(b, budget);
    for (const k of Object.keys(total) as DrainResult[]) total[k] += results[k];
    if (parked.length === 0 || Date.now() >= budget.deadline) return total;
    const nextDue = Math.min(...parked.map((r) => r.nextAttemptAt));
    await sleep(Math.max(50, Math.min(1000, nextDue - b.now(), budget.deadline - Date.now())));
  }
}

/** Every parked room that is due, one after the other, within the budget. */
export async function drainDueRooms(b: Bridge, budget: DrainBudget): Promise<Record<DrainResult, number>> {
  return (await drainDueRoomsOnce(b, budget)).results;
}

async function drainDueRoomsOnce(b: Bridge, budget: DrainBudget) {
  const results: Record<DrainResult, number> = { drained: 0, deferred: 0, busy: 0, 'out of time': 0 };
  const rooms = await b.store.listParkedRooms();
  const now = b.now();
  for (const room of rooms.filter((r) => r.nextAttemptAt <= now).sort((x, y) => x.nextAttemptAt - y.nextAttemptAt)) {
    if (Date.now() >= budget.deadline) break;
    results[await drainRoom(b, room.roomId, budget)]++;
  }
  if (rooms.length) b.log.info('drained parked rooms', { parkedRooms: rooms.length, parkedEvents: rooms.reduce((n, r) => n + r.count, 0), ...results });
  const left = results.drained === rooms.length ? [] : await b.store.listParkedRooms();
  emitMetrics(SERVICE, {
    ParkedRooms: left.length,
    ParkedEvents: left.reduce((n, r) => n + Math.max(0, r.count), 0),
    DeadLetters: (await b.store.listDeadLetters()).length,
  });
  return { results, parked: left };
}
