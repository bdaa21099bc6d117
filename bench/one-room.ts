/**
 * 5. One room failing (issues 17 and 21). N rooms bridged; a stream of transactions whose events
 * are spread over the rooms, through our push handler, one transaction after the other, as the
 * homeserver sends them; after each, the deliver function takes the queue's events to the network
 * on the event source (the deployed batch size and maximum concurrency, lib/defaults.ts DELIVERY).
 * Two runs, everything else alike:
 *   (a) no failures;
 *   (b) the network fails every message of ONE room with a transient error (RetryLaterError): the
 *       deliver function reports that room's messages failed, they wait out their backoff hidden on
 *       the queue, the room's later messages wait behind them (its FIFO message group), and the
 *       other rooms flow.
 * Measured: the healthy rooms' delivery time (from a transaction being sent to the last of its
 * healthy-room events reaching the network port), the time to the answer, the healthy events/s of
 * the stream, the DynamoDB and SQS calls per transaction; for (b), that every message of the failing
 * room is delivered, in order, once the failure stops.
 *
 * The measured transactions are split into rounds, each (a) then (b) then the recovery, so that a
 * noisy moment of this 2-core machine is spread over both runs. The backoff a failing message waits
 * out is real time during a round (from 2 s, doubling); at the recovery the messages still hidden
 * are handed out again at once (as test/support/as.ts `deliver({ retryNow: true })` does), so the
 * recovery is measured without waiting out a backoff that has grown to many seconds.
 *
 * `node --import tsx bench/one-room.ts` runs it alone (BENCH_QUICK=1 and the BENCH_ONEROOM_* knobs
 * apply); `npm run bench` runs it as section 5.
 */
import { pathToFileURL } from 'node:url';
import { RetryLaterError } from '../lib/bridge/network.js';
import type { NetworkPort } from '../lib/bridge/network.js';
import { SEND_STATUS_TYPE } from '../lib/bridge/send-status.js';
import { DELIVERY } from '../lib/defaults.js';
import type { RoomId } from '../lib/matrix/ids.js';
import type { DeliveryQueue } from '../lib/queue/port.js';
import { BEFORE } from './before.js';
import { enc, knobs, latency, now, round } from './lib.js';
import type { Knobs, Latency, Row } from './lib.js';
import { addDynamo, addSqs, bridgedRoomOurs, emptyDynamo, emptySqs, perTxn } from './push.js';
import { DOMAIN, callsPer, eventSourceBilled, eventSourceCalls, eventSourceExtras } from './subjects.js';
import type { DeliverInvocation, DynamoTally, Ours, SqsTally } from './subjects.js';

export type OneRoomKnobs = Knobs['oneRoom'];

export interface OneRoomRun {
  mode: 'a' | 'b';
  label: string;
  txns: number;
  /** Events of the healthy rooms (all rooms but the failing one, in (a) as well), over all measured transactions. */
  healthyEvents: number;
  /** Per transaction: from the request to the last of its healthy-room events delivered to the network port, ms. */
  healthyMs: Latency;
  /** Per transaction: from the request to the 200 (claim + enqueue + done), ms. */
  answerMs: Latency;
  /** Healthy events ÷ the sum of the transactions' answer times: the stream's rate when the HS sends one at a time. */
  healthyEventsPerSec: number;
  /** Transactions not answered 200, healthy events not delivered, and in (a) any event not delivered. */
  errors: number;
  /** Push's DynamoDB calls (the deliver function's, the message mapping, are left out: 3b. and 4. count them). */
  dynamo: { callsPerTxn: number; calls: string[]; wruPerTxn: number; rruPerTxn: number; msPerTxn: number };
  /** SQS requests per transaction: the bridge's (push's SendMessageBatch, deliver's ChangeMessageVisibilityBatch) and the event source's. */
  sqs: { bridge: Record<string, number>; eventSource: Record<string, number>; billedPerTxn: number; extrasPerTxn: Record<string, number> };
  /** Deliver invocations per transaction, and records they reported failed. */
  invocationsPerTxn: number;
  failedRecords: number;
}

