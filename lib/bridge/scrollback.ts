/**
 * Scrollback: messages kept from before a room existed, replayed in order, each by its sender at
 * its time. While a room has kept messages, new ones queue behind them (the alias record's
 * `scrollbackPending`), so the network's order holds however replays and new messages overlap.
 */
import { MatrixError } from '../matrix/errors.js';
import type { NetworkRoom, InboundMembership, KeptEvent } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { postOnce } from './post.js';
import { applyMembership } from './membership.js';

export const isMembership = (k: KeptEvent): k is InboundMembership => 'membership' in k;

/** A kept message posted once (the event it became), or a kept membership applied (undefined). */
export const applyKept = (b: Bridge, room: NetworkRoom, k: KeptEvent, deadline: number): Promise<string | undefined> =>
  isMembership(k) ? applyMembership(b, room, k, deadline).then(() => undefined) : postOnce(b, room, k, deadline);

export interface Drained {
  /** network id → the event it became (undefined for a membership, applied) */
  posted: Map<string, string | undefined>;
  /** network message id → why the homeserver refused it for good (it was dropped) */
  refused: Map<string, MatrixError>;
}

/**
 * After a room was recorded ready without the pending flag: a message kept between our listing
 * and the ready mark was written before the mark, and its writer may have read the record before
 * it too, so nobody would replay it. Listing once more after the mark finds it (and raises the
 * flag, so that new messages wait behind it); a message kept later sees the ready record itself.
 */
export async function keptMeanwhile(b: Bridge, alias: NetworkRoom['alias']): Promise<boolean> {
  if ((await b.store.listScrollback(alias)).length === 0) return false;
  await b.store.setScrollbackPending(alias, true);
  return true;
}

/** How often a drain looks again for messages kept while it ran, before it leaves them to the next one. */
const ROUNDS = 5;

/**
 * Posts every kept message of the room, oldest first, and clears the room's pending flag once
 * none is left. Overlapping drains (the alias query, inbound messages, other copies) are safe:
 * each goes in order, and postOnce (our record, then the CS txn id) never posts one twice. A
 * message the homeserver refuses for good (413 too large, 403 banned, 400) is dropped with a log
 * line, never left to block the room; anything else stops the drain, the flag stays, and the
 * next drain carries on.
 */
export async function drainScrollback(b: Bridge, room: NetworkRoom, deadline: number): Promise<Drained> {
  const drained: Drained = { posted: new Map(), refused: new Map() };
  for (let round = 0; round < ROUNDS; round++) {
    let kept = await b.store.listScrollback(room.alias);
    if (kept.length === 0) {
      await b.store.setScrollbackPending(room.alias, false);
      // A message kept just before the flag went down would otherwise wait for the next drain.
      kept = await b.store.listScrollback(room.alias);
      if (kept.length === 0) break;
      await b.store.setScrollbackPending(room.alias, true);
    }
    const done: typeof kept = [];
    try {
      for (const m of kept) {
        try {
          drained.posted.set(m.id, await applyKept(b, room, m, deadline));
        } catch (e) {
          if (!(e instanceof MatrixError) || e.transient) throw e;
          drained.refused.set(m.id, e);
          b.log.warn('a kept message was refused by the homeserver for good: dropped, the replay goes on', {
            alias: room.alias,
            roomId: room.roomId,
            messageId: m.id,
            status: e.status,
            error: e.message,
          });
        }
        done.push(m);
      }
    } finally {
      await b.store.dropScrollback(room.alias, done);
    }
  }
  if (drained.posted.size || drained.refused.size) {
    b.log.info('replayed scrollback', { alias: room.alias, roomId: room.roomId, posted: drained.posted.size, dropped: drained.refused.size });
  }
  return drained;
}
