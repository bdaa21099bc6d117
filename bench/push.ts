/**
 * 3. Push throughput. Transactions of 1, 10, 100 and 1,000 `m.room.message` events from a Matrix
 * user, in a room bridged by an alias query beforehand, one transaction after the other, each a
 * new txnId. The network is a no-op.
 *
 * Ours answers once the transaction is claimed and its events are on the delivery queue (claim +
 * enqueue + done): that answer is what the homeserver waits for, and what is timed. After each
 * transaction, untimed, the deliver function works through the queue on the event source (as
 * Lambda's would, a moment later), and every event must reach the network port before the next
 * transaction is sent: a quiet room's batching (nothing else waits on the queue), and a check that
 * nothing is lost. The peers' transaction counts as done when the AS answered 200 AND every event
 * reached the event handler (matrix-appservice-bridge answers before it hands the events on;
 * matrix-bot-sdk after).
 */
import { enc, http, latency, now } from './lib.js';
import type { Latency, PeerKind } from './lib.js';
import { DOMAIN, PREFIX, callsPer, emptyTally, eventSourceBilled, eventSourceCalls, eventSourceExtras } from './subjects.js';
import type { DeliverInvocation, DynamoTally, MappingWrites, Ours, Peer, SqsTally } from './subjects.js';

export const SIZES = [1, 10, 100, 1000] as const;

export interface PushResult {
  subject: 'ours' | PeerKind;
  size: number;
  txns: number;
  events: number;
  eventsPerSec: number;
  /** Time per transaction: ours, from the request to the answer (events queued); peers, to the last event handled. */
  txnMs: Latency;
  /** Transactions not answered 200, or events not handed on. */
  errors: number;
  /** Ours only. */
  dynamo?: {
    /** Per transaction, in the measured (warm) run: the room → alias mapping is in the warm cache. */
    callsPerTxn: number;
    rruPerTxn: number;
    wruPerTxn: number;
    /** Time inside DynamoDB calls per transaction, ms. */
    msPerTxn: number;
    calls: string[];
    /** One more transaction with the warm cache emptied, as a fresh Lambda copy sees it. */
    coldCache: { calls: string[]; rru: number; wru: number };
  };
  /** Ours only: bytes our code logs per transaction (push). */
  logBytesPerTxn?: number;
  /** Ours only: the SQS calls push made (SendMessageBatch), per transaction. */
  sqs?: SqsPerTxn;
  /** Ours only: the deliver function's work on those transactions' events (untimed for the push figure). */
  deliver?: DeliverStats;
}

export interface SqsPerTxn {
  callsPerTxn: number;
  /** Requests as SQS bills them (per started 64 KiB). */
  billedPerTxn: number;
  /** Time inside SQS calls per transaction (client side, with the local server in this process), ms. */
  msPerTxn: number;
  calls: Record<string, number>;
}

/** What the deliver function and its event source did for a set of events. */
export interface DeliverStats {
  events: number;
  /** Events that reached the network port. */
  delivered: number;
  invocations: number;
  eventsPerInvocation: number;
  /** Handler time per invocation, ms. */
  invocationMs: Latency;
  /** Records reported failed (none expected on the happy path). */
  failedRecords: number;
  /**
   * SQS calls of the event source that Lambda's event source mapping would make and be billed for, per
   * event: ReceiveMessage (that brought messages), DeleteMessageBatch; and, in all, the emulation's
   * other calls (GetQueueAttributes before a receive, empty receives: an idle poller's, not per event).
   */
  eventSource: { callsPerEvent: Record<string, number>; billedPerEvent: number; emptyReceives: number; extras: Record<string, number> };
  /** SQS calls the deliver function itself made, per event (none on the happy path). */
  bridge: { callsPerEvent: Record<string, number>; billedPerEvent: number };
  /** Bytes the deliver function logged per invocation (its request line and its metrics line). */
  logBytesPerInvocation: number;
  /** The deliver function's DynamoDB calls, per event: the message mapping it writes for each message and reaction the network took, and the look-ups of references. */
  dynamo: DynamoPerEvent;
}

