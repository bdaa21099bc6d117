/**
 * Deliver: the SQS consumer's use case. Each queued event goes to the network in its room's
 * order; rooms are delivered side by side. A delivery that fails for now is tried again after a
 * backoff (the message stays hidden on the queue until then), with every later event of its room
 * in this batch, so the room keeps its order; a refusal (4xx) is not retried; a message failing
 * for longer than DEAD_LETTER_AFTER_HOURS goes to the dead-letter queue. The sender is told with
 * `com.beeper.message_send_status` (and a notice when a message is lost), once per message.
 */
import { MatrixError } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { ReceivedEvent } from '../queue/port.js';
import { receivedEvents } from '../queue/sqs.js';
import type { SqsRecord } from '../queue/sqs.js';
import { backoffMs } from '../backoff.js';
import { DELIVERY } from '../defaults.js';
import { recordMetrics } from '../metrics.js';
import { PermanentDeliveryError, RetryLaterError, UnknownTargetError, UnsupportedDeliveryError } from './network.js';
import type { Delivered, Delivery, DeliveryKind, OutboundMessage } from './network.js';
import type { Bridge } from './runtime.js';
import { sendDeadLetterNotice, sendStatus } from './send-status.js';

/** The wait before a message's next attempt: from 2 s, doubling, at most 15 minutes; a network's Retry-After wins up to that. */
export const RETRIES = { firstMs: DELIVERY.FIRST_RETRY_MS, maxMs: DELIVERY.MAX_RETRY_MS, jitter: 0.2 };

/** A failure worth another try later, as opposed to one refused for good. */
export function isTransient(e: unknown): boolean {
  if (e instanceof PermanentDeliveryError) return false;
  if (e instanceof MatrixError) return e.transient;
  return true;
}

const reasonOf = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 500);

type Outcome = 'delivered' | 'refused' | 'dead-lettered' | { retryInMs: number };

export interface DeliverCounts {
  delivered: number;
  refused: number;
  deadLettered: number;
  retried: number;
}

/**
 * Delivers a batch as the queue's event source hands it over (each room's events in order).
 * Returns the message ids to report failed: they stay on the queue and come back after their
 * backoff. `deadline`: start no delivery after it (the invocation's own end comes later).
 */
export async function deliverEvents(b: Bridge, events: readonly ReceivedEvent[], deadline: number): Promise<{ failed: string[]; counts: DeliverCounts }> {
  const rooms = new Map<RoomId, ReceivedEvent[]>();
  for (const e of events) rooms.set(e.roomId, [...(rooms.get(e.roomId) ?? []), e]);
  const failed: string[] = [];
  const counts: DeliverCounts = { delivered: 0, refused: 0, deadLettered: 0, retried: 0 };
  const latencies: number[] = [];
  // Event → network id of what this batch delivered, for references to it later in the batch.
  const delivered = new Map<string, Mapped>();
  await Promise.all(
    [...rooms.values()].map(async (room) => {
      for (let i = 0; i < room.length; i++) {
        const outcome: Outcome = Date.now() >= deadline ? { retryInMs: 0 } : await deliverOne(b, room[i]!, deadline, delivered);
        if (typeof outcome === 'string') {
          counts[outcome === 'dead-lettered' ? 'deadLettered' : outcome]++;
          // From push putting it on the queue to the network's 2xx.
          if (outcome === 'delivered' && room[i]!.queuedAt) latencies.push(Math.max(0, b.now() - room[i]!.queuedAt));
          continue;
        }
        // This one and the rest of its room wait together: nothing of the room overtakes it.
        const rest = room.slice(i);
        failed.push(...rest.map((e) => e.messageId));
        counts.retried += rest.length;
        // Their senders learn that they wait too, the first time they are held back.
        for (const e of rest.slice(1)) {
          if (e.receiveCount === 1 && Date.now() < deadline) await sendStatus(b, { roomId: e.roomId, eventId: e.eventId, sender: e.sender, type: 'm.room.message' }, 'PENDING', deadline);
        }
        await b.deliveryQueue.retryLater(rest.map((e) => e.receipt), outcome.retryInMs).catch((err) =>
          // They come back after the queue's visibility timeout instead.
          b.log.warn('could not set when a failed delivery is tried again', { roomId: room[i]!.roomId, err }),
        );
        return;
      }
    }),
  );
  // Zeros left out: CloudWatch bills a metric for each hour it is published in, and no alarm needs these to be 0.
  const nonZero = (n: number) => (n > 0 ? n : undefined);
  recordMetrics({
    Delivered: nonZero(counts.delivered),
    DeliveryRetried: nonZero(counts.retried),
    DeliveryRefused: nonZero(counts.refused),
    DeadLettered: nonZero(counts.deadLettered),
    DeliveryLatency: latencies.slice(0, 100),
  });
  return { failed, counts };
}

