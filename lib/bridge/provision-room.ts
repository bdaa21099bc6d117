/**
 * The room alias query: make the room behind one of our aliases exist on the HS.
 *
 * Many Lambda copies may get the same query at once (the HS, or several HSes' users, retry).
 * The alias item in DynamoDB is a lock: one copy creates the room, the others wait for
 * `ready`. The lock runs out with its holder's deadline, so a copy that died never blocks
 * the alias for longer than one request.
 */
import { randomUUID } from 'node:crypto';
import { ErrCode, invalidParam, isHomeserverError, notFound, unavailable } from '../matrix/errors.js';
import { isRoomAlias } from '../matrix/ids.js';
import type { RoomAlias, RoomId } from '../matrix/ids.js';
import type { AliasRecord, AliasRoom, NetworkRoom } from '../store/index.js';
import { sleep } from '../time.js';
import type { Bridge } from './runtime.js';
import type { RemoteRoom } from './network.js';
import { drainScrollback, keptMeanwhile } from './scrollback.js';
import { bridgeInitialState, ensureBridgeState } from './bridge-state.js';
import { forgetNotOurs, isOurOwnLookup } from './heal.js';
import { botPresence } from './bot.js';
import { countOutcome } from './outcome.js';

const POLL_MS = 150;

/** The room behind an alias record, once the record says the room is made and recorded. */
export function readyRoom(record: AliasRecord | undefined, remoteRoom: string): NetworkRoom | undefined {
  if (record?.state !== 'ready' || !record.roomId) return undefined;
  const { alias, roomId, linked } = record;
  return linked ? { kind: 'linked', alias, roomId, remoteRoom, linkedBy: linked.by, linkedAt: linked.at } : { kind: 'alias', alias, roomId, remoteRoom };
}

/** The room alias query: make the room the alias names exist on the HS when the network has it. */
export const provisionRoom = (b: Bridge, alias: string, deadline: number): Promise<NetworkRoom> =>
  countOutcome('RoomQuery', () => provisionRoomOnce(b, alias, deadline), () => 'ready');

async function provisionRoomOnce(b: Bridge, alias: string, deadline: number): Promise<NetworkRoom> {
  if (!isRoomAlias(alias)) throw invalidParam(`${JSON.stringify(alias)} is not a room alias`);
  const remoteRoom = b.ns.remoteRoomOf(alias);
  if (!remoteRoom) throw notFound(`${alias} is not in this bridge's namespace`);

  let record = await b.store.getAlias(alias);
  const recorded = readyRoom(record, remoteRoom);
  // Our own lookup of the alias (a network message for a room we have no record of) made the
  // homeserver ask: nobody joined, so there is no room to make.
  if (!recorded && (await isOurOwnLookup(b, alias, deadline))) throw notFound(`${alias} is being looked up by the bridge itself; nobody has joined it`);
  if (recorded) {
    const healed = await healAlias(b, recorded, deadline);
    if (healed) return healed;
    // A linked room the bot is gone from (the room was deleted, the bot kicked): the link ends,
    // and the network room gets a room of its own, made as for any alias.
    if (recorded.kind === 'linked') {
      await b.store.removeLink(recorded);
      b.log.warn('a linked room is gone from the homeserver, or the bot from it: the link ends', { roomId: recorded.roomId, remoteRoom, linkedBy: recorded.linkedBy });
    }
  }

  const info = await b.network.lookupRoom(remoteRoom);
  if (!info) throw notFound(`the network has no room ${JSON.stringify(remoteRoom)}`);

  const owner = randomUUID();
  // A recorded room the homeserver no longer has is replaced: its record is taken over, once.
  let replacing = recorded?.kind === 'alias' ? recorded.roomId : undefined;
  for (;;) {
    // The lock lasts as long as our own deadline: we never hold it after we stop working.
    const lockMs = Math.max(deadline - Date.now(), 0) + 1000;
    const locked = replacing ? await b.store.reclaimAlias(alias, replacing, owner, lockMs) : await b.store.lockAlias(alias, owner, lockMs);
    replacing = undefined;
    if (locked) return createBridgedRoom(b, alias, remoteRoom, info, owner, deadline);
    // Someone else is creating it: wait for them, or for their lock to run out.
    do {
      if (Date.now() + POLL_MS >= deadline) throw unavailable(`${alias} is still being created; try again`);
      await sleep(POLL_MS);
      record = await b.store.getAlias(alias);
      const made = readyRoom(record, remoteRoom);
      // Linked meanwhile (a moderator's link won the lock): the alias leads to that room.
      if (made?.kind === 'linked') return (await healAlias(b, made, deadline)) ?? made;
      if (made) return made;
    } while (record && record.state === 'creating' && (record.lockUntil ?? 0) >= Date.now());
  }
}

/**
 * The HS asks about an alias only when it has none: one we recorded as ready means it lost it
 * (an admin removed the alias, a reset or restored database). The alias is pointed at the
 * recorded room again when that room still exists; undefined when it is gone too.
 */
