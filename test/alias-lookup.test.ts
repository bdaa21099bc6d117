/**
 * Healing as a real homeserver answers (issue 20): a reset homeserver's alias can be joined
 * again, and a network message never makes a room nobody asked for. The fake homeserver answers
 * as Synapse 1.94 does here: `PUT /directory/room/{alias}` for a room it lost is 400 M_UNKNOWN
 * "Room does not exist", a lookup or a join of an unknown alias in our namespace asks our alias
 * query first (two lookups at once ask twice). Through the handlers, DynamoDB Local, a fake
 * homeserver and network over real HTTP.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';
import { tableOf } from '../lib/store/index.js';
import type { InboundMessage } from '../lib/store/index.js';
import { ABSENT_MS } from '../lib/bridge/heal.js';
import type { RoomAlias } from '../lib/matrix/ids.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs(
  { NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000', ALIAS_QUERY_WAIT_MS: '2000' },
  { maxEventBytes: 65536 },
);
const ALICE = '@alice:example.org';

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;
beforeEach(() => {
  network.onDeliver = undefined;
  as.hs.clearFailures();
});

/** A network room nobody has joined yet, and our alias for it. */
function networkRoom(): { remote: string; alias: RoomAlias } {
  const remote = uniq('chan');
  network.rooms.set(remote, { name: `#${remote}` });
  return { remote, alias: `#irc_${remote}:example.org` as RoomAlias };
}

let m = 0;
const fromNetwork = (remote: string, body: string, sender = 'Bob') => {
  const msg = { id: uniq(`net-${++m}-`), room: remote, sender: { id: sender }, body, ts: 1_700_000_000_000 + m };
  const raw = JSON.stringify(msg);
  return as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
};
const roomsFor = (alias: string) => [...as.hs.rooms.values()].filter((r) => r.alias === alias);
const bodiesIn = (room: FakeRoom) => room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
const delivered = (remote: string) => network.accepted.filter((x) => x.room === remote).map((x) => x.body);
const said = (room: FakeRoom, body: string) => ({
  event_id: `$${uniq('ev')}`,
  room_id: room.roomId,
  sender: ALICE,
  type: 'm.room.message',
  origin_server_ts: Date.now(),
  content: { msgtype: 'm.text', body },
});

/** Waits (bounded) until our own lookup of the alias is under way, with `queries` alias queries counted. */
async function lookupUnderWay(alias: RoomAlias, queries = 0): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const l = await as.store.getAliasLookup(alias);
    if (l?.state === 'asking' && l.queries >= queries) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`no lookup of ${alias} under way`);
}

test('after a homeserver reset the alias can be joined again: the room is made again, messages kept meanwhile replayed, both ways work', async () => {
  const { remote, alias } = networkRoom();
  const joined = await as.hs.userJoin(ALICE, alias);
  assert.equal(joined.status, 200, joined.error);
  const old = joined.roomId!;
  assert.equal((await fromNetwork(remote, 'before')).status, 200);

  // The homeserver's database is wiped; the AS keeps its records.
  as.hs.forgetEverything();
  const kept = await fromNetwork(remote, 'during the outage of the room');
  assert.equal(kept.status, 202, JSON.stringify(kept.body));
  assert.equal(await as.store.getAlias(alias), undefined, 'the lost room is forgotten (asked of the homeserver: the bot is not in it)');

  const again = await as.hs.userJoin(ALICE, alias);
  assert.equal(again.status, 200, again.error);
  assert.notEqual(again.roomId, old, 'a new room');
  const room = as.hs.rooms.get(again.roomId!)!;
  assert.deepEqual(bodiesIn(room), ['during the outage of the room'], 'kept messages replayed');
  assert.equal((await as.store.getAlias(alias))?.roomId, room.roomId);

  assert.equal((await fromNetwork(remote, 'after')).status, 200);
  assert.deepEqual(bodiesIn(room), ['during the outage of the room', 'after']);
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'from Matrix')] }), 200);
  assert.deepEqual(delivered(remote), ['from Matrix']);
  assert.deepEqual(as.hs.specErrors, []);
});

