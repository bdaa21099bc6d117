/**
 * DynamoDB faults (issue 5, item 6).
 *
 * This file runs its OWN DynamoDB Local (test/support/restartable-dynamo.ts) on a fixed port,
 * so it can be killed in the middle of a push transaction and started again on the same port,
 * where the AS's client (built once, at cold start) finds it again. It runs on disk
 * (`-dbPath`): the real DynamoDB does not lose acknowledged writes when it is unreachable for
 * a while, so the outage tests keep the data, the transaction's dedup record included.
 *
 * The last test restarts it IN MEMORY instead (DynamoDB Local's default, and what
 * lib/local/dynamodb.ts does): the table comes back empty and is made again, so the dedup
 * record of the transaction is gone and its retry starts over at event 0. Then the only thing
 * between the network and a double delivery is `Idempotency-Key: <event_id>`; the test shows
 * that a network that honours it still takes every event once. (The room mapping is gone too;
 * the warm Lambda's room cache still knows it here, a cold one would not: losing the table is
 * beyond what the design promises to survive.)
 *
 * No status here depends on how fast the machine is (issue 9, item 11): a Lambda budget is either
 * far more than the work needs, or meant to run out and then run out by a fault that lasts
 * (a throttle on every attempt, DynamoDB gone), never by speed; a restarted DynamoDB Local is
 * waited for until it serves the table (untilDynamoServes), not merely until it listens.
 *
 * Throttling is injected below the SDK's retry middleware as a real HTTP 400 answer with
 * DynamoDB's error body, so the SDK's own deserializer makes the
 * ProvisionedThroughputExceededException / ThrottlingException and its standard retry mode
 * (lib/store/client.ts: retryMode standard, maxAttempts 4) decides what to do with it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { restartableDynamo } from '../support/restartable-dynamo.js';
import { startAs, enc } from '../support/as.js';
import type { Reply } from '../support/lambda.js';
import { startFakeNetwork } from '../support/fake-network.js';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { createLocalTable, localDynamoClient } from '../../lib/local/table.js';
import { tableOf } from '../../lib/store/index.js';
import type { RoomAlias, RoomId } from '../../lib/matrix/ids.js';
import { sleep } from '../../lib/time.js';

const dataDir = mkdtempSync(join(tmpdir(), 'dynamodb-fault-'));
const ddb = await restartableDynamo({ dataDir });
// The shared table helper (test/support/dynamo.ts) reads this on first use: point it at ours.
process.env.TEST_DYNAMODB_ENDPOINT = ddb.endpoint;

const network = await startFakeNetwork();
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '1000' });
after(async () => {
  await network.close();
  await ddb.close();
  rmSync(dataDir, { recursive: true, force: true });
});
network.rooms.set('matrix', { name: '#matrix' });
network.rooms.set('other', { name: '#other' });
network.users.set('dana', { displayName: 'Dana' });

/**
 * The Lambda timeout of a push whose claim must outlive it (an outage, a lost progress write)
 * and be waited out by the HS's retries: its lease (hardStop + 2 s) runs out 6 s after it
 * started. Its budget, 2.5 s after the 1.5 s margin, is for a claim and a few deliveries to the
 * local fake network, tens of ms even on a loaded machine. (It was 2 s, a 500 ms budget, which
 * a loaded machine could spend on one call to a DynamoDB Local JVM just restarted: its first
 * conditional write takes ~0.5 s.)
 */
const PUSH_LAMBDA_MS = 4000;
/** The Lambda timeout of an alias query whose lock (its deadline + 1 s) the retries wait out. */
const QUERY_LAMBDA_MS = 4000;
/** Retries that must succeed once the way is clear: a long budget costs nothing, they end when done. */
const RETRY_LAMBDA_MS = 10_000;

