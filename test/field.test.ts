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
