import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, HS_TOKEN, enc } from './support/as.js';
import { tableOf } from '../lib/store/index.js';
import { startFakeNetwork } from './support/fake-network.js';
import { checkAsRequest, checkAsResponse } from './support/spec.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '1000' });
network.rooms.set('matrix', { name: '#matrix', topic: 'talk' });
network.users.set('carol', { displayName: 'Carol' });

beforeEach(() => {
  network.received.length = 0;
  network.accepted.length = 0;
  network.onDeliver = undefined;
});

const roomRes = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc('#irc_matrix:example.org')}` });
assert.equal(roomRes.status, 200);
const ROOM = as.hs.aliases.get('#irc_matrix:example.org') as string;
const OTHER_ROOM = '!unbridged:example.org';

let seq = 0;
const message = (body: string, opts: { room?: string; sender?: string } = {}) => ({
  event_id: `$ev${++seq}-${Math.random().toString(36).slice(2)}`,
  room_id: opts.room ?? ROOM,
  sender: opts.sender ?? '@alice:example.org',
  type: 'm.room.message',
  origin_server_ts: 1_700_000_000_000 + seq,
  content: { msgtype: 'm.text', body },
});

let txn = 0;
const newTxn = () => `txn-${Date.now()}-${++txn}`;
const push = (txnId: string, body: unknown, opts: { legacy?: boolean; raw?: string | Buffer; timeoutMs?: number } = {}) =>
  as.call('push', {
    method: 'PUT',
    path: opts.legacy ? `/transactions/${enc(txnId)}` : `/_matrix/app/v1/transactions/${enc(txnId)}`,
    headers: opts.legacy ? {} : { authorization: `Bearer ${HS_TOKEN}` },
    query: opts.legacy ? { access_token: HS_TOKEN } : undefined,
    body,
    rawBody: opts.raw,
    timeoutMs: opts.timeoutMs,
  });

const deliveredIds = () => network.accepted.map((m) => m.id);

test('messages in a bridged room go to the network in order, signed, with Idempotency-Key', async () => {
  const events = [message('one'), message('two'), message('three')];
  const body = { events, ephemeral: [], 'de.sorunome.msc2409.to_device': [], device_lists: { changed: [] }, device_one_time_keys_count: {} };
  assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/t1', body), []);
  const res = await push(newTxn(), body);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {});
  assert.deepEqual(checkAsResponse('PUT', '/_matrix/app/v1/transactions/t1', 200, res.body), []);
  assert.deepEqual(deliveredIds(), events.map((e) => e.event_id));
  const first = network.received.find((r) => r.path === '/messages');
  assert.equal(first?.idempotencyKey, events[0]!.event_id);
  assert.deepEqual(first?.body, {
    id: events[0]!.event_id,
    room: 'matrix',
    sender: { userId: '@alice:example.org' },
    msgtype: 'm.text',
    body: 'one',
    ts: events[0]!.origin_server_ts,
  });
});

test('a repeat of a done txnId is a no-op 200, also on the legacy path', async () => {
  const id = newTxn();
  const body = { events: [message('once')] };
  assert.equal((await push(id, body)).status, 200);
  assert.equal((await push(id, body, { legacy: true })).status, 200);
  assert.equal((await push(id, body)).status, 200);
  assert.equal(network.accepted.length, 1);
});

test('the same txnId 50 times in parallel delivers each event exactly once', async () => {
  const id = newTxn();
  const events = Array.from({ length: 10 }, (_, i) => message(`p${i}`));
  // Slow deliveries make the copies overlap for real.
  network.onDeliver = () => undefined;
  const results = await Promise.all(Array.from({ length: 50 }, () => push(id, { events })));
  for (const r of results) assert.ok(r.status === 200 || r.status === 503, `status ${r.status}`);
  // The HS retries the ones that got 503 until they get 200.
  for (let i = 0; i < 20 && (await push(id, { events })).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(deliveredIds(), events.map((e) => e.event_id));
});

test('the same txnId 50 times in a row delivers each event exactly once', async () => {
  const id = newTxn();
  const events = Array.from({ length: 5 }, (_, i) => message(`r${i}`));
  for (let i = 0; i < 50; i++) assert.equal((await push(id, { events })).status, 200);
  assert.deepEqual(deliveredIds(), events.map((e) => e.event_id));
});

test('delivery failing at event k: 200 at once; k..n wait on the queue and go once, in order, when k is retried; 1..k-1 not again', async () => {
  const id = newTxn();
  const events = Array.from({ length: 8 }, (_, i) => message(`k${i}`));
  const k = 4;
  network.onDeliver = (m, attempt) => (m.id === events[k]!.event_id && attempt === 1 ? { status: 503 } : undefined);
  const first = await push(id, { events });
  assert.equal(first.status, 200);
  assert.deepEqual(deliveredIds(), events.slice(0, k).map((e) => e.event_id));
  // The homeserver resends it anyway: nothing twice.
  assert.equal((await push(id, { events })).status, 200);
  assert.deepEqual(deliveredIds(), events.slice(0, k).map((e) => e.event_id));
  await as.deliver({ retryNow: true });
  assert.deepEqual(deliveredIds(), events.map((e) => e.event_id));
  const attempts = network.received.filter((r) => r.path === '/messages').map((r) => r.body.id);
  assert.deepEqual(attempts, [...events.slice(0, k + 1), ...events.slice(k)].map((e) => e.event_id));
});

test('a network timeout is transient: the message waits on the queue, and the retry picks up there', async () => {
  const id = newTxn();
  const events = [message('t1'), message('t2')];
  network.onDeliver = (m, attempt) => (m.id === events[1]!.event_id && attempt === 1 ? { hang: true } : undefined);
  assert.equal((await push(id, { events })).status, 200);
  await as.deliver({ retryNow: true });
  assert.deepEqual(deliveredIds(), events.map((e) => e.event_id));
});

test('a 4xx from the network is permanent: the message is dropped with a log line, and the room goes on', async () => {
  const id = newTxn();
  const events = [message('a'), message('refused'), message('c')];
  network.onDeliver = (m) => (m.id === events[1]!.event_id ? { status: 422 } : undefined);
  const mark = as.logs.length;
  assert.equal((await push(id, { events })).status, 200);
  assert.deepEqual(deliveredIds(), [events[0]!.event_id, events[2]!.event_id]);
  assert.equal(network.received.filter((r) => r.body?.id === events[1]!.event_id).length, 1, 'not retried');
  // Delivery is the deliver function's, after push answered: the refusal is in its log, with the reason.
  const refused = as.logs.slice(mark).map((l) => JSON.parse(l)).filter((l) => l.msg === 'the network refused a message for good: dropped');
  assert.deepEqual(refused.map((l) => [l.eventId, l.reason]), [[events[1]!.event_id, 'network refused the message with HTTP 422']]);
  assert.equal((await as.store.getTransaction(id))?.state, 'done');
});

test('events in rooms we do not bridge are ignored; our own users and bot are never echoed', async () => {
  const events = [
    message('elsewhere', { room: OTHER_ROOM }),
    message('from a virtual user', { sender: '@irc_bob:example.org' }),
    message('from the bot', { sender: '@ircbot:example.org' }),
    { ...message('not a message'), type: 'm.reaction', content: { 'm.relates_to': {} } },
    message('real'),
  ];
  assert.equal((await push(newTxn(), { events })).status, 200);
  assert.deepEqual(deliveredIds(), [events[4]!.event_id]);
});

test('a malformed event is skipped and logged; the rest of the transaction is delivered', async () => {
  const good = message('good');
  const events = [{ type: 'm.room.message' }, null, 'text', { ...message('x'), room_id: 42 }, { ...message('y'), content: [] }, good];
  const res = await push(newTxn(), { events });
  assert.equal(res.status, 200);
  assert.deepEqual(deliveredIds(), [good.event_id]);
  assert.ok(as.logs.some((l) => l.includes('skipped a malformed event')));
});

test('bad bodies: not JSON 400 M_NOT_JSON, events missing or not an array 400 M_BAD_JSON', async () => {
  const notJson = await push(newTxn(), undefined, { raw: '{"events": [' });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.body.errcode, 'M_NOT_JSON');
  const notUtf8 = await push(newTxn(), undefined, { raw: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
  assert.equal(notUtf8.body.errcode, 'M_NOT_JSON');
  for (const body of [{}, { events: 'x' }, { events: { 0: 1 } }, [], 'str', 42, null]) {
    const res = await push(newTxn(), body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.body.errcode, 'M_BAD_JSON', JSON.stringify(body));
  }
  const empty = await push(newTxn(), undefined, { raw: '' });
  assert.equal(empty.body.errcode, 'M_NOT_JSON');
  assert.equal(network.received.length, 0);
});

test('a 5 MB transaction is accepted; a body over the Lambda limit is 413 M_TOO_LARGE', async () => {
  const big = 'x'.repeat(50_000);
  const events = Array.from({ length: 100 }, (_, i) => message(`${i}${big}`));
  const body = JSON.stringify({ events });
  assert.ok(body.length > 5_000_000);
  assert.equal((await push(newTxn(), undefined, { raw: body })).status, 200);
  assert.equal(network.accepted.length, 100);
  const huge = await push(newTxn(), undefined, { raw: JSON.stringify({ events: [], pad: 'y'.repeat(7_000_000) }) });
  assert.equal(huge.status, 413);
  assert.equal(huge.body.errcode, 'M_TOO_LARGE');
});

test('a transaction of 1,000 events is delivered whole', async () => {
  const events = Array.from({ length: 1000 }, (_, i) => message(`m${i}`));
  assert.equal((await push(newTxn(), { events })).status, 200);
  assert.deepEqual(deliveredIds(), events.map((e) => e.event_id));
});

test('DynamoDB calls per transaction are the same for 1 and 500 events', async () => {
  const b = await as.bridge();
  const calls: string[] = [];
  // The deliver function (run after each push here) writes one message mapping per message it
  // delivers: per message, not per transaction, so counted apart.
  let mappings = 0;
  tableOf(b.store)!.doc.middlewareStack.add(
    (next, ctx) => async (args) => {
      const pk = (args.input as { Item?: { pk?: unknown } }).Item?.pk;
      if (ctx.commandName === 'PutItemCommand' && typeof pk === 'string' && pk.startsWith('NETMSG#')) mappings++;
      else calls.push(ctx.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  b.roomCache.clear();
  await push(newTxn(), { events: [message('one')] });
  const forOne = [...calls];
  assert.equal(mappings, 1, 'one mapping for the one message');
  calls.length = 0;
  mappings = 0;
  b.roomCache.clear();
  await push(newTxn(), { events: Array.from({ length: 500 }, (_, i) => message(`n${i}`)) });
  tableOf(b.store)!.doc.middlewareStack.remove('countCalls');
  assert.equal(mappings, 500, 'one mapping per message, no more');
  assert.ok(forOne.length > 0);
  assert.deepEqual(calls, forOne, JSON.stringify(forOne));
  assert.deepEqual(
    forOne,
    ['BatchGetItemCommand', 'UpdateItemCommand', 'UpdateItemCommand'],
    'one batch read of the rooms, the claim, one progress write (the events go to the queue)',
  );
  // A transaction with ephemeral data only (typing, receipts) costs no DynamoDB call at all.
  tableOf(b.store)!.doc.middlewareStack.add(
    (next, ctx) => async (args) => {
      calls.push(ctx.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'countCalls' },
  );
  calls.length = 0;
  const ephemeral = { events: [], 'de.sorunome.msc2409.ephemeral': [{ type: 'm.typing', room_id: ROOM, content: { user_ids: [] } }] };
  assert.equal((await push(newTxn(), ephemeral)).status, 200);
  tableOf(b.store)!.doc.middlewareStack.remove('countCalls');
  assert.deepEqual(calls, []);
});

test('invites: a Matrix user invites a virtual user, who is registered and joins (a DM works)', async () => {
  const dm = as.hs.seedRoom({ creator: '@alice:example.org', joinRule: 'invite', invited: ['@irc_carol:example.org'] });
  const invite = {
    event_id: `$inv${Date.now()}`,
    room_id: dm.roomId,
    sender: '@alice:example.org',
    type: 'm.room.member',
    state_key: '@irc_carol:example.org',
    origin_server_ts: Date.now(),
    content: { membership: 'invite', is_direct: true },
  };
  assert.equal((await push(newTxn(), { events: [invite] })).status, 200);
  assert.equal(as.hs.users.get('@irc_carol:example.org')?.displayName, 'Carol');
  assert.ok(dm.members.has('@irc_carol:example.org'));
  const join = as.hs.calls.find((c) => c.path.includes('/join/') && c.userId === '@irc_carol:example.org');
  assert.ok(join, 'joined by identity assertion');
  // An invite of a user the network does not know is ignored, not failed.
  const ghost = { ...invite, event_id: `$inv2${Date.now()}`, state_key: '@irc_nobody:example.org' };
  assert.equal((await push(newTxn(), { events: [ghost] })).status, 200);
  assert.ok(!as.hs.users.has('@irc_nobody:example.org'));
  assert.deepEqual(as.hs.specErrors, []);
});

test('auth: no token 401, wrong token 403, and no event is processed', async () => {
  const body = { events: [message('secret')] };
  const none = await as.call('push', { method: 'PUT', path: '/_matrix/app/v1/transactions/x1', body });
  assert.equal(none.status, 401);
  const wrong = await as.call('push', { method: 'PUT', path: '/_matrix/app/v1/transactions/x1', body, headers: { authorization: 'Bearer no' } });
  assert.equal(wrong.status, 403);
  assert.equal(network.received.length, 0);
  assert.equal(await as.store.getTransaction('x1'), undefined);
});
