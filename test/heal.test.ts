/**
 * Rooms heal from the homeserver (issue 15, items 2 and 3). The homeserver keeps its rooms while
 * the AS's table is emptied (lost, restored from an older backup, a stage made again) and the
 * warm Lambda's memory is gone (a cold start): messages still cross both ways, in the same room,
 * and bridged rooms say what they are bridged to (MSC2346). Every test goes through the
 * handlers as API Gateway invokes them, DynamoDB Local, and a fake homeserver and network over
 * real HTTP.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { BatchWriteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startAs, enc } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeEvent, FakeRoom, RecordedCall } from './support/fake-hs.js';
import { RECOGNITION_CALLS } from '../lib/bridge/heal.js';
import type { InboundMessage } from '../lib/store/index.js';
import type { RoomAlias, RoomId } from '../lib/matrix/ids.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs(
  { NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000' },
  { maxEventBytes: 65536 },
);
const BOT = '@ircbot:example.org';
const ALICE = '@alice:example.org';

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;
beforeEach(() => {
  network.onDeliver = undefined;
});

/** A bridged room made by the alias query, and the network room behind it. */
async function bridgedRoom(): Promise<{ room: FakeRoom; remote: string; alias: RoomAlias }> {
  const remote = uniq('chan');
  network.rooms.set(remote, { name: `#${remote}` });
  const alias = `#irc_${remote}:example.org` as RoomAlias;
  const res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const room = as.hs.rooms.get(as.hs.aliases.get(alias)!)!;
  room.members.add(ALICE);
  return { room, remote, alias };
}

/** A Matrix user's message, as the homeserver pushes it. */
const said = (room: FakeRoom | string, body: string, sender = ALICE) => ({
  event_id: `$${uniq('ev')}`,
  room_id: typeof room === 'string' ? room : room.roomId,
  sender,
  type: 'm.room.message',
  origin_server_ts: Date.now(),
  content: { msgtype: 'm.text', body },
});
const delivered = (remote: string) => network.accepted.filter((m) => m.room === remote).map((m) => m.body);
const bodiesIn = (room: FakeRoom) => room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);

/** A message from the network, signed as the network signs it. */
let m = 0;
const fromNetwork = (remote: string, body: string) => {
  const msg = { id: uniq(`net-${++m}-`), room: remote, sender: { id: 'Bob' }, body, ts: 1_700_000_000_000 + m };
  const raw = JSON.stringify(msg);
  return as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
};

/**
 * The AS loses its state: every item of its table is deleted (the homeserver keeps its rooms
 * and users), and the warm Lambda's memory goes with a cold start.
 */
async function emptyTheTable(): Promise<void> {
  const { doc, tableName } = as.table;
  for (;;) {
    const page = await doc.send(new ScanCommand({ TableName: tableName, ProjectionExpression: 'pk, sk', ConsistentRead: true }));
    const keys = page.Items ?? [];
    if (!keys.length) break;
    for (let i = 0; i < keys.length; i += 25) {
      let requests: any = { [tableName]: keys.slice(i, i + 25).map((Key) => ({ DeleteRequest: { Key } })) };
      while (requests && Object.keys(requests).length) requests = (await doc.send(new BatchWriteCommand({ RequestItems: requests }))).UnprocessedItems;
    }
  }
  assert.deepEqual(await as.table.items(), [], 'the table is empty');
  const b = await as.bridge();
  b.roomCache.clear();
  b.joined.clear();
  b.knownUsers.clear();
}

/** The bridge events of a room, as the homeserver holds them (made with the room, or sent since). */
const bridgeEvents = (room: FakeRoom): FakeEvent[] =>
  [...room.initialState, ...room.events].filter((e) => e.type === 'm.bridge' || e.type === 'uk.half-shot.bridge');
const asId = async () => (await as.bridge()).config.asId;

const callsSince = (mark: number): RecordedCall[] => as.hs.calls.slice(mark);
const describe = (calls: RecordedCall[]) => calls.map((c) => `${c.method} ${c.path.replace('/_matrix/client/v3', '')} ${c.status}`);