const roomQuery = (alias: string) => as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
assert.equal((await roomQuery('#irc_matrix:example.org')).status, 200);
assert.equal((await roomQuery('#irc_other:example.org')).status, 200);
const ROOM = as.hs.aliases.get('#irc_matrix:example.org') as string;
const OTHER = as.hs.aliases.get('#irc_other:example.org') as RoomId;
const bridge = await as.bridge();

let seq = 0;
const message = (body: string, room = ROOM) => ({
  event_id: `$dyn${++seq}-${Math.random().toString(36).slice(2)}`,
  room_id: room,
  sender: '@alice:example.org',
  type: 'm.room.message',
  origin_server_ts: 1_700_000_000_000 + seq,
  content: { msgtype: 'm.text', body },
});
const newTxn = (tag: string) => `ddb-${tag}-${Date.now()}-${++seq}`;

const push = (txnId: string, body: unknown, timeoutMs?: number): Promise<Reply> =>
  as.hsCall('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(txnId)}`, body, timeoutMs });

/** The HS's side: send the transaction again after every non-200, until 200 (bounded). */
async function hsRetryUntil200(txnId: string, body: unknown, opts: { timeoutMs?: number; maxTries?: number; pauseMs?: number } = {}): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < (opts.maxTries ?? 40); i++) {
    const res = await push(txnId, body, opts.timeoutMs);
    statuses.push(res.status);
    if (res.status === 200) return statuses;
    assert.ok(res.status >= 500, `a retry answered ${res.status}: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, opts.pauseMs ?? 250));
  }
  assert.fail(`the transaction never got 200: ${statuses.join(',')}`);
}

/**
 * What a network that honours Idempotency-Key took in from these events: the first accepted
 * delivery per key, in order. (The fake network itself records every 2xx in `accepted`.)
 */
function acceptedOncePerKey(ids: string[]): string[] {
  const mine = new Set(ids);
  const seen = new Set<string>();
  for (const r of network.received) {
    if (r.path !== '/messages' || !mine.has(r.body?.id) || r.status < 200 || r.status > 299) continue;
    assert.equal(r.idempotencyKey, r.body.id, 'every delivery carries Idempotency-Key: <event_id>');
    seen.add(r.idempotencyKey as string);
  }
  return [...seen];
}
/** Deliveries of one event the network RECEIVED, whatever it answered. */
const receivedCount = (id: string) => network.received.filter((r) => r.path === '/messages' && r.body?.id === id).length;
/** Deliveries of one event the network ACCEPTED (2xx), without de-duplication. */
const acceptedCount = (id: string) => network.accepted.filter((m) => m.id === id).length;
const txnItem = async (txnId: string) => (await as.table.items()).find((i) => i.pk === `TXN#${txnId}`);

// ------------------------------------------------------------------------------------------------
// Throttling: a fake HTTP answer from "DynamoDB", below the SDK's retry middleware.

interface Throttle {
  /** e.g. UpdateItemCommand */
  command: string;
  /** only requests whose JSON body contains this */
  bodyIncludes: string;
  /** let this many matching attempts through first (default 0) */
  skip?: number;
  /** then fail this many attempts, then let the rest through */
  times: number;
  error: 'ProvisionedThroughputExceededException' | 'ThrottlingException' | 'InternalServerError';
  /** attempts seen (failed and passed) */
  attempts: number;
  failed: number;
}
const throttles: Throttle[] = [];
const throttle = (t: Omit<Throttle, 'attempts' | 'failed'>): Throttle => {
  const rule = { ...t, attempts: 0, failed: 0 };
  throttles.push(rule);
  return rule;
};

/** Set while DynamoDB Local is being killed: DynamoDB calls wait until it is really gone. */
let dying: Promise<void> | undefined;
const killDynamo = () => {
  ddb.kill();
  dying = ddb.stopped();
};
const restartDynamo = async (opts?: { inMemory?: boolean }) => {
  await dying;
  await ddb.start(opts);
  dying = undefined;
};
/**
 * Waits until a restarted DynamoDB Local SERVES the table, not merely listens (ddb.start only
 * waits for ListTables): the table is ACTIVE, and the AS's own client has made the kinds of
 * call a push and a query make (a read, a conditional write, a conditional delete). A JVM just
 * started answers its first conditional write in about half a second (~30 ms warm); that is
 * paid here, not inside the budget of the request under test.
 */
async function untilDynamoServes(): Promise<void> {
  const client = localDynamoClient(ddb.endpoint);
  try {
    for (let tries = 1; ; tries++) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: as.table.tableName }));
      if (Table?.TableStatus === 'ACTIVE') break;
      assert.ok(tries < 300, `the table is still ${Table?.TableStatus} after 30 s`);
      await sleep(100);
    }
  } finally {
    client.destroy();
  }
  const probe = `#irc_readiness-probe-${++seq}:example.org` as RoomAlias;
  await bridge.store.getTransaction(`readiness-probe-${seq}`);
  assert.ok(await bridge.store.lockAlias(probe, 'readiness-probe', 60_000), 'a conditional write on a fresh key succeeds');
  await bridge.store.releaseAlias(probe, 'readiness-probe');
  assert.equal(await bridge.store.getAlias(probe), undefined);
}
/** Kill DynamoDB just before the next DynamoDB call that matches. */
let killBefore: ((command: string, input: string) => boolean) | undefined;

