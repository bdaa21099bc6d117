/**
 * 6. End to end (issue 21): 50 messages spread over 5 rooms, with a network that answers each
 * `POST /messages` after 100 ms, from the first push to the last message at the network, through
 * push (claim + enqueue + done), the SQS FIFO queue (the local SQS server) and the deliver function
 * on the event source, with the deployed batch size and maximum concurrency (lib/defaults.ts
 * DELIVERY). The target for a real homeserver: all 50 within 2 s of the first send.
 *
 * The network is an HTTP server of its own (below) reached through the project's webhook adapter
 * (signed requests, `Idempotency-Key`), as a deployed bridge reaches a real network. The event
 * source polls the whole time (started before the first push, as Lambda's always is). Two ways the
 * homeserver may send the 50:
 *   - one at a time: 50 transactions of 1 event, round-robin over the rooms, each sent when the
 *     last was answered (a homeserver has one transaction in flight);
 *   - one transaction: all 50 in one (a homeserver with a backlog batches them).
 * Each is run `runs` times, alternating, after one unmeasured run of each.
 *
 * `node --import tsx bench/e2e.ts` runs it alone (BENCH_QUICK=1 and BENCH_E2E_* apply).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { webhookNetwork } from '../lib/bridge/adapters/webhook.js';
import type { NetworkPort } from '../lib/bridge/network.js';
import { DELIVERY } from '../lib/defaults.js';
import { verify } from '../lib/signature.js';
import { enc, knobs, latency, now, round, sleep } from './lib.js';
import type { Knobs, Latency } from './lib.js';
import { bridgedRoomOurs } from './push.js';
import { DOMAIN } from './subjects.js';
import { eventSourceBilled } from './subjects.js';
import type { DeliverInvocation, Ours } from './subjects.js';

export type E2eKnobs = Knobs['e2e'];
export type E2eMode = 'one at a time' | 'one transaction';
export const E2E_MODES: E2eMode[] = ['one at a time', 'one transaction'];
/** Issue 21's target for a real homeserver: every message at the network within this of the first send. */
export const E2E_TARGET_MS = 2000;

export interface E2eRun {
  mode: E2eMode;
  /** From the first push's request to the last message's request reaching the network, ms. */
  firstToLastAtNetworkMs: number;
  /** The same to the network's answer (200) to the last message, ms. */
  firstToLastAnsweredMs: number;
  /** From the first push's request to the last push's answer, ms (the homeserver's part). */
  pushPhaseMs: number;
  /** Per transaction, request to answer, ms. */
  pushAnswerMs: number[];
  /** Per message, from its transaction's request to its arrival at the network, ms. */
  messageMs: number[];
  /** Every message arrived once, and each room's in the order sent. */
  arrived: number;
  duplicates: number;
  inOrder: boolean;
  invocations: DeliverInvocation[];
  /** SQS requests billed: the bridge's (push's SendMessageBatch, deliver's own) and what Lambda's event source would make: receives that brought messages, deletes. */
  sqs: { bridge: number; eventSource: number; emptyReceives: number };
}

export interface E2eSummary {
  mode: E2eMode;
  runs: number;
  firstToLastAtNetworkMs: Latency;
  firstToLastAnsweredMs: Latency;
  pushPhaseMs: Latency;
  pushAnswerMs: Latency;
  messageMs: Latency;
  /** Deliver invocations per run and records per invocation, mean over the runs. */
  invocationsPerRun: number;
  recordsPerInvocation: number;
  /** Handler time per deliver invocation, ms (mostly waiting for the network). */
  invocationMs: Latency;
  /** Sum of the deliver handler times per event, ms: what Lambda bills per event, before rounding. */
  deliverMsPerEvent: number;
  /** SQS requests billed per message: the bridge's, and the event source's (empty receives left out). */
  sqsPerEvent: { bridge: number; eventSource: number };
  /** Runs in which every message arrived once and in order, and within the target. */
  complete: number;
  withinTarget: number;
}

export interface E2eResult {
  messages: number;
  rooms: number;
  networkMs: number;
  batchSize: number;
  concurrency: number;
  summaries: E2eSummary[];
  runs: E2eRun[];
  errors: number;
}

