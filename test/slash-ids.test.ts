/**
 * The seed's own names, through the handlers as API Gateway invokes them: users
 * `@irc.freenode.net/<nick>` and the room `#irc.freenode.net/#matrix`, asked for the way Synapse
 * asks (`/` left in the path, its issue #14511) and fully encoded (`%2F`), on the current and the
 * legacy paths. Our own requests put such IDs into one path segment, so their `/` goes as `%2F`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, HS_TOKEN } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import { synapseQueryPath } from './support/fake-hs.js';

const PREFIX = 'irc.freenode.net/';
const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({
  USER_PREFIX: PREFIX,
  NETWORK: 'webhook',
  NETWORK_URL: network.url,
  NETWORK_SECRET: network.secret,
});
network.rooms.set('#matrix', { name: '#matrix', topic: 'the seed room' });
network.rooms.set('#a/b', { name: '#a/b' });
for (const nick of ['Bob', 'Carol', 'Dave', 'Erin', '[m]atrix']) network.users.set(nick, { displayName: nick });

/** Both forms of the same ID in a query path: Synapse's, and the one with `%2F`. */
const forms = (kind: 'users' | 'rooms', id: string, legacy = false) => ({
  synapse: synapseQueryPath(kind, id, legacy),
  encoded: `${legacy ? '' : '/_matrix/app/v1'}/${kind}/${encodeURIComponent(id)}`,
});

test('Synapse leaves `/` in the path, and the two forms differ', () => {
  const f = forms('users', '@irc.freenode.net/_bob:example.org');
  assert.equal(f.synapse, '/_matrix/app/v1/users/%40irc.freenode.net/_bob%3Aexample.org');
  assert.equal(f.encoded, '/_matrix/app/v1/users/%40irc.freenode.net%2F_bob%3Aexample.org');
});

test('user query: both forms, current and legacy paths, register the same user', async () => {
  const cases: Array<[string, string, boolean]> = [
    ['Bob', '@irc.freenode.net/_bob:example.org', false],
    ['Carol', '@irc.freenode.net/_carol:example.org', true],
  ];
  for (const [nick, userId, legacy] of cases) {
    const { synapse, encoded } = forms('users', userId, legacy);
    const auth = legacy ? { query: { access_token: HS_TOKEN } } : { headers: { authorization: `Bearer ${HS_TOKEN}` } };
    const first = await as.call('user-query', { method: 'GET', path: synapse, ...auth });
    assert.deepEqual([first.status, first.body], [200, {}], synapse);
    assert.equal(as.hs.users.get(userId)?.displayName, nick);
    const again = await as.call('user-query', { method: 'GET', path: encoded, ...auth });
    assert.deepEqual([again.status, again.body], [200, {}], encoded);
  }
  // The nick with brackets maps to a valid localpart and back.
  const odd = '@irc.freenode.net/=5bm=5datrix:example.org';
  assert.equal((await as.hsCall('user-query', { method: 'GET', path: forms('users', odd).synapse })).status, 200);
  assert.equal(as.hs.users.get(odd)?.displayName, '[m]atrix');
  // The network was asked with the nick as one path segment.
  assert.ok(network.received.some((r) => r.rawPath === '/users/%5Bm%5Datrix'), JSON.stringify(network.received.map((r) => r.rawPath)));
  assert.deepEqual(as.hs.specErrors, []);
});

test('user query: what is not one of ours is 404, whichever form', async () => {
  for (const path of [...Object.values(forms('users', '@other/bob:example.org')), ...Object.values(forms('users', '@irc.freenode.net/Bob:example.org'))]) {
    const res = await as.hsCall('user-query', { method: 'GET', path });
    assert.equal(res.status, 404, path);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  }
});

