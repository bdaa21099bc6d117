/**
 * Rooms heal from the homeserver. The homeserver is the truth about rooms and aliases; our
 * table is the ledger of what we did plus a cache of what the homeserver knows. When the table
 * has no record of a room (lost, restored from an older backup, a stage made again), the
 * homeserver is asked, the room recognised as ours is recorded again, and the event or message
 * is handled as usual.
 *
 * - A pushed event in a room we have no record of (recogniseRooms): the room is ours when its
 *   canonical alias is one of ours and leads to it, or when the alias is gone from the
 *   homeserver but the room carries our bridge state event (bridge-state.ts). At most three
 *   calls, as the bot: the canonical alias, the alias's room, the bridge event. A room that is
 *   not ours is remembered as such for NOT_OURS_MS by the warm Lambda, so an unbridged room
 *   costs at most three homeserver calls per warm Lambda per ten minutes (one when the bot is
 *   not in the room, as in a direct chat with a virtual user), not one per event.
 * - A network message for a room we have no record of (adoptAlias): our alias is resolved on
 *   the homeserver, once per ABSENT_MS and by one copy at a time; a room behind it is adopted.
 *   Aliases in our namespace are ours alone (exclusive), so the room behind one is ours.
 */
import { randomUUID } from 'node:crypto';
import { isHomeserverError, isMatrixError, unavailable } from '../matrix/errors.js';
import type { RoomAlias, RoomId } from '../matrix/ids.js';
import type { AliasRoom, NetworkRoom } from '../store/index.js';
import { ensureBridgeState, hasBridgeState, setBridgeState } from './bridge-state.js';
import type { Bridge } from './runtime.js';
import { WarmCache } from './warm-cache.js';
import { keptMeanwhile } from './scrollback.js';
import { botPresence, botWriteFailed } from './bot.js';
import { sleep } from '../time.js';

/** How long a warm Lambda remembers that a room is not ours: its homeserver calls are bounded by this. */
export const NOT_OURS_MS = 10 * 60_000;
/** The homeserver calls it takes at most to tell whether a room is ours. */
export const RECOGNITION_CALLS = 3;
/** Time given to recognising the rooms of one transaction (the router's signature carries no deadline). */
const RECOGNITION_MS = 10_000;
/** Rooms recognised at once. */
const PARALLEL = 8;

interface Memory {
  notOurs: WarmCache<RoomId, true>;
  /** Recognitions under way, so that overlapping requests of one Lambda share one. */
  inFlight: Map<RoomId, Promise<AliasRoom | undefined>>;
}
// Beside the Bridge rather than in it: one per bridge, for as long as the bridge (the warm Lambda) lives.
const memories = new WeakMap<Bridge, Memory>();
function memoryOf(b: Bridge): Memory {
  let m = memories.get(b);
  if (!m) memories.set(b, (m = { notOurs: new WarmCache(NOT_OURS_MS), inFlight: new Map() }));
  return m;
}

/** A room was bridged by this Lambda (made, adopted, moved to): it is no longer "not ours". */
export const forgetNotOurs = (b: Bridge, roomId: RoomId) => void memoryOf(b).notOurs.delete(roomId);

/** A refusal that will not change on retry: the room is not ours to read (403), or has no such thing (404). */
const isRefusal = (e: unknown) => isMatrixError(e) && !e.transient;

/**
 * The bridged rooms among `roomIds`, none of which our table knows, as the homeserver knows
 * them. Rooms not ours are remembered; a passing failure (the homeserver down, rate-limiting)
 * is thrown, so that the transaction is retried rather than its events dropped.
 */
export async function recogniseRooms(b: Bridge, roomIds: RoomId[]): Promise<Map<RoomId, AliasRoom>> {
  const memory = memoryOf(b);
  const unknown = roomIds.filter((id) => !memory.notOurs.has(id));
  const found = new Map<RoomId, AliasRoom>();
  if (!unknown.length) return found;
  const deadline = Date.now() + RECOGNITION_MS;
  for (let i = 0; i < unknown.length; i += PARALLEL) {
    const rooms = await Promise.all(unknown.slice(i, i + PARALLEL).map((id) => recogniseOnce(b, memory, id, deadline)));
    for (const room of rooms) if (room) found.set(room.roomId, room);
  }
  return found;
}

function recogniseOnce(b: Bridge, memory: Memory, roomId: RoomId, deadline: number): Promise<AliasRoom | undefined> {
  let pending = memory.inFlight.get(roomId);
  if (!pending) {
    pending = recognise(b, memory, roomId, deadline).finally(() => memory.inFlight.delete(roomId));
    memory.inFlight.set(roomId, pending);
  }
  return pending;
}

