/**
 * 3. Push throughput. Transactions of 1, 10, 100 and 1,000 `m.room.message` events from a Matrix
 * user, in a room bridged by an alias query beforehand, one transaction after the other, each a
 * new txnId. The network is a no-op. A transaction counts as done when the AS answered 200 AND
 * every event reached the event handler (matrix-appservice-bridge answers before it hands the
 * events on; ours and matrix-bot-sdk answer after).
 */
import { enc, http, latency, now } from './lib.js';
import type { Latency, PeerKind } from './lib.js';
import { DOMAIN, PREFIX } from './subjects.js';
import type { DynamoTally, Ours, Peer } from './subjects.js';

export const SIZES = [1, 10, 100, 1000] as const;

export interface PushResult {
  subject: 'ours' | PeerKind;
  size: number;
  txns: number;
  events: number;
  eventsPerSec: number;
  /** Time per transaction, from the request to the last event handled. */
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
  /** Ours only: bytes our code logs per transaction. */
  logBytesPerTxn?: number;
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
  for (const t of transactions(roomId, Math.min(size, 10), warmup)) await send(t);

  const txns = transactions(roomId, size, count);
  const deliveredBefore = ours.delivered();
  const logBefore = ours.logBytes();
  ours.dynamoCounter.reset();
  const samples: number[] = [];
  let errors = 0;
  for (const t of txns) {
    const started = now();
    const status = await send(t);
    samples.push(now() - started);
    if (status !== 200) errors++;
  }
  const tally: DynamoTally = ours.dynamoCounter.reset();
  const logBytes = ours.logBytes() - logBefore;
  errors += size * count - (ours.delivered() - deliveredBefore);

  // The same once more with the room → alias cache emptied: what a fresh copy pays.
  ours.bridge.roomCache.clear();
  const [cold] = transactions(roomId, size, 1);
  if (cold) await send(cold);
  const coldTally = ours.dynamoCounter.reset();

  const r = result('ours', size, samples, errors);
  const calls = Object.values(tally.calls).reduce((a, b) => a + b, 0);
  r.dynamo = {
    callsPerTxn: calls / count,
    rruPerTxn: tally.rru / count,
    wruPerTxn: tally.wru / count,
    msPerTxn: tally.ms / count,
    calls: perTxn(tally.calls, count),
    coldCache: { calls: perTxn(coldTally.calls, 1), rru: coldTally.rru, wru: coldTally.wru },
  };
  r.logBytesPerTxn = logBytes / count;
  return r;
}

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
