/**
 * 5. One room failing (issue 17). N rooms bridged; a stream of transactions whose events are
 * spread over the rooms, through our push handler, one transaction after the other, as the
 * homeserver sends them. Two runs, everything else alike:
 *   (a) no failures;
 *   (b) the network fails every message of ONE room with a transient error (RetryLaterError),
 *       which parks that room while the others flow.
 * Measured: the healthy rooms' delivery time (from a transaction being sent to the last of its
 * healthy-room events reaching the network port), the time to the answer, the healthy events/s of
 * the stream, the DynamoDB calls per transaction; for (b) how many events were parked, and that
 * the parked room drains, in order, once the failure stops.
 *
 * The measured transactions are split into rounds, each (a) then (b) then the drain, so that a
 * noisy moment of this 2-core machine is spread over both runs.
 *
 * `node --import tsx bench/one-room.ts` runs it alone (BENCH_QUICK=1 and the BENCH_ONEROOM_* knobs
 * apply); `npm run bench` runs it as section 5.
 */
import { pathToFileURL } from 'node:url';
import { RetryLaterError } from '../lib/bridge/network.js';
import type { NetworkPort } from '../lib/bridge/network.js';
import { drainDueRooms } from '../lib/bridge/parking.js';
import { SEND_STATUS_TYPE } from '../lib/bridge/send-status.js';
import type { RoomId } from '../lib/matrix/ids.js';
import { enc, knobs, latency, now, round } from './lib.js';
import type { Knobs, Latency, Row } from './lib.js';
import { bridgedRoomOurs, perTxn } from './push.js';
import { DOMAIN } from './subjects.js';
import type { Ours } from './subjects.js';

export type OneRoomKnobs = Knobs['oneRoom'];

export interface OneRoomRun {
  mode: 'a' | 'b';
  label: string;
  txns: number;
  /** Events of the healthy rooms (all rooms but the failing one, in (a) as well), over all measured transactions. */
  healthyEvents: number;
  /** Per transaction: from the request to the last of its healthy-room events delivered to the network port, ms. */
  healthyMs: Latency;
  /** Per transaction: from the request to the 200, ms (includes parking, the PENDING statuses, a drain attempt). */
  answerMs: Latency;
  /** Healthy events ÷ the sum of the transactions' answer times: the stream's rate when the HS sends one at a time. */
  healthyEventsPerSec: number;
  /** Transactions not answered 200, healthy events not delivered, and in (a) any event not delivered. */
  errors: number;
  dynamo: { callsPerTxn: number; calls: string[]; wruPerTxn: number; rruPerTxn: number; msPerTxn: number };
}

export interface OneRoomDrain {
  round: number;
  /** Events of the failing room sent in this round's (b), and how many of them were parked. */
  sent: number;
  parked: number;
  /** Deliveries the network refused: the first event of the round, then one per drain attempt a push made. */
  refused: number;
  /** The room's own backoff when the failure stopped: it would have been due for the drainer in this many ms. */
  dueInMs: number;
  drainMs: number;
  result: string;
  /** Parked events delivered by the drain, and whether in the homeserver's order. */
  delivered: number;
  inOrder: boolean;
  /** Rooms still parked after the drain (0 expected). */
  leftParked: number;
  dynamoCalls: number;
  /** com.beeper.message_send_status events the senders got for the failing room's events this round. */
  pendingStatuses: number;
  successStatuses: number;
}

export interface OneRoomResult {
  rooms: number;
  eventsPerTxn: number;
  rounds: number;
  warmup: number;
  a: OneRoomRun;
  b: OneRoomRun;
  /** (b) ÷ (a). */
  ratio: { healthyP50: number; healthyMean: number; healthyP99: number; answerMean: number; healthyEventsPerSec: number };
  drains: OneRoomDrain[];
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
  calls: Record<string, number>;
  wru: number;
  rru: number;
  dynamoMs: number;
  txns: number;
}

