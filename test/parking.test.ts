/**
 * One failing room never holds up the bridge (issue 17): a transient network failure parks its
 * room, not the transaction; parked rooms drain in order when the network recovers; what cannot
 * be delivered becomes a dead letter an operator can list and redrive. Through the handlers,
 * DynamoDB Local, the fake homeserver's pushes and a fake network that fails one room.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startAs, enc } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';
import { lambdaContext } from './support/lambda.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '1500' });

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;
beforeEach(() => {
  network.onDeliver = undefined;
});

async function bridgedRoom(): Promise<{ room: FakeRoom; remote: string }> {
  const remote = uniq('chan');
  network.rooms.set(remote, { name: `#${remote}` });
  const alias = `#irc_${remote}:example.org`;
  assert.equal((await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` })).status, 200);
  const room = as.hs.rooms.get(as.hs.aliases.get(alias)!)!;
  room.members.add('@alice:example.org');
  return { room, remote };
}
const said = (room: FakeRoom, body: string) => ({
  event_id: `$${uniq('ev')}`,
  room_id: room.roomId,
  sender: '@alice:example.org',
  type: 'm.room.message',
  origin_server_ts: Date.now(),
  content: { msgtype: 'm.text', body },
});
/** The send statuses the bot gave in a room, per event: what the senders' clients show. */
const statuses = (room: FakeRoom) =>
  room.events
    .filter((e) => e.type === 'com.beeper.message_send_status')
    .map((e) => [e.content['m.relates_to'].event_id, e.content.status, e.sender] as const);
const delivered = (remote: string) => network.accepted.filter((m) => m.room === remote).map((m) => m.body);
const received = (remote: string) => network.received.filter((r) => r.path === '/messages' && r.body.room === remote).map((r) => r.body.body);
/** The network fails every message of one room with this status while `down` says so. */
const failRoom = (remote: string, status = 500) => {
  const state = { down: true };
  network.onDeliver = (m) => (state.down && m.room === remote ? { status } : undefined);
  return state;
};

test('a failing room parks, the transaction is answered 200, and the other rooms in it are delivered', async () => {
  const sick = await bridgedRoom();
  const well = await bridgedRoom();
  const outage = failRoom(sick.remote);
  const result = await as.hs.push([said(sick.room, 's1'), said(well.room, 'w1'), said(sick.room, 's2'), said(well.room, 'w2')], as.pushSend);
  assert.deepEqual(result.statuses, [200], 'one send: the homeserver is not held up');
  assert.deepEqual(delivered(well.remote), ['w1', 'w2']);
  assert.deepEqual(received(sick.remote), ['s1'], 's2 was not even tried: it waits behind s1');
  // Later transactions: the healthy room flows, the parked one queues, in order.
  for (const i of [3, 4]) assert.equal((await as.hs.push([said(sick.room, `s${i}`), said(well.room, `w${i}`)], as.pushSend)).statuses.at(-1), 200);
  assert.deepEqual(delivered(well.remote), ['w1', 'w2', 'w3', 'w4']);
  assert.deepEqual(delivered(sick.remote), []);
  const parked = await as.store.getParkedRoom(sick.room.roomId as `!${string}`);
  assert.equal(parked?.count, 4);
  // Still down: a drain attempt defers it; then the network recovers and the drain delivers all, in order.
  assert.equal((await as.drain()).deferred, 1);
  outage.down = false;
  assert.equal((await as.drain()).drained, 1);
  assert.deepEqual(delivered(sick.remote), ['s1', 's2', 's3', 's4']);
  // The senders were told: waiting, then sent; the healthy room's senders were told nothing.
  const told = statuses(sick.room);
  assert.deepEqual(told.filter(([, s]) => s === 'PENDING').length, 4);
  assert.deepEqual(told.filter(([, s]) => s === 'SUCCESS').length, 4);
  assert.ok(told.every(([, , sender]) => sender === '@ircbot:example.org'), 'from the bot');
  assert.deepEqual(statuses(well.room), []);
  assert.equal(await as.store.getParkedRoom(sick.room.roomId as `!${string}`), undefined);
  assert.deepEqual(await as.store.listParkedRooms(), []);
});

test('exactly once across retries, resends and partial failure', async () => {
  const sick = await bridgedRoom();
  const outage = failRoom(sick.remote);
  const events = [said(sick.room, 'a'), said(sick.room, 'b'), said(sick.room, 'c')];
  const txnId = uniq('once');
  for (let i = 0; i < 3; i++) assert.equal(await as.pushSend(txnId, { events }), 200, 'a resend of the same transaction');
  const parked = await as.store.getParkedRoom(sick.room.roomId as `!${string}`);
  assert.equal(parked?.count, 3, 'each event parked once');
  outage.down = false;
  // Two drainers at once: one per room.
  await Promise.all([as.drain(), as.drain()]);
  await as.drain();
  assert.deepEqual(delivered(sick.remote), ['a', 'b', 'c']);
});