export interface OneRoomRecovery {
  round: number;
  /** Events of the failing room sent in this round's (b), and how many were delivered while it failed (0 expected). */
  sent: number;
  deliveredWhileFailing: number;
  /** Deliveries the network refused during (b): each one a deliver attempt of the failing room. */
  refused: number;
  /** Times the deliver function hid the room's messages for a retry (ChangeMessageVisibilityBatch), and its last backoff. */
  retries: number;
  lastBackoffMs: number;
  /** When the room's hidden messages would have come back by their backoff, had they not been handed out at once. */
  dueInMs: number;
  recoveryMs: number;
  /** The failing room's events delivered by the recovery, and whether in the homeserver's order and once each. */
  delivered: number;
  inOrder: boolean;
  invocations: number;
  sqsCalls: number;
  /** Messages left on the queue afterwards (visible or hidden), 0 expected. */
  leftOnQueue: number;
  /** com.beeper.message_send_status events the senders got for the failing room's events this round. */
  pendingStatuses: number;
  successStatuses: number;
}

export interface OneRoomResult {
  rooms: number;
  eventsPerTxn: number;
  rounds: number;
  warmup: number;
  batchSize: number;
  concurrency: number;
  a: OneRoomRun;
  b: OneRoomRun;
  /** (b) ÷ (a). */
  ratio: { healthyP50: number; healthyMean: number; healthyP99: number; answerMean: number; healthyEventsPerSec: number };
  recoveries: OneRoomRecovery[];
  errors: number;
}

const FAILING = 0;
let seq = 0;

interface Txn {
  txnId: string;
  body: string;
  /** Event ids of the healthy rooms. */
  healthy: string[];
  /** Event ids of the failing room, in order. */
  failing: string[];
}

/** Transactions whose events go round-robin over the rooms, starting one room further each time. */
function spread(roomIds: RoomId[], size: number, count: number, tag: string): Txn[] {
  const run = `${Date.now().toString(36)}${(seq++).toString(36)}-${tag}`;
  const out: Txn[] = [];
  for (let t = 0; t < count; t++) {
    const healthy: string[] = [];
    const failing: string[] = [];
    const events = Array.from({ length: size }, (_, i) => {
      const r = (t + i) % roomIds.length;
      const id = `$${run}-${t}-${i}-r${r}:${DOMAIN}`;
      (r === FAILING ? failing : healthy).push(id);
      return {
        event_id: id,
        room_id: roomIds[r],
        sender: `@alice:${DOMAIN}`,
        type: 'm.room.message',
        origin_server_ts: 1_700_000_000_000 + t * size + i,
        content: { msgtype: 'm.text', body: `message ${i} of transaction ${t}, room ${r}` },
        unsigned: { age: 10 },
      };
    });
    out.push({ txnId: `${run}-${t}`, body: JSON.stringify({ events }), healthy, failing });
  }
  return out;
}

interface Block {
  healthy: number[];
  answer: number[];
  healthyEvents: number;
  errors: number;
  dynamo: DynamoTally;
  bridgeSqs: SqsTally;
  eventSourceSqs: SqsTally;
  invocations: DeliverInvocation[];
  txns: number;
}

const emptyBlock = (): Block => ({ healthy: [], answer: [], healthyEvents: 0, errors: 0, dynamo: emptyDynamo(), bridgeSqs: emptySqs(), eventSourceSqs: emptySqs(), invocations: [], txns: 0 });

