/** What the event router and its handlers share. */
import { isRoomId } from '../../matrix/ids.js';
import type { RoomId } from '../../matrix/ids.js';
import type { BridgedRoom } from '../../store/index.js';
import type { Bridge } from '../runtime.js';
import type { Delivery } from '../network.js';

/** The fields of a client event we rely on; anything else is carried along untouched. */
export interface RoomEvent {
  event_id: string;
  room_id: RoomId;
  sender: string;
  type: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  state_key?: string;
  /** m.room.redaction in room versions up to 10 (version 11 moved it into the content). */
  redacts?: string;
  /** For state events, the homeserver gives the content they replace (Synapse does to an AS). */
  unsigned?: { prev_content?: Record<string, unknown> };
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

export interface EventContext {
  /** The bridged rooms of this transaction's events, read once for all of them. */
  rooms: ReadonlyMap<RoomId, BridgedRoom>;
  deadline: number;
}

/**
 * What a handler made of its event: nothing for the network ('ignored', whatever it did on the
 * Matrix side), or a message to deliver, which push queues and the deliver function sends.
 */
export type EventOutcome = 'ignored' | { deliver: Delivery };

/**
 * One kind of event (as mautrix-go's `EventProcessor.On(type, handler)`). `handle` does what the
 * event means on the Matrix side at once (accept an invite, follow an upgrade) and says what, if
 * anything, goes to the network; it never calls the network itself.
 */
export interface EventHandler {
  /** True when handling `e` needs its room's bridge mapping; those are read in one batch per transaction. */
  needsRoom?(b: Bridge, e: RoomEvent): boolean;
  /**
   * Whether the event leads to anything, decided without any effect: a transaction of events
   * that lead to nothing (echoes, unbridged rooms) is answered with no write and nothing queued.
   */
  acts(b: Bridge, e: RoomEvent, ctx: Pick<EventContext, 'rooms'>): boolean;
  /** Only for an event that `acts`. */
  handle(b: Bridge, e: RoomEvent, ctx: EventContext): Promise<EventOutcome>;
}
