/**
 * Field reliability (issue 9): what a real homeserver does that a kind fake would hide. The fake
 * HS here restarts (its txn ids start at 1 again and its send-transaction cache is gone), kicks
 * and bans, refuses events over 64 KiB and forgets its state; every test goes through the
 * handlers as API Gateway invokes them, DynamoDB Local and a fake network over real HTTP.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { bridgedRoom as bridgedRoomOf } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs(
  { NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000' },
  { maxEventBytes: 65536 },
);

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;
beforeEach(() => {
  network.onDeliver = undefined;
  network.lookupFailure = undefined;
});

const bridgedRoom = () => bridgedRoomOf(as, network);

/** A Matrix user's message, as the homeserver pushes it. */
const said = (room: FakeRoom, body: string, sender = '@alice:example.org') => ({
  event_id: `$${uniq('ev')}`,
  room_id: room.roomId,
  sender,
  type: 'm.room.message',
  origin_server_ts: Date.now(),
  content: { msgtype: 'm.text', body },
});
const delivered = (remote: string) => network.accepted.filter((m) => m.room === remote).map((m) => m.body);

test('a homeserver restart reuses transaction ids: a reused id with other events is a new transaction, not a duplicate', async () => {
  const { room, remote } = await bridgedRoom();
  as.hs.restart(); // as Synapse on SQLite after a restart: ids count from 1
  const first = await as.hs.push([said(room, 'A1')], as.pushSend);
  assert.equal(first.txnId, '1');
  as.hs.restart();
  as.logs.length = 0;
  const b1 = said(room, 'B1');
  const second = await as.hs.push([b1], as.pushSend);
  assert.equal(second.txnId, '1', 'the same id again');
  assert.deepEqual([first.statuses, second.statuses], [[200], [200]]);
  assert.deepEqual(delivered(remote), ['A1', 'B1'], 'both delivered');
  assert.ok(as.logs.some((l) => l.includes('transaction id reused') && l.includes('"txnId":"1"')), 'a log line says the id was reused');
  // A genuine retry of the new one (same id, same events) is still a no-op.
  assert.equal(await as.pushSend('1', { events: [b1] }), 200);
  assert.deepEqual(delivered(remote), ['A1', 'B1']);
});

test('a transaction cut short, then a new one under the same id after a restart, is delivered from its first event', async () => {
  const { room, remote } = await bridgedRoom();
  // Txn 5 stops at its second event: the HS refuses our token for a moment (a deployment
  // mistake fixed at once), the first is delivered, the cursor stays at the second.
  network.users.set('Hal', { displayName: 'Hal' });
  room.invited.add('@irc__hal:example.org');
  const invite = { ...said(room, 'x'), type: 'm.room.member', state_key: '@irc__hal:example.org', content: { membership: 'invite' } };
  const old = [said(room, 'old-1'), invite, said(room, 'old-3')];
  as.hs.fail({ match: { pathIncludes: '/register' }, kind: 'status', status: 401, body: { errcode: 'M_UNKNOWN_TOKEN', error: 'Invalid access token passed.' } });
  assert.equal(await as.pushSend('5', { events: old }), 500);
  // What was decided before the failure was queued; the event source sends it.
  await as.deliver();
  assert.deepEqual(delivered(remote), ['old-1']);
  // The homeserver restarts (or its database is restored) and sends other events as txn 5.
  const fresh = [said(room, 'new-1'), said(room, 'new-2'), said(room, 'new-3')];
  assert.equal(await as.pushSend('5', { events: fresh }), 200);
  assert.deepEqual(delivered(remote), ['old-1', 'new-1', 'new-2', 'new-3'], 'all of the new one, none skipped by the old cursor');
  assert.ok(!room.members.has('@irc__hal:example.org'), 'the old transaction was not finished under the new one');
});

/** A message from the network, signed as the network signs it. */
let m = 0;
const fromNetwork = (remote: string, body: string, over: Record<string, unknown> = {}) => {
  const msg = { id: uniq(`net-${++m}-`), room: remote, sender: { id: 'Bob' }, body, ts: 1_700_000_000_000 + m, ...over };
  const raw = JSON.stringify(msg);
  return as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
};
const configErrors = () => as.logs.filter((l) => l.includes('"msg":"configuration error"'));