interface Arrival {
  id: string;
  at: number;
  answeredAt: number;
}

/** A network that answers every POST /messages after `delayMs` (signature checked, as a real one would). */
async function slowNetwork(secret: string, delayMs: number) {
  const arrivals: Arrival[] = [];
  const pending = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = now();
      const raw = Buffer.concat(chunks).toString('utf8');
      if (req.method !== 'POST' || req.url !== '/messages') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
      if (!verify(req.headers['x-signature'] as string | undefined, raw, secret).ok) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{}');
      const a: Arrival = { id: String((JSON.parse(raw) as { id?: unknown }).id), at, answeredAt: NaN };
      arrivals.push(a);
      pending.add(res);
      setTimeout(() => {
        pending.delete(res);
        a.answeredAt = now();
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrivals,
    answered: () => arrivals.filter((a) => Number.isFinite(a.answeredAt)).length,
    close: async () => {
      for (const r of pending) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

let seq = 0;

export async function e2eOurs(ours: Ours, k: E2eKnobs, log: (s: string) => void = () => {}): Promise<E2eResult> {
  const b = ours.bridge;
  const roomIds: string[] = [];
  for (let i = 0; i < k.rooms; i++) roomIds.push(await bridgedRoomOurs(ours));
  const secret = 'bench-network-secret-0123456789';
  const net = await slowNetwork(secret, k.networkMs);
  const original: NetworkPort = b.network;
  b.network = webhookNetwork({ url: net.url, secret, timeoutMs: 5000 });
  const runs: E2eRun[] = [];

  const once = async (mode: E2eMode): Promise<E2eRun> => {
    const tag = `${Date.now().toString(36)}${(seq++).toString(36)}`;
    // Message i goes to room i % rooms; each room's in the order of i.
    const events = Array.from({ length: k.messages }, (_, i) => ({
      event_id: `$e2e-${tag}-${i}:${DOMAIN}`,
      room_id: roomIds[i % roomIds.length],
      sender: `@alice:${DOMAIN}`,
      type: 'm.room.message',
      origin_server_ts: Date.now(),
      content: { msgtype: 'm.text', body: `message ${i} of ${k.messages}` },
    }));
    const txns = mode === 'one at a time' ? events.map((e, i) => ({ txnId: `e2e-${tag}-${i}`, events: [e] })) : [{ txnId: `e2e-${tag}`, events }];
    net.arrivals.length = 0;
    ours.takeInvocations();
    ours.sqsCounter.reset();
    ours.eventSourceSqs.reset();
    ours.events.start();
    // The event source is already polling when the homeserver sends, as Lambda's is.
    await sleep(100);
    const sentAt = new Map<string, number>();
    const pushAnswerMs: number[] = [];
    let errors = 0;
    const t0 = now();
    for (const t of txns) {
      const started = now();
      for (const e of t.events) sentAt.set(e.event_id, started);
      const r = await ours.call('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(t.txnId)}`, rawBody: JSON.stringify({ events: t.events }) });
      pushAnswerMs.push(now() - started);
      if (r.status !== 200) errors++;
    }
    const pushed = now();
    const deadline = pushed + 30_000;
    while (net.answered() < k.messages && now() < deadline && errors === 0) await sleep(2);
    await ours.events.stop();
    const bridgeSqs = ours.sqsCounter.reset();
    const esSqs = ours.eventSourceSqs.reset();
    const arrivals = [...net.arrivals];
    const firstOf = new Map<string, Arrival>();
    for (const a of arrivals) if (!firstOf.has(a.id)) firstOf.set(a.id, a);
    const ids = events.map((e) => e.event_id);
    const inOrder = roomIds.every((room) => {
      const mine = ids.filter((_, i) => events[i]!.room_id === room);
      const got = arrivals.filter((a) => mine.includes(a.id)).map((a) => a.id);
      return got.length === mine.length && got.every((id, j) => id === mine[j]);
    });
    const last = ids.map((id) => firstOf.get(id)).filter((a): a is Arrival => a !== undefined);
    return {
      mode,
      firstToLastAtNetworkMs: Math.max(...last.map((a) => a.at)) - t0,
      firstToLastAnsweredMs: Math.max(...last.map((a) => a.answeredAt)) - t0,
      pushPhaseMs: pushed - t0,
      pushAnswerMs,
      messageMs: last.map((a) => a.at - (sentAt.get(a.id) ?? t0)),
      arrived: firstOf.size,
      duplicates: arrivals.length - firstOf.size,
      inOrder: inOrder && errors === 0,
      invocations: ours.takeInvocations(),
      sqs: { bridge: bridgeSqs.billed, eventSource: eventSourceBilled(esSqs), emptyReceives: esSqs.emptyReceives },
    };
  };

  try {
    log(`6. end to end: ${k.messages} messages over ${k.rooms} rooms, network answering after ${k.networkMs} ms; one unmeasured run of each way ...`);
    for (const mode of E2E_MODES) await once(mode);
    for (let r = 1; r <= k.runs; r++) {
      log(`6. end to end, run ${r}/${k.runs}: ${E2E_MODES.join(', then ')} ...`);
      for (const mode of E2E_MODES) runs.push(await once(mode));
    }
  } finally {
    b.network = original;
    await ours.events.stop();
    await net.close();
  }

  const summaries = E2E_MODES.map((mode): E2eSummary => {
    const mine = runs.filter((r) => r.mode === mode);
    const inv = mine.flatMap((r) => r.invocations);
    const complete = mine.filter((r) => r.arrived === k.messages && r.duplicates === 0 && r.inOrder).length;
    return {
      mode,
      runs: mine.length,
      firstToLastAtNetworkMs: latency(mine.map((r) => r.firstToLastAtNetworkMs)),
      firstToLastAnsweredMs: latency(mine.map((r) => r.firstToLastAnsweredMs)),
      pushPhaseMs: latency(mine.map((r) => r.pushPhaseMs)),
      pushAnswerMs: latency(mine.flatMap((r) => r.pushAnswerMs)),
      messageMs: latency(mine.flatMap((r) => r.messageMs)),
      invocationsPerRun: inv.length / Math.max(mine.length, 1),
      recordsPerInvocation: inv.reduce((a, i) => a + i.records, 0) / Math.max(inv.length, 1),
      invocationMs: latency(inv.map((i) => i.ms)),
      deliverMsPerEvent: inv.reduce((a, i) => a + i.ms, 0) / Math.max(k.messages * mine.length, 1),
      sqsPerEvent: {
        bridge: mine.reduce((a, r) => a + r.sqs.bridge, 0) / Math.max(k.messages * mine.length, 1),
        eventSource: mine.reduce((a, r) => a + r.sqs.eventSource, 0) / Math.max(k.messages * mine.length, 1),
      },
      complete,
      withinTarget: mine.filter((r) => r.arrived === k.messages && r.firstToLastAtNetworkMs <= E2E_TARGET_MS).length,
    };
  });
  const errors = runs.reduce((n, r) => n + (k.messages - r.arrived) + r.duplicates + (r.inOrder ? 0 : 1), 0);
  return {
    messages: k.messages,
    rooms: k.rooms,
    networkMs: k.networkMs,
    batchSize: DELIVERY.BATCH_SIZE,
    concurrency: DELIVERY.MAX_CONCURRENCY,
    summaries,
    // Raw runs without the per-invocation detail (kept as counts).
    runs: runs.map((r) => ({ ...r, invocations: r.invocations.map((i) => ({ ...i, ms: round(i.ms, 2), at: round(i.at, 1) })) })),
    errors,
  };
}

// ------------------------------------------------------------------ printing

export function e2eSection(r: E2eResult): string {
  return `6. end to end: ${r.messages} messages over ${r.rooms} rooms, network answers after ${r.networkMs} ms; push + SQS FIFO + deliver (batch ${r.batchSize}, concurrency ${r.concurrency}); ${r.summaries[0]?.runs ?? 0} runs each`;
}

const f = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '—');

export function e2eRows(r: E2eResult): import('./lib.js').Row[] {
  const section = e2eSection(r);
  return r.summaries.flatMap((s) => [
    { section, metric: `${s.mode}: first push → last message at the network, median`, unit: 'ms', ours: s.firstToLastAtNetworkMs.p50, peers: {}, better: 'lower' as const },
    { section, metric: `${s.mode}: the same, worst run (target ≤ ${E2E_TARGET_MS})`, unit: 'ms', ours: s.firstToLastAtNetworkMs.max, peers: {}, better: 'lower' as const },
    { section, metric: `${s.mode}: push answered, p50 per transaction`, unit: 'ms', ours: s.pushAnswerMs.p50, peers: {}, better: 'lower' as const },
  ]);
}

export function renderE2e(r: E2eResult): string {
  const out: string[] = [];
  out.push(`${e2eSection(r).replace(/^6\. end/, '6. End')}.`);
  out.push(`   From the first push's request to the last of the ${r.messages} messages reaching the network (its POST received; "answered": the network's 200 sent ${r.networkMs} ms later). Target: within ${E2E_TARGET_MS} ms.`);
  const head = ['', 'median', 'best', 'worst'];
  const lines: string[][] = [];
  for (const s of r.summaries) {
    lines.push([`${s.mode} (${s.mode === 'one at a time' ? `${r.messages} txns of 1` : `1 txn of ${r.messages}`}): last message at the network`, f(s.firstToLastAtNetworkMs.p50), f(Math.min(...r.runs.filter((x) => x.mode === s.mode).map((x) => x.firstToLastAtNetworkMs))), f(s.firstToLastAtNetworkMs.max)]);
    lines.push(['   … and answered by the network', f(s.firstToLastAnsweredMs.p50), '', f(s.firstToLastAnsweredMs.max)]);
    lines.push(['   … of which the pushes (first request → last answer)', f(s.pushPhaseMs.p50), '', f(s.pushPhaseMs.max)]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => `   ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('   ')}`.trimEnd();
  out.push(fmt(head));
  for (const l of lines) out.push(fmt(l));
  for (const s of r.summaries) {
    out.push(
      `   ${s.mode}: ${s.withinTarget} of ${s.runs} runs within ${E2E_TARGET_MS} ms, ${s.complete} of ${s.runs} complete (every message once, each room in order); ` +
        `per message, push request → at the network p50 ${f(s.messageMs.p50)} ms, max ${f(s.messageMs.max)} ms; push answered p50 ${f(s.pushAnswerMs.p50, 1)} ms, max ${f(s.pushAnswerMs.max, 1)} ms; ` +
        `${f(s.invocationsPerRun, 1)} deliver invocations per run, ${f(s.recordsPerInvocation, 1)} records each, ${f(s.invocationMs.p50)} ms each (p50), ${f(s.deliverMsPerEvent, 1)} ms of deliver time per message; ` +
        `SQS requests per message: ${f(s.sqsPerEvent.bridge, 2)} push + ${f(s.sqsPerEvent.eventSource, 2)} event source`,
    );
  }
  out.push(
    `   before (parking, inline delivery; not measured, that code is gone): push delivered each event to the network itself, one after the other, and answered after the last, ` +
      `and the homeserver sends one transaction at a time: at least ${r.messages} × ${r.networkMs} ms = ${f((r.messages * r.networkMs) / 1000, 1)} s to the last message, either way of sending.`,
  );
  if (r.errors) out.push(`   WARNING: ${r.errors} errors (messages missing, delivered twice, out of order, or a push not answered 200)`);
  return out.join('\n');
}

// ------------------------------------------------------------------ run alone

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const main = async () => {
    const k = knobs();
    const { startOurs, WARM_CALLS_PER_ROUND } = await import('./subjects.js');
    log(`   starting DynamoDB Local (and warming it up: ${k.dynamoWarmRounds * WARM_CALLS_PER_ROUND} calls), the local SQS server and a fake HS for ours ...`);
    const started = Date.now();
    const ours = await startOurs(k.dynamoWarmRounds);
    let r: E2eResult;
    try {
      r = await e2eOurs(ours, k.e2e, log);
    } finally {
      await ours.stop();
    }
    process.stdout.write(`${renderE2e(r)}\n\ntook ${round((Date.now() - started) / 1000, 1)} s (not written to results.json: npm run bench does that)\n`);
  };
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exit(1);
    },
  );
}