type AnyNext = (args: any) => Promise<any>;
type AnyContext = { commandName?: string };
const stack = tableOf(bridge.store)!.doc.middlewareStack as unknown as {
  add(mw: (next: AnyNext, context: AnyContext) => AnyNext, opts: Record<string, unknown>): void;
};

stack.add(
  (next, context) => async (args) => {
    if (killBefore?.(String(context.commandName), JSON.stringify(args.input ?? {}))) {
      killBefore = undefined;
      killDynamo();
    }
    await dying;
    return next(args);
  },
  { step: 'initialize', priority: 'high', name: 'outageGate' },
);

stack.add(
  (next, context) => async (args) => {
    const raw: unknown = args.request?.body;
    // TextDecoder reads the bytes; Buffer.from() would go through the SDK body's valueOf().
    const body = raw instanceof Uint8Array ? new TextDecoder().decode(raw) : String(raw ?? '');
    const rule = throttles.find((t) => t.command === context.commandName && body.includes(t.bodyIncludes));
    if (!rule) return next(args);
    rule.attempts++;
    if (rule.attempts <= (rule.skip ?? 0) || rule.failed >= rule.times) return next(args);
    rule.failed++;
    const status = rule.error === 'InternalServerError' ? 500 : 400;
    const payload = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${rule.error}`, message: `injected ${rule.error}` });
    return {
      response: {
        statusCode: status,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `injected-${rule.attempts}` },
        body: Readable.from([Buffer.from(payload)]),
      },
    };
  },
  // Inside the retry middleware (finalizeRequest), after the deserializer: once per attempt,
  // and what it answers is parsed like a real DynamoDB error.
  { step: 'deserialize', priority: 'low', name: 'injectThrottling' },
);


function assertClear5xx(res: Reply): void {
  assert.ok(res.status >= 500 && res.status <= 599, `status ${res.status}`);
  assert.match(res.body?.errcode, /^M_[A-Z_]+$/);
  assert.equal(typeof res.body.error, 'string');
}
/** Log lines from `mark` on that betray an unclassified exception. */
const unexpectedErrors = (mark: number) => as.logs.slice(mark).filter((l) => l.includes('"msg":"unexpected error"'));

// Concurrent subtests share the network and the logs: each looks only at its own events, and
// nothing is reset between tests.

test('throttling and DynamoDB 500s are retried by the SDK (standard mode, 4 attempts) and the request succeeds', { concurrency: true }, async (t) => {
  const mark = as.logs.length;
  await Promise.all([
    t.test('the claim of a transaction, throttled twice (ProvisionedThroughputExceededException)', async () => {
      const id = newTxn('claim');
      const events = [message('c1'), message('c2')];
      const rule = throttle({ command: 'UpdateItemCommand', bodyIncludes: `"TXN#${id}"`, times: 2, error: 'ProvisionedThroughputExceededException' });
      const res = await push(id, { events });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(rule.failed, 2);
      assert.equal(rule.attempts, 2 + 1 + 1, 'claim: 2 throttled + 1 through; progress write: 1');
      for (const e of events) assert.equal(acceptedCount(e.event_id), 1);
      assert.equal((await txnItem(id))?.state, 'done');
    }),
    t.test('the progress write of a transaction, throttled three times (ThrottlingException)', async () => {
      const id = newTxn('progress');
      const events = [message('p1'), message('p2'), message('p3')];
      // The first UpdateItem with this key is the claim: let it through, then throttle the
      // progress write on 3 of its 4 attempts.
      const rule = throttle({ command: 'UpdateItemCommand', bodyIncludes: `"TXN#${id}"`, skip: 1, times: 3, error: 'ThrottlingException' });
      const res = await push(id, { events });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(rule.attempts, 1 + 4, 'claim 1 attempt; progress write 3 throttled + 1 through');
      for (const e of events) assert.equal(acceptedCount(e.event_id), 1);
      const item = await txnItem(id);
      assert.equal(item?.state, 'done');
      assert.equal(item?.nextEvent, 3);
    }),
    t.test('the batch read of bridged rooms, a DynamoDB 500 twice (InternalServerError)', async () => {
      bridge.roomCache.delete(OTHER);
      const id = newTxn('rooms');
      const events = [message('r1', OTHER)];
      const rule = throttle({ command: 'BatchGetItemCommand', bodyIncludes: `ROOM#${OTHER}`, times: 2, error: 'InternalServerError' });
      const res = await push(id, { events });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual([rule.failed, rule.attempts], [2, 3]);
      assert.equal(acceptedCount(events[0]!.event_id), 1, 'delivered: the room was found');
    }),
    t.test('the user record of a user query, throttled once on read and once on write', async () => {
      const userId = '@irc_dana:example.org';
      const read = throttle({ command: 'GetItemCommand', bodyIncludes: `USER#${userId}`, times: 1, error: 'ThrottlingException' });
      const write = throttle({ command: 'PutItemCommand', bodyIncludes: `USER#${userId}`, times: 1, error: 'ProvisionedThroughputExceededException' });
      const res = await as.hsCall('user-query', { method: 'GET', path: `/_matrix/app/v1/users/${enc(userId)}` });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual([read.failed, read.attempts, write.failed, write.attempts], [1, 2, 1, 2]);
      assert.equal((await as.table.items()).filter((i) => i.pk === `USER#${userId}`).length, 1);
    }),
  ]);
  assert.deepEqual(unexpectedErrors(mark), []);
});