test('the homeserver refusing our as_token is our misconfiguration: a 5xx naming AS_TOKEN, never the network\'s 401, nothing failed for good', async () => {
  const { room, remote } = await bridgedRoom();
  as.hs.fail({ match: {}, kind: 'status', status: 401, body: { errcode: 'M_UNKNOWN_TOKEN', error: 'Invalid access token passed.' }, times: Infinity });
  as.logs.length = 0;
  const inbound = await fromNetwork(remote, 'while misconfigured');
  assert.equal(inbound.status, 500, JSON.stringify(inbound.body));
  assert.equal(inbound.body.errcode, 'M_UNKNOWN', 'not M_UNKNOWN_TOKEN: that code is the signature contract\'s');
  assert.match(inbound.body.error, /AS_TOKEN/);
  assert.equal(configErrors().length, 1);
  assert.match(configErrors()[0]!, /"level":"error".*"setting":"AS_TOKEN"/);
  // An invite in a pushed transaction: the HS is told to retry, the invite is not recorded as failed.
  network.users.set('Dora', { displayName: 'Dora' });
  const invite = {
    event_id: `$${uniq('inv')}`,
    room_id: room.roomId,
    sender: '@alice:example.org',
    type: 'm.room.member',
    state_key: '@irc__dora:example.org',
    origin_server_ts: Date.now(),
    content: { membership: 'invite' },
  };
  room.invited.add('@irc__dora:example.org');
  const txnId = uniq('auth');
  assert.ok((await as.pushSend(txnId, { events: [invite] })) >= 500);
  assert.deepEqual((await as.store.getTransaction(txnId))?.failed ?? [], []);
  // The operator fixes the token: the HS's retry and the network's resend go through.
  as.hs.clearFailures();
  assert.equal(await as.pushSend(txnId, { events: [invite] }), 200);
  assert.ok(room.members.has('@irc__dora:example.org'), 'the invite was accepted on retry');
  assert.equal((await fromNetwork(remote, 'after the fix')).status, 200);
});

const bodiesIn = (room: FakeRoom) => room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);

test('a kicked virtual user joins again and its message goes in: with the kick pushed to the AS, and without', async () => {
  const { room, remote } = await bridgedRoom();
  const bob = '@irc__bob:example.org';
  assert.equal((await fromNetwork(remote, 'before the kick')).status, 200);
  // The kick reaches the AS in a transaction: the warm Lambda forgets that Bob is in.
  const kick = as.hs.kick(room.roomId, bob, '@mod:example.org');
  assert.equal((await as.hs.push([as.hs.clientEvent(room.roomId, kick)], as.pushSend)).statuses.at(-1), 200);
  assert.equal((await fromNetwork(remote, 'after the kick')).status, 200);
  // Kicked again, and this time the AS has not seen it (the transaction is still queued).
  as.hs.kick(room.roomId, bob, '@mod:example.org');
  const res = await fromNetwork(remote, 'after an unseen kick');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(bodiesIn(room).slice(-3), ['before the kick', 'after the kick', 'after an unseen kick']);
  assert.ok(room.members.has(bob));
});

test('a banned virtual user: the network gets 403 M_FORBIDDEN with reason "banned", logged, and nothing is posted', async () => {
  const { room, remote } = await bridgedRoom();
  assert.equal((await fromNetwork(remote, 'hello', { sender: { id: 'Eve' } })).status, 200);
  as.hs.ban(room.roomId, '@irc__eve:example.org', '@mod:example.org');
  as.logs.length = 0;
  const res = await fromNetwork(remote, 'let me in', { sender: { id: 'Eve' } });
  assert.equal(res.status, 403, JSON.stringify(res.body));
  assert.deepEqual([res.body.errcode, res.body.reason], ['M_FORBIDDEN', 'banned']);
  assert.ok(as.logs.some((l) => l.includes('banned from the Matrix room') && l.includes('@irc__eve:example.org')));
  assert.deepEqual(bodiesIn(room).slice(-1), ['hello']);
  // Unbanned: Eve is back.
  as.hs.unban(room.roomId, '@irc__eve:example.org');
  assert.equal((await fromNetwork(remote, 'thanks', { sender: { id: 'Eve' } })).status, 200);
});