export async function oneRoomOurs(ours: Ours, k: OneRoomKnobs, log: (s: string) => void = () => {}): Promise<OneRoomResult> {
  const b = ours.bridge;
  const roomIds: RoomId[] = [];
  for (let i = 0; i < k.rooms; i++) roomIds.push((await bridgedRoomOurs(ours)) as RoomId);
  const failingRoom = roomIds[FAILING] as RoomId;

  // The network port: the subject's no-op deliver, behind a switch that fails the one room.
  const original: NetworkPort = b.network;
  const deliveredAt = new Map<string, number>();
  const failingDelivered: string[] = [];
  let failing = false;
  let refused = 0;
  const isFailingRoom = (id: string) => id.endsWith(`-r${FAILING}:${DOMAIN}`);
  b.network = {
    ...original,
    deliver: async (d) => {
      const id = d.body.id;
      if (failing && isFailingRoom(id)) {
        refused++;
        throw new RetryLaterError('down');
      }
      deliveredAt.set(id, now());
      if (isFailingRoom(id)) failingDelivered.push(id);
      return original.deliver(d);
    },
  };
  // The deliver function's retries, seen on their way to the queue: how long the failing room waits.
  const originalQueue: DeliveryQueue = b.deliveryQueue;
  const retries: Array<{ at: number; delayMs: number }> = [];
  b.deliveryQueue = {
    ...originalQueue,
    retryLater: async (receipts, delayMs) => {
      retries.push({ at: Date.now(), delayMs });
      await originalQueue.retryLater(receipts, delayMs);
    },
  };

  const send = async (t: Txn) => (await ours.call('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(t.txnId)}`, rawBody: t.body })).status;

  /** One block of transactions, each timed; in (a) the failing room's events must arrive too. */
  const runBlock = async (txns: Txn[], into: Block, mode: 'a' | 'b') => {
    deliveredAt.clear();
    failingDelivered.length = 0;
    ours.dynamoCounter.reset();
    ours.sqsCounter.reset();
    ours.eventSourceSqs.reset();
    ours.takeInvocations();
    for (const t of txns) {
      const started = now();
      const status = await send(t);
      const answered = now();
      into.dynamo = addDynamo(into.dynamo, ours.dynamoCounter.reset());
      // The event source takes the queue's events to the network (all rooms at once, up to its concurrency).
      await ours.deliver();
      // The deliver function's own calls (the message mapping of each message delivered: 3b. and 4. count them) are not push's.
      ours.dynamoCounter.reset();
      let last = -Infinity;
      let missing = 0;
      for (const id of t.healthy) {
        const at = deliveredAt.get(id);
        if (at === undefined) missing++;
        else last = Math.max(last, at);
      }
      if (mode === 'a') for (const id of t.failing) if (!deliveredAt.has(id)) missing++;
      if (status !== 200) into.errors++;
      into.errors += missing;
      into.healthy.push((Number.isFinite(last) ? last : answered) - started);
      into.answer.push(answered - started);
      into.healthyEvents += t.healthy.length;
    }
    into.bridgeSqs = addSqs(into.bridgeSqs, ours.sqsCounter.reset());
    into.eventSourceSqs = addSqs(into.eventSourceSqs, ours.eventSourceSqs.reset());
    into.invocations.push(...ours.takeInvocations());
    into.txns += txns.length;
  };

  /** The failure stops; the failing room's hidden messages are handed out at once, and the queue is worked through. */
  const recover = async (round: number, sentTxns: Txn[], refusedBefore: number, retriesBefore: number): Promise<OneRoomRecovery> => {
    failing = false;
    const expected = sentTxns.flatMap((t) => t.failing);
    const deliveredWhileFailing = failingDelivered.length;
    const mine = retries.slice(retriesBefore);
    const lastRetry = mine[mine.length - 1];
    const dueInMs = lastRetry ? lastRetry.at + lastRetry.delayMs - Date.now() : NaN;
    failingDelivered.length = 0;
    ours.sqsCounter.reset();
    ours.eventSourceSqs.reset();
    ours.takeInvocations();
    const started = now();
    await ours.deliver({ retryNow: true });
    const recoveryMs = now() - started;
    const sqsCalls = ours.sqsCounter.totalCalls() + ours.eventSourceSqs.totalCalls();
    const invocations = ours.takeInvocations().length;
    ours.sqsCounter.reset();
    ours.eventSourceSqs.reset();
    const counts = await queueCounts(ours);
    const statuses = (ours.hs.rooms.get(failingRoom)?.events ?? []).filter((e) => e.type === SEND_STATUS_TYPE && expected.includes(String(e.content?.['m.relates_to']?.event_id)));
    return {
      round,
      sent: expected.length,
      deliveredWhileFailing,
      refused: refused - refusedBefore,
      retries: mine.length,
      lastBackoffMs: lastRetry?.delayMs ?? NaN,
      dueInMs,
      recoveryMs,
      delivered: failingDelivered.length,
      inOrder: failingDelivered.length === expected.length && failingDelivered.every((id, i) => id === expected[i]),
      invocations,
      sqsCalls,
      leftOnQueue: counts.visible + counts.hidden,
      pendingStatuses: statuses.filter((e) => e.content?.status === 'PENDING').length,
      successStatuses: statuses.filter((e) => e.content?.status === 'SUCCESS').length,
    };
  };

  const blocks = { a: emptyBlock(), b: emptyBlock() };
  const recoveries: OneRoomRecovery[] = [];
  try {
    // Unmeasured: JIT for both paths (the failure, its retry, the statuses, the recovery), the room cache, connections.
    log(`5. one room failing: ${k.rooms} rooms bridged; warm-up: ${k.warmup} transactions of (a), then of (b), then the recovery ...`);
    await runBlock(spread(roomIds, k.eventsPerTxn, k.warmup, 'wa'), emptyBlock(), 'a');
    failing = true;
    const warmB = spread(roomIds, k.eventsPerTxn, k.warmup, 'wb');
    await runBlock(warmB, emptyBlock(), 'b');
    await recover(0, warmB, refused, retries.length);

    const perRound = Math.max(1, Math.floor(k.txns / k.rounds));
    for (let r = 1; r <= k.rounds; r++) {
      log(`5. one room failing, round ${r}/${k.rounds}: ${perRound} transactions of (a) no failures, ${perRound} of (b) one room failing, then the recovery ...`);
      failing = false;
      await runBlock(spread(roomIds, k.eventsPerTxn, perRound, `a${r}`), blocks.a, 'a');
      failing = true;
      const refusedBefore = refused;
      const retriesBefore = retries.length;
      const txns = spread(roomIds, k.eventsPerTxn, perRound, `b${r}`);
      await runBlock(txns, blocks.b, 'b');
      recoveries.push(await recover(r, txns, refusedBefore, retriesBefore));
    }
  } finally {
    failing = false;
    b.network = original;
    b.deliveryQueue = originalQueue;
  }

  const run = (mode: 'a' | 'b'): OneRoomRun => {
    const x = blocks[mode];
    const total = x.answer.reduce((s, v) => s + v, 0);
    const calls = Object.values(x.dynamo.calls).reduce((s, c) => s + c, 0);
    const n = Math.max(x.txns, 1);
    return {
      mode,
      label: mode === 'a' ? '(a) no failures' : '(b) one room failing',
      txns: x.txns,
      healthyEvents: x.healthyEvents,
      healthyMs: latency(x.healthy),
      answerMs: latency(x.answer),
      healthyEventsPerSec: (x.healthyEvents * 1000) / total,
      errors: x.errors,
      dynamo: { callsPerTxn: calls / n, calls: perTxn(x.dynamo.calls, n), wruPerTxn: x.dynamo.wru / n, rruPerTxn: x.dynamo.rru / n, msPerTxn: x.dynamo.ms / n },
      sqs: {
        bridge: callsPer(x.bridgeSqs.calls, n),
        // What Lambda's event source mapping would be billed for; the emulation's other calls apart.
        eventSource: callsPer(eventSourceCalls(x.eventSourceSqs), n),
        billedPerTxn: (x.bridgeSqs.billed + eventSourceBilled(x.eventSourceSqs)) / n,
        extrasPerTxn: callsPer(eventSourceExtras(x.eventSourceSqs), n),
      },
      invocationsPerTxn: x.invocations.length / n,
      failedRecords: x.invocations.reduce((s, i) => s + i.failed, 0),
    };
  };
  const a = run('a');
  const bb = run('b');
  const recoveryErrors = recoveries.reduce((n, d) => n + (d.inOrder && d.leftOnQueue === 0 && d.deliveredWhileFailing === 0 ? 0 : 1), 0);
  return {
    rooms: k.rooms,
    eventsPerTxn: k.eventsPerTxn,
    rounds: k.rounds,
    warmup: k.warmup,
    batchSize: DELIVERY.BATCH_SIZE,
    concurrency: DELIVERY.MAX_CONCURRENCY,
    a,
    b: bb,
    ratio: {
      healthyP50: bb.healthyMs.p50 / a.healthyMs.p50,
      healthyMean: bb.healthyMs.mean / a.healthyMs.mean,
      healthyP99: bb.healthyMs.p99 / a.healthyMs.p99,
      answerMean: bb.answerMs.mean / a.answerMs.mean,
      healthyEventsPerSec: bb.healthyEventsPerSec / a.healthyEventsPerSec,
    },
    recoveries,
    errors: a.errors + bb.errors + recoveryErrors,
  };
}

async function queueCounts(ours: Ours): Promise<{ visible: number; hidden: number }> {
  const { GetQueueAttributesCommand } = await import('@aws-sdk/client-sqs');
  const out = await ours.queues.client.send(
    new GetQueueAttributesCommand({ QueueUrl: ours.queues.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  const a = (out.Attributes ?? {}) as Record<string, string | undefined>;
  return { visible: Number(a.ApproximateNumberOfMessages ?? 0), hidden: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

// ------------------------------------------------------------------ printing

export const ONE_ROOM_TARGET = 1.2;

const ONE_ROOM_BEFORE = BEFORE.oneRoom;

export function oneRoomSection(r: OneRoomResult): string {
  return `5. one room failing: ${r.rooms} rooms, ${r.eventsPerTxn} events/txn spread over them, ${r.a.txns} txns per run in ${r.rounds} rounds of (a) then (b); no-op network; deliver batch ${r.batchSize}, concurrency ${r.concurrency}`;
}

/** Rows for the main table (ours only: the peers have no delivery queue to compare). */
export function oneRoomRows(r: OneRoomResult): Row[] {
  const section = oneRoomSection(r);
  const row = (metric: string, unit: string, ours: number | string, better: Row['better'] = ''): Row => ({ section, metric, unit, ours, peers: {}, better });
  const sent = r.recoveries.reduce((n, d) => n + d.sent, 0);
  return [
    row('(a) healthy-room delivery per txn p50', 'ms', r.a.healthyMs.p50, 'lower'),
    row('(b) healthy-room delivery per txn p50', 'ms', r.b.healthyMs.p50, 'lower'),
    row('(a) healthy-room delivery per txn mean', 'ms', r.a.healthyMs.mean, 'lower'),
    row('(b) healthy-room delivery per txn mean', 'ms', r.b.healthyMs.mean, 'lower'),
    row(`(b)/(a) healthy-room delivery, p50 / mean (target ≤ ${ONE_ROOM_TARGET})`, '×', `${round(r.ratio.healthyP50)} / ${round(r.ratio.healthyMean)}`),
    row('(a) answered per txn mean', 'ms', r.a.answerMs.mean, 'lower'),
    row('(b) answered per txn mean', 'ms', r.b.answerMs.mean, 'lower'),
    row('(b)/(a) answered per txn mean', '×', r.ratio.answerMean, 'lower'),
    row('(b)/(a) healthy events/s of the stream', '×', r.ratio.healthyEventsPerSec, 'higher'),
    row('(a) / (b) DynamoDB calls/txn', 'calls', `${round(r.a.dynamo.callsPerTxn)} / ${round(r.b.dynamo.callsPerTxn)}`),
    row('(a) / (b) SQS requests/txn (billed)', 'req', `${round(r.a.sqs.billedPerTxn)} / ${round(r.b.sqs.billedPerTxn)}`),
    row('(b) failing room: sent / delivered in order after recovery', 'events', `${sent} / ${r.recoveries.reduce((n, d) => n + (d.inOrder ? d.delivered : 0), 0)}`),
  ];
}

const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '—');
const callList = (c: Record<string, number>) =>
  Object.entries(c)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ×${f(v)}`)
    .join(', ') || 'none';

/** The section's own report, printed after the table (and alone by `node --import tsx bench/one-room.ts`). */
export function renderOneRoom(r: OneRoomResult): string {
  const out: string[] = [];
  out.push(`${oneRoomSection(r).replace(/^5\. one/, '5. One')}.`);
  out.push(`   The network fails every message of room 1 of ${r.rooms} in (b) (RetryLaterError: its messages wait on the queue, hidden for their backoff); times are per transaction, ms.`);
  const B = ONE_ROOM_BEFORE;
  const head = ['', '(a) no failures', '(b) one room failing', '(b)/(a)', `before: (b)/(a)`];
  const lines: string[][] = [];
  const cmp = (name: string, av: number, bv: number, d = 2, before = '') => lines.push([name, f(av, d), f(bv, d), f(bv / av), before]);
  cmp('healthy-room delivery p50', r.a.healthyMs.p50, r.b.healthyMs.p50, 2, `${f(B.healthyP50.b / B.healthyP50.a)} (${B.healthyP50.a} → ${B.healthyP50.b})`);
  cmp('healthy-room delivery mean', r.a.healthyMs.mean, r.b.healthyMs.mean, 2, `${f(B.healthyMean.b / B.healthyMean.a)} (${B.healthyMean.a} → ${B.healthyMean.b})`);
  cmp('healthy-room delivery p99', r.a.healthyMs.p99, r.b.healthyMs.p99);
  cmp('answered (200) p50', r.a.answerMs.p50, r.b.answerMs.p50);
  cmp('answered (200) mean', r.a.answerMs.mean, r.b.answerMs.mean, 2, `${f(B.answerMean.b / B.answerMean.a)} (${B.answerMean.a} → ${B.answerMean.b})`);
  cmp('answered (200) p99', r.a.answerMs.p99, r.b.answerMs.p99);
  cmp('healthy events/s (one txn at a time)', r.a.healthyEventsPerSec, r.b.healthyEventsPerSec, 0, f(B.ratio.healthyEventsPerSec));
  cmp('DynamoDB calls/txn (push)', r.a.dynamo.callsPerTxn, r.b.dynamo.callsPerTxn, 2, `${f(B.dynamoCallsPerTxn.b / B.dynamoCallsPerTxn.a)} (${B.dynamoCallsPerTxn.a} → ${B.dynamoCallsPerTxn.b})`);
  cmp('DynamoDB WRU/txn', r.a.dynamo.wruPerTxn, r.b.dynamo.wruPerTxn);
  cmp('SQS requests/txn (billed)', r.a.sqs.billedPerTxn, r.b.sqs.billedPerTxn);
  cmp('deliver invocations/txn', r.a.invocationsPerTxn, r.b.invocationsPerTxn);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => `   ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('   ')}`.trimEnd();
  out.push(fmt(head));
  for (const l of lines) out.push(fmt(l));
  out.push(`   DynamoDB calls per transaction: (a) ${r.a.dynamo.calls.join(', ')}; (b) ${r.b.dynamo.calls.join(', ')}`);
  out.push(`   SQS calls per transaction: (a) bridge ${callList(r.a.sqs.bridge)}; event source ${callList(r.a.sqs.eventSource)}`);
  out.push(`                              (b) bridge ${callList(r.b.sqs.bridge)}; event source ${callList(r.b.sqs.eventSource)}`);
  out.push(`   (the local event source's own calls, left out of "billed": (a) ${callList(r.a.sqs.extrasPerTxn)}; (b) ${callList(r.b.sqs.extrasPerTxn)} per txn: Lambda's event source mapping makes none of these per event)`);
  const ok = r.ratio.healthyP50 <= ONE_ROOM_TARGET && r.ratio.healthyMean <= ONE_ROOM_TARGET;
  out.push(`   target: (b) within ${ONE_ROOM_TARGET}× of (a) on the healthy rooms' delivery time: p50 ${f(r.ratio.healthyP50)}×, mean ${f(r.ratio.healthyMean)}× — ${ok ? 'met' : 'NOT met'} in this run`);
  const sent = r.recoveries.reduce((n, d) => n + d.sent, 0);
  const refusedTotal = r.recoveries.reduce((n, d) => n + d.refused, 0);
  out.push(`   failing room in (b): ${sent} events sent, ${r.recoveries.reduce((n, d) => n + d.deliveredWhileFailing, 0)} delivered while it failed; ${refusedTotal} delivery attempts refused, ${r.b.failedRecords} records reported failed (each attempt's message and the rest of its room in the batch)`);
  for (const d of r.recoveries) {
    out.push(
      `   round ${d.round}: failure stopped with ${d.sent} events waiting (${d.refused} attempts, ${d.retries} retries set, last backoff ${f(d.lastBackoffMs / 1000, 1)} s, due in ${f(d.dueInMs / 1000, 1)} s; handed out at once); ` +
        `recovery: ${d.delivered} delivered ${d.inOrder ? 'in order, once each' : 'OUT OF ORDER or missing'} in ${f(d.recoveryMs, 0)} ms, ${d.invocations} deliver invocations, ${d.sqsCalls} SQS calls, ` +
        `${d.leftOnQueue} left on the queue; senders told: ${d.pendingStatuses} PENDING, ${d.successStatuses} SUCCESS`,
    );
  }
  if (r.errors) out.push(`   WARNING: ${r.errors} errors (transactions not answered 200, events not delivered, or a recovery that did not deliver everything in order)`);
  return out.join('\n');
}

// ------------------------------------------------------------------ run alone

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const main = async () => {
    const k = knobs();
    const { startOurs, WARM_CALLS_PER_ROUND } = await import('./subjects.js');
    log(`   starting DynamoDB Local (and warming it up: ${k.dynamoWarmRounds * WARM_CALLS_PER_ROUND} calls) the local SQS server and a fake HS for ours ...`);
    const started = Date.now();
    const ours = await startOurs(k.dynamoWarmRounds);
    let r: OneRoomResult;
    try {
      r = await oneRoomOurs(ours, k.oneRoom, log);
    } finally {
      await ours.stop();
    }
    process.stdout.write(`${renderOneRoom(r)}\n\ntook ${round((Date.now() - started) / 1000, 1)} s (not written to results.json: npm run bench does that)\n`);
  };
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exit(1);
    },
  );
}