test('a bridged room carries the bridge state event (MSC2346), set with the room at no extra call', async () => {
  const mark = as.hs.calls.length;
  const { room, remote } = await bridgedRoom();
  const id = await asId();
  const events = bridgeEvents(room);
  assert.deepEqual(events.map((e) => e.type).sort(), ['m.bridge', 'uk.half-shot.bridge']);
  for (const e of events) {
    assert.equal(e.stateKey, `${id}://${remote}`);
    assert.equal(e.sender, BOT);
    assert.deepEqual(e.content, {
      bridgebot: BOT,
      // PROTOCOL (irc by default) and the network's name (PROTOCOL_NETWORK_NAME, AS_ID unless set).
      protocol: { id: 'irc', displayname: id },
      channel: { id: remote, displayname: `#${remote}` },
    });
  }
  const stateWrites = callsSince(mark).filter((c) => c.method === 'PUT' && c.path.includes('/state/'));
  assert.deepEqual(describe(stateWrites), [], 'in createRoom\'s initial_state: no call of its own');
  // Clients (and the AS) read it back from the homeserver.
  const res = await fetch(`${as.hs.url}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/state/m.bridge/${encodeURIComponent(`${id}://${remote}`)}`, {
    headers: { authorization: `Bearer ${(await as.bridge()).config.asToken}` },
  });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { bridgebot: string }).bridgebot, BOT);
  assert.deepEqual(as.hs.specErrors, []);
});

test('the table is emptied: a Matrix message heals the room from its bridge event, then the network\'s goes into the same room', async () => {
  const { room, remote, alias } = await bridgedRoom();
  assert.equal((await fromNetwork(remote, 'net before')).status, 200);
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'matrix before')] }), 200);
  assert.deepEqual(delivered(remote), ['matrix before']);

  await emptyTheTable();
  const mark = as.hs.calls.length;
  as.logs.length = 0;
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'matrix after')] }), 200);
  assert.deepEqual(delivered(remote), ['matrix before', 'matrix after'], 'delivered to the network');
  const id = await asId();
  const reads = describe(callsSince(mark));
  assert.ok(reads.includes(`GET /rooms/${room.roomId}/state/m.bridge/${id}://${remote} 200`), `the bridge event is read back: ${reads.join(', ')}`);
  assert.ok(as.logs.some((l) => l.includes('recognised a room we had no record of') && l.includes('"by":"bridge event"')));
  assert.equal((await as.store.getAlias(alias))?.roomId, room.roomId, 'alias → room recorded again');
  assert.deepEqual((await as.store.getBridgedRooms([room.roomId as RoomId])).get(room.roomId as RoomId), { kind: 'alias', roomId: room.roomId, alias, remoteRoom: remote }, 'room → alias recorded again');

  const res = await fromNetwork(remote, 'net after');
  assert.equal(res.status, 200, `posted, not kept: ${JSON.stringify(res.body)}`);
  assert.deepEqual(bodiesIn(room), ['net before', 'net after'], 'in the same room');
  assert.equal(bridgeEvents(room).length, 2, 'the room already carried its bridge event: nothing set again');
  assert.deepEqual(as.hs.specErrors, []);
});

test('the table is emptied: a network message adopts the room the homeserver has for the alias (posted, not kept), then Matrix\'s is delivered', async () => {
  const { room, remote, alias } = await bridgedRoom();
  assert.equal((await fromNetwork(remote, 'net before')).status, 200);
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'matrix before')] }), 200);

  await emptyTheTable();
  const mark = as.hs.calls.length;
  const res = await fromNetwork(remote, 'net after');
  assert.equal(res.status, 200, `posted, not kept as scrollback: ${JSON.stringify(res.body)}`);
  assert.deepEqual(bodiesIn(room), ['net before', 'net after'], 'in the same room');
  assert.equal([...as.hs.rooms.values()].filter((r) => r.alias === alias).length, 1, 'no second room');
  assert.ok(describe(callsSince(mark)).includes(`GET /directory/room/${alias} 200`), 'the alias was resolved on the homeserver');
  assert.deepEqual(await as.store.listScrollback(alias), [], 'nothing kept');
  const record = await as.store.getAlias(alias);
  assert.deepEqual([record?.state, record?.roomId, record?.scrollbackPending], ['ready', room.roomId, undefined]);

  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'matrix after')] }), 200);
  assert.deepEqual(delivered(remote), ['matrix before', 'matrix after']);
  assert.deepEqual(as.hs.specErrors, []);
});