/** DynamoDB calls and units per event (or per message), with the message mapping items written. */
export interface DynamoPerEvent {
  callsPerEvent: number;
  calls: Record<string, number>;
  wruPerEvent: number;
  /** Of wruPerEvent, the byEvent index's copy. */
  indexWruPerEvent: number;
  rruPerEvent: number;
  /** Of rruPerEvent, Queries of the byEvent index. */
  indexRruPerEvent: number;
  /** Time inside DynamoDB calls per event, ms. */
  msPerEvent: number;
  /** Message mapping items written per event, and their mean storage sizes (table, index), bytes. */
  mapping: MappingSizes;
}

export interface MappingSizes {
  writesPerEvent: number;
  tableBytes: number;
  indexBytes: number;
}

export const mappingSizes = (m: MappingWrites, n: number): MappingSizes => ({
  writesPerEvent: m.writes / Math.max(n, 1),
  tableBytes: m.writes ? m.tableBytes / m.writes : NaN,
  indexBytes: m.writes ? m.indexBytes / m.writes : NaN,
});

export function dynamoPerEvent(t: DynamoTally, n: number): DynamoPerEvent {
  const d = Math.max(n, 1);
  return {
    callsPerEvent: Object.values(t.calls).reduce((a, b) => a + b, 0) / d,
    calls: callsPer(t.calls, d),
    wruPerEvent: t.wru / d,
    indexWruPerEvent: t.indexWru / d,
    rruPerEvent: t.rru / d,
    indexRruPerEvent: t.indexRru / d,
    msPerEvent: t.ms / d,
    mapping: mappingSizes(t.mapping, d),
  };
}

export function deliverStats(events: number, delivered: number, inv: DeliverInvocation[], es: SqsTally, br: SqsTally, logBytes: number, dynamo: DynamoTally): DeliverStats {
  const n = Math.max(events, 1);
  // What Lambda's event source mapping would be billed for; the emulation's other calls apart (README: 3b.).
  const esBilled = eventSourceBilled(es);
  const esCalls = eventSourceCalls(es);
  return {
    events,
    delivered,
    invocations: inv.length,
    eventsPerInvocation: events / Math.max(inv.length, 1),
    invocationMs: latency(inv.map((i) => i.ms)),
    failedRecords: inv.reduce((a, i) => a + i.failed, 0),
    eventSource: { callsPerEvent: callsPer(esCalls, n), billedPerEvent: esBilled / n, emptyReceives: es.emptyReceives, extras: eventSourceExtras(es) },
    bridge: { callsPerEvent: callsPer(br.calls, n), billedPerEvent: br.billed / n },
    logBytesPerInvocation: logBytes / Math.max(inv.length, 1),
    dynamo: dynamoPerEvent(dynamo, n),
  };
}

let seq = 0;
const tag = () => `${Date.now().toString(36)}${(seq++).toString(36)}`;

export function transactions(roomId: string, size: number, count: number): Array<{ txnId: string; body: string }> {
  const run = tag();
  const out: Array<{ txnId: string; body: string }> = [];
  for (let t = 0; t < count; t++) {
    const events = Array.from({ length: size }, (_, i) => ({
      event_id: `$${run}-${t}-${i}:${DOMAIN}`,
      room_id: roomId,
      sender: `@alice:${DOMAIN}`,
      type: 'm.room.message',
      origin_server_ts: 1_700_000_000_000 + t * size + i,
      content: { msgtype: 'm.text', body: `message ${i} of transaction ${t} in a ${size}-event run` },
      unsigned: { age: 10 },
    }));
    out.push({ txnId: `${run}-${t}`, body: JSON.stringify({ events }) });
  }
  return out;
}

