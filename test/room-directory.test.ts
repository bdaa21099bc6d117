/**
 * The room directory (issue 24, item 6): with PUBLISH_ROOMS, a room the alias query makes is
 * published in the homeserver's room directory under the bridge's network (the protocol), as
 * the AS (spec: PUT /_matrix/client/v3/directory/list/appservice/{networkId}/{roomId}); without
 * it, nothing is published. A refusal does not fail the user's join.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';

const as = await startAs({ PUBLISH_ROOMS: 'true', PROTOCOL: 'irc' });
after(() => assert.deepEqual(as.hs.specErrors, [], 'every CS request the spec way'));

const query = (alias: string) => as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });

test('a room the alias query makes is published under the protocol, once', async () => {
  const res = await query('#irc_#listed:example.org');
  assert.equal(res.status, 200);
  const roomId = as.hs.aliases.get('#irc_#listed:example.org')!;
  assert.deepEqual(as.hs.appserviceDirectory.get(roomId), { networkId: 'irc', visibility: 'public' });
  const calls = as.hs.calls.filter((c) => c.path.includes('/directory/list/appservice/'));
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.userId, '@ircbot:example.org', 'as the AS itself');
  // A later query for the same alias (the room is known) publishes nothing again.
  await query('#irc_#listed:example.org');
  assert.equal(as.hs.calls.filter((c) => c.path.includes('/directory/list/appservice/')).length, 1);
});

test('a homeserver that refuses to publish does not fail the join: the room is made, the refusal logged', async () => {
  as.hs.fail({ match: { pathIncludes: '/directory/list/appservice/' }, kind: 'status', status: 403, body: { errcode: 'M_FORBIDDEN', error: 'no' } });
  const res = await query('#irc_#unlisted:example.org');
  assert.equal(res.status, 200);
  const roomId = as.hs.aliases.get('#irc_#unlisted:example.org')!;
  assert.ok(as.hs.rooms.has(roomId));
  assert.equal(as.hs.appserviceDirectory.has(roomId), false);
  assert.ok(as.logs.some((l) => l.includes('could not publish a bridged room in the room directory')));
});