test('after a reset with nothing in between: the join makes the room again, though Synapse answers 400 "Room does not exist" to re-pointing the alias', async () => {
  const { remote, alias } = networkRoom();
  const old = (await as.hs.userJoin(ALICE, alias)).roomId!;
  as.hs.forgetEverything();
  const mark = as.hs.calls.length;
  const again = await as.hs.userJoin(ALICE, alias);
  assert.equal(again.status, 200, again.error);
  assert.notEqual(again.roomId, old);
  const asked = as.hs.calls.slice(mark).map((c) => `${c.method} ${c.path.replace('/_matrix/client/v3', '')} ${c.status}`);
  assert.deepEqual(asked.slice(0, 2), [`PUT /directory/room/${alias} 400`, `GET /rooms/${old}/state/m.room.member/@ircbot:example.org 403`]);
  assert.equal((await fromNetwork(remote, 'hello again')).status, 200);
  assert.deepEqual(bodiesIn(as.hs.rooms.get(again.roomId!)!), ['hello again']);
});

test('a homeserver that cannot say whether the room exists is an outage: 503, nothing made again', async () => {
  const { alias } = networkRoom();
  const old = (await as.hs.userJoin(ALICE, alias)).roomId!;
  as.hs.aliases.delete(alias);
  as.hs.fail({ match: { method: 'PUT', pathIncludes: '/directory/room/' }, kind: 'status', status: 400, times: 1 });
  as.hs.fail({ match: { pathIncludes: '/state/m.room.member/' }, kind: 'status', status: 502, times: Infinity });
  const res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}`, timeoutMs: 6000 });
  assert.equal(res.status, 503, JSON.stringify(res.body));
  assert.equal((await as.store.getAlias(alias))?.roomId, old, 'the record stands');
  assert.equal(roomsFor(alias).length, 1, 'no second room');
  as.hs.clearFailures();
  // The room exists and the bot is in it: the next join points the alias at it again.
  assert.equal((await as.hs.userJoin(ALICE, alias)).roomId, old);
});

test('10 parallel network messages for a room nobody joined make no room; each is kept once and replayed once at the first join', async () => {
  const { remote, alias } = networkRoom();
  const bodies = Array.from({ length: 10 }, (_, i) => `early ${i}`);
  const answers = await Promise.all(bodies.map((b) => fromNetwork(remote, b)));
  assert.deepEqual(answers.map((a) => a.status), bodies.map(() => 202), JSON.stringify(answers.map((a) => a.body)));
  assert.deepEqual(roomsFor(alias), [], 'no room');
  assert.equal(as.hs.aliases.get(alias), undefined);
  assert.deepEqual((await as.store.listScrollback(alias)).map((k) => (k as InboundMessage).body).sort(), [...bodies].sort(), 'each kept once');

  const joined = await as.hs.userJoin(ALICE, alias);
  assert.equal(joined.status, 200, joined.error);
  const room = as.hs.rooms.get(joined.roomId!)!;
  assert.deepEqual(bodiesIn(room).sort(), [...bodies].sort(), 'each replayed once');
  assert.deepEqual(await as.store.listScrollback(alias), []);
});

test('a join while our own lookup waits for its answer succeeds, and the messages arrive once each', async () => {
  const { remote, alias } = networkRoom();
  // Our lookup is asked about first: the homeserver's question for it is counted, then the join asks.
  const messages = Promise.all(['m1', 'm2', 'm3', 'm4', 'm5'].map((b) => fromNetwork(remote, b)));
  await lookupUnderWay(alias, 1);
  const joined = await as.hs.userJoin(ALICE, alias);
  assert.equal(joined.status, 200, joined.error);
  const answers = await messages;
  assert.ok(answers.every((a) => a.status === 200 || a.status === 202), JSON.stringify(answers.map((a) => a.body)));
  const room = as.hs.rooms.get(joined.roomId!)!;
  assert.equal(roomsFor(alias).length, 1);
  // Any message still kept goes with the next one (the room is bridged now).
  assert.equal((await fromNetwork(remote, 'm6')).status, 200);
  assert.deepEqual(bodiesIn(room).sort(), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
});

test('a join that reaches the alias query before our own lookup does succeeds too', async () => {
  const { remote, alias } = networkRoom();
  // Our lookup is held up on its way to the homeserver, so the join's question comes first.
  as.hs.fail({ match: { method: 'GET', pathIncludes: '/directory/room/' }, kind: 'delay', ms: 400, times: 1 });
  const messages = Promise.all(['a', 'b', 'c'].map((b) => fromNetwork(remote, b)));
  await lookupUnderWay(alias, 0);
  const joined = await as.hs.userJoin(ALICE, alias);
  assert.equal(joined.status, 200, joined.error);
  await messages;
  assert.equal(roomsFor(alias).length, 1);
  assert.equal((await fromNetwork(remote, 'd')).status, 200);
  assert.deepEqual(bodiesIn(as.hs.rooms.get(joined.roomId!)!).sort(), ['a', 'b', 'c', 'd']);
});

test('20 messages before anyone joins: one homeserver call for the first, none after; one DynamoDB write each after the first', async () => {
  const { remote, alias } = networkRoom();
  const b = await as.bridge();
  const writes: string[] = [];
  const WRITES = new Set(['PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand', 'TransactWriteItemsCommand']);
  tableOf(b.store)!.doc.middlewareStack.add(
    (next, ctx) => async (args) => {
      if (WRITES.has(ctx.commandName as string)) writes.push(ctx.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'countWrites' },
  );
  try {
    const hsMark = as.hs.calls.length;
    assert.equal((await fromNetwork(remote, 'first')).status, 202);
    const firstCalls = as.hs.calls.slice(hsMark).map((c) => `${c.method} ${c.path.replace('/_matrix/client/v3', '')} ${c.status}`);
    assert.deepEqual(firstCalls, [`GET /directory/room/${alias} 404`], 'one lookup (it asked our alias query, which made nothing)');
    // The lookup's mark, the alias query counting itself, "no such alias", the kept message.
    assert.deepEqual(writes, ['PutItemCommand', 'UpdateItemCommand', 'PutItemCommand', 'PutItemCommand']);
    writes.length = 0;
    const mark = as.hs.calls.length;
    for (let i = 2; i <= 20; i++) assert.equal((await fromNetwork(remote, `message ${i}`)).status, 202);
    assert.deepEqual(as.hs.calls.slice(mark), [], 'no homeserver call');
    assert.deepEqual(writes, Array.from({ length: 19 }, () => 'PutItemCommand'), 'one write each: the kept message');
  } finally {
    tableOf(b.store)!.doc.middlewareStack.remove('countWrites');
  }
  assert.deepEqual(roomsFor(alias), []);
  assert.equal((await as.store.listScrollback(alias)).length, 20);
});

test('the homeserver\'s "no such alias" is believed for a while only: then the next message asks again, and adopts a room it finds', async () => {
  const { remote, alias } = networkRoom();
  assert.equal((await fromNetwork(remote, 'kept')).status, 202);
  // Meanwhile the room appears on the homeserver without our alias query (our table lost it).
  const room = as.hs.seedRoom({ creator: '@ircbot:example.org', alias, name: remote, joinRule: 'public', members: [ALICE] });
  assert.equal((await fromNetwork(remote, 'still kept')).status, 202, 'the answer is remembered');
  const b = await as.bridge();
  const now = b.now;
  b.now = () => now() + ABSENT_MS + 1;
  try {
    assert.equal((await fromNetwork(remote, 'asks again')).status, 200);
  } finally {
    b.now = now;
  }
  assert.deepEqual(bodiesIn(room), ['kept', 'still kept', 'asks again']);
});

test('the homeserver failing to answer a lookup is not "no such alias": 503 to the network, nothing kept, nothing remembered', async () => {
  const { remote, alias } = networkRoom();
  // Rate-limited past the request's deadline: the quickest failure, without minutes of back-off.
  as.hs.fail({ match: { pathIncludes: '/directory/room/' }, kind: 'ratelimit', retryAfterMs: 60_000, times: Infinity });
  const failing = await fromNetwork(remote, 'while the homeserver fails');
  assert.equal(failing.status, 503, JSON.stringify(failing.body));
  as.hs.clearFailures();
  assert.deepEqual(await as.store.listScrollback(alias), []);
  assert.equal(await as.store.getAliasLookup(alias), undefined, 'the next message asks again');
  assert.equal((await fromNetwork(remote, 'later')).status, 202);
});
