/**
 * Field reliability (issue 9): what a real homeserver does that a kind fake would hide. The fake
 * HS here restarts (its txn ids start at 1 again and its send-transaction cache is gone), kicks
 * and bans, refuses events over 64 KiB and forgets its state; every test goes through the
 * handlers as API Gateway invokes them, DynamoDB Local and a fake network over real HTTP.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
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

/** A bridged room made by the alias query, and the network room behind it. */
async function bridgedRoom(): Promise<{ room: FakeRoom; remote: string; alias: string }> {
  const remote = uniq('chan');
  network.rooms.set(remote, { name: `#${remote}` });
  const alias = `#irc_${remote}:example.org`;
  const res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const room = as.hs.rooms.get(as.hs.aliases.get(alias)!)!;
  room.members.add('@alice:example.org');
  return { room, remote, alias };
}

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
  // Txn 5 stops at its second event: the network fails it (a 5xx), the first is delivered.
  const old = [said(room, 'old-1'), said(room, 'old-2'), said(room, 'old-3')];
  network.onDeliver = (m) => (m.body === 'old-2' ? { status: 500 } : undefined);
  assert.equal(await as.pushSend('5', { events: old }), 503);
  assert.deepEqual(delivered(remote), ['old-1']);
  // The homeserver restarts (or its database is restored) and sends other events as txn 5.
  network.onDeliver = undefined;
  const fresh = [said(room, 'new-1'), said(room, 'new-2'), said(room, 'new-3')];
  assert.equal(await as.pushSend('5', { events: fresh }), 200);
  assert.deepEqual(delivered(remote), ['old-1', 'new-1', 'new-2', 'new-3'], 'all of the new one, none skipped by the old cursor');
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
