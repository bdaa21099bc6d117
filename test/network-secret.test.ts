/**
 * Network secret rotation through the real handler (README, "Rotating the network secret"):
 * with NETWORK_SECRET and NETWORK_SECRET_NEXT both set, POST /network/messages takes a message
 * signed with either, or carrying several v1 values of which one matches; anything else is
 * refused and leaves nothing behind. Our own requests to the network stay signed with
 * NETWORK_SECRET (the fake network checks them against that one only).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import { sign } from '../lib/signature.js';
import { logger } from '../lib/log.js';
import type { RoomAlias } from '../lib/matrix/ids.js';

const NEXT = 'network-secret-next-for-tests';
const UNRELATED = 'not-a-secret-of-this-bridge';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({
  NETWORK: 'webhook',
  NETWORK_URL: network.url,
  NETWORK_SECRET: network.secret,
  NETWORK_SECRET_NEXT: NEXT,
  NETWORK_TIMEOUT_MS: '5000',
});
network.rooms.set('rotation', { name: '#rotation' });
network.users.set('Bob', { displayName: 'Bob' });
const ALIAS = '#irc_rotation:example.org' as RoomAlias;

let n = 0;
const msg = () => ({ id: `rot-${++n}`, room: 'rotation', sender: { id: 'Bob' }, body: `message ${n}`, ts: 1_700_000_000_000 + n });
const post = (raw: string, signature: string) =>
  as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers: { 'x-signature': signature } });
/** The v1 value alone of a signature made now. */
const v1Of = (secret: string, raw: string) => sign(secret, raw).split(',v1=')[1]!;
const kept = async () => (await as.store.listScrollback(ALIAS)).map((m) => m.id);

test('before the room exists: a message signed with the current or the next secret is kept; an unrelated one is refused', async () => {
  const current = JSON.stringify(msg());
  assert.deepEqual(await post(current, sign(network.secret, current)).then((r) => [r.status, r.body]), [202, { kept: true }], 'current secret');

  const next = JSON.stringify(msg());
  assert.deepEqual(await post(next, sign(NEXT, next)).then((r) => [r.status, r.body]), [202, { kept: true }], 'next secret');

  const unrelated = JSON.stringify(msg());
  const refused = await post(unrelated, sign(UNRELATED, unrelated));
  assert.equal(refused.status, 403);
  assert.equal(refused.body.errcode, 'M_FORBIDDEN');

  // A network in the middle of its switch may send a v1 per secret: one that matches will do.
  const both = JSON.stringify(msg());
  const t = Math.floor(Date.now() / 1000);
  const twoValues = `t=${t},v1=${v1Of(UNRELATED, both)},v1=${v1Of(NEXT, both)}`;
  assert.equal((await post(both, twoValues)).status, 202, 'two v1 values, the second one matching');

  // Refused still: two v1 values of which none matches, and a stale one under the next secret.
  const none = JSON.stringify(msg());
  assert.equal((await post(none, `t=${t},v1=${v1Of(UNRELATED, none)},v1=${v1Of(`${NEXT}x`, none)}`)).status, 403);
  const stale = JSON.stringify(msg());
  assert.equal((await post(stale, sign(NEXT, stale, Date.now() - 6 * 60_000))).status, 403);
  const malformed = JSON.stringify(msg());
  assert.equal((await post(malformed, `t=${t},v1=${v1Of(NEXT, malformed).slice(1)}`)).status, 401, 'an odd-length v1 is no signature');

  assert.deepEqual(await kept(), [JSON.parse(current).id, JSON.parse(next).id, JSON.parse(both).id], 'nothing stored for a refused request');
});

test('the AS keeps signing with the current secret: the lookups succeed and the kept messages are replayed; then a message signed with the next secret is sent', async () => {
  const query = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(ALIAS)}` });
  assert.equal(query.status, 200, JSON.stringify(query.body));
  const lookups = network.received.filter((r) => r.method === 'GET');
  assert.ok(lookups.length > 0 && lookups.every((r) => r.status === 200), 'the network verified our signatures with NETWORK_SECRET');
  const room = as.hs.rooms.get(as.hs.aliases.get(ALIAS)!)!;
  const bodies = () => room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body);
  assert.deepEqual(bodies(), ['message 1', 'message 2', 'message 4']);

  const raw = JSON.stringify(msg());
  const res = await post(raw, sign(NEXT, raw));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.match(res.body.event_id, /^\$/);
  assert.equal(bodies().at(-1), JSON.parse(raw).body);
});

test('the next secret is masked in the logs like the current one', () => {
  const all = as.logs.join('\n');
  assert.ok(all.length > 0 && !all.includes(NEXT) && !all.includes(network.secret));
  logger().info('a message that quotes both secrets', { note: `${network.secret} and ${NEXT}` });
  const line = as.logs.at(-1)!;
  assert.ok(!line.includes(NEXT) && !line.includes(network.secret), line);
  assert.match(line, /\[redacted\] and \[redacted\]/);
});
