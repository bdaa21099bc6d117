/**
 * A network room's name and topic changed (POST /network/rooms/{id}): the bot sets them in the
 * Matrix room, which it made and holds the power in. A room nobody has joined yet has nothing to
 * change: it is made with the network's name and topic (GET {NETWORK_URL}/rooms/{id}) when
 * someone joins it.
 */
import { invalidParam } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { Bridge } from './runtime.js';
import type { RoomDetails } from './network-requests.js';
import { readyRoom } from './provision-room.js';

export async function updateRoomDetails(b: Bridge, remoteRoom: string, details: RoomDetails, deadline: number): Promise<{ roomId?: RoomId }> {
  let alias;
  try {
    alias = b.ns.aliasFor(remoteRoom);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`the room id makes a Matrix alias over 255 bytes: ${e.message}`);
    throw e;
  }
  const room = readyRoom(await b.store.getAlias(alias), remoteRoom);
  if (!room) return {};
  // A linked room is its community's own: its name and topic are theirs to set, not the network's.
  if (room.kind === 'linked') return { roomId: room.roomId };
  // Setting the same value again is harmless: the homeserver keeps the one state either way.
  if (details.name !== undefined) await b.cs.sendState(room.roomId, 'm.room.name', '', { name: details.name }, { deadline });
  if (details.topic !== undefined) await b.cs.sendState(room.roomId, 'm.room.topic', '', { topic: details.topic }, { deadline });
  b.log.info("a network room's details changed: set in its Matrix room", { roomId: room.roomId, name: details.name !== undefined, topic: details.topic !== undefined });
  return { roomId: room.roomId };
}