const emptyBlock = (): Block => ({ healthy: [], answer: [], healthyEvents: 0, errors: 0, calls: {}, wru: 0, rru: 0, dynamoMs: 0, txns: 0 });

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
    deliver: async (m) => {
      if (failing && isFailingRoom(m.id)) {
        refused++;
        throw new RetryLaterError('down');
      }
      deliveredAt.set(m.id, now());
      if (isFailingRoom(m.id)) failingDelivered.push(m.id);
      await original.deliver(m);
    },
  };

  const send = async (t: Txn) => (await ours.call('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(t.txnId)}`, rawBody: t.body })).status;

  /** One block of transactions, each timed; in (a) the failing room's events must arrive too. */
  const runBlock = async (txns: Txn[], into: Block, mode: 'a' | 'b') => {
    deliveredAt.clear();
    ours.dynamoCounter.reset();
    for (const t of txns) {
      const started = now();
      const status = await send(t);
      const answered = now();
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
    const tally = ours.dynamoCounter.reset();
    for (const [name, c] of Object.entries(tally.calls)) into.calls[name] = (into.calls[name] ?? 0) + c;
    into.wru += tally.wru;
    into.rru += tally.rru;
    into.dynamoMs += tally.ms;
    into.txns += txns.length;
  };

  /** The failure stops; the bridge's clock is turned past the room's backoff and the due rooms are drained. */
  const heal = async (round: number, sentTxns: Txn[], refusedBefore: number): Promise<OneRoomDrain> => {
    failing = false;
    const expected = sentTxns.flatMap((t) => t.failing);
    const head = await b.store.getParkedRoom(failingRoom);
    const dueInMs = head ? head.nextAttemptAt - b.now() : NaN;
    failingDelivered.length = 0;
    ours.dynamoCounter.reset();
    const realNow = b.now;
    b.now = () => realNow() + 5 * 60_000;
    const started = now();
    let res: Awaited<ReturnType<typeof drainDueRooms>>;
    try {
      res = await drainDueRooms(b, { deadline: Date.now() + 60_000, hardStop: Date.now() + 60_000 });
    } finally {
      b.now = realNow;
    }
    const drainMs = now() - started;
    const dynamoCalls = ours.dynamoCounter.totalCalls();
    ours.dynamoCounter.reset();
    const leftParked = (await b.store.listParkedRooms()).length;
    const statuses = (ours.hs.rooms.get(failingRoom)?.events ?? []).filter((e) => e.type === SEND_STATUS_TYPE && expected.includes(String(e.content?.['m.relates_to']?.event_id)));
    return {
      round,
      sent: expected.length,
      parked: head?.count ?? 0,
      refused: refused - refusedBefore,
      dueInMs,
      drainMs,
      result: Object.entries(res)
        .filter(([, n]) => n > 0)
        .map(([r, n]) => `${n} ${r}`)
        .join(', ') || 'nothing due',
      delivered: failingDelivered.length,
      inOrder: failingDelivered.length === expected.length && failingDelivered.every((id, i) => id === expected[i]),
      leftParked,
      dynamoCalls,
      pendingStatuses: statuses.filter((e) => e.content?.status === 'PENDING').length,
      successStatuses: statuses.filter((e) => e.content?.status === 'SUCCESS').length,
    };
  };

  const blocks = { a: emptyBlock(), b: emptyBlock() };
  const drains: OneRoomDrain[] = [];
  try {
    // Unmeasured: JIT for both paths (parking, statuses, the drain), the room cache, connections.
    log(`5. one room failing: ${k.rooms} rooms bridged; warm-up: ${k.warmup} transactions of (a), then of (b), then a drain ...`);
    await runBlock(spread(roomIds, k.eventsPerTxn, k.warmup, 'wa'), emptyBlock(), 'a');
    failing = true;
    const warmB = spread(roomIds, k.eventsPerTxn, k.warmup, 'wb');
    await runBlock(warmB, emptyBlock(), 'b');
    await heal(0, warmB, refused);

    const perRound = Math.max(1, Math.floor(k.txns / k.rounds));
    for (let r = 1; r <= k.rounds; r++) {
      log(`5. one room failing, round ${r}/${k.rounds}: ${perRound} transactions of (a) no failures, ${perRound} of (b) one room failing, then the drain ...`);
      failing = false;
      await runBlock(spread(roomIds, k.eventsPerTxn, perRound, `a${r}`), blocks.a, 'a');
      failing = true;
      const refusedBefore = refused;
      const txns = spread(roomIds, k.eventsPerTxn, perRound, `b${r}`);
      await runBlock(txns, blocks.b, 'b');
      drains.push(await heal(r, txns, refusedBefore));
    }
  } finally {
    failing = false;
    b.network = original;
  }

  const run = (mode: 'a' | 'b'): OneRoomRun => {
    const x = blocks[mode];
    const total = x.answer.reduce((s, v) => s + v, 0);
    const calls = Object.values(x.calls).reduce((s, c) => s + c, 0);
    return {
      mode,
      label: mode === 'a' ? '(a) no failures' : '(b) one room failing',
      txns: x.txns,
      healthyEvents: x.healthyEvents,
      healthyMs: latency(x.healthy),
      answerMs: latency(x.answer),
      healthyEventsPerSec: (x.healthyEvents * 1000) / total,
      errors: x.errors,
      dynamo: { callsPerTxn: calls / x.txns, calls: perTxn(x.calls, x.txns), wruPerTxn: x.wru / x.txns, rruPerTxn: x.rru / x.txns, msPerTxn: x.dynamoMs / x.txns },
    };
  };
  const a = run('a');
  const bb = run('b');
  const drainErrors = drains.reduce((n, d) => n + (d.inOrder && d.leftParked === 0 && d.parked === d.sent ? 0 : 1), 0);
  return {
    rooms: k.rooms,
    eventsPerTxn: k.eventsPerTxn,
    rounds: k.rounds,
    warmup: k.warmup,
    a,
    b: bb,
    ratio: {
      healthyP50: bb.healthyMs.p50 / a.healthyMs.p50,
      healthyMean: bb.healthyMs.mean / a.healthyMs.mean,
      healthyP99: bb.healthyMs.p99 / a.healthyMs.p99,
      answerMean: bb.answerMs.mean / a.answerMs.mean,
      healthyEventsPerSec: bb.healthyEventsPerSec / a.healthyEventsPerSec,
    },
    drains,
    errors: a.errors + bb.errors + drainErrors,
  };
}

// ------------------------------------------------------------------ printing

export const ONE_ROOM_TARGET = 1.2;

export function oneRoomSection(r: OneRoomResult): string {
  return `5. one room failing: ${r.rooms} rooms, ${r.eventsPerTxn} events/txn spread over them, ${r.a.txns} txns per run in ${r.rounds} rounds of (a) then (b); no-op network`;
}

/** Rows for the main table (ours only: the peers have no parking to compare). */
export function oneRoomRows(r: OneRoomResult): Row[] {
  const section = oneRoomSection(r);
  const row = (metric: string, unit: string, ours: number | string, better: Row['better'] = ''): Row => ({ section, metric, unit, ours, peers: {}, better });
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
    row('(b) events parked / drained in order', 'events', `${r.drains.reduce((n, d) => n + d.parked, 0)} / ${r.drains.reduce((n, d) => n + (d.inOrder ? d.delivered : 0), 0)}`),
  ];
}

const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '—');