test('our CS requests carry an ID with `/` as one segment, `/` sent as %2F', async () => {
  const userId = '@irc.freenode.net/_dave:example.org';
  assert.equal((await as.hsCall('user-query', { method: 'GET', path: forms('users', userId).synapse })).status, 200);
  const profile = as.hs.calls.filter((c) => c.path.includes(`/profile/${userId}/`));
  assert.ok(profile.length > 0);
  for (const c of profile) assert.match(c.rawPath, /\/profile\/%40irc\.freenode\.net%2F_dave%3Aexample\.org\//, c.rawPath);
});

test('room alias query: both forms, current and legacy, make one room named by the network', async () => {
  const alias = '#irc.freenode.net/#matrix:example.org';
  const { synapse, encoded } = forms('rooms', alias);
  const first = await as.hsCall('room-query', { method: 'GET', path: synapse });
  assert.deepEqual([first.status, first.body], [200, {}]);
  const roomId = as.hs.aliases.get(alias);
  assert.ok(roomId, 'the alias exists on the HS');
  assert.equal(as.hs.rooms.get(roomId)?.name, '#matrix');
  for (const path of [encoded, forms('rooms', alias, true).synapse, forms('rooms', alias, true).encoded]) {
    const res = await as.hsCall('room-query', { method: 'GET', path });
    assert.deepEqual([res.status, res.body], [200, {}], path);
  }
  assert.equal([...as.hs.rooms.values()].filter((r) => r.alias === alias).length, 1, 'one room, whichever form asked');
  assert.equal((await as.store.getAlias(alias))?.roomId, roomId, 'the mapping is recorded');
  // The network was asked for its room with `#` and `/` escaped in one segment.
  assert.ok(network.received.some((r) => r.rawPath === '/rooms/%23matrix'));
  assert.deepEqual(as.hs.specErrors, []);
});

test('a network room whose name holds `/` is looked up as one segment and adopted by its alias', async () => {
  const alias = '#irc.freenode.net/#a/b:example.org';
  // Someone made the room by hand: createRoom says M_ROOM_IN_USE and the AS resolves the alias.
  as.hs.seedRoom({ creator: '@admin:example.org', alias, joinRule: 'public' });
  const res = await as.hsCall('room-query', { method: 'GET', path: forms('rooms', alias).synapse });
  assert.equal(res.status, 200);
  assert.ok(network.received.some((r) => r.rawPath === '/rooms/%23a%2Fb'), JSON.stringify(network.received.map((r) => r.rawPath)));
  const directory = as.hs.calls.find((c) => c.method === 'GET' && c.path.includes('/directory/room/') && c.path.includes('#a/b'));
  assert.equal(directory?.rawPath, '/_matrix/client/v3/directory/room/%23irc.freenode.net%2F%23a%2Fb%3Aexample.org');
  assert.equal(directory?.status, 200);
});

test('push: a txnId is read from the raw path and decoded once', async () => {
  const roomId = as.hs.aliases.get('#irc.freenode.net/#matrix:example.org')!;
  const event = (id: string) => ({
    event_id: id,
    room_id: roomId,
    sender: '@alice:example.org',
    type: 'm.room.message',
    origin_server_ts: 1,
    content: { msgtype: 'm.text', body: id },
  });
  for (const [path, id] of [
    ['/_matrix/app/v1/transactions/a/b', '$slash1'],
    ['/_matrix/app/v1/transactions/a%2Fb', '$slash1'],
    ['/transactions/100%25', '$slash2'],
  ] as const) {
    const res = await as.hsCall('push', { method: 'PUT', path, body: { events: [event(id)] } });
    assert.equal(res.status, 200, path);
  }
  assert.equal((await as.store.getTransaction('a/b'))?.state, 'done', 'a/b and a%2Fb are one transaction');
  assert.equal((await as.store.getTransaction('100%'))?.state, 'done', '%25 decoded once');
  assert.deepEqual(network.accepted.map((m) => m.id).filter((id) => id.startsWith('$slash')), ['$slash1', '$slash2']);
});

test('a known path with an ID holding `/` and the wrong method is 405, an unknown one 404', async () => {
  const put = await as.call('unrecognized', { method: 'PUT', path: forms('users', '@irc.freenode.net/_bob:example.org').synapse });
  assert.equal(put.status, 405);
  const post = await as.call('unrecognized', { method: 'POST', path: '/rooms/%23irc.freenode.net/%23matrix%3Aexample.org' });
  assert.equal(post.status, 405);
  const get = await as.call('unrecognized', { method: 'GET', path: '/transactions/a/b' });
  assert.equal(get.status, 405);
  const unknown = await as.call('unrecognized', { method: 'GET', path: '/_matrix/app/v1/usersx/a/b' });
  assert.equal(unknown.status, 404);
  for (const res of [put, post, get, unknown]) assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
});

test('a bad percent-escape in an ID path is 400 M_INVALID_PARAM, and nothing is asked of the HS', async () => {
  const before = as.hs.calls.length;
  for (const [fn, path] of [
    ['user-query', '/_matrix/app/v1/users/%40irc.freenode.net/%ZZ%3Aexample.org'],
    ['room-query', '/_matrix/app/v1/rooms/%23irc.freenode.net/%C0%AF%3Aexample.org'],
  ] as const) {
    const res = await as.hsCall(fn, { method: 'GET', path });
    assert.equal(res.status, 400, path);
    assert.equal(res.body.errcode, 'M_INVALID_PARAM');
  }
  assert.equal(as.hs.calls.length, before);
});