test('a network message for a room the homeserver has no alias for (404) is kept as scrollback, as before', async () => {
  const remote = uniq('none');
  network.rooms.set(remote, { name: remote });
  const mark = as.hs.calls.length;
  const res = await fromNetwork(remote, 'early');
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.deepEqual(describe(callsSince(mark)), [`GET /directory/room/#irc_${remote}:example.org 404`], 'one lookup, nothing made');
  assert.deepEqual((await as.store.listScrollback(`#irc_${remote}:example.org`)).map((k) => (k as InboundMessage).body), ['early']);
  // What the homeserver's failure to answer does, and how long its 404 is believed: test/alias-lookup.test.ts.
});

test('a creation that died after making the room: the next network message adopts it, and the kept messages still go first', async () => {
  const remote = uniq('died');
  const alias = `#irc_${remote}:example.org` as RoomAlias;
  network.rooms.set(remote, { name: remote });
  assert.equal((await fromNetwork(remote, 'kept 1')).status, 202);
  assert.equal((await fromNetwork(remote, 'kept 2')).status, 202);
  // A copy took the lock and made the room, then died before recording it; its lock ran out.
  assert.equal(await as.store.lockAlias(alias, 'a copy that died', 1), true);
  const room = as.hs.seedRoom({ creator: BOT, alias, name: remote, joinRule: 'public', members: [ALICE] });
  await new Promise((r) => setTimeout(r, 10));
  // The homeserver has the alias, so it will never ask the AS about it: the next message heals it.
  const res = await fromNetwork(remote, 'new');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(bodiesIn(room), ['kept 1', 'kept 2', 'new'], 'in the network\'s order');
  const record = await as.store.getAlias(alias);
  assert.deepEqual([record?.state, record?.roomId, record?.scrollbackPending], ['ready', room.roomId, undefined]);
  assert.deepEqual(bridgeEvents(room).map((e) => e.type), ['m.bridge', 'uk.half-shot.bridge'], 'given the bridge event');
});

test('a room made before rooms carried the bridge event is recognised by its canonical alias, and given the event', async () => {
  const remote = uniq('old');
  const alias = `#irc_${remote}:example.org`;
  // As the alias query made rooms before: created by the bot with our alias, no m.bridge.
  const room = as.hs.seedRoom({ creator: BOT, alias, name: remote, joinRule: 'public', members: [ALICE] });
  assert.deepEqual(bridgeEvents(room), []);
  as.logs.length = 0;
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'hello old room')] }), 200);
  assert.deepEqual(delivered(remote), ['hello old room']);
  assert.ok(as.logs.some((l) => l.includes('recognised a room we had no record of') && l.includes('"by":"canonical alias"')));
  const set = bridgeEvents(room);
  assert.deepEqual(set.map((e) => e.type), ['m.bridge', 'uk.half-shot.bridge'], 'set by the bot, once');
  assert.deepEqual(set.map((e) => e.sender), [BOT, BOT]);
  assert.equal(set[0]?.content.channel.id, remote);
  assert.equal((await fromNetwork(remote, 'hello back')).status, 200);
  assert.deepEqual(bodiesIn(room), ['hello back']);
});

test('a room adopted by the alias query (M_ROOM_IN_USE) is given the bridge event when it lacks it', async () => {
  const remote = uniq('adopt');
  const alias = `#irc_${remote}:example.org`;
  network.rooms.set(remote, { name: `Room ${remote}` });
  const room = as.hs.seedRoom({ creator: BOT, alias, name: `Room ${remote}`, joinRule: 'public' });
  const res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(as.hs.aliases.get(alias), room.roomId, 'adopted, not made again');
  const set = bridgeEvents(room);
  assert.deepEqual(set.map((e) => e.type), ['m.bridge', 'uk.half-shot.bridge']);
  assert.equal(set[0]?.content.channel.displayname, `Room ${remote}`);
});

test('a table older than a room upgrade (restored from a backup) follows the homeserver to the new room', async () => {
  const { room: old, remote, alias } = await bridgedRoom();
  // Upgraded on the homeserver, the alias and canonical alias moved to the new room, the bot in
  // it; our table still names the old room, as a backup from before the upgrade would.
  const next = as.hs.seedRoom({ creator: '@mod:example.org', joinRule: 'public', members: [ALICE, BOT] });
  next.initialState.push({ eventId: `$${uniq('ca')}`, type: 'm.room.canonical_alias', sender: '@mod:example.org', content: { alias }, originServerTs: Date.now(), stateKey: '' });
  as.hs.aliases.set(alias, next.roomId);
  const b = await as.bridge();
  b.roomCache.clear();
  assert.equal(await as.pushSend(uniq('t'), { events: [said(next, 'in the new room')] }), 200);
  assert.deepEqual(delivered(remote), ['in the new room']);
  assert.equal((await as.store.getAlias(alias))?.roomId, next.roomId, 'the record follows the homeserver');
  assert.deepEqual(bridgeEvents(next).map((e) => e.type), ['m.bridge', 'uk.half-shot.bridge'], 'given the bridge event');
  assert.equal((await fromNetwork(remote, 'to the new room')).status, 200);
  assert.deepEqual(bodiesIn(next), ['to the new room']);
  assert.equal(await as.pushSend(uniq('t'), { events: [said(old, 'late in the old room')] }), 200);
  assert.deepEqual(delivered(remote), ['in the new room'], 'the old room is no longer bridged');
});

