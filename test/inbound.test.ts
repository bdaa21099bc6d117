import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import { csTxnIdFor } from '../lib/bridge/post.js';
import type { RoomAlias } from '../lib/matrix/ids.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '800' });
after(() => assert.deepEqual(as.networkApiErrors, [], 'every answer to the network as docs/network-api.yaml says'));
network.rooms.set('matrix', { name: '#matrix', topic: 'all about matrix' });
network.users.set('Bob', { displayName: 'Bob B.' });

beforeEach(() => {
  network.lookupFailure = undefined;
});

let n = 0;
const msg = (over: Record<string, unknown> = {}) => ({
  id: `m-${Date.now()}-${++n}`,
  room: 'matrix',
  sender: { id: 'Bob', displayName: 'Bob B.' },
  body: `hello ${n}`,
  ts: 1_700_000_000_000 + n,
  ...over,
});

const post = (body: unknown, opts: { signature?: string | null; raw?: string } = {}) => {
  const raw = opts.raw ?? JSON.stringify(body);
  const headers: Record<string, string> = {};
  if (opts.signature !== null) headers['x-signature'] = opts.signature ?? network.sign(raw);
  return as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers });
};

const roomQuery = (alias: string) => as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
const scrollback = (alias: RoomAlias) => as.store.listScrollback(alias);

test('signature: missing 401, wrong or stale 403, and nothing is stored', async () => {
  const m = msg({ room: 'sigroom' });
  const before = (await as.table.items()).length;
  const missing = await post(m, { signature: null });
  assert.equal(missing.status, 401);
  assert.equal(missing.body.errcode, 'M_UNAUTHORIZED');
  const wrong = await post(m, { signature: network.sign('{"other":1}') });
  assert.equal(wrong.status, 403);
  const stale = await post(m, { signature: network.sign(JSON.stringify(m), Date.now() - 6 * 60 * 1000) });
  assert.equal(stale.status, 403);
  assert.match(stale.body.error, /5 minutes/);
  const garbage = await post(m, { signature: 't=abc,v1=zz' });
  assert.equal(garbage.status, 401);
  assert.equal((await as.table.items()).length, before);
  assert.equal((await post(m)).status, 202, 'the same message, signed right, is taken');
});

test('a bad body is 400 with an error naming the field, and nothing is stored', async () => {
  const cases: Array<[unknown, string]> = [
    [{ ...msg(), id: '' }, 'id'],
    [{ ...msg(), id: 5 }, 'id'],
    [{ ...msg(), room: undefined }, 'room'],
    [{ ...msg(), sender: 'Bob' }, 'sender'],
    [{ ...msg(), sender: {} }, 'sender.id'],
    [{ ...msg(), sender: { id: 'Bob', displayName: 3 } }, 'sender.displayName'],
    [{ ...msg(), msgtype: 'm.location' }, 'msgtype'],
    [{ ...msg(), msgtype: 'm.image' }, 'media'],
    [{ ...msg(), body: '' }, 'body'],
    [{ ...msg(), body: 'x'.repeat(70_000) }, 'body'],
    [{ ...msg(), ts: '2024-01-01' }, 'ts'],
    [{ ...msg(), ts: 1.5 }, 'ts'],
  ];
  const before = (await as.table.items()).length;
  for (const [body, name] of cases) {
    const res = await post(body);
    assert.equal(res.status, 400, name);
    assert.equal(res.body.errcode, 'M_BAD_JSON', name);
    assert.ok(res.body.error.startsWith(`${name} `), `${name}: ${res.body.error}`);
  }
  const notJson = await post(undefined, { raw: '{oops' });
  assert.equal(notJson.body.errcode, 'M_NOT_JSON');
  assert.equal((await as.table.items()).length, before);
});

test('a name too long for a Matrix ID is a clear 400', async () => {
  const res = await post(msg({ sender: { id: 'ü'.repeat(130) } }));
  assert.equal(res.status, 400);
  assert.equal(res.body.errcode, 'M_INVALID_PARAM');
  assert.match(res.body.error, /255 bytes/);
  const room = await post(msg({ room: 'r'.repeat(300) }));
  assert.equal(room.status, 400);
});

test('before the room exists: kept (202), bounded to the newest 100', async () => {
  const alias = '#irc_busy:example.org';
  const sent = [];
  for (let i = 0; i < 103; i++) {
    const m = msg({ room: 'busy', ts: 1_600_000_000_000 + i });
    sent.push(m);
    const res = await post(m);
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, { kept: true });
  }
  const kept = await scrollback(alias);
  assert.equal(kept.length, 100);
  assert.deepEqual(
    kept.map((k) => k.id),
    sent.slice(3).map((m) => m.id),
    'the oldest three fell off',
  );
});

test('when the alias query creates the room, scrollback is replayed in order, by its senders, at their times', async () => {
  network.rooms.set('early', { name: '#early' });
  const m1 = msg({ room: 'early', sender: { id: 'Bob', displayName: 'Bob B.' }, body: 'first', ts: 1_650_000_000_000 });
  const m2 = msg({ room: 'early', sender: { id: 'carol_X' }, body: 'second', ts: 1_650_000_000_500 });
  assert.equal((await post(m2)).status, 202);
  assert.equal((await post(m1)).status, 202);
  assert.equal((await roomQuery('#irc_early:example.org')).status, 200);
  const room = as.hs.rooms.get(as.hs.aliases.get('#irc_early:example.org') as string)!;
  assert.equal(room.name, '#early');
  const events = room.events.filter((e) => e.type === 'm.room.message');
  assert.deepEqual(
    events.map((e) => [e.sender, e.content.body, e.ts]),
    [
      ['@irc__bob:example.org', 'first', m1.ts],
      ['@irc_carol___x:example.org', 'second', m2.ts],
    ],
  );
  assert.equal(as.hs.users.get('@irc__bob:example.org')?.displayName, 'Bob B.');
  assert.equal(as.hs.users.get('@irc_carol___x:example.org')?.displayName, 'carol_X');
  assert.equal((await scrollback('#irc_early:example.org')).length, 0, 'replayed scrollback is removed');
  assert.deepEqual(as.hs.specErrors, []);
});

