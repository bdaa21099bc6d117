/**
 * The delivery queue, as the bridge uses it: an outbox that push fills, a queue the deliver
 * function works through, and the dead letters an operator looks at. No SQS in here (queue URLs,
 * group and deduplication ids are sqs.ts's business), and no bridge type: the body of a queued
 * event is the bridge's own JSON.
 */
import type { RoomId } from '../matrix/ids.js';

/** A Matrix event on its way to the network. */
export interface QueuedEvent {
  /** Events of one room are delivered in order; rooms do not wait for each other. */
  roomId: RoomId;
  /** The same event queued twice (a retried push) is queued once. */
  eventId: string;
  /** Who sent it, for what the bridge tells them about its delivery. */
  sender: string;
  /** What to deliver, as the bridge wrote it (JSON text, at most 256 KiB with the rest). */
  body: string;
}

export interface Outbox {
  /**
   * Queues the events in this order (each room's in its own order). An event too large for the
   * queue is not queued and comes back in `tooLarge` (no homeserver event is: they are at most
   * 64 KiB). Throws QueueUnavailableError.
   */
  enqueue(events: readonly QueuedEvent[]): Promise<{ tooLarge: QueuedEvent[] }>;
}

/** An event as the deliver function receives it from the queue. */
export interface ReceivedEvent extends QueuedEvent {
  /** The queue's own id for this message (what a partial batch response names). */
  messageId: string;
  /** The handle of this receipt: what to try again later, or to move. */
  receipt: string;
  /** How often it has been received, this time included. */
  receiveCount: number;
  /** When it was queued (epoch ms). */
  queuedAt: number;
  /** Why it failed last, on a dead letter. */
  lastError?: string;
}

/** What the deliver function does with the queue beyond its event source's delete. */
export interface DeliveryQueue {
  /** These receipts come back after `delayMs` (the queue keeps them hidden until then). */
  retryLater(receipts: readonly string[], delayMs: number): Promise<void>;
  /** Puts the event on the dead-letter queue with the reason; the caller then reports it done. */
  deadLetter(event: ReceivedEvent, reason: string): Promise<void>;
}

/** A dead letter as an operator sees it. */
export interface DeadLetter {
  roomId: RoomId;
  eventId: string;
  sender: string;
  /** When it was put on the dead-letter queue (epoch ms). */
  deadLetteredAt: number;
  lastError?: string;
}

export interface DeadLetters {
  /**
   * The dead letters, oldest first per room, without taking any away. A FIFO queue hands out a
   * room's messages in order only, so at most `perRoom` (10) of each room are seen; `total` counts all.
   */
  list(): Promise<{ letters: DeadLetter[]; total: number }>;
  /** Moves every dead letter back onto the delivery queue (SQS's own message move task). */
  redrive(): Promise<{ taskHandle: string }>;
  /** Deletes every dead letter. */
  purge(): Promise<void>;
}

/**
 * The queue could not be reached, throttled us, or failed on its side, past its client's own
 * retries: the request may succeed later. It carries its HTTP status (as middy's
 * http-error-handler expects), so the HTTP shell answers 503 without knowing what a queue is.
 */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
  readonly statusCode = 503;
  readonly expose = true;
  constructor(cause: unknown) {
    super('the application service cannot reach its delivery queue (SQS) just now; try again', { cause });
  }
}