/**
 * 100 events in a room that is not ours, in one transaction of 100 and in 100 transactions of
 * one: the homeserver calls it costs, all told (nothing else runs meanwhile).
 */
async function costOfUnbridged(roomId: string): Promise<{ calls: string[]; delivered: number }> {
  const before = network.accepted.length;
  const mark = as.hs.calls.length;
  const batch = Array.from({ length: 100 }, (_, i) => said(roomId, `batch ${i}`));
  assert.equal(await as.pushSend(uniq('hundred'), { events: batch }), 200);
  for (let i = 0; i < 100; i++) assert.equal(await as.pushSend(uniq('one'), { events: [said(roomId, `single ${i}`)] }), 200);
  return { calls: describe(callsSince(mark)), delivered: network.accepted.length - before };
}

test(`a room that is not ours costs at most ${RECOGNITION_CALLS} homeserver calls over 200 events, not one per event`, async () => {
  // A direct chat of a Matrix user with a virtual user: the bot is not in it.
  const dm = as.hs.seedRoom({ creator: ALICE, members: ['@irc_bob:example.org'] });
  const dmCost = await costOfUnbridged(dm.roomId);
  assert.deepEqual(dmCost, { calls: [`GET /rooms/${dm.roomId}/state/m.room.canonical_alias/ 403`], delivered: 0 });

  // A room the bot is in, without an alias of ours.
  const other = as.hs.seedRoom({ creator: ALICE, alias: `#elsewhere${n}:example.org`, members: [BOT] });
  const otherCost = await costOfUnbridged(other.roomId);
  assert.deepEqual(otherCost, { calls: [`GET /rooms/${other.roomId}/state/m.room.canonical_alias/ 200`], delivered: 0 });

  // The worst case: our alias as its canonical one, but the alias is gone and the room carries no bridge event.
  const remote = uniq('gone');
  const alias = `#irc_${remote}:example.org`;
  const stale = as.hs.seedRoom({ creator: BOT, alias, members: [ALICE] });
  as.hs.aliases.delete(alias);
  const staleCost = await costOfUnbridged(stale.roomId);
  assert.equal(staleCost.delivered, 0);
  assert.equal(staleCost.calls.length, RECOGNITION_CALLS, staleCost.calls.join(', '));

  // An upgraded room: it keeps its bridge event and canonical alias, but the alias leads to the new room.
  const { room: old, alias: movedAlias } = await bridgedRoom();
  const next = as.hs.seedRoom({ creator: '@mod:example.org', joinRule: 'public', members: [ALICE] });
  as.hs.aliases.set(movedAlias, next.roomId);
  await emptyTheTable();
  const oldCost = await costOfUnbridged(old.roomId);
  assert.equal(oldCost.delivered, 0, 'the old room is not bridged');
  assert.ok(oldCost.calls.length <= RECOGNITION_CALLS, oldCost.calls.join(', '));
  assert.equal(await as.store.getAlias(movedAlias), undefined, 'nothing recorded for it');
  assert.deepEqual(as.hs.specErrors, []);
});

test('a bridged room costs nothing more than before: no homeserver call on the push path when the mapping is found', async () => {
  const { room, remote } = await bridgedRoom();
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'warm')] }), 200);
  // Cold: the mapping is read from the table, not from the homeserver.
  const b = await as.bridge();
  b.roomCache.clear();
  const mark = as.hs.calls.length;
  assert.equal(await as.pushSend(uniq('t'), { events: [said(room, 'cold')] }), 200);
  assert.deepEqual(describe(callsSince(mark)), []);
  assert.deepEqual(delivered(remote), ['warm', 'cold']);
});