test('a 429 with Retry-After is respected: no attempt before it, one after', async () => {
  const sick = await bridgedRoom();
  network.onDeliver = (m) => (m.room === sick.remote ? { status: 429 } : undefined);
  const before = Date.now();
  assert.equal(await as.pushSend(uniq('429'), { events: [said(sick.room, 'slow down')] }), 200);
  const parked = await as.store.getParkedRoom(sick.room.roomId as `!${string}`);
  // The fake network sends no Retry-After with its 429: the room backs off from about a second.
  assert.ok(parked && parked.nextAttemptAt >= before + 800, JSON.stringify(parked));
});

test('a 429 with Retry-After is respected: the room is not tried again before it, and is after', async () => {
  const sick = await bridgedRoom();
  let down = true;
  network.onDeliver = (m) => (down && m.room === sick.remote ? { status: 429, retryAfter: 300 } : undefined);
  assert.equal(await as.pushSend(uniq('ra'), { events: [said(sick.room, 'later')] }), 200);
  down = false;
  const b = await as.bridge();
  const parked = await as.store.getParkedRoom(sick.room.roomId as `!${string}`);
  assert.ok(parked && parked.nextAttemptAt >= b.now() + 290_000, 'five minutes, as the network asked');
  const tries = () => received(sick.remote).length;
  assert.equal(tries(), 1);
  await as.drain(120_000); // two minutes later: not yet
  assert.equal(tries(), 1, 'no attempt before Retry-After');
  await as.drain(200_000); // past it
  assert.deepEqual(delivered(sick.remote), ['later']);
});

test('backoff: from about a second, doubling, at most a minute', async () => {
  const { backoffMs } = await import('../lib/bridge/parking.js');
  assert.equal(backoffMs(0, 30_000), 30_000);
  assert.ok(backoffMs(0) >= 800 && backoffMs(0) <= 1000, 'from about a second');
  assert.ok(backoffMs(3) >= 6400 && backoffMs(3) <= 8000, 'doubling');
  assert.ok(backoffMs(20) <= 60_000 && backoffMs(20) >= 48_000, 'at most a minute');
});

test('an event refused for good (4xx) is a dead letter at once, and its room moves on', async () => {
  const { room, remote } = await bridgedRoom();
  network.onDeliver = (m) => (m.body === 'refused' ? { status: 422 } : undefined);
  const bad = said(room, 'refused');
  assert.equal(await as.pushSend(uniq('4xx'), { events: [bad, said(room, 'after')] }), 200);
  assert.deepEqual(delivered(remote), ['after']);
  const [letter] = await as.store.listDeadLetters(room.roomId as `!${string}`);
  assert.equal(letter?.eventId, bad.event_id);
  assert.equal(letter?.sender, '@alice:example.org');
  assert.match(letter?.reason ?? '', /422/);
  assert.equal(await as.store.getParkedRoom(room.roomId as `!${string}`), undefined, 'not parked');
  // The sender is told for good: a FAIL_PERMANENT status, and the bot's notice replying to the message.
  assert.deepEqual(statuses(room), [[bad.event_id, 'FAIL_PERMANENT', '@ircbot:example.org']]);
  const status = room.events.find((e) => e.type === 'com.beeper.message_send_status')!;
  assert.equal(status.content.reason, 'm.foreign_network_error');
  assert.match(status.content.error, /422/);
  const notice = room.events.find((e) => e.type === 'm.room.message' && e.content.msgtype === 'm.notice')!;
  assert.equal(notice.content['m.relates_to']['m.in_reply_to'].event_id, bad.event_id);
  assert.match(notice.content.body, /^not delivered to matrix-appservice-lambda: .*422/);
});