/** The section's own report, printed after the table (and alone by `node --import tsx bench/one-room.ts`). */
export function renderOneRoom(r: OneRoomResult): string {
  const out: string[] = [];
  out.push(`${oneRoomSection(r).replace(/^5\. one/, '5. One')}.`);
  out.push(`   The network fails every message of room 1 of ${r.rooms} in (b) (RetryLaterError: the room parks); times are per transaction, ms.`);
  const head = ['', '(a) no failures', '(b) one room failing', '(b)/(a)'];
  const lines: string[][] = [];
  const cmp = (name: string, av: number, bv: number, d = 2) => lines.push([name, f(av, d), f(bv, d), f(bv / av)]);
  cmp('healthy-room delivery p50', r.a.healthyMs.p50, r.b.healthyMs.p50);
  cmp('healthy-room delivery mean', r.a.healthyMs.mean, r.b.healthyMs.mean);
  cmp('healthy-room delivery p99', r.a.healthyMs.p99, r.b.healthyMs.p99);
  cmp('answered (200) p50', r.a.answerMs.p50, r.b.answerMs.p50);
  cmp('answered (200) mean', r.a.answerMs.mean, r.b.answerMs.mean);
  cmp('answered (200) p99', r.a.answerMs.p99, r.b.answerMs.p99);
  cmp('answered − healthy delivered (mean)', r.a.answerMs.mean - r.a.healthyMs.mean, r.b.answerMs.mean - r.b.healthyMs.mean);
  cmp('healthy events/s (one txn at a time)', r.a.healthyEventsPerSec, r.b.healthyEventsPerSec, 0);
  cmp('DynamoDB calls/txn', r.a.dynamo.callsPerTxn, r.b.dynamo.callsPerTxn);
  cmp('DynamoDB WRU/txn', r.a.dynamo.wruPerTxn, r.b.dynamo.wruPerTxn);
  cmp('DynamoDB time/txn (ms)', r.a.dynamo.msPerTxn, r.b.dynamo.msPerTxn);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => `   ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('   ')}`.trimEnd();
  out.push(fmt(head));
  for (const l of lines) out.push(fmt(l));
  out.push(`   DynamoDB calls per transaction: (a) ${r.a.dynamo.calls.join(', ')}; (b) ${r.b.dynamo.calls.join(', ')}`);
  const ok = r.ratio.healthyP50 <= ONE_ROOM_TARGET && r.ratio.healthyMean <= ONE_ROOM_TARGET;
  out.push(`   target: (b) within ${ONE_ROOM_TARGET}× of (a) on the healthy rooms' delivery time: p50 ${f(r.ratio.healthyP50)}×, mean ${f(r.ratio.healthyMean)}× — ${ok ? 'met' : 'NOT met'} in this run`);
  const parked = r.drains.reduce((n, d) => n + d.parked, 0);
  const sent = r.drains.reduce((n, d) => n + d.sent, 0);
  const refusedTotal = r.drains.reduce((n, d) => n + d.refused, 0);
  out.push(`   parked: ${parked} of the failing room's ${sent} events in (b) (${refusedTotal} deliveries refused: each round's first event, then ${refusedTotal - r.drains.length} drain attempts made by pushes once the room was due)`);
  for (const d of r.drains) {
    out.push(
      `   round ${d.round}: failure stopped with ${d.parked} events parked (room due in ${f(d.dueInMs / 1000, 1)} s by its backoff; the clock was turned past it); ` +
        `drainDueRooms: ${d.result} in ${f(d.drainMs, 0)} ms, ${d.delivered} delivered ${d.inOrder ? 'in order' : 'OUT OF ORDER or missing'}, ${d.dynamoCalls} DynamoDB calls, ` +
        `${d.leftParked} rooms left parked; senders told: ${d.pendingStatuses} PENDING, ${d.successStatuses} SUCCESS`,
    );
  }
  if (r.errors) out.push(`   WARNING: ${r.errors} errors (transactions not answered 200, events not delivered, or a drain that did not deliver everything in order)`);
  return out.join('\n');
}

// ------------------------------------------------------------------ run alone

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const main = async () => {
    const k = knobs();
    const { startOurs, WARM_CALLS_PER_ROUND } = await import('./subjects.js');
    log(`   starting DynamoDB Local (and warming it up: ${k.dynamoWarmRounds * WARM_CALLS_PER_ROUND} calls) and a fake HS for ours ...`);
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
