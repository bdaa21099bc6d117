import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, HS_TOKEN, enc } from './support/as.js';
import { checkAsResponse } from './support/spec.js';
import type { RoomId } from '../lib/matrix/ids.js';

const as = await startAs();
beforeEach(() => as.hs.reset());

const query = (alias: string, opts: { legacy?: boolean; timeoutMs?: number } = {}) =>
  as.hsCall('room-query', {
    method: 'GET',
    path: opts.legacy ? `/rooms/${enc(alias)}` : `/_matrix/app/v1/rooms/${enc(alias)}`,
    timeoutMs: opts.timeoutMs,
  });

const aliasItems = async (alias: string) => (await as.table.items()).filter((i) => i.pk === `ALIAS#${alias}` && i.sk === 'ROOM');

test('a room the network knows is created with that alias, name and topic, and both mappings recorded', async () => {
  const res = await query('#irc_matrix:example.org');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {});
  assert.deepEqual(checkAsResponse('GET', '/_matrix/app/v1/rooms/#irc_matrix:example.org', 200, res.body), []);
  const roomId = as.hs.aliases.get('#irc_matrix:example.org');
  assert.ok(roomId);
  const room = as.hs.rooms.get(roomId);
  assert.equal(room?.name, 'matrix');
  assert.equal(room?.creator, '@ircbot:example.org', 'created by the AS bot');
  const create = as.hs.calls.find((c) => c.path.endsWith('/createRoom'));
  assert.equal(create?.body.room_alias_name, 'irc_matrix');
  const alias = await as.store.getAlias('#irc_matrix:example.org');
  assert.equal(alias?.state, 'ready');
  assert.equal(alias?.roomId, roomId);
  const back = (await as.store.getBridgedRooms([roomId as RoomId])).get(roomId as RoomId);
  assert.deepEqual(back, { kind: 'alias', roomId, alias: '#irc_matrix:example.org', remoteRoom: 'matrix' });
  assert.deepEqual(as.hs.specErrors, []);
});

test('the legacy path works, and a repeat query only checks the alias with the HS', async () => {
  assert.equal((await query('#irc_legacy:example.org', { legacy: true })).status, 200);
  const calls = as.hs.calls.length;
  assert.equal((await query('#irc_legacy:example.org')).status, 200);
  // The HS asks only about aliases it lacks, so a recorded one is checked, not trusted.
  assert.deepEqual(as.hs.calls.slice(calls).map((c) => [`${c.method} ${c.path}`, c.status]), [['PUT /_matrix/client/v3/directory/room/#irc_legacy:example.org', 409]]);
});

test('20 parallel queries for one alias create exactly one room and all answer 200', async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => query('#irc_race:example.org')));
  assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
  const creates = as.hs.calls.filter((c) => c.path.endsWith('/createRoom'));
  assert.equal(creates.length, 1);
  assert.equal([...as.hs.rooms.values()].filter((r) => r.alias === '#irc_race:example.org').length, 1);
  const [item] = await aliasItems('#irc_race:example.org');
  assert.equal(item?.state, 'ready');
  assert.equal(item?.roomId, as.hs.aliases.get('#irc_race:example.org'));
});

test('M_ROOM_IN_USE: the existing room is resolved and adopted', async () => {
  const existing = as.hs.seedRoom({ creator: '@someone:example.org', alias: '#irc_taken:example.org', name: 'taken' });
  const res = await query('#irc_taken:example.org');
  assert.equal(res.status, 200);
  assert.ok(as.hs.calls.some((c) => c.path.includes('/directory/room/')));
  const [item] = await aliasItems('#irc_taken:example.org');
  assert.equal(item?.roomId, existing.roomId);
  assert.equal(as.hs.rooms.size, 1);
});

test('a failure part-way leaves nothing that blocks the retry', async () => {
  as.hs.fail({ match: { pathIncludes: '/createRoom' }, kind: 'status', status: 400, body: { errcode: 'M_UNKNOWN', error: 'boom' } });
  const first = await query('#irc_retry:example.org');
  assert.equal(first.status, 400);
  assert.equal((await aliasItems('#irc_retry:example.org')).length, 0, 'lock released');
  const second = await query('#irc_retry:example.org');
  assert.equal(second.status, 200);
  assert.ok(as.hs.aliases.has('#irc_retry:example.org'));
});

test('an HS that keeps answering 500 gives a 5xx within the budget and releases the lock', async () => {
  as.hs.fail({ match: { pathIncludes: '/createRoom' }, kind: 'status', status: 500, times: Infinity });
  const res = await query('#irc_down:example.org', { timeoutMs: 4000 });
  assert.ok(res.status >= 500);
  assert.equal(typeof res.body.error, 'string');
  assert.equal((await aliasItems('#irc_down:example.org')).length, 0);
});

test('a room created by a copy that died before recording it is adopted on retry', async () => {
  // The createRoom reaches the HS but the answer never comes back (the copy "dies").
  as.hs.fail({ match: { pathIncludes: '/createRoom' }, kind: 'hang', times: 1 });
  const first = await query('#irc_ghost:example.org', { timeoutMs: 3000 });
  assert.ok(first.status >= 500);
  assert.equal((await aliasItems('#irc_ghost:example.org')).length, 0);
  // The HS did make the room; only its answer was lost.
  const made = as.hs.seedRoom({ creator: '@ircbot:example.org', alias: '#irc_ghost:example.org', name: 'ghost' });
  const second = await query('#irc_ghost:example.org');
  assert.equal(second.status, 200);
  const [item] = await aliasItems('#irc_ghost:example.org');
  assert.equal(item?.roomId, made.roomId);
  assert.equal([...as.hs.rooms.values()].filter((r) => r.alias === '#irc_ghost:example.org').length, 1);
});

test('outside the namespace 404 M_NOT_FOUND, malformed 400 M_INVALID_PARAM, nothing created', async () => {
  for (const alias of ['#matrix:example.org', '#irc_matrix:other.org', '#irc_=zz:example.org']) {
    const res = await query(alias);
    assert.equal(res.status, 404, alias);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  }
  for (const alias of ['irc_matrix', '#irc_matrix', '#:example.org']) {
    const res = await query(alias);
    assert.equal(res.status, 400, alias);
    assert.equal(res.body.errcode, 'M_INVALID_PARAM');
  }
  assert.equal(as.hs.calls.length, 0);
});

test('wrong or missing token', async () => {
  const path = `/_matrix/app/v1/rooms/${enc('#irc_x:example.org')}`;
  assert.equal((await as.call('room-query', { method: 'GET', path })).status, 401);
  assert.equal((await as.call('room-query', { method: 'GET', path, headers: { authorization: 'Bearer x' } })).status, 403);
  assert.equal((await as.call('room-query', { method: 'GET', path, query: { access_token: HS_TOKEN } })).status, 200);
});