test('DynamoDB failing past the SDK\'s retries: a clear 503, nothing half-done, and the HS\'s retry completes it', { concurrency: true }, async (t) => {
  const mark = as.logs.length;
  await Promise.all([
    t.test('the claim, throttled on all 4 attempts: nothing delivered, no record', async () => {
      const id = newTxn('exhausted');
      const events = [message('x1'), message('x2')];
      const rule = throttle({ command: 'UpdateItemCommand', bodyIncludes: `"TXN#${id}"`, times: 4, error: 'ProvisionedThroughputExceededException' });
      const first = await push(id, { events });
      assertClear5xx(first);
      assert.equal(first.status, 503, 'throttling is "try again", not an internal error');
      assert.equal(rule.attempts, 4, 'the SDK made its 4 attempts');
      for (const e of events) assert.equal(receivedCount(e.event_id), 0, 'nothing delivered without a claim');
      assert.equal(await txnItem(id), undefined, 'no claim was written');
      assert.deepEqual(await hsRetryUntil200(id, { events }), [200]);
      for (const e of events) assert.equal(acceptedCount(e.event_id), 1);
    }),
    t.test('the events are queued, then the "done" write fails on all 4 attempts: 503, and the retry delivers each event once', async () => {
      const id = newTxn('lostprogress');
      const events = Array.from({ length: 5 }, (_, i) => message(`q${i}`));
      const ids = events.map((e) => e.event_id);
      // The claim goes through; the write that marks the transaction done fails, all 4 SDK attempts.
      const rule = throttle({ command: 'UpdateItemCommand', bodyIncludes: `"TXN#${id}"`, skip: 1, times: 4, error: 'InternalServerError' });
      const first = await push(id, { events }, PUSH_LAMBDA_MS);
      assert.equal(first.status, 503);
      assert.equal(rule.failed, 4);
      assert.ok(as.logs.slice(mark).some((l) => l.includes('could not record progress')), 'the lost progress write is logged');
      await hsRetryUntil200(id, { events }, { timeoutMs: PUSH_LAMBDA_MS });
      await as.deliver();
      assert.deepEqual(acceptedOncePerKey(ids), ids);
      // Queued by the first attempt; the retry's are the same events, which the queue drops as repeats.
      assert.deepEqual(ids.map(receivedCount), [1, 1, 1, 1, 1]);
      assert.equal((await txnItem(id))?.state, 'done');
    }),
    t.test('an alias query whose "ready" write fails after the HS made the room: the retry adopts that room', async () => {
      const alias = '#irc_unready:example.org';
      network.rooms.set('unready', { name: '#unready' });
      // PutItems naming the alias: the lock, the room → alias item, then the "ready" write we fail.
      const rule = throttle({ command: 'PutItemCommand', bodyIncludes: alias, skip: 2, times: 4, error: 'InternalServerError' });
      const first = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}`, timeoutMs: QUERY_LAMBDA_MS });
      assertClear5xx(first);
      assert.equal(first.status, 503);
      assert.equal(rule.failed, 4);
      const made = [...as.hs.rooms.values()].filter((r) => r.alias === alias);
      assert.equal(made.length, 1, 'the HS made the room');
      // The lock stays until the failed query's deadline + 1 s; then a retry takes it, meets
      // M_ROOM_IN_USE and adopts the room rather than make a second one. (A retry's budget
      // outlasts the lock: the first one waits for it and succeeds; the HS's bound stays.)
      let res: Reply | undefined;
      for (let i = 0; i < 10 && res?.status !== 200; i++) {
        res = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}`, timeoutMs: RETRY_LAMBDA_MS });
        assert.ok(res.status === 200 || res.status === 503, JSON.stringify(res.body));
      }
      assert.equal(res?.status, 200);
      assert.equal([...as.hs.rooms.values()].filter((r) => r.alias === alias).length, 1, 'still one room');
      const item = (await as.table.items()).find((i) => i.pk === `ALIAS#${alias}` && i.sk === 'ROOM');
      assert.equal(item?.state, 'ready');
      assert.equal(item?.roomId, made[0]?.roomId);
    }),
  ]);
  assert.deepEqual(unexpectedErrors(mark), []);
});

