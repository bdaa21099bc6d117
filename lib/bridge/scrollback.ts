/** Replays messages kept from before a room existed, in order, each by its sender at its time. */
import type { BridgedRoom, InboundMessage } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { postAsVirtualUser } from './post.js';

export async function replayScrollback(b: Bridge, room: BridgedRoom, deadline: number): Promise<number> {
  const kept = await b.store.listScrollback(room.alias);
  const done: InboundMessage[] = [];
  try {
    for (const m of kept) {
      // The CS txnId comes from the network's message id, so a replay cut short and
      // started again posts nothing twice.
      await postAsVirtualUser(b, room, m, deadline);
      done.push(m);
    }
  } finally {
    await b.store.dropScrollback(room.alias, done);
  }
  if (kept.length) b.log.info('replayed scrollback', { alias: room.alias, roomId: room.roomId, count: kept.length });
  return kept.length;
}
