/**
 * Rich messages (issue 23), ours only, for the cost (4.): the DynamoDB calls of the message
 * mapping on the real code paths, beside those push (3.) measures.
 *
 * - **References, Matrix → network**: a reply, an edit, a reaction and a redaction of a message
 *   delivered in an earlier transaction (so the deliver function looks its network id up in the
 *   `byEvent` index: one Query each), through push and the deliver function on the event source,
 *   as in 3. The reply and the reaction are recorded in the mapping too (one PutItem each).
 * - **Network → Matrix**: messages through the network-inbound function as API Gateway invokes
 *   it (signed), then replies, edits, reactions and deletions of them: the mapping is read by its
 *   key (consistent GetItem) and written once per message and reaction.
 */
import { randomUUID } from 'node:crypto';
import { enc, latency, now } from './lib.js';
import type { Latency } from './lib.js';
import { addDynamo, dynamoPerEvent, emptyDynamo, perTxn } from './push.js';
import type { DynamoPerEvent } from './push.js';
import { DOMAIN, PREFIX } from './subjects.js';
import type { NetworkKind, Ours } from './subjects.js';

let seq = 0;
const tag = () => `${Date.now().toString(36)}${(seq++).toString(36)}`;

/** A room bridged by an alias query, with its network room. */
async function bridgedRoom(ours: Ours): Promise<{ roomId: string; remote: string }> {
  const remote = `rich${tag()}`;
  const alias = `#${PREFIX}${remote}:${DOMAIN}`;
  const r = await ours.call('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(alias)}` });
  const roomId = ours.hs.aliases.get(alias);
  if (r.status !== 200 || !roomId) throw new Error(`could not bridge a room for the rich-message benchmark: ${r.status} ${JSON.stringify(r.body)}`);
  return { roomId, remote };
}

// ------------------------------------------------------------------ Matrix → network: references

export type ReferenceKind = 'reply' | 'edit' | 'reaction' | 'redaction';
export const REFERENCE_KINDS: readonly ReferenceKind[] = ['reply', 'edit', 'reaction', 'redaction'];

export interface ReferenceResult {
  kind: ReferenceKind;
  count: number;
  /** Transactions not answered 200, or deliveries that did not reach the network port. */
  errors: number;
  /** Push's calls per reference (the same as for any event). */
  push: DynamoPerEvent;
  /** The deliver function's calls per reference: the look-up of its target, and for a reply or a reaction its own mapping. */
  deliver: DynamoPerEvent;
}

let evSeq = 0;
function referenceEvent(kind: ReferenceKind | 'message', roomId: string, target: string): Record<string, unknown> {
  const base = { event_id: `$rich${tag()}-${evSeq++}:${DOMAIN}`, room_id: roomId, sender: `@alice:${DOMAIN}`, origin_server_ts: Date.now(), unsigned: { age: 10 } };
  switch (kind) {
    case 'message':
      return { ...base, type: 'm.room.message', content: { msgtype: 'm.text', body: 'a message to refer to' } };
    case 'reply':
      return { ...base, type: 'm.room.message', content: { msgtype: 'm.text', body: 'a reply', 'm.relates_to': { 'm.in_reply_to': { event_id: target } } } };
    case 'edit':
      return {
        ...base,
        type: 'm.room.message',
        content: { msgtype: 'm.text', body: '* edited', 'm.new_content': { msgtype: 'm.text', body: 'edited' }, 'm.relates_to': { rel_type: 'm.replace', event_id: target } },
      };
    case 'reaction':
      return { ...base, type: 'm.reaction', content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: target, key: '👍' } } };
    case 'redaction':
      // Room versions up to 10 carry `redacts` on the event, 11 in its content: both, as a homeserver may.
      return { ...base, type: 'm.room.redaction', redacts: target, content: { redacts: target } };
  }
}

/**
 * For each kind, `count` times: a message in a transaction of its own, delivered; then a
 * reference to it in the next transaction, delivered, its DynamoDB calls counted (push's and the
 * deliver function's apart). The target is delivered in an earlier batch, so the deliver function
 * does not know its network id from the batch itself and reads the index.
 */