// ------------------------------------------------------------------------------------------------
// Outages: DynamoDB Local killed while the network is delivering, then started again.

test('DynamoDB goes away after the events are queued: 503, the HS retry completes it, each event delivered once', async () => {
  const mark = as.logs.length;
  const id = newTxn('outage');
  const events = Array.from({ length: 6 }, (_, i) => message(`o${i}`));
  const ids = events.map((e) => e.event_id);
  // The claim is written and the events are queued; DynamoDB dies just before the "done" write.
  // Every DynamoDB call after that waits until the process is gone (the outage gate above).
  let updates = 0;
  killBefore = (command, input) => command === 'UpdateItemCommand' && input.includes(`TXN#${id}`) && ++updates === 2;
  const first = await push(id, { events }, PUSH_LAMBDA_MS);
  assertClear5xx(first);
  assert.equal(first.status, 503, 'a DynamoDB outage is "try again"');
  // The queue is not DynamoDB: what was queued goes out while the table is down.
  await as.deliver();
  assert.deepEqual(acceptedOncePerKey(ids), ids, 'queued before the outage: every event went out once');

  // The HS retries while DynamoDB is still down: the claim can be neither read nor written.
  const during = await push(id, { events }, PUSH_LAMBDA_MS);
  assertClear5xx(during);
  assert.equal(during.status, 503);

  await restartDynamo();
  await untilDynamoServes();
  // The dead copy's claim survived the outage (on disk) and still holds its lease, so the
  // first retries answer 503 (busy) until it runs out (its hardStop + 2 s); then a copy takes
  // over at the cursor the record holds. How many 503s that takes depends on the machine's
  // speed, so only their kind is asserted: busy (503) until one 200, within the HS's bound.
  const statuses = await hsRetryUntil200(id, { events }, { timeoutMs: PUSH_LAMBDA_MS });
  assert.ok(statuses.every((s, i) => (i === statuses.length - 1 ? s === 200 : s === 503)), statuses.join(','));
  await as.deliver();

  // The record's cursor was still 0 (its writes never landed), so the retry queued all six again:
  // the queue dropped them (FIFO deduplication, 5 minutes), so the network got each once.
  assert.deepEqual(acceptedOncePerKey(ids), ids);
  assert.deepEqual(ids.map(receivedCount), [1, 1, 1, 1, 1, 1]);
  const item = await txnItem(id);
  assert.equal(item?.state, 'done');
  assert.equal(item?.nextEvent, 6);
  // After the outage, a new transaction goes through as usual.
  const next = [message('after')];
  assert.equal((await push(newTxn('after'), { events: next })).status, 200);
  assert.equal(acceptedCount(next[0]!.event_id), 1);
  assert.deepEqual(unexpectedErrors(mark), []);
});