async function healAlias(b: Bridge, room: NetworkRoom, deadline: number): Promise<NetworkRoom | undefined> {
  // Not a lookup first: Synapse answers a lookup of an alias it lacks in our namespace by asking
  // this very query again. Setting the alias asks nobody; "already there" means it had it after all.
  try {
    await b.cs.setAlias(room.alias, room.roomId, { deadline });
    b.log.info('the homeserver had lost a recorded alias: it points at the recorded room again', { alias: room.alias, roomId: room.roomId });
    return room;
  } catch (e) {
    if (isHomeserverError(e) && e.hs.status === 409) return room;
    if (!isHomeserverError(e)) throw e;
    // What the failure means is not read from its class (Synapse answers 400 M_UNKNOWN "Room does
    // not exist" for a room it lost): the homeserver is asked about the room itself.
    if ((await botPresence(b, room.roomId, deadline)) === 'joined') {
      throw unavailable(`the homeserver would not point ${room.alias} at ${room.roomId} again (${e.message}), though the room exists; try again`);
    }
    b.log.info('the homeserver lost a recorded room (or the bot is no longer in it) and its alias: making the room again', {
      alias: room.alias,
      roomId: room.roomId,
      error: e.message,
    });
    b.roomCache.delete(room.roomId);
    return undefined;
  }
}

async function createBridgedRoom(
  b: Bridge,
  alias: RoomAlias,
  remoteRoom: string,
  info: RemoteRoom,
  owner: string,
  deadline: number,
): Promise<NetworkRoom> {
  let roomId: RoomId;
  try {
    roomId = await createOrAdopt(b, alias, remoteRoom, info, deadline);
  } catch (e) {
    await b.store.releaseAlias(alias, owner).catch((err) => b.log.warn('could not release alias lock', { alias, err }));
    throw e;
  }
  const room: AliasRoom = { kind: 'alias', alias, roomId, remoteRoom };
  // With messages kept for the room, new ones must queue behind them until the replay is done.
  let pending = (await b.store.listScrollback(alias)).length > 0;
  if (!(await b.store.markRoomReady(room, owner, pending))) {
    // Our lock ran out and another copy took over; it resolves to the same room via M_ROOM_IN_USE.
    const theirs = readyRoom(await b.store.getAlias(alias), remoteRoom);
    if (!theirs) throw unavailable(`${alias} is being created by another request; try again`);
    return theirs;
  }
  b.roomCache.set(roomId, room);
  forgetNotOurs(b, roomId);
  await publishRoom(b, roomId, deadline);
  pending ||= await keptMeanwhile(b, alias);
  if (!pending) return room;
  try {
    await drainScrollback(b, room, deadline);
  } catch (e) {
    // The room exists and the HS now knows its alias, so it will not ask again: answer 200 so
    // the user's join goes on. The room stays pending: the next inbound message drains the rest.
    b.log.warn('scrollback replay cut short; the next inbound message resumes it', { alias, err: e });
  }
  return room;
}

async function createOrAdopt(b: Bridge, alias: RoomAlias, remoteRoom: string, info: RemoteRoom, deadline: number): Promise<RoomId> {
  try {
    const { room_id } = await b.cs.createRoom(
      {
        room_alias_name: b.ns.localpartOf(alias),
        name: info.name,
        topic: info.topic,
        preset: 'public_chat',
        visibility: 'private',
        // The bridge's state event (MSC2346) comes with the room, at no extra call.
        initial_state: bridgeInitialState(b, remoteRoom, info.name),
      },
      { deadline },
    );
    return room_id;
  } catch (e) {
    // A room with this alias exists already (made by an earlier attempt that died before
    // recording it, or by hand): adopt it rather than fail the query forever.
    if (!isHomeserverError(e, ErrCode.RoomInUse)) throw e;
    const { room_id } = await b.cs.resolveAlias(alias, { deadline });
    b.log.info('adopted existing room for alias', { alias, roomId: room_id });
    // Best effort: a room made by hand, or before rooms carried it, is given the bridge event.
    await ensureBridgeState(b, room_id, remoteRoom, deadline, info.name);
    return room_id;
  }
}

/**
 * With PUBLISH_ROOMS, a new bridged room goes into the homeserver's room directory under our
 * network, so users find it in "Explore rooms". Best effort: the room is there and the user's
 * join waits on this query, so a refusal is logged, not answered.
 */
async function publishRoom(b: Bridge, roomId: RoomId, deadline: number): Promise<void> {
  const { publishRooms, networkId } = b.config.thirdParty;
  if (!publishRooms) return;
  try {
    await b.cs.setAppserviceRoomVisibility(networkId, roomId, 'public', { deadline });
  } catch (err) {
    b.log.warn('could not publish a bridged room in the room directory', { roomId, networkId, err });
  }
}