test('room exists: sent as the virtual user with its timestamp; a resent message posts once', async () => {
  assert.equal((await roomQuery('#irc_matrix:example.org')).status, 200);
  const m = msg({ body: 'live!' });
  const res = await post(m);
  assert.equal(res.status, 200);
  assert.match(res.body.event_id, /^\$/);
  const again = await post(m);
  assert.equal(again.status, 200);
  assert.equal(again.body.event_id, res.body.event_id);
  const room = as.hs.rooms.get(as.hs.aliases.get('#irc_matrix:example.org') as string)!;
  const mine = room.events.filter((e) => e.content.body === 'live!');
  assert.equal(mine.length, 1);
  assert.equal(mine[0]!.sender, '@irc__bob:example.org');
  assert.equal(mine[0]!.ts, m.ts);
  assert.equal(mine[0]!.txnId, csTxnIdFor(m.id));
  assert.ok(room.members.has('@irc__bob:example.org'));
});

test('a replay cut short by the HS resumes with the next inbound message, without duplicates', async () => {
  network.rooms.set('flaky', { name: '#flaky' });
  const alias = '#irc_flaky:example.org';
  const senders = ['Bob', 'Bob', 'dan', 'Bob'];
  const kept = senders.map((id, i) => msg({ room: 'flaky', sender: { id }, body: `kept ${i}`, ts: 1_660_000_000_000 + i }));
  for (const m of kept) assert.equal((await post(m)).status, 202);
  // Every send as dan fails while the alias query replays: the third message stops the replay.
  as.hs.fail({ match: { pathIncludes: '/send/', userId: '@irc_dan:example.org' }, kind: 'status', status: 500, times: Infinity });
  const res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}`, timeoutMs: 4000 });
  assert.equal(res.status, 200, 'the room exists, so the join goes on');
  const room = as.hs.rooms.get(as.hs.aliases.get(alias) as string)!;
  const bodies = () => room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
  assert.deepEqual(bodies(), ['kept 0', 'kept 1']);
  assert.equal((await scrollback(alias)).length, 2, 'what was not replayed is still kept');
  // The HS recovers; the next message from the network finishes the replay first.
  as.hs.clearFailures();
  const next = await post(msg({ room: 'flaky', body: 'after' }));
  assert.equal(next.status, 200);
  assert.deepEqual(bodies(), ['kept 0', 'kept 1', 'kept 2', 'kept 3', 'after']);
  assert.equal((await scrollback(alias)).length, 0);
  const flag = await as.store.getAlias(alias);
  assert.equal(flag?.scrollbackPending, undefined);
});

test('a replay that dies between a send and its clean-up posts nothing twice', async () => {
  network.rooms.set('twice', { name: '#twice' });
  const alias = '#irc_twice:example.org';
  const m = msg({ room: 'twice', body: 'only once' });
  assert.equal((await post(m)).status, 202);
  // As if an earlier replay had sent it and died before deleting the scrollback item:
  // the room exists, the message is in it, the item is still there.
  assert.equal((await roomQuery(alias)).status, 200);
  const room = as.hs.rooms.get(as.hs.aliases.get(alias) as string)!;
  const { dynamoStore } = await import('../lib/store/index.js');
  const store = dynamoStore(as.table);
  await store.keepScrollback(alias, { ...m, msgtype: 'm.text' });
  await store.setScrollbackPending(alias, true);
  assert.equal((await post(msg({ room: 'twice', body: 'next' }))).status, 200);
  assert.deepEqual(
    room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body),
    ['only once', 'next'],
  );
});

test('user query through the webhook: known → 200, unknown → 404, network down → 5xx, never a false 404', async () => {
  const q = (id: string) => as.hsCall('user-query', { method: 'GET', path: `/_matrix/app/v1/users/${enc(id)}`, timeoutMs: 5000 });
  network.users.set('Eve_Q', { displayName: 'Eve Q.', avatarUrl: 'mxc://example.org/eve' });
  assert.equal((await q('@irc__eve___q:example.org')).status, 200);
  const lookup = network.received.find((r) => r.path === '/users/Eve_Q');
  assert.ok(lookup, 'asked the network for the remote ID, unescaped');
  assert.equal(as.hs.users.get('@irc__eve___q:example.org')?.displayName, 'Eve Q.');
  assert.equal(as.hs.users.get('@irc__eve___q:example.org')?.avatarUrl, 'mxc://example.org/eve');
  const unknown = await q('@irc_nobody:example.org');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
  network.lookupFailure = { status: 500 };
  const down = await q('@irc_someone:example.org');
  assert.equal(down.status, 503);
  network.lookupFailure = { hang: true };
  const hung = await q('@irc_someone:example.org');
  assert.equal(hung.status, 503);
  assert.ok(!as.hs.users.has('@irc_someone:example.org'));
});

test('room query through the webhook: unknown → 404, network down → 5xx', async () => {
  const unknown = await roomQuery('#irc_nowhere:example.org');
  assert.equal(unknown.status, 404);
  network.lookupFailure = { status: 502 };
  assert.equal((await roomQuery('#irc_somewhere:example.org')).status, 503);
  assert.deepEqual(await as.store.listScrollback('#irc_somewhere:example.org'), []);
  assert.equal(await as.store.getAlias('#irc_somewhere:example.org'), undefined);
});