/** The Matrix event type a delivery came from: only a message's sender is told about its delivery. */
const EVENT_TYPE: Record<DeliveryKind, string> = {
  messages: 'm.room.message',
  edits: 'm.room.message',
  deletions: 'm.room.redaction',
  reactions: 'm.reaction',
  members: 'm.room.member',
  profile: 'm.room.member',
};

/** A queued body as push wrote it; one queued before rich messages is a bare message. */
export function parseQueued(text: string): Delivery {
  const parsed = JSON.parse(text) as Partial<Delivery> & Partial<OutboundMessage>;
  if (typeof parsed !== 'object' || parsed === null) throw new SyntaxError('not an object');
  if (typeof parsed.kind === 'string' && typeof parsed.body === 'object' && parsed.body !== null) return parsed as Delivery;
  return { kind: 'messages', body: parsed as OutboundMessage };
}

/**
 * The network's ids of the messages a delivery refers to. `delivered`: what this batch just
 * delivered (the table's index may not show those yet). A reference whose id is not known
 * keeps the event ID alone, which the network was given too.
 */
async function resolveRefs(b: Bridge, d: Delivery, delivered: Map<string, Mapped>): Promise<Delivery> {
  if (d.kind === 'members' || d.kind === 'profile') return d;
  const ref = d.kind === 'messages' ? d.body.replyTo : d.body.target;
  if (!ref) return d;
  const mapped = delivered.get(ref.eventId) ?? (await b.store.mappingOfEvent(ref.eventId));
  // Matrix shows an edit only from whoever sent the message: anyone else's is not one, anywhere.
  if (d.kind === 'edits' && mapped?.sender !== undefined && mapped.sender !== d.body.sender.userId) {
    throw new UnknownTargetError(`${d.body.sender.userId} edited a message ${mapped.sender} sent: Matrix ignores such an edit`);
  }
  // Recorded under its event ID: the network answered no id of its own for it.
  if (mapped === undefined || mapped.networkId === ref.eventId) return d;
  const resolved = { ...ref, id: mapped.networkId };
  return (d.kind === 'messages' ? { ...d, body: { ...d.body, replyTo: resolved } } : { ...d, body: { ...d.body, target: resolved } }) as Delivery;
}

/** What this batch delivered: event → the network's id, and who sent it. */
type Mapped = { networkId: string; sender: string };