test('npm run dead-letters: list shows them, redrive sends each once, in its room\'s order from then on', async () => {
  const { room, remote } = await bridgedRoom();
  network.onDeliver = (m) => (m.body === 'lost' ? { status: 400 } : undefined);
  const lost = said(room, 'lost');
  assert.equal(await as.pushSend(uniq('cli'), { events: [lost] }), 200);
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/dead-letters.ts', ...args], {
      encoding: 'utf8',
      env: { ...process.env, DYNAMODB_ENDPOINT: as.table.endpoint, TABLE_NAME: as.table.tableName },
    });
  const list = cli('list', '--room', room.roomId);
  assert.equal(list.status, 0, list.stderr);
  const shown = list.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(shown.map((d) => [d.eventId, d.sender]), [[lost.event_id, '@alice:example.org']]);
  assert.match(shown[0].reason, /400/);
  // The cause is fixed on the network's side; the operator redrives; the drainer delivers it.
  network.onDeliver = undefined;
  const redrive = cli('redrive', '--room', room.roomId, '--event', lost.event_id);
  assert.equal(redrive.status, 0, redrive.stderr);
  assert.match(redrive.stderr, /1 dead letter/);
  assert.equal(cli('redrive', '--room', room.roomId).stderr.match(/(\d+) dead letter/)?.[1], '0', 'nothing left to redrive');
  await as.drain();
  assert.deepEqual(delivered(remote), ['lost']);
  assert.equal(cli('list').stdout.includes(lost.event_id), false);
  assert.equal(cli('nonsense').status, 2);
});

test('the scheduled drainer function delivers parked rooms once the network recovers', async () => {
  const { room, remote } = await bridgedRoom();
  const outage = failRoom(remote);
  assert.equal(await as.pushSend(uniq('sched'), { events: [said(room, 'queued')] }), 200);
  outage.down = false;
  const { handler } = await import('../functions/drain.js');
  // As EventBridge invokes it, a minute's timeout; it returns once nothing is parked.
  const result = await handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, lambdaContext(60_000));
  assert.equal(result.drained, 1);
  assert.deepEqual(delivered(remote), ['queued']);
});

// Last: it turns the bridge's clock a day forward, and a clock only goes forward.
test('an event still failing after the dead-letter age becomes a dead letter, and the room moves on', async () => {
  const { room, remote } = await bridgedRoom();
  const outage = failRoom(remote);
  assert.equal(await as.pushSend(uniq('age'), { events: [said(room, 'stuck')] }), 200);
  assert.equal((await as.drain()).deferred, 1, 'a minute later: still failing, deferred');
  // A day later (the test's clock), still failing: given up, logged, listed.
  as.logs.length = 0;
  assert.equal((await as.drain(25 * 3600_000)).drained, 1);
  const letters = await as.store.listDeadLetters(room.roomId as `!${string}`);
  assert.equal(letters.length, 1);
  assert.match(letters[0]!.reason, /still failing after \d+ h/);
  assert.ok(as.logs.some((l) => l.includes('dead letter') && l.includes(letters[0]!.eventId)));
  // The network recovers: the room moved on, a new message goes straight out.
  outage.down = false;
  assert.equal(await as.pushSend(uniq('age'), { events: [said(room, 'fresh')] }), 200);
  assert.deepEqual(delivered(remote), ['fresh']);
});

test('bounded: past the per-room limit the oldest parked events become dead letters ("room backlog full")', async () => {
  const b = await as.bridge();
  const limit = b.parking.maxParkedEvents;
  b.parking.maxParkedEvents = 3;
  try {
    const { room, remote } = await bridgedRoom();
    const outage = failRoom(remote);
    const events = Array.from({ length: 5 }, (_, i) => said(room, `b${i}`));
    assert.equal(await as.pushSend(uniq('bound'), { events }), 200);
    outage.down = false;
    await as.drain();
    assert.deepEqual(delivered(remote), ['b2', 'b3', 'b4'], 'the newest 3 kept their order');
    const letters = await as.store.listDeadLetters(room.roomId as `!${string}`);
    assert.deepEqual(letters.map((d) => [d.eventId, d.reason]).sort(), [events[0]!, events[1]!].map((e) => [e.event_id, 'room backlog full']).sort());
  } finally {
    b.parking.maxParkedEvents = limit;
  }
});

test('the drainer reports parked rooms, parked events and dead letters as CloudWatch metrics (EMF)', async () => {
  as.logs.length = 0;
  await as.drain();
  const emf = as.logs.map((l) => JSON.parse(l)).find((l) => l._aws);
  assert.ok(emf, 'a metrics line');
  assert.deepEqual(emf._aws.CloudWatchMetrics[0].Metrics.map((m: { Name: string }) => m.Name), ['ParkedRooms', 'ParkedEvents', 'DeadLetters']);
  assert.equal(emf._aws.CloudWatchMetrics[0].Namespace, 'matrix-appservice-lambda');
  assert.equal(emf.ParkedRooms, 0);
  assert.ok(emf.DeadLetters >= 3, 'the dead letters of the tests above');
});