test('a virtual user the homeserver lost is made again: by its next message, and by the user query', async () => {
  const { room, remote } = await bridgedRoom();
  const fay = '@irc__fay:example.org';
  assert.equal((await fromNetwork(remote, 'one', { sender: { id: 'Fay' } })).status, 200);
  // An admin deactivates and purges the user (or the HS database is reset): gone from the HS.
  as.hs.users.delete(fay);
  room.members.delete(fay);
  const res = await fromNetwork(remote, 'two', { sender: { id: 'Fay' } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(as.hs.users.get(fay)?.displayName, 'Fay');
  assert.deepEqual(bodiesIn(room).slice(-2), ['one', 'two']);
  // The HS asks about a user we recorded only when it lost it: the query makes it again.
  network.users.set('Gus', { displayName: 'Gus G.' });
  const gus = '@irc__gus:example.org';
  assert.equal((await as.hsCall('user-query', { method: 'GET', path: `/_matrix/app/v1/users/${enc(gus)}` })).status, 200);
  as.hs.users.delete(gus);
  network.users.delete('Gus'); // the network is not asked again: our record has the profile
  assert.equal((await as.hsCall('user-query', { method: 'GET', path: `/_matrix/app/v1/users/${enc(gus)}` })).status, 200);
  assert.equal(as.hs.users.get(gus)?.displayName, 'Gus G.');
});

/** Messages the network sent before anyone joined; then the alias query, which replays them. */
async function keptThenJoined(remote: string, bodies: string[]) {
  network.rooms.set(remote, { name: `#${remote}` });
  const sent = [];
  for (const body of bodies) {
    const res = await fromNetwork(remote, body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    sent.push(body);
  }
  return sent;
}
const roomOf = (remote: string) => as.hs.rooms.get(as.hs.aliases.get(`#irc_${remote}:example.org`)!)!;
const roomQuery = (remote: string) => as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(`#irc_${remote}:example.org`)}` });

test('a kept message the homeserver refuses for good is dropped with a log line; the replay goes on and the room is not blocked', async () => {
  const remote = uniq('poison');
  await keptThenJoined(remote, ['k1', 'k2 (refused)', 'k3']);
  // The HS refuses the second for good (an event over its limit, say): 413 M_TOO_LARGE.
  as.hs.fail({ match: { method: 'PUT', pathIncludes: '/send/' }, kind: 'delay', ms: 0, times: 1 });
  as.hs.fail({ match: { method: 'PUT', pathIncludes: '/send/' }, kind: 'status', status: 413, body: { errcode: 'M_TOO_LARGE', error: 'event too large' }, times: 1 });
  as.logs.length = 0;
  assert.equal((await roomQuery(remote)).status, 200);
  assert.deepEqual(bodiesIn(roomOf(remote)), ['k1', 'k3']);
  assert.ok(as.logs.some((l) => l.includes('refused by the homeserver for good') && l.includes('"status":413')));
  assert.ok(as.logs.some((l) => l.includes('"msg":"replayed scrollback"') && l.includes('"dropped":1')), 'counted');
  assert.deepEqual(await as.store.listScrollback(`#irc_${remote}:example.org`), [], 'nothing left to block the room');
  assert.equal((await as.store.getAlias(`#irc_${remote}:example.org`))?.scrollbackPending, undefined);
  const next = await fromNetwork(remote, 'k4');
  assert.equal(next.status, 200, JSON.stringify(next.body));
  assert.deepEqual(bodiesIn(roomOf(remote)), ['k1', 'k3', 'k4']);
});

test('the inbound body limit is the UTF-8 size of the event content, refused up front with a clear 400', async () => {
  const { room, remote } = await bridgedRoom();
  // 20,000 emoji: 40,000 UTF-16 units, 80,000 bytes. A Matrix event cannot hold it.
  const big = await fromNetwork(remote, '😀'.repeat(20_000));
  assert.equal(big.status, 400);
  assert.equal(big.body.errcode, 'M_BAD_JSON');
  assert.match(big.body.error, /^body is \d+ bytes/);
  // Just under the limit goes through a homeserver with Synapse's 64 KiB event limit.
  const fits = await fromNetwork(remote, '😀'.repeat(14_900));
  assert.equal(fits.status, 200, JSON.stringify(fits.body));
  assert.equal(bodiesIn(room).at(-1)?.length, 29_800);
});

