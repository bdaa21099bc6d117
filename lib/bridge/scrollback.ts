/** Replays messages kept from before a room existed, in order, each by its sender at its time. */
import { deleteItems, listScrollback } from '../store/scrollback.js';
import type { BridgedRoom } from '../store/aliases.js';
import type { Bridge } from './runtime.js';
import { postAsVirtualUser } from './post.js';

export async function replayScrollback(b: Bridge, room: BridgedRoom, deadline: number): Promise<number> {
  const kept = await listScrollback(b.table, room.alias);
  const done: Array<{ pk: string; sk: string }> = [];
  try {
    for (const m of kept) {
      // The CS txnId comes from the network's message id, so a replay cut short and
      // started again posts nothing twice.
      await postAsVirtualUser(b, room, m, deadline);
      done.push(m.key);
    }
  } finally {
    await deleteItems(b.table, done);
  }
  if (kept.length) b.log.info('replayed scrollback', { alias: room.alias, roomId: room.roomId, count: kept.length });
  return kept.length;
}