async function recognise(b: Bridge, memory: Memory, roomId: RoomId, deadline: number): Promise<AliasRoom | undefined> {
  const notOurs = (why: string) => {
    memory.notOurs.set(roomId, true);
    b.log.info('a room we have no record of is not ours: remembered for a while', { roomId, why, forMs: NOT_OURS_MS });
    return undefined;
  };
  // 1. Its canonical alias, as the bot (who is in every room it bridges; 403 when it is not in this one).
  let canonical: Record<string, unknown>;
  try {
    canonical = await b.cs.getState(roomId, 'm.room.canonical_alias', '', { deadline });
  } catch (e) {
    if (isRefusal(e)) return notOurs('the bot may not read it, or it has no canonical alias');
    throw e;
  }
  const alias = [canonical.alias, ...(Array.isArray(canonical.alt_aliases) ? canonical.alt_aliases : [])].find(
    (a): a is RoomAlias => typeof a === 'string' && b.ns.isOurAlias(a) && b.ns.remoteRoomOf(a) !== undefined,
  );
  if (!alias) return notOurs('no alias of ours');
  const remoteRoom = b.ns.remoteRoomOf(alias) as string;

  // 2. Where the alias leads: an upgraded room keeps its old canonical alias, which now leads to the new room.
  let resolved: RoomId | undefined;
  try {
    resolved = (await b.cs.resolveAlias(alias, { deadline })).room_id;
  } catch (e) {
    if (!(isHomeserverError(e) && e.hs.status === 404)) {
      if (isRefusal(e)) return notOurs('its alias cannot be resolved');
      throw e;
    }
  }
  if (resolved !== undefined && resolved !== roomId) return notOurs(`its alias ${alias} leads to another room`);

  // 3. Our bridge event: read back, and set when missing (a room made before rooms carried it).
  let marked: boolean;
  try {
    marked = await hasBridgeState(b, roomId, remoteRoom, deadline);
  } catch (e) {
    if (!isRefusal(e)) throw e;
    marked = false;
  }
  // An alias the homeserver lost: the room is ours only if it says so itself. The next join by
  // the alias makes the homeserver ask us, and the alias query points it here again.
  if (resolved === undefined && !marked) return notOurs(`its alias ${alias} is gone and it carries no bridge event of ours`);

  const room: AliasRoom = { kind: 'alias', roomId, alias, remoteRoom };
  if ((await adopt(b, room)) === undefined) {
    const record = await b.store.getAlias(alias);
    if (record?.state === 'creating') throw unavailable(`${alias} is being created just now; try again`);
    // Our table names another room for the alias (restored from a backup older than an upgrade
    // or a room made again), and the homeserver's alias leads here: the homeserver is right.
    const recorded = record?.state === 'ready' ? record.roomId : undefined;
    if (!recorded || resolved !== roomId || !(await b.store.moveRoom({ kind: 'alias', roomId: recorded, alias, remoteRoom }, roomId))) {
      b.log.warn('a room the homeserver knows as ours is not the one our table records for its alias: left alone', { roomId, alias, recorded });
      return notOurs('our table records another room for its alias');
    }
    b.roomCache.delete(recorded);
    b.roomCache.set(roomId, room);
    b.log.info('our table recorded another room for the alias than the homeserver has: it follows the homeserver', { alias, from: recorded, to: roomId });
  }
  if (!marked) await setBridgeState(b, roomId, remoteRoom, deadline);
  b.log.info('recognised a room we had no record of, from the homeserver: recorded again', { roomId, alias, by: marked ? 'bridge event' : 'canonical alias' });
  return room;
}

/**
 * Records a room found on the homeserver, ready (with scrollbackPending when messages are kept
 * for it, so that they still go first): whether messages are kept for it, or undefined when our
 * table names another room for the alias, or the alias is being created.
 */
async function adopt(b: Bridge, room: AliasRoom): Promise<{ scrollbackPending: boolean } | undefined> {
  let scrollbackPending = (await b.store.listScrollback(room.alias)).length > 0;
  if (!(await b.store.adoptRoom(room, scrollbackPending))) return undefined;
  scrollbackPending ||= await keptMeanwhile(b, room.alias);
  b.roomCache.set(room.roomId, room);
  forgetNotOurs(b, room.roomId);
  return { scrollbackPending };
}

/** How long one lookup of an alias may take before another copy may ask again. */
export const ASK_MS = 15_000;
/**
 * How long the homeserver's "no such alias" is believed. Messages for a room nobody has joined
 * cost no homeserver call meanwhile; a room the homeserver has and our table lost is found at
 * the first message after it (a join needs no lookup: it makes the homeserver ask us).
 */
export const ABSENT_MS = 60 * 60_000;
const POLL_MS = 100;

/**
 * A network message for a network room our table has no record of. The homeserver is asked for
 * our alias at most once per ABSENT_MS and by one copy at a time: the room behind it is adopted
 * (recorded, ready) and its bridge event set if missing. Undefined when the homeserver has no
 * such alias (remembered), when another copy is asking just now, or when another record got there
 * first (the caller reads it): the message is then kept as scrollback. Other failures are thrown
 * (the network retries). See docs/DESIGN.md, "Asking the homeserver about an alias".
 */