test('scrollback replay keeps the network\'s order while new messages arrive during it', async () => {
  const remote = uniq('order');
  const old = Array.from({ length: 12 }, (_, i) => `old ${i}`);
  await keptThenJoined(remote, old);
  // A slow homeserver: the replay takes a while, and the network goes on talking meanwhile.
  as.hs.fail({ match: { method: 'PUT', pathIncludes: '/send/' }, kind: 'delay', ms: 40, times: 12 });
  let settled = false;
  const query = roomQuery(remote).finally(() => (settled = true));
  const fresh: string[] = [];
  // Wait until the room exists (the replay is then under way), then send new messages one by one.
  while (!settled && !as.hs.aliases.has(`#irc_${remote}:example.org`)) await new Promise((r) => setTimeout(r, 5));
  for (let i = 0; i < 5; i++) {
    const res = await fromNetwork(remote, `new ${i}`);
    assert.ok(res.status === 200 || res.status === 202, JSON.stringify(res.body));
    fresh.push(`new ${i}`);
  }
  assert.equal((await query).status, 200);
  // Whatever is still kept is posted by the next message; then the timeline is complete.
  assert.equal((await fromNetwork(remote, 'last')).status, 200);
  assert.deepEqual(bodiesIn(roomOf(remote)), [...old, ...fresh, 'last']);
});

test('a resent network message posts once, durably: also after the homeserver restarted and forgot its txn cache', async () => {
  const { room, remote } = await bridgedRoom();
  const msg = { id: uniq('resent-'), room: remote, sender: { id: 'Bob' }, body: 'only once', ts: 1_700_000_000_000 };
  const raw = JSON.stringify(msg);
  const send = () => as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
  const first = await send();
  assert.equal(first.status, 200);
  as.hs.restart();
  const again = await send();
  assert.deepEqual(again, { ...again, status: 200, body: { event_id: first.body.event_id } });
  assert.deepEqual(bodiesIn(room).filter((b) => b === 'only once'), ['only once']);
});

test('an alias the homeserver lost points at the recorded room again; a room it lost too is made again', async () => {
  const { room, remote, alias } = await bridgedRoom();
  // An admin removes the alias: the next join asks the AS, which re-points it.
  as.hs.aliases.delete(alias);
  assert.equal((await roomQuery(remote)).status, 200);
  assert.equal(as.hs.aliases.get(alias), room.roomId, 'the same room');
  assert.equal([...as.hs.rooms.values()].filter((r) => r.alias === alias).length, 1);
  // The homeserver's database is reset: rooms, aliases and users are gone.
  as.hs.forgetEverything();
  assert.equal((await roomQuery(remote)).status, 200);
  const remade = as.hs.aliases.get(alias);
  assert.ok(remade && remade !== room.roomId, 'a new room behind the alias');
  assert.equal((await as.store.getAlias(alias as `#${string}:${string}`))?.roomId, remade, 'recorded');
  as.hs.rooms.get(remade)!.members.add('@alice:example.org');
  // Both directions work in the new room: Bob (the HS lost him too) comes back with his message.
  const res = await fromNetwork(remote, 'after the reset');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(bodiesIn(as.hs.rooms.get(remade)!), ['after the reset']);
  const out = said(as.hs.rooms.get(remade)!, 'from the new room');
  assert.equal(await as.pushSend(uniq('reset'), { events: [out] }), 200);
  assert.deepEqual(delivered(remote).slice(-1), ['from the new room']);
});

test('an upgraded (tombstoned) room: the bridge follows it to the new room, both ways', async () => {
  const { room, remote, alias } = await bridgedRoom();
  assert.equal(await as.pushSend(uniq('up'), { events: [said(room, 'in the old room')] }), 200);
  // A moderator upgrades the room: a new room, the alias moved to it, a tombstone in the old one.
  const next = as.hs.seedRoom({ creator: '@mod:example.org', joinRule: 'public', members: ['@alice:example.org'] });
  as.hs.aliases.set(alias, next.roomId);
  const tomb = {
    event_id: `$${uniq('tomb')}`,
    room_id: room.roomId,
    sender: '@mod:example.org',
    type: 'm.room.tombstone',
    state_key: '',
    origin_server_ts: Date.now(),
    content: { body: 'This room has been replaced', replacement_room: next.roomId },
  };
  assert.equal(await as.pushSend(uniq('up'), { events: [tomb] }), 200);
  assert.ok(next.members.has('@ircbot:example.org'), 'the bot followed');
  assert.equal((await as.store.getAlias(alias as `#${string}:${string}`))?.roomId, next.roomId);
  assert.equal((await fromNetwork(remote, 'to the new room')).status, 200);
  assert.deepEqual(bodiesIn(next), ['to the new room']);
  assert.equal(await as.pushSend(uniq('up'), { events: [said(next, 'from the new room'), said(room, 'late in the old room')] }), 200);
  assert.deepEqual(delivered(remote).slice(-2), ['in the old room', 'from the new room'], 'the old room is no longer bridged');
});
