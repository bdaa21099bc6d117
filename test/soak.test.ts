/**
 * Soak (issue 5, item 7; issue 21): 2,000 small transactions (1–3 messages each, in three bridged
 * rooms, webhook network) pushed the way a homeserver and a fleet of Lambda copies really mix them,
 * while the deliver function works through the SQS FIFO queue beside them (the local SQS server,
 * two pollers as the event source's concurrency):
 *
 * - random duplicates: a transaction that already got 200 is sent again later;
 * - parallel twins: the same txnId sent twice at once (two Lambda copies);
 * - reordered retries: every non-200 is retried, but later and out of order, behind
 *   transactions that came after it;
 * - network faults: 5% of first delivery attempts (and 1% of second ones) answer 503.
 *
 * Once the HS-style retry loop ends (every txnId retried until it got 200) and the queue is empty,
 * the network must have ACCEPTED every event exactly once (the raw list, no de-duplication by the
 * network) and in order within its transaction and room, and RECEIVED nothing more than one extra
 * delivery per injected fault: the AS's transaction records and the queue's deduplication, not the
 * network's Idempotency-Key, are what keep the count right here. A failed delivery's backoff
 * "passes" when the test hands hidden messages out again, so nothing waits on a clock.
 *
 * Everything random comes from one seeded PRNG; the seed is printed (SOAK_SEED=<n> reruns
 * it). Which deliveries fail depends only on the seed and the event ID, not on timing; the
 * interleaving of the concurrent workers is the one thing a rerun does not replay exactly.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';

const SEED = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TRANSACTIONS = Number(process.env.SOAK_TRANSACTIONS ?? 2000);
const WORKERS = Number(process.env.SOAK_WORKERS ?? 4);
const P_DUPLICATE = 0.05;
const P_TWIN = 0.03;
const P_FAIL_FIRST = 0.05;
const P_FAIL_SECOND = 0.01;
const MAX_SENDS_PER_TXN = 60;

/** mulberry32: small, fast, good enough to shuffle a test. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A number in [0, 1) from the seed and a string: the same event fails the same way on a rerun. */
function chance(key: string): number {
  let h = 0x811c9dc5 ^ SEED;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return prng(h >>> 0)();
}

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000' }, {}, { autoDeliver: false });
const ROOMS: string[] = [];
for (const name of ['soak-a', 'soak-b', 'soak-c']) {
  network.rooms.set(name, { name: `#${name}` });
  assert.equal((await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(`#irc_${name}:example.org`)}` })).status, 200);
  ROOMS.push(as.hs.aliases.get(`#irc_${name}:example.org`) as string);
}

interface Txn {
  id: string;
  events: Array<{ event_id: string; room_id: string; sender: string; type: string; origin_server_ts: number; content: Record<string, unknown> }>;
  sends: number;
  ok: boolean;
}

test(`soak: ${TRANSACTIONS} transactions with duplicates, parallel twins, reordered retries, network 5xx, delivered from the queue beside them`, async (t) => {
  t.diagnostic(`seed ${SEED} (rerun with SOAK_SEED=${SEED})`);
  const rnd = prng(SEED);
  const logMark = as.logs.length;

  const txns: Txn[] = Array.from({ length: TRANSACTIONS }, (_, i) => ({
    id: `soak-${SEED}-${i}`,
    events: Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, j) => ({
      event_id: `$soak-${SEED}-${i}-${j}`,
      room_id: ROOMS[Math.floor(rnd() * ROOMS.length)]!,
      sender: `@user${i % 17}:example.org`,
      type: 'm.room.message',
      origin_server_ts: 1_700_000_000_000 + i * 10 + j,
      content: { msgtype: 'm.text', body: `message ${j} of transaction ${i}` },
    })),
    sends: 0,
    ok: false,
  }));

  const injected = new Map<string, number>();
  network.onDeliver = (m: { id: string }, attempt) => {
    const fail = (attempt === 1 && chance(`${m.id}#1`) < P_FAIL_FIRST) || (attempt === 2 && chance(`${m.id}#2`) < P_FAIL_SECOND);
    if (!fail) return undefined;
    injected.set(m.id, (injected.get(m.id) ?? 0) + 1);
    return { status: 503 };
  };

  // The HS's queue of sends. A job is one txnId, sent once or as two parallel twins.
  type Job = { txn: Txn; twin: boolean };
  const queue: Job[] = txns.map((txn) => ({ txn, twin: rnd() < P_TWIN }));
  // Later duplicates of some transactions, each up to 200 places after the original.
  const duplicates = txns
    .map((txn, i) => ({ txn, at: i + 1 + Math.floor(rnd() * 200), dup: rnd() < P_DUPLICATE }))
    .filter((d) => d.dup)
    .sort((a, b) => b.at - a.at);
  for (const d of duplicates) queue.splice(Math.min(d.at, queue.length), 0, { txn: d.txn, twin: false });
  const statuses = new Map<number, number>();
  const unexpected: string[] = [];

  const send = async (txn: Txn): Promise<number> => {
    txn.sends++;
    const res = await as.hsCall('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(txn.id)}`, body: { events: txn.events } });
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status !== 200 && res.status !== 503) unexpected.push(`${txn.id}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.status !== 200 && (typeof res.body?.errcode !== 'string' || typeof res.body?.error !== 'string')) {
      unexpected.push(`${txn.id}: ${res.status} without a Matrix error body`);
    }
    if (res.status === 200) txn.ok = true;
    return res.status;
  };

  let inFlight = 0;
  const worker = async () => {
    for (;;) {
      const job = queue.shift();
      if (!job) {
        if (inFlight === 0) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      inFlight++;
      try {
        const results = await Promise.all(job.twin ? [send(job.txn), send(job.txn)] : [send(job.txn)]);
        // The HS retries what did not get 200: later, behind others, in no particular order.
        if (results.some((s) => s !== 200) && !job.txn.ok) {
          if (job.txn.sends >= MAX_SENDS_PER_TXN) unexpected.push(`${job.txn.id}: still not 200 after ${job.txn.sends} sends`);
          else queue.splice(Math.floor(rnd() * Math.min(queue.length + 1, 60)), 0, { txn: job.txn, twin: rnd() < P_TWIN });
        }
      } finally {
        inFlight--;
      }
    }
  };
  // The deliver function runs beside the homeserver's pushes, as the event source does; a failed
  // delivery's backoff passes as soon as the test hands hidden messages out again.
  let pushing = true;
  as.queues.events.start();
  const retrier = async () => {
    while (pushing) {
      await as.deliver({ retryNow: true });
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const started = Date.now();
  const retrying = retrier();
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const pushed = Date.now() - started;
  pushing = false;
  await retrying;
  await as.queues.events.stop();
  // Each injected failure hides a message once more: go on until the queue is empty.
  for (let i = 0; i < 2000; i++) {
    await as.deliver({ retryNow: true });
    const c = await as.queues.counts();
    if (c.visible + c.hidden === 0) break;
  }
  network.onDeliver = undefined;
  const sends = txns.reduce((n, x) => n + x.sends, 0);
  t.diagnostic(
    `${sends} sends for ${TRANSACTIONS} transactions in ${Date.now() - started} ms (the last push answered after ${pushed} ms); statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
      `${[...injected.values()].reduce((a, b) => a + b, 0)} injected network 503s`,
  );

  const seed = `(seed ${SEED})`;
  assert.deepEqual(unexpected.slice(0, 10), [], `unexpected answers ${seed}`);
  assert.equal(txns.filter((x) => !x.ok).length, 0, `every transaction got 200 in the end ${seed}`);
  assert.ok(injected.size > 0, 'faults were injected');
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 }, 'the queue is empty, nothing dead-lettered');

  // ACCEPTED: each event exactly once, no de-duplication by the network.
  const acceptedCount = new Map<string, number>();
  for (const m of network.accepted) acceptedCount.set(m.id, (acceptedCount.get(m.id) ?? 0) + 1);
  const allIds = txns.flatMap((x) => x.events.map((e) => e.event_id));
  const missing = allIds.filter((id) => !acceptedCount.has(id));
  const twice = [...acceptedCount].filter(([, n]) => n > 1).map(([id, n]) => `${id}×${n}`);
  assert.deepEqual(missing.slice(0, 10), [], `events never accepted ${seed}`);
  assert.deepEqual(twice.slice(0, 10), [], `events accepted more than once ${seed}`);
  assert.equal(network.accepted.length, allIds.length);

  // In order within each transaction, room by room (rooms are delivered side by side).
  const position = new Map(network.accepted.map((m, i) => [m.id as string, i]));
  for (const x of txns) {
    for (const room of ROOMS) {
      const at = x.events.filter((e) => e.room_id === room).map((e) => position.get(e.event_id) ?? -1);
      assert.ok(at.every((p, i) => i === 0 || p > (at[i - 1] ?? -1)), `${x.id} delivered out of order in ${room} ${seed}`);
    }
  }

  // RECEIVED: one delivery per event, plus one per injected fault; never a redelivery of an
  // event the network had already accepted.
  const receivedCount = new Map<string, number>();
  for (const r of network.received) if (r.path === '/messages') receivedCount.set(r.body.id, (receivedCount.get(r.body.id) ?? 0) + 1);
  const extra = allIds.filter((id) => (receivedCount.get(id) ?? 0) !== 1 + (injected.get(id) ?? 0));
  assert.deepEqual(
    extra.slice(0, 10).map((id) => `${id}: received ${receivedCount.get(id)}, injected ${injected.get(id) ?? 0}`),
    [],
    `deliveries beyond the injected faults ${seed}`,
  );

  // The records agree: every transaction done, its cursor at its end.
  const records = new Map((await as.table.items()).filter((i) => i.sk === 'TXN').map((i) => [String(i.pk).slice(4), i]));
  for (const x of txns) {
    const rec = records.get(x.id);
    assert.equal(rec?.state, 'done', `${x.id} ${seed}`);
    assert.equal(rec?.nextEvent, x.events.length, `${x.id} ${seed}`);
  }
  assert.deepEqual(as.logs.slice(logMark).filter((l) => l.includes('"msg":"unexpected error"')), []);
});