export async function adoptAlias(
  b: Bridge,
  alias: RoomAlias,
  remoteRoom: string,
  deadline: number,
  /** A creation of the room was started and died: what the homeserver said before it no longer holds. */
  afterDeadCreation = false,
): Promise<{ room: AliasRoom; scrollbackPending: boolean } | undefined> {
  const now = b.now();
  const lookup = await b.store.getAliasLookup(alias);
  // Someone asks just now, or the homeserver said "no such alias" a short while ago.
  if (lookup && lookup.until >= now && !(afterDeadCreation && lookup.state === 'absent')) return undefined;
  const owner = randomUUID();
  if (!(await b.store.startAliasLookup(alias, owner, now, now + ASK_MS, afterDeadCreation))) return undefined;
  let roomId: RoomId;
  try {
    // Synapse answers this by asking our alias query, which sees our lookup (isOurOwnLookup).
    roomId = (await b.cs.resolveAlias(alias, { deadline })).room_id;
  } catch (e) {
    if (isHomeserverError(e) && e.hs.status === 404) {
      await b.store.recordAliasAbsent(alias, owner, b.now() + ABSENT_MS);
      b.log.info('the homeserver has no such alias: nobody has joined it; remembered for a while', { alias, forMs: ABSENT_MS });
      return undefined;
    }
    await b.store.endAliasLookup(alias, owner).catch((err) => b.log.warn('could not end an alias lookup; it runs out by itself', { alias, err }));
    throw e;
  }
  await b.store.endAliasLookup(alias, owner).catch((err) => b.log.warn('could not end an alias lookup; it runs out by itself', { alias, err }));
  const room: AliasRoom = { kind: 'alias', roomId, alias, remoteRoom };
  const adopted = await adopt(b, room);
  if (!adopted) return undefined;
  b.log.info('adopted a room we had no record of: the homeserver has its alias', { roomId, alias });
  await ensureBridgeState(b, roomId, remoteRoom, deadline);
  return { room, ...adopted };
}

/**
 * The alias query, for an alias we have no room for: is this the homeserver asking because of
 * our own lookup (then nobody joined, and no room is made)? Each query during a lookup is
 * counted. A second one means a user's join asked too: the room is made. The first waits up to
 * ALIAS_QUERY_WAIT_MS for a second; alone, it was our lookup's, answered 404. So a join that races
 * our lookup is never refused, and our lookup never makes a room.
 */
export async function isOurOwnLookup(b: Bridge, alias: RoomAlias, deadline: number): Promise<boolean> {
  // A read first: a conditional write is billed even when its condition fails, and most alias
  // queries come with no lookup of ours under way.
  const under = await b.store.getAliasLookup(alias);
  if (under?.state !== 'asking' || under.until < b.now()) return false;
  const count = await b.store.countAliasQuery(alias, b.now());
  if (count === undefined || count >= 2) return false;
  // Our lookup makes the homeserver ask exactly once (Synapse does not share concurrent queries);
  // a user's join makes it ask once more. The first waits ALIAS_QUERY_WAIT_MS (2 s) for a second.
  const waitUntil = Math.min(Date.now() + b.config.aliasQueryWaitMs, deadline);
  while (Date.now() + POLL_MS < waitUntil) {
    await sleep(POLL_MS);
    const lookup = await b.store.getAliasLookup(alias);
    // The lookup ended without this query's answer: this query was not the one it caused.
    if (lookup?.state !== 'asking' || lookup.queries >= 2) return false;
  }
  return true;
}

/**
 * Posting into a recorded room failed with a refusal (403, 404): is the room gone from the
 * homeserver (a reset, a restored database)? Asked about the room itself: when the bot is not in
 * it and never left it, the homeserver has no such room for us, and its record is forgotten, so
 * that the next join makes it again (and replays what is kept meanwhile). A bot that was kicked
 * is reported to the operator; the room is left as it is.
 */
export async function isRoomLost(b: Bridge, room: NetworkRoom, failure: unknown, deadline: number): Promise<boolean> {
  if (!isHomeserverError(failure) || (failure.hs.status !== 403 && failure.hs.status !== 404)) return false;
  const presence = await botPresence(b, room.roomId, deadline);
  if (presence === 'departed') botWriteFailed(b, 'a network message could not be posted', room.roomId, failure);
  if (presence !== 'absent') return false;
  await b.store.forgetRoom(room);
  b.roomCache.delete(room.roomId);
  b.log.warn('the homeserver no longer has a bridged room (reset or restored?): its record is forgotten, messages are kept until someone joins the alias again', {
    alias: room.alias,
    roomId: room.roomId,
  });
  return true;
}