const txnPath = (txnId: string) => `/_matrix/app/v1/transactions/${enc(txnId)}`;
export const perTxn = (calls: Record<string, number>, n: number) =>
  Object.entries(calls).flatMap(([name, c]) => (c % n === 0 ? Array<string>(c / n).fill(name) : [`${name} ×${(c / n).toFixed(2)}`]));

function result(subject: 'ours' | PeerKind, size: number, samples: number[], errors: number): PushResult {
  const total = samples.reduce((a, b) => a + b, 0);
  return { subject, size, txns: samples.length, events: size * samples.length, eventsPerSec: (size * samples.length * 1000) / total, txnMs: latency(samples), errors };
}

// ------------------------------------------------------------------ ours

export async function bridgedRoomOurs(ours: Ours): Promise<string> {
  const alias = `#${PREFIX}bench${tag()}:${DOMAIN}`;
  const r = await ours.call('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
  const roomId = ours.hs.aliases.get(alias);
  if (r.status !== 200 || !roomId) throw new Error(`could not bridge a room for the push benchmark: ${r.status} ${JSON.stringify(r.body)}`);
  return roomId;
}

export async function pushOurs(ours: Ours, roomId: string, size: number, count: number, warmup: number): Promise<PushResult> {
  const send = async (t: { txnId: string; body: string }) =>
    (await ours.call('push', { method: 'PUT', path: txnPath(t.txnId), rawBody: t.body })).status;
  // Unmeasured: JIT of push and deliver, connections, the local SQS server.
  for (const t of transactions(roomId, Math.min(size, 10), warmup)) await send(t);
  await ours.deliver();

  const txns = transactions(roomId, size, count);
  const deliveredBefore = ours.delivered();
  ours.dynamoCounter.reset();
  ours.sqsCounter.reset();
  ours.eventSourceSqs.reset();
  ours.takeInvocations();
  const samples: number[] = [];
  let errors = 0;
  let pushDynamo = emptyDynamo();
  let pushSqs = emptySqs();
  let deliverSqs = emptySqs();
  let deliverDynamo = emptyDynamo();
  let pushLog = 0;
  let deliverLog = 0;
  for (const t of txns) {
    const log0 = ours.logBytes();
    const started = now();
    const status = await send(t);
    samples.push(now() - started);
    if (status !== 200) errors++;
    const log1 = ours.logBytes();
    pushDynamo = addDynamo(pushDynamo, ours.dynamoCounter.reset());
    pushSqs = addSqs(pushSqs, ours.sqsCounter.reset());
    // Untimed: the deliver function takes this transaction's events off the queue.
    await ours.deliver();
    deliverLog += ours.logBytes() - log1;
    pushLog += log1 - log0;
    deliverSqs = addSqs(deliverSqs, ours.sqsCounter.reset());
    // The deliver function's own: the message mapping of each message the network took.
    deliverDynamo = addDynamo(deliverDynamo, ours.dynamoCounter.reset());
  }
  const delivered = ours.delivered() - deliveredBefore;
  // Missing, or (a redelivery) more than sent.
  errors += Math.abs(size * count - delivered);
  const deliver = deliverStats(size * count, delivered, ours.takeInvocations(), ours.eventSourceSqs.reset(), deliverSqs, deliverLog, deliverDynamo);

  // The same once more with the room → alias cache emptied: what a fresh copy pays.
  ours.bridge.roomCache.clear();
  const [cold] = transactions(roomId, size, 1);
  if (cold) await send(cold);
  const coldTally = ours.dynamoCounter.reset();
  ours.sqsCounter.reset();
  await ours.deliver();
  ours.takeInvocations();
  ours.eventSourceSqs.reset();
  ours.sqsCounter.reset();
  ours.dynamoCounter.reset();

  const r = result('ours', size, samples, errors);
  const calls = Object.values(pushDynamo.calls).reduce((a, b) => a + b, 0);
  r.dynamo = {
    callsPerTxn: calls / count,
    rruPerTxn: pushDynamo.rru / count,
    wruPerTxn: pushDynamo.wru / count,
    msPerTxn: pushDynamo.ms / count,
    calls: perTxn(pushDynamo.calls, count),
    coldCache: { calls: perTxn(coldTally.calls, 1), rru: coldTally.rru, wru: coldTally.wru },
  };
  r.logBytesPerTxn = pushLog / count;
  r.sqs = {
    callsPerTxn: Object.values(pushSqs.calls).reduce((a, b) => a + b, 0) / count,
    billedPerTxn: pushSqs.billed / count,
    msPerTxn: pushSqs.ms / count,
    calls: callsPer(pushSqs.calls, count),
  };
  r.deliver = deliver;
  return r;
}

const emptyDynamo = emptyTally;
const emptySqs = (): SqsTally => ({ calls: {}, billed: 0, billedBy: {}, emptyReceives: 0, sent: 0, received: 0, ms: 0, errors: 0 });
const addCalls = (a: Record<string, number>, b: Record<string, number>) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
};
export const addDynamo = (a: DynamoTally, b: DynamoTally): DynamoTally => ({
  calls: addCalls(a.calls, b.calls),
  rru: a.rru + b.rru,
  wru: a.wru + b.wru,
  reportedUnits: a.reportedUnits + b.reportedUnits,
  conditionalFailures: a.conditionalFailures + b.conditionalFailures,
  ms: a.ms + b.ms,
  indexWru: a.indexWru + b.indexWru,
  indexRru: a.indexRru + b.indexRru,
  mapping: { writes: a.mapping.writes + b.mapping.writes, tableBytes: a.mapping.tableBytes + b.mapping.tableBytes, indexBytes: a.mapping.indexBytes + b.mapping.indexBytes },
});
export const addSqs = (a: SqsTally, b: SqsTally): SqsTally => ({
  calls: addCalls(a.calls, b.calls),
  billed: a.billed + b.billed,
  billedBy: addCalls(a.billedBy, b.billedBy),
  emptyReceives: a.emptyReceives + b.emptyReceives,
  sent: a.sent + b.sent,
  received: a.received + b.received,
  ms: a.ms + b.ms,
  errors: a.errors + b.errors,
});
export { emptyDynamo, emptySqs };

