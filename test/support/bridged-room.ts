/**
 * A bridged room as most tests need one: a network room the fake network knows, made on the fake
 * homeserver by the alias query (through the room-query function), with the given Matrix users in it.
 */
import assert from 'node:assert/strict';
import type { AsUnderTest } from './as.js';
import { enc } from './as.js';
import type { FakeNetwork } from './fake-network.js';
import type { FakeRoom } from './fake-hs.js';

let n = 0;
/** A name no other test of the run uses (tables are per file; names on the fakes are not). */
export const uniq = (prefix: string) => `${prefix}${Date.now().toString(36)}${++n}`;

export async function bridgedRoom(as: AsUnderTest, network: FakeNetwork, members: string[] = ['@alice:example.org']): Promise<{ room: FakeRoom; remote: string; alias: string }> {
  const remote = uniq('chan');
  network.rooms.set(remote, { name: `#${remote}` });
  const alias = `#irc_${remote}:example.org`;
  const res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const room = as.hs.rooms.get(as.hs.aliases.get(alias)!)!;
  for (const m of members) room.members.add(m);
  return { room, remote, alias };
}