async function deliverOne(b: Bridge, e: ReceivedEvent, deadline: number, delivered: Map<string, Mapped>): Promise<Outcome> {
  const log = b.log.child({ roomId: e.roomId, eventId: e.eventId });
  let delivery: Delivery;
  try {
    delivery = parseQueued(e.body);
  } catch {
    // Not ours to mend, never deliverable: kept for an operator rather than dropped.
    log.error('a queued message that is not JSON: moved to the dead-letter queue');
    return (await moveToDeadLetters(b, e, 'unreadable queued message', deadline)) ? 'dead-lettered' : { retryInMs: RETRIES.maxMs };
  }
  const about = { roomId: e.roomId, eventId: e.eventId, sender: e.sender, type: EVENT_TYPE[delivery.kind] ?? 'm.room.message' };
  let answer: Delivered;
  try {
    // Inside the try: a reference that makes the delivery pointless (UnknownTargetError) drops it quietly.
    answer = await b.network.deliver(await resolveRefs(b, delivery, delivered));
  } catch (err) {
    if (err instanceof UnsupportedDeliveryError || err instanceof UnknownTargetError) {
      // Nothing went wrong that the sender could act on: a network without reactions, an edit of a message it never had.
      log.info('the network does not take this: dropped', { kind: delivery.kind, reason: reasonOf(err) });
      return 'refused';
    }
    if (!isTransient(err)) {
      log.warn('the network refused a message for good: dropped', { kind: delivery.kind, reason: reasonOf(err) });
      await sendStatus(b, about, 'FAIL_PERMANENT', deadline, { error: reasonOf(err) });
      await sendDeadLetterNotice(b, about, reasonOf(err), deadline);
      return 'refused';
    }
    const failingForMs = b.now() - e.queuedAt;
    if (failingForMs >= b.delivery.deadLetterAfterMs) {
      const reason = `still failing after ${Math.round(failingForMs / 3600_000)} h: ${reasonOf(err)}`;
      return (await moveToDeadLetters(b, e, reason, deadline)) ? 'dead-lettered' : { retryInMs: backoffMs(e.receiveCount, RETRIES) };
    }
    const retryInMs = backoffMs(e.receiveCount, RETRIES, err instanceof RetryLaterError ? err.retryAfterMs : undefined);
    log.info('delivery failed for now: tried again later, with the rest of its room', { attempt: e.receiveCount, retryInMs, error: reasonOf(err) });
    // The first failure only: the sender learns it is late once, not at every retry.
    if (e.receiveCount === 1) await sendStatus(b, about, 'PENDING', deadline);
    return { retryInMs };
  }
  if (delivery.kind === 'messages' || delivery.kind === 'reactions') await recordMapping(b, e, answer, delivered, delivery.kind === 'reactions');
  // It had been late (PENDING), or dead-lettered and redriven (FAIL_PERMANENT): now it is through.
  if (e.receiveCount > 1 || e.lastError !== undefined) await sendStatus(b, about, 'SUCCESS', deadline);
  return 'delivered';
}

/**
 * The message mapping for what the network just took: one write, under the network's id (or
 * the event ID when it answered none). A failed write costs only the network's id in later
 * references (they still carry the event ID), never the delivery: it is logged, not retried.
 */
async function recordMapping(b: Bridge, e: ReceivedEvent, answer: Delivered, delivered: Map<string, Mapped>, reaction: boolean): Promise<void> {
  const networkId = answer.id ?? e.eventId;
  delivered.set(e.eventId, { networkId, sender: e.sender });
  try {
    await b.store.recordBridgedMessage({ networkId, eventId: e.eventId, roomId: e.roomId, sender: e.sender, ...(reaction ? { reaction } : {}) });
  } catch (err) {
    b.log.warn('could not record the network id of a delivered message', { roomId: e.roomId, eventId: e.eventId, networkId, err });
  }
}

/** False when the dead-letter queue cannot take it now: the message then stays and is tried again. */
async function moveToDeadLetters(b: Bridge, e: ReceivedEvent, reason: string, deadline: number): Promise<boolean> {
  try {
    await b.deliveryQueue.deadLetter(e, reason);
  } catch (err) {
    b.log.error('could not move a message to the dead-letter queue; it stays on the delivery queue', { roomId: e.roomId, eventId: e.eventId, err });
    return false;
  }
  b.log.warn('dead letter: a message was not delivered to the network', { roomId: e.roomId, eventId: e.eventId, sender: e.sender, reason, attempts: e.receiveCount });
  const about = { roomId: e.roomId, eventId: e.eventId, sender: e.sender, type: 'm.room.message' };
  await sendStatus(b, about, 'FAIL_PERMANENT', deadline, { error: reason });
  await sendDeadLetterNotice(b, about, reason, deadline);
  return true;
}

/** The same, from the records of an SQS event as Lambda's event source delivers them. */
export const deliverRecords = (b: Bridge, records: readonly SqsRecord[], deadline: number) => deliverEvents(b, receivedEvents(records), deadline);