export async function referencesOurs(ours: Ours, count: number): Promise<ReferenceResult[]> {
  const { roomId } = await bridgedRoom(ours);
  const push = async (events: Array<Record<string, unknown>>) =>
    (await ours.call('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(`rich-${tag()}`)}`, rawBody: JSON.stringify({ events }) })).status;
  const out: ReferenceResult[] = [];
  for (const kind of REFERENCE_KINDS) {
    let pushTally = emptyDynamo();
    let deliverTally = emptyDynamo();
    let errors = 0;
    for (let i = 0; i < count; i++) {
      const target = referenceEvent('message', roomId, '');
      let before = ours.delivered();
      if ((await push([target])) !== 200) errors++;
      await ours.deliver();
      if (ours.delivered() !== before + 1) errors++;
      ours.dynamoCounter.reset();
      before = ours.delivered();
      if ((await push([referenceEvent(kind, roomId, String(target.event_id))])) !== 200) errors++;
      pushTally = addDynamo(pushTally, ours.dynamoCounter.reset());
      await ours.deliver();
      deliverTally = addDynamo(deliverTally, ours.dynamoCounter.reset());
      if (ours.delivered() !== before + 1) errors++;
    }
    ours.sqsCounter.reset();
    ours.eventSourceSqs.reset();
    ours.takeInvocations();
    out.push({ kind, count, errors, push: dynamoPerEvent(pushTally, count), deliver: dynamoPerEvent(deliverTally, count) });
  }
  return out;
}

// ------------------------------------------------------------------ network → Matrix

export type InboundKind = 'message' | 'reply' | 'edit' | 'reaction' | 'deletion';

export interface InboundPart {
  kind: InboundKind;
  count: number;
  /** Requests not answered 200. */
  errors: number;
  /** Request to answer, ms. */
  latency: Latency;
  /** Mean request body, bytes (the HTTP API meters per 512 KB). */
  bodyBytes: number;
  /** Per request, warm copy (the room and the virtual user in its memory). */
  dynamo: DynamoPerEvent;
  /** Bytes our code logged per request. */
  logBytes: number;
}

export interface InboundResult {
  parts: InboundPart[];
  /** One more message with the warm memory emptied (rooms, users, joins), as a fresh Lambda copy sees it. */
  coldCache: { calls: string[]; rru: number; wru: number };
}

const ROUTE: Record<InboundKind, NetworkKind> = { message: 'messages', reply: 'messages', edit: 'edits', reaction: 'reactions', deletion: 'deletions' };

/**
 * `warmup` unmeasured messages (the virtual user registered and joined), then `count` messages,
 * then `count` of each change to messages posted just before (reply, edit, reaction, deletion),
 * each request timed and its DynamoDB calls counted.
 */
export async function inboundOurs(ours: Ours, count: number, warmup: number): Promise<InboundResult> {
  const { remote } = await bridgedRoom(ours);
  const sender = { id: 'Bob' };
  const body = (kind: InboundKind, target: string) => {
    const base = { id: `net-${randomUUID()}`, room: remote, sender, ts: Date.now() };
    switch (kind) {
      case 'message':
        return { ...base, msgtype: 'm.text', body: 'hello from the network' };
      case 'reply':
        return { ...base, msgtype: 'm.text', body: 'a reply from the network', replyTo: target };
      case 'edit':
        return { ...base, target, msgtype: 'm.text', body: 'hello from the network, edited' };
      case 'reaction':
        return { ...base, target, key: '👍' };
      case 'deletion':
        return { ...base, target };
    }
  };
  const post = async (kind: InboundKind, target = '') => {
    const b = body(kind, target);
    const r = await ours.callNetwork(ROUTE[kind], b);
    return { ok: r.status === 200, id: b.id, bytes: Buffer.byteLength(JSON.stringify(b)) };
  };
  for (let i = 0; i < warmup; i++) await post('message');

  const parts: InboundPart[] = [];
  // Targets for the changes: messages posted (unmeasured) before each measured change.
  for (const kind of ['message', 'reply', 'edit', 'reaction', 'deletion'] as const) {
    let tally = emptyDynamo();
    const samples: number[] = [];
    let errors = 0;
    let bytes = 0;
    let logBytes = 0;
    for (let i = 0; i < count; i++) {
      let target = '';
      if (kind !== 'message') {
        const t = await post('message');
        if (!t.ok) errors++;
        target = t.id;
      }
      ours.dynamoCounter.reset();
      const log0 = ours.logBytes();
      const started = now();
      const r = await post(kind, target);
      samples.push(now() - started);
      logBytes += ours.logBytes() - log0;
      tally = addDynamo(tally, ours.dynamoCounter.reset());
      bytes += r.bytes;
      if (!r.ok) errors++;
    }
    parts.push({ kind, count, errors, latency: latency(samples), bodyBytes: bytes / count, dynamo: dynamoPerEvent(tally, count), logBytes: logBytes / count });
  }

  // A fresh copy: nothing in the warm memory.
  const b = ours.bridge;
  b.roomCache.clear();
  b.knownUsers.clear();
  b.joined.clear();
  ours.dynamoCounter.reset();
  await post('message');
  const cold = ours.dynamoCounter.reset();
  return { parts, coldCache: { calls: perTxn(cold.calls, 1), rru: cold.rru, wru: cold.wru } };
}
