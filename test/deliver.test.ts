/**
 * Delivery on a real queue (issue 21): push puts each room's events on the SQS FIFO queue (one
 * message group per room) and answers; the deliver function, on the queue's event source, sends
 * them to the network. Through the handlers as API Gateway and SQS invoke them, DynamoDB Local,
 * the local SQS server (local-aws-sqs) with the queues of infra/queue.yml, and a fake homeserver
 * and network over real HTTP. Nothing here is timed: a backoff "passes" when the test hands the
 * hidden messages out again (`deliver({ retryNow: true })`), the dead-letter age when the
 * bridge's clock is turned forward.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { bridgedRoom as bridgedRoomOf } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';
import { tableOf } from '../lib/store/index.js';
import { deliverEvents, RETRIES } from '../lib/bridge/deliver.js';
import type { ReceivedEvent } from '../lib/queue/port.js';
import { sqsQueue } from '../lib/queue/sqs.js';
import { SEND_STATUS_TYPE } from '../lib/bridge/send-status.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs(
  { NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000', DEAD_LETTER_AFTER_HOURS: '24' },
  {},
  { autoDeliver: false },
);
const ALICE = '@alice:example.org';

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;
beforeEach(async () => {
  network.onDeliver = undefined;
  // What an earlier test left hidden on the queue is handed out and settled first.
  await as.deliver({ retryNow: true });
});

const bridgedRoom = () => bridgedRoomOf(as, network, [ALICE]);
const said = (room: FakeRoom, body: string, sender = ALICE) => ({
  event_id: `$${uniq('ev')}`,
  room_id: room.roomId,
  sender,
  type: 'm.room.message',
  origin_server_ts: Date.now(),
  content: { msgtype: 'm.text', body },
});
const delivered = (remote: string) => network.accepted.filter((m) => m.room === remote).map((m) => m.body);
const attempts = (id: string) => network.received.filter((r) => r.path === '/messages' && r.body?.id === id).length;
const statuses = (room: FakeRoom, eventId: string) =>
  room.events.filter((e) => e.type === SEND_STATUS_TYPE && (e.content['m.relates_to'] as { event_id?: string })?.event_id === eventId).map((e) => e.content.status);
const notices = (room: FakeRoom) => room.events.filter((e) => e.type === 'm.room.message' && e.content.msgtype === 'm.notice').map((e) => String(e.content.body));

test('push answers once the events are queued; the deliver function sends them, each room in order', async () => {
  const { room, remote } = await bridgedRoom();
  const events = ['one', 'two', 'three'].map((b) => said(room, b));
  assert.equal(await as.pushSend(uniq('t'), { events }), 200);
  assert.deepEqual(delivered(remote), [], 'nothing sent by the push itself');
  assert.deepEqual(await as.queues.counts(), { visible: 3, hidden: 0, deadLetters: 0 });
  await as.deliver();
  assert.deepEqual(delivered(remote), ['one', 'two', 'three']);
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
});

test('order within a room holds across a failure: the failed event and the rest of its room wait together', async () => {
  const { room, remote } = await bridgedRoom();
  const events = ['a', 'b', 'c'].map((b) => said(room, b));
  network.onDeliver = (m, attempt) => (m.id === events[0]!.event_id && attempt <= 2 ? { status: 503 } : undefined);
  assert.equal(await as.pushSend(uniq('t'), { events }), 200);
  await as.deliver();
  assert.deepEqual(delivered(remote), [], 'b and c did not overtake a');
  assert.equal((await as.queues.counts()).hidden, 3);
  await as.deliver({ retryNow: true });
  assert.deepEqual(delivered(remote), [], 'a failed once more');
  await as.deliver({ retryNow: true });
  assert.deepEqual(delivered(remote), ['a', 'b', 'c']);
  assert.equal(attempts(events[0]!.event_id), 3);
  assert.deepEqual(statuses(room, events[0]!.event_id), ['PENDING', 'SUCCESS'], 'the sender is told once that it waits, and once that it went');
  assert.deepEqual(statuses(room, events[2]!.event_id), ['PENDING', 'SUCCESS'], 'so is the sender of a message waiting behind it');
});

test('a failing room never delays another', async () => {
  const failing = await bridgedRoom();
  const healthy = await bridgedRoom();
  network.onDeliver = (m) => (m.room === failing.remote ? { status: 500 } : undefined);
  const events = [said(failing.room, 'f1'), said(healthy.room, 'h1'), said(failing.room, 'f2'), said(healthy.room, 'h2')];
  assert.equal(await as.pushSend(uniq('t'), { events }), 200);
  await as.deliver();
  assert.deepEqual(delivered(healthy.remote), ['h1', 'h2']);
  assert.deepEqual(delivered(failing.remote), []);
  // More for the healthy room while the other still fails: through at once.
  assert.equal(await as.pushSend(uniq('t'), { events: [said(healthy.room, 'h3')] }), 200);
  await as.deliver({ retryNow: true });
  assert.deepEqual(delivered(healthy.remote), ['h1', 'h2', 'h3']);
  network.onDeliver = undefined;
  await as.deliver({ retryNow: true });
  assert.deepEqual(delivered(failing.remote), ['f1', 'f2']);
});

test('a refusal (4xx) is not retried: the sender is told, with a notice, once', async () => {
  const { room, remote } = await bridgedRoom();
  const [bad, good] = [said(room, 'refused'), said(room, 'after it')];
  network.onDeliver = (m) => (m.id === bad.event_id ? { status: 422 } : undefined);
  assert.equal(await as.pushSend(uniq('t'), { events: [bad, good] }), 200);
  await as.deliver();
  await as.deliver({ retryNow: true });
  assert.equal(attempts(bad.event_id), 1, 'tried once');
  assert.deepEqual(delivered(remote), ['after it'], 'the room went on');
  assert.deepEqual(statuses(room, bad.event_id), ['FAIL_PERMANENT']);
  assert.equal(notices(room).filter((t) => t.includes('HTTP 422')).length, 1);
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 }, 'not kept anywhere');
});

test('Retry-After: the message is hidden for as long as the network asked (bounded), with the rest of its room', async () => {
  const hidden: Array<{ receipts: readonly string[]; delayMs: number }> = [];
  const b = await as.bridge();
  const real = b.deliveryQueue;
  b.deliveryQueue = { ...real, retryLater: async (receipts, delayMs) => void hidden.push({ receipts, delayMs }) };
  const { room } = await bridgedRoom();
  try {
    const event = (id: string, body: string, count = 1): ReceivedEvent => ({
      messageId: id,
      receipt: `r-${id}`,
      roomId: room.roomId as `!${string}`,
      eventId: `$${id}`,
      sender: ALICE,
      body: JSON.stringify({ id: `$${id}`, room: 'x', sender: { userId: ALICE }, msgtype: 'm.text', body, ts: 1 }),
      receiveCount: count,
      queuedAt: b.now(),
    });
    network.onDeliver = (m) => (m.id === '$ra1' ? { status: 503, retryAfter: 120 } : m.id === '$ra3' ? { status: 429, retryAfter: 999_999 } : m.id === '$ra4' ? { status: 503 } : undefined);
    const out = await deliverEvents(b, [event('ra1', 'one'), event('ra2', 'two')], Date.now() + 30_000);
    assert.deepEqual(out.failed, ['ra1', 'ra2']);
    assert.deepEqual(hidden, [{ receipts: ['r-ra1', 'r-ra2'], delayMs: 120_000 }], 'the network\'s two minutes, for both');
    hidden.length = 0;
    await deliverEvents(b, [event('ra3', 'three')], Date.now() + 30_000);
    assert.deepEqual(hidden.map((h) => h.delayMs), [RETRIES.maxMs], 'never beyond the bound');
    hidden.length = 0;
    await deliverEvents(b, [event('ra4', 'four', 4)], Date.now() + 30_000);
    const d = hidden[0]!.delayMs;
    assert.ok(d >= RETRIES.firstMs * 8 && d <= RETRIES.firstMs * 8 * 1.2, `the fourth try waits 2 s × 2³ (with jitter): ${d}`);
  } finally {
    b.deliveryQueue = real;
  }
});

test('a message failing past DEAD_LETTER_AFTER_HOURS goes to the dead-letter queue; redriven, it is delivered once', async () => {
  const { room, remote } = await bridgedRoom();
  const [lost, next] = [said(room, 'lost for a day'), said(room, 'the next one')];
  network.onDeliver = () => ({ status: 503 });
  assert.equal(await as.pushSend(uniq('t'), { events: [lost, next] }), 200);
  await as.deliver();
  await as.later(25 * 3600_000);
  await as.deliver({ retryNow: true });
  await as.deliver({ retryNow: true });
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 2 });
  assert.deepEqual(statuses(room, lost.event_id), ['PENDING', 'FAIL_PERMANENT']);
  assert.equal(notices(room).filter((t) => t.includes('still failing after 25 h')).length, 2);

  // What npm run dead-letters uses (scripts/dead-letters.ts), on the same queues.
  const queue = sqsQueue({ queueUrl: as.queues.queueUrl, deadLetterQueueUrl: as.queues.deadLetterQueueUrl, client: as.queues.client }).deadLetters;
  const listed = await queue.list();
  assert.deepEqual(
    listed.letters.map((l) => [l.roomId, l.eventId, l.sender]),
    [
      [room.roomId, lost.event_id, ALICE],
      [room.roomId, next.event_id, ALICE],
    ],
  );
  assert.match(listed.letters[0]!.lastError ?? '', /HTTP 503/);
  assert.deepEqual((await queue.list()).letters.length, 2, 'listing takes nothing away');

  network.onDeliver = undefined;
  await queue.redrive();
  // The move task runs on its own: wait (bounded) until the letters are back on the delivery queue.
  for (let i = 0; i < 100 && (await as.queues.counts()).deadLetters > 0; i++) await new Promise((r) => setTimeout(r, 50));
  await as.deliver();
  assert.deepEqual(delivered(remote), ['lost for a day', 'the next one']);
  assert.equal(network.accepted.filter((m) => m.id === lost.event_id).length, 1, 'once');
  assert.deepEqual(statuses(room, lost.event_id), ['PENDING', 'FAIL_PERMANENT', 'SUCCESS'], 'the sender learns it went after all');
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
});

test('the queue down during a push: 503 with a Matrix error; the retry queues what is missing, nothing lost or doubled', async () => {
  const { room, remote } = await bridgedRoom();
  const events = ['q1', 'q2', 'q3'].map((b) => said(room, b));
  await as.queues.asEndpoint.cut();
  const down = await as.hsCall('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${uniq('t')}`, body: { events } });
  await as.queues.asEndpoint.mend();
  assert.equal(down.status, 503);
  assert.equal(typeof down.body.errcode, 'string');
  assert.match(down.body.error, /queue/);
  // The homeserver sends the same transaction again (and once more, as Synapse sometimes does).
  const txnId = uniq('t');
  assert.equal(await as.pushSend(txnId, { events }), 200);
  assert.equal(await as.pushSend(uniq('t'), { events }), 200, 'the same events under another id');
  await as.deliver();
  assert.deepEqual(delivered(remote), ['q1', 'q2', 'q3']);
  assert.equal(network.received.filter((r) => r.path === '/messages' && events.some((e) => e.event_id === r.body?.id)).length, 3, 'each sent once');
});

test('events pushed again after they were delivered are not queued again (SQS FIFO drops a deduplication id for 5 minutes)', async () => {
  const { room, remote } = await bridgedRoom();
  const events = ['d1', 'd2'].map((b) => said(room, b));
  assert.equal(await as.pushSend(uniq('t'), { events }), 200);
  await as.deliver();
  // The homeserver lost its record of the transaction (a restored database) and sends the events again.
  assert.equal(await as.pushSend(uniq('t'), { events }), 200);
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
  await as.deliver();
  assert.deepEqual(events.map((e) => attempts(e.event_id)), [1, 1]);
  assert.deepEqual(delivered(remote), ['d1', 'd2']);
});

test('large events: batches stay under the 256 KiB SQS takes, and one too large for any message is refused for good, not retried', async () => {
  const { room, remote } = await bridgedRoom();
  // Ten events of 60 KB (Synapse's limit is 64 KiB each) do not fit one SendMessageBatch.
  const big = Array.from({ length: 10 }, (_, i) => said(room, `${i}`.padEnd(60_000, 'x')));
  // No homeserver sends this (over 64 KiB); the queue could not carry it either.
  const huge = said(room, 'h'.repeat(300_000));
  const txnId = uniq('t');
  assert.equal(await as.pushSend(txnId, { events: [...big, huge, said(room, 'after')] }), 200);
  await as.deliver();
  assert.deepEqual(delivered(remote).map((b) => b.slice(0, 5)), [...big.map((e) => String(e.content.body).slice(0, 5)), 'after']);
  assert.equal(attempts(huge.event_id), 0);
  const record = await as.store.getTransaction(txnId);
  assert.deepEqual(record?.failed, [{ eventId: huge.event_id, reason: 'too large for the delivery queue' }]);
});

test('a transaction of echoes, unbridged rooms and ignored kinds: no DynamoDB write, nothing queued', async () => {
  const { room } = await bridgedRoom();
  const b = await as.bridge();
  const writes: string[] = [];
  tableOf(b.store)!.doc.middlewareStack.add(
    (next, ctx) => async (args) => {
      if (/Put|Update|Delete|Write/.test(ctx.commandName as string)) writes.push(ctx.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'countWrites' },
  );
  try {
    const echo = said(room, 'from the network', '@irc_bob:example.org');
    const bot = said(room, 'a notice', '@ircbot:example.org');
    const typing = { ...said(room, ''), type: 'm.call.invite', content: { call_id: 'c1', version: '1', lifetime: 60000 } };
    assert.equal(await as.pushSend(uniq('t'), { events: [echo, bot, typing] }), 200);
  } finally {
    tableOf(b.store)!.doc.middlewareStack.remove('countWrites');
  }
  assert.deepEqual(writes, []);
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
});

test('invites are accepted by push itself, at once; they never wait on the queue', async () => {
  network.users.set('dana', { displayName: 'Dana' });
  const dm = as.hs.seedRoom({ creator: ALICE, joinRule: 'invite', invited: ['@irc_dana:example.org'] });
  const invite = {
    event_id: `$${uniq('inv')}`,
    room_id: dm.roomId,
    sender: ALICE,
    type: 'm.room.member',
    state_key: '@irc_dana:example.org',
    origin_server_ts: Date.now(),
    content: { membership: 'invite' },
  };
  assert.equal(await as.pushSend(uniq('t'), { events: [invite] }), 200);
  assert.ok(dm.members.has('@irc_dana:example.org'));
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
});