// ------------------------------------------------------------------ peers

export async function bridgedRoomPeer(peer: Peer): Promise<string> {
  const alias = `#${PREFIX}bench${tag()}:${DOMAIN}`;
  const r = await http('GET', `${peer.proc.url}/_matrix/app/v1/rooms/${enc(alias)}`, peer.headers);
  const roomId = peer.hs.aliases.get(alias);
  if (r.status !== 200 || !roomId) throw new Error(`${peer.kind}: could not bridge a room for the push benchmark: ${r.status} ${r.body}`);
  return roomId;
}

/** m.room.message events each peer process's handler has seen so far (we sent them all). */
const seenSoFar = new WeakMap<object, number>();

export async function pushPeer(peer: Peer, roomId: string, size: number, count: number, warmup: number): Promise<PushResult> {
  const send = async (t: { txnId: string; body: string }, events: number) => {
    const total = (seenSoFar.get(peer.proc) ?? 0) + events;
    seenSoFar.set(peer.proc, total);
    // Asked before the request, so the answer comes as soon as the handler is through.
    const seen = peer.proc.waitSeen(total);
    const r = await http('PUT', `${peer.proc.url}${txnPath(t.txnId)}`, peer.headers, t.body);
    await seen;
    return r.status;
  };
  for (const t of transactions(roomId, Math.min(size, 10), warmup)) await send(t, Math.min(size, 10));

  const samples: number[] = [];
  let errors = 0;
  for (const t of transactions(roomId, size, count)) {
    const started = now();
    const status = await send(t, size);
    samples.push(now() - started);
    if (status !== 200) errors++;
  }
  return result(peer.kind, size, samples, errors);
}