test('DynamoDB restarted EMPTY (in memory) mid-transaction: the dedup record is lost, and the queue\'s deduplication keeps each event delivered once', async () => {
  const mark = as.logs.length;
  const id = newTxn('amnesia');
  const events = Array.from({ length: 4 }, (_, i) => message(`a${i}`));
  const ids = events.map((e) => e.event_id);
  let updates = 0;
  killBefore = (command, input) => command === 'UpdateItemCommand' && input.includes(`TXN#${id}`) && ++updates === 2;
  // The claim's lease goes with the table here, so no push needs a short Lambda: with the
  // default budget (25 s) neither the first push nor the retry can run out of time, and the
  // first push's 503 comes from the outage alone (its "done" write finds DynamoDB gone).
  const first = await push(id, { events });
  assert.equal(first.status, 503);
  await as.deliver();
  assert.deepEqual(ids.map(receivedCount), [1, 1, 1, 1], 'queued before the outage: every event went out once');

  await restartDynamo({ inMemory: true });
  // The table went with the process: make it again, empty, and wait until it serves. No TXN
  // record means no lease to wait for and no cursor: the retry claims the transaction
  // afresh, at event 0, and queues every event again.
  await createLocalTable(ddb.endpoint, as.table.tableName);
  await untilDynamoServes();
  assert.equal(await bridge.store.getTransaction(id), undefined, 'the dedup record did not survive');
  assert.deepEqual(await hsRetryUntil200(id, { events }, { timeoutMs: RETRY_LAMBDA_MS }), [200], 'no lease to wait out');
  await as.deliver();

  // Within SQS's 5-minute deduplication the queue drops the second copies; past it, the network's
  // Idempotency-Key is what would keep them from being taken twice (the contract asks for it).
  assert.deepEqual(acceptedOncePerKey(ids), ids);
  assert.deepEqual(ids.map(receivedCount), [1, 1, 1, 1], 'the AS could no longer tell, the queue could');
  assert.equal((await txnItem(id))?.state, 'done');
  assert.deepEqual(unexpectedErrors(mark), []);
});
