/**
 * `npm run bench`: every benchmark of issue 5 (issue 17's one room failing, issue 21's queue: push
 * latency beside the figures recorded before, end-to-end latency, SQS and DynamoDB requests per
 * event, cost), ours beside the peers, printed as one table (with
 * the ratio ours/peer) and written to bench/results.json. See bench/README.md for what each figure
 * means and the knobs (BENCH_QUICK=1, BENCH_ONLY, BENCH_PEERS, ...).
 *
 * Progress goes to stderr; the table and the cost estimate go to stdout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, PEER_NAMES, closeHttp, knobs, renderTable, round } from './lib.js';
import type { PeerKind, Row } from './lib.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const log = (s: string) => process.stderr.write(`${s}\n`);

/** The peers live in bench/node_modules, installed by the bench itself, never by the project. */
function ensurePeers(): void {
  const need = ['matrix-appservice-bridge', 'matrix-bot-sdk', 'nedb', '@matrix-org/matrix-sdk-crypto-nodejs'];
  if (need.every((p) => existsSync(join(BENCH_DIR, 'node_modules', p, 'package.json')))) return;
  const ci = existsSync(join(BENCH_DIR, 'package-lock.json'));
  log(`installing the peers into bench/node_modules (npm ${ci ? 'ci' : 'install'} --prefix bench) ...`);
  const r = spawnSync('npm', [ci ? 'ci' : 'install', '--prefix', BENCH_DIR, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`installing the peers failed (npm exited with ${r.status ?? r.signal})`);
}

/** The machine's 1-minute load average as each part began: on 2 cores, above ~2 means something else wanted the CPU too. */
const loadByPart: Array<{ part: string; at: string; load1: number }> = [];
const mark = (part: string) => loadByPart.push({ part, at: new Date().toISOString().slice(11, 19), load1: round(loadavg()[0] ?? NaN, 2) });

async function main(): Promise<void> {
  const k = knobs();
  const started = Date.now();
  const rows: Row[] = [];
  const results: Record<string, unknown> = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
      cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
      memoryGb: round(totalmem() / 1024 ** 3, 1),
      /** The machine's 1/5/15-minute load averages when the run started (2 cores: above 2, something else wants the CPU too). */
      loadAverageAtStart: loadavg().map((l) => round(l, 2)),
      quick: k.quick,
      knobs: { ...k, only: [...k.only] },
    },
  };
  if (k.peers.length) ensurePeers();
  const peerVersions: Record<string, string> = {};
  for (const p of k.peers) {
    const { createRequire } = await import('node:module');
    const req = createRequire(join(BENCH_DIR, 'package.json'));
    peerVersions[PEER_NAMES[p]] = (req(`${PEER_NAMES[p]}/package.json`) as { version: string }).version;
  }
  (results.meta as Record<string, unknown>).peers = peerVersions;
  log(`bench: ${k.quick ? 'QUICK ' : ''}run of ${[...k.only].join(', ')} against ${k.peers.map((p) => PEER_NAMES[p]).join(', ') || 'no peers'}`);

  // ---------------------------------------------------------------- 1. cold start
  if (k.only.has('cold')) {
    mark('1. cold start');
    log(`1. cold start: bundling, then ${k.coldRuns} fresh processes per bundle ...`);
    const { coldStart } = await import('./cold-start.js');
    const cs = await coldStart(k.peers, k.coldRuns, log);
    results.coldStart = cs;
    const peer = (p: PeerKind) => cs.bundles.find((b) => b.kind === p);
    const section = `1. cold start: bundle, and import in a fresh node less bare \`node -e 0\` (${round(cs.bareMs, 1)} ms); median of ${cs.runs}`;
    for (const b of cs.bundles.filter((x) => x.kind === 'ours')) {
      rows.push({ section, metric: `${b.name}: bundle size`, unit: 'KB', ours: b.bytes / 1024, peers: Object.fromEntries(k.peers.map((p) => [p, (peer(p)?.bytes ?? NaN) / 1024])), better: 'lower' });
    }
    for (const b of cs.bundles.filter((x) => x.kind === 'ours')) {
      rows.push({ section, metric: `${b.name}: import`, unit: 'ms', ours: b.importMs, peers: Object.fromEntries(k.peers.map((p) => [p, peer(p)?.importMs ?? NaN])), better: 'lower' });
    }
  }

  // ---------------------------------------------------------------- 2., 3., 5. and 6.: ours, then each peer
  const wantQuery = k.only.has('query');
  const wantPush = k.only.has('push');
  const wantOneRoom = k.only.has('oneroom');
  const wantE2e = k.only.has('e2e');
  let oneRoom: import('./one-room.js').OneRoomResult | undefined;
  let e2e: import('./e2e.js').E2eResult | undefined;
  let references: import('./rich.js').ReferenceResult[] = [];
  let inbound: import('./rich.js').InboundResult | undefined;
  if (wantQuery || wantPush || wantOneRoom || wantE2e) {
    const { startOurs, startPeerSubject, WARM_CALLS_PER_ROUND } = await import('./subjects.js');
    const { queryOurs, queryPeer } = await import('./query.js');
    const { SIZES, bridgedRoomOurs, bridgedRoomPeer, pushOurs, pushPeer, transactions } = await import('./push.js');
    type QueryResult = Awaited<ReturnType<typeof queryOurs>>;
    type PushResult = Awaited<ReturnType<typeof pushOurs>>;
    const queries: QueryResult[] = [];
    const pushes: PushResult[] = [];
    const pushWarmup = k.quick ? 20 : 100;

    log(`   starting DynamoDB Local (and warming it up: ${k.dynamoWarmRounds * WARM_CALLS_PER_ROUND} calls), the local SQS server and a fake HS for ours ...`);
    const ours = await startOurs(k.dynamoWarmRounds);
    try {
      if (wantQuery) {
        for (const kind of ['user', 'alias'] as const) {
          mark(`2. ${kind} query, ours`);
          log(`2. ${kind} query, ours: ${k.warmup} warm-up + ${k.queries} measured calls ...`);
          queries.push(await queryOurs(ours, kind, k.queries, k.warmup));
        }
      }
      if (wantPush) {
        const room = await bridgedRoomOurs(ours);
        for (const size of SIZES) {
          mark(`3. push ${size}, ours`);
          log(`3. push ${size} event(s)/txn, ours: ${k.pushTxns[size]} transactions ...`);
          pushes.push(await pushOurs(ours, room, size, k.pushTxns[size] ?? 1, pushWarmup));
        }
        // For the cost (4.): the message mapping's calls on references and on the network's messages.
        const { inboundOurs, referencesOurs } = await import('./rich.js');
        const refCount = k.quick ? 30 : 100;
        mark('3c. references, ours');
        log(`3c. references (reply, edit, reaction, redaction) to delivered messages, ours: ${refCount} of each ...`);
        references = await referencesOurs(ours, refCount);
        const inCount = k.quick ? 50 : 200;
        mark('3c. network → Matrix, ours');
        log(`3c. network → Matrix (network-inbound): ${inCount} messages, then ${inCount} replies, edits, reactions and deletions ...`);
        inbound = await inboundOurs(ours, inCount, 20);
      }
      if (wantOneRoom) {
        // Ours only (the peers have no delivery queue to compare); its own rooms, after 2. and 3.
        const { oneRoomOurs } = await import('./one-room.js');
        mark('5. one room failing');
        oneRoom = await oneRoomOurs(ours, k.oneRoom, log);
      }
      if (wantE2e) {
        // Ours only: push + queue + deliver against a network that takes its time; its own rooms.
        const { e2eOurs } = await import('./e2e.js');
        mark('6. end to end');
        e2e = await e2eOurs(ours, k.e2e, log);
      }
      if (ours.eventSourceErrors()) log(`WARNING: the event source met ${ours.eventSourceErrors()} errors (a receive or delete that failed, or a deliver invocation that threw)`);
    } finally {
      await ours.stop();
    }
    for (const p of k.peers) {
      // A fresh process (and fake HS) for each part: the push benchmark must not inherit the
      // 2,600 users and rooms the queries leave in the peer's stores (nedb scans grow with them).
      if (wantQuery) {
        mark(`2. queries, ${PEER_NAMES[p]}`);
        log(`   starting ${PEER_NAMES[p]} (own process) and its fake HS ...`);
        const peer = await startPeerSubject(p);
        try {
          for (const kind of ['user', 'alias'] as const) {
            log(`2. ${kind} query, ${PEER_NAMES[p]}: ${k.warmup} warm-up + ${k.queries} measured calls ...`);
            queries.push(await queryPeer(peer, kind, k.queries, k.warmup));
          }
        } finally {
          await peer.stop();
        }
      }
      if (wantPush) {
        mark(`3. push, ${PEER_NAMES[p]}`);
        log(`   starting a fresh ${PEER_NAMES[p]} and its fake HS ...`);
        const peer = await startPeerSubject(p);
        try {
          const room = await bridgedRoomPeer(peer);
          for (const size of SIZES) {
            log(`3. push ${size} event(s)/txn, ${PEER_NAMES[p]}: ${k.pushTxns[size]} transactions ...`);
            pushes.push(await pushPeer(peer, room, size, k.pushTxns[size] ?? 1, pushWarmup));
          }
        } finally {
          await peer.stop();
        }
      }
    }
    closeHttp();

    const failures = [...queries.filter((q) => q.errors), ...pushes.filter((q) => q.errors)];
    for (const f of failures) log(`WARNING: ${f.subject} had ${f.errors} failed calls in ${'kind' in f ? `${f.kind} query` : `push ${f.size}`}`);
    if (oneRoom?.errors) log(`WARNING: ours had ${oneRoom.errors} errors in the one-room-failing run`);
    if (e2e?.errors) log(`WARNING: ours had ${e2e.errors} errors in the end-to-end run`);

    if (wantQuery) {
      results.query = queries;
      const section = `2. query latency: a new ID per call, ${k.queries} calls after ${k.warmup} warm-up; fake HS answers at once`;
      const of = (s: 'ours' | PeerKind, kind: string) => queries.find((q) => q.subject === s && q.kind === kind);
      for (const kind of ['user', 'alias'] as const) {
        for (const stat of ['p50', 'p99'] as const) {
          rows.push({
            section,
            metric: `${kind} query ${stat}`,
            unit: 'ms',
            ours: of('ours', kind)?.latency[stat] ?? NaN,
            peers: Object.fromEntries(k.peers.map((p) => [p, of(p, kind)?.latency[stat] ?? NaN])),
            better: 'lower',
          });
        }
        const o = of('ours', kind);
        rows.push({ section, metric: `${kind} query: of which in DynamoDB (mean)`, unit: 'ms', ours: o?.dynamo?.msPerQuery ?? NaN, peers: {}, better: '' });
        rows.push({
          section,
          metric: `${kind} query mean; ours less its DynamoDB time`,
          unit: 'ms',
          ours: (o?.latency.mean ?? NaN) - (o?.dynamo?.msPerQuery ?? NaN),
          peers: Object.fromEntries(k.peers.map((p) => [p, of(p, kind)?.latency.mean ?? NaN])),
          better: 'lower',
        });
        rows.push({
          section,
          metric: `${kind} query: DynamoDB calls`,
          unit: 'calls',
          ours: o?.dynamo?.callsPerQuery ?? NaN,
          peers: Object.fromEntries(k.peers.map((p) => [p, p === 'bridge' ? 'nedb file' : 'none'])),
          better: '',
        });
      }
    }
    if (wantPush) {
      results.push = pushes;
      const section = '3. push throughput: m.room.message events from a Matrix user into a bridged room, no-op network; ours: until answered (events queued), peers: until handled';
      const of = (s: 'ours' | PeerKind, size: number) => pushes.find((q) => q.subject === s && q.size === size);
      for (const size of SIZES) {
        rows.push({ section, metric: `${size} ev/txn: events/s`, unit: 'ev/s', ours: of('ours', size)?.eventsPerSec ?? NaN, peers: Object.fromEntries(k.peers.map((p) => [p, of(p, size)?.eventsPerSec ?? NaN])), better: 'higher' });
        rows.push({ section, metric: `${size} ev/txn: time per txn p50`, unit: 'ms', ours: of('ours', size)?.txnMs.p50 ?? NaN, peers: Object.fromEntries(k.peers.map((p) => [p, of(p, size)?.txnMs.p50 ?? NaN])), better: 'lower' });
        const o = of('ours', size);
        rows.push({
          section,
          metric: `${size} ev/txn: mean per txn; ours less its DynamoDB and SQS time`,
          unit: 'ms',
          ours: (o?.txnMs.mean ?? NaN) - (o?.dynamo?.msPerTxn ?? NaN) - (o?.sqs?.msPerTxn ?? NaN),
          peers: Object.fromEntries(k.peers.map((p) => [p, of(p, size)?.txnMs.mean ?? NaN])),
          better: 'lower',
        });
        rows.push({
          section,
          metric: `${size} ev/txn: DynamoDB calls/txn, warm (fresh copy)`,
          unit: 'calls',
          ours: o?.dynamo ? `${round(o.dynamo.callsPerTxn)} (${o.dynamo.coldCache.calls.length})` : '—',
          peers: Object.fromEntries(k.peers.map((p) => [p, p === 'bridge' ? 'nedb file' : 'none'])),
          better: '',
        });
      }
      const { BEFORE } = await import('./before.js');
      const latencySection = `3a. push latency, ours: what the homeserver waits per transaction, now (claim + enqueue + done) vs ${BEFORE.label}, recorded ${BEFORE.recordedOn}`;
      for (const size of SIZES) {
        const o = of('ours', size);
        const before = BEFORE.push[size];
        if (!o || !before) continue;
        rows.push({ section: latencySection, metric: `${size} ev/txn: p50 now / before`, unit: 'ms', ours: `${fmtMs(o.txnMs.p50)} / ${fmtMs(before.p50)}`, peers: {}, better: '' });
        rows.push({ section: latencySection, metric: `${size} ev/txn: mean now / before`, unit: 'ms', ours: `${fmtMs(o.txnMs.mean)} / ${fmtMs(before.mean)}`, peers: {}, better: '' });
        rows.push({ section: latencySection, metric: `${size} ev/txn: p50 now ÷ before`, unit: '×', ours: o.txnMs.p50 / before.p50, peers: {}, better: 'lower' });
        for (const p of k.peers) {
          const peerNow = of(p, size)?.txnMs.p50 ?? NaN;
          const peerBefore = BEFORE.machine.peersPushP50[p]?.[size] ?? NaN;
          rows.push({ section: latencySection, metric: `${size} ev/txn: ours ÷ ${PEER_NAMES[p]} p50, now / before`, unit: '×', ours: `${round(o.txnMs.p50 / peerNow, 1)} / ${round(before.p50 / peerBefore, 1)}`, peers: {}, better: '' });
        }
      }
      // The machine: DynamoDB Local's time per call in push (the same two or three kinds of calls), now and in the recorded run.
      const o1 = of('ours', 1);
      if (o1?.dynamo) {
        rows.push({ section: latencySection, metric: 'machine speed: DynamoDB Local ms per call (push, 1 ev/txn), now / before', unit: 'ms', ours: `${fmtMs(o1.dynamo.msPerTxn / o1.dynamo.callsPerTxn)} / ${fmtMs(BEFORE.machine.dynamoMsPerCall)}`, peers: {}, better: '' });
      }
      const perEventSection = '3b. requests per event, ours (push + deliver; the deliver function writes the message mapping of each message the network took)';
      for (const size of SIZES) {
        const o = of('ours', size);
        if (!o?.dynamo || !o.sqs || !o.deliver) continue;
        const sqsPush = o.sqs.billedPerTxn / size;
        const sqsDeliver = o.deliver.eventSource.billedPerEvent + o.deliver.bridge.billedPerEvent;
        rows.push({ section: perEventSection, metric: `${size} ev/txn: SQS requests/event, push + event source = total`, unit: 'req', ours: `${round(sqsPush, 3)} + ${round(sqsDeliver, 3)} = ${round(sqsPush + sqsDeliver, 3)}`, peers: {}, better: '' });
        const wruPush = o.dynamo.wruPerTxn / size;
        const wruDeliver = o.deliver.dynamo.wruPerEvent;
        rows.push({ section: perEventSection, metric: `${size} ev/txn: DynamoDB WRU/event, push + deliver = total`, unit: 'WRU', ours: `${round(wruPush, 3)} + ${round(wruDeliver, 3)} = ${round(wruPush + wruDeliver, 3)}`, peers: {}, better: '' });
        rows.push({
          section: perEventSection,
          metric: `${size} ev/txn: of which the message mapping: table + byEvent index`,
          unit: 'WRU',
          ours: `${round(wruDeliver - o.deliver.dynamo.indexWruPerEvent, 3)} + ${round(o.deliver.dynamo.indexWruPerEvent, 3)}`,
          peers: {},
          better: '',
        });
        rows.push({ section: perEventSection, metric: `${size} ev/txn: deliver invocations/event`, unit: 'inv', ours: 1 / o.deliver.eventsPerInvocation, peers: {}, better: 'lower' });
      }
      const { PRICES, eventCost, inboundCost, queryCost, referenceCost } = await import('./cost.js');
      const bodyBytes = new Map<number, number>(SIZES.map((s) => [s, transactions('!room:example.org', s, 1)[0]?.body.length ?? 0]));
      const events = eventCost(pushes, bodyBytes, [1, 10, 100]);
      const queriesCost = wantQuery ? queryCost(queries) : [];
      const inboundCosts = inbound ? inboundCost(inbound) : undefined;
      const refCosts = referenceCost(references, inbound);
      results.references = references;
      results.inbound = inbound;
      results.cost = { prices: PRICES, events, queries: queriesCost, inbound: inboundCosts, references: refCosts };
      const costSection = `4. cost on paper (ours; ${PRICES.region} list prices assumed on ${PRICES.assumedOn}, see below)`;
      for (const c of events) {
        rows.push({ section: costSection, metric: `${c.workload}: now (push + deliver + mapping storage)`, unit: 'USD', ours: round(c.total, 3), peers: {}, better: 'lower' });
        rows.push({ section: costSection, metric: `${c.workload}: of which the message mapping (writes + storage)`, unit: 'USD', ours: `${round(c.mapping.writesUsd, 3)} + ${round(c.mapping.storageUsd, 3)}`, peers: {}, better: '' });
        if (c.before !== undefined) rows.push({ section: costSection, metric: `${c.workload}: ${BEFORE.label}`, unit: 'USD', ours: c.before, peers: {}, better: 'lower' });
      }
      if (inboundCosts) {
        rows.push({ section: costSection, metric: 'network → Matrix, per million messages (+ mapping storage)', unit: 'USD', ours: round(inboundCosts.total, 3), peers: {}, better: 'lower' });
      }
      for (const dir of ['Matrix → network', 'network → Matrix'] as const) {
        const mine = refCosts.filter((r) => r.direction === dir);
        if (!mine.length) continue;
        rows.push({
          section: costSection,
          metric: `references ${dir}: DynamoDB reads per million (${mine.map((r) => r.kind).join(', ')})`,
          unit: 'USD',
          ours: mine.map((r) => round(r.readsUsd, 3)).join(' / '),
          peers: {},
          better: '',
        });
      }
      for (const c of queriesCost) rows.push({ section: costSection, metric: c.workload, unit: 'USD', ours: round(c.total, 3), peers: {}, better: 'lower' });
    }
  }

  if (oneRoom) {
    const { oneRoomRows } = await import('./one-room.js');
    results.oneRoom = oneRoom;
    rows.push(...oneRoomRows(oneRoom));
  }
  if (e2e) {
    const { e2eRows } = await import('./e2e.js');
    results.e2e = e2e;
    rows.push(...e2eRows(e2e));
  }
  // The cost of a slow network (6.): the deliver function waits for it, as push did before.
  const costResults = results.cost as { events: Array<import('./cost.js').EventCost> } | undefined;
  const noOp = (results.push as Array<import('./push.js').PushResult> | undefined)?.find((p) => p.subject === 'ours' && p.size === 1)?.deliver;
  const quiet = e2e?.summaries.find((x) => x.mode === 'one at a time');
  if (costResults && e2e && noOp && quiet) {
    const { slowNetworkDeliverCost } = await import('./cost.js');
    (costResults as Record<string, unknown>).slowNetwork = slowNetworkDeliverCost(quiet, e2e.networkMs, noOp);
  }
  results.before = (await import('./before.js')).BEFORE;

  results.table = rows;
  // The recorded run of the parking design (its meta, printed table and cost, without raw samples),
  // carried from one results.json to the next so that it is never lost with a new run.
  const previous = join(BENCH_DIR, 'results.json');
  if (existsSync(previous)) {
    try {
      const recorded = (JSON.parse(readFileSync(previous, 'utf8')) as { beforeRecorded?: unknown }).beforeRecorded;
      if (recorded) results.beforeRecorded = recorded;
    } catch {
      log('WARNING: the previous bench/results.json could not be read; its beforeRecorded figures are not carried over');
    }
  }
  results.durationS = round((Date.now() - started) / 1000, 1);
  (results.meta as Record<string, unknown>).loadAverageAtEnd = loadavg().map((l) => round(l, 2));
  (results.meta as Record<string, unknown>).loadByPart = loadByPart;
  writeFileSync(join(BENCH_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

  const out: string[] = [];
  out.push(`matrix-appservice-lambda benchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}${k.quick ? ', QUICK' : ''}`);
  const meta = results.meta as { loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  out.push(`load average (1/5/15 min) at start ${meta.loadAverageAtStart.join(' / ')}, at end ${meta.loadAverageAtEnd.join(' / ')} on ${cpus().length} cores`);
  if (loadByPart.length) out.push(`1-minute load as each part began: ${loadByPart.map((l) => `${l.part} ${l.load1}`).join('; ')}`);
  out.push(`peers: ${Object.entries(peerVersions).map(([n, v]) => `${n} ${v}`).join(', ') || 'none'}; ↓ lower is better, ↑ higher is better; ratio = ours/peer`);
  out.push('');
  out.push(renderTable(rows, k.peers));
  const cost = results.cost as
    | {
        prices: typeof import('./cost.js').PRICES;
        events: Array<import('./cost.js').EventCost>;
        queries: Array<import('./cost.js').CostEstimate>;
        slowNetwork?: import('./cost.js').CostEstimate;
        inbound?: { message: import('./cost.js').CostEstimate; storage: import('./cost.js').StorageCost; total: number };
        references: Array<import('./cost.js').ReferenceCost>;
      }
    | undefined;
  if (cost) {
    const { BEFORE } = await import('./before.js');
    const { usdPerMillionEventsPerWaitMs } = await import('./cost.js');
    const p = cost.prices;
    const costLine = (l: import('./cost.js').CostLine, indent: string) => out.push(`${indent}${l.item.padEnd(32)} $${l.usd.toFixed(4).padStart(8)}   ${l.basis}`);
    const estimateLines = (c: import('./cost.js').CostEstimate, indent: string) => {
      out.push(`${indent}${c.workload}: $${c.total.toFixed(3)}  (${Math.round(c.invocations).toLocaleString('en-US')} invocations, ${c.billedMs} ms billed each)`);
      for (const l of c.lines) costLine(l, `${indent}   `);
    };
    const storageLines = (st: import('./cost.js').StorageCost, indent: string) => {
      out.push(`${indent}the message mapping kept ${st.days} days, a month, at a steady million a month: $${st.total.toFixed(3)}`);
      for (const l of st.lines) costLine(l, `${indent}   `);
    };
    out.push('');
    out.push(`4. Cost on paper, ours (USD). Prices: ${p.region}, assumed on ${p.assumedOn}: Lambda ${p.lambda.architecture} $${p.lambda.perGbSecond}/GB-s at ${p.lambda.memoryMb} MB + $${p.lambda.perMillionRequests}/M requests;`);
    out.push(
      `   HTTP API $${p.httpApi.perMillionRequests}/M requests (per 512 KB); DynamoDB on-demand $${p.dynamodb.perMillionWru}/M WRU, $${p.dynamodb.perMillionRru}/M RRU, storage $${p.dynamodb.storagePerGbMonth}/GB-month, PITR $${p.dynamodb.pitrPerGbMonth}/GB-month; SQS ${p.sqs.queue} $${p.sqs.perMillionRequests}/M requests (per 64 KiB);`,
    );
    out.push(`   CloudWatch Logs $${p.cloudwatchLogs.perGbIngested}/GB ingested. "Before": ${BEFORE.label}, recorded ${BEFORE.recordedOn} (push delivered inline; no queue).`);
    for (const c of cost.events) {
      out.push(
        `   ${c.workload}: $${c.total.toFixed(3)} now (push $${c.push.total.toFixed(3)} + deliver $${c.deliver.total.toFixed(3)} + mapping storage $${c.storage.total.toFixed(3)}; ` +
          `the message mapping in all $${c.mapping.total.toFixed(3)}: writes $${c.mapping.writesUsd.toFixed(3)}, storage $${c.mapping.storageUsd.toFixed(3)})` +
          (c.before !== undefined ? `; before $${c.before.toFixed(3)} (now ÷ before ${(c.total / c.before).toFixed(2)})` : ''),
      );
      estimateLines(c.push, '      ');
      estimateLines(c.deliver, '      ');
      storageLines(c.storage, '      ');
    }
    if (cost.inbound) {
      out.push(`   network → Matrix, per million messages: $${cost.inbound.total.toFixed(3)} (network-inbound $${cost.inbound.message.total.toFixed(3)} + mapping storage $${cost.inbound.storage.total.toFixed(3)})`);
      estimateLines(cost.inbound.message, '      ');
      storageLines(cost.inbound.storage, '      ');
    }
    if (cost.references.length) {
      out.push(
        '   References, DynamoDB per reference and per million of them: reads (the look-up of the target; network → Matrix, a reply and a reaction also read the mapping for a resend, and a reply the room, as any message does), writes (a reply\'s or a reaction\'s own mapping, as for any message):',
      );
      for (const r of cost.references) {
        const calls = Object.entries(r.calls)
          .filter(([, v]) => v > 0)
          .map(([n, v]) => `${n} ×${Number(v.toFixed(2))}`)
          .join(', ');
        out.push(
          `      ${`${r.direction}, ${r.kind}:`.padEnd(30)} ${Number(r.rru.toFixed(2))} RRU + ${Number(r.wru.toFixed(2))} WRU: reads $${r.readsUsd.toFixed(4)} + writes $${r.writesUsd.toFixed(4)} per million (${calls})`,
        );
      }
    }
    if (cost.slowNetwork) {
      const one = cost.events.find((c) => c.size === 1);
      const s = cost.slowNetwork;
      out.push(`   With a network that takes ${e2e?.networkMs ?? '?'} ms a message (from 6.), the deliver function's duration is mostly that wait:`);
      estimateLines(s, '      ');
      if (one) {
        const waitUsd = usdPerMillionEventsPerWaitMs * (e2e?.networkMs ?? 0);
        out.push(
          `      → 1 event/transaction with that network: push $${one.push.total.toFixed(3)} + deliver $${s.total.toFixed(3)} = $${(one.push.total + s.total).toFixed(3)} per million events; ` +
            `before, push itself waited for the network, inline: ≈ $${((one.before ?? NaN) + waitUsd).toFixed(3)} ($${(one.before ?? NaN).toFixed(3)} + ${e2e?.networkMs} ms × $${usdPerMillionEventsPerWaitMs.toFixed(5)} per ms per million; an estimate, not measured)`,
        );
      }
    }
    for (const c of cost.queries) estimateLines(c, '   ');
  }
  if (wantPushDetail(results)) {
    out.push('');
    out.push(renderPushDetail(results.push as Array<import('./push.js').PushResult>));
  }
  if (references.length || inbound) {
    out.push('');
    out.push(renderRich(references, inbound));
  }
  if (oneRoom) {
    const { renderOneRoom } = await import('./one-room.js');
    out.push('');
    out.push(renderOneRoom(oneRoom));
  }
  if (e2e) {
    const { renderE2e } = await import('./e2e.js');
    out.push('');
    out.push(renderE2e(e2e));
  }
  out.push('');
  out.push(`took ${results.durationS} s; written to bench/results.json`);
  process.stdout.write(`${out.join('\n')}\n`);
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

const wantPushDetail = (results: Record<string, unknown>) => Array.isArray(results.push) && (results.push as Array<{ subject: string }>).some((p) => p.subject === 'ours');

/** 3., ours in detail: where the push's time goes, and what the deliver function did with its events. */
function renderPushDetail(pushes: Array<import('./push.js').PushResult>): string {
  const out: string[] = ['3. Push, ours in detail: the answer (what the homeserver waits), its DynamoDB and SQS calls; then, untimed, the deliver function on those events.'];
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const calls = (c: Record<string, number>) =>
    Object.entries(c)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ×${f(v, v >= 10 ? 0 : 2)}`)
      .join(', ') || 'none';
  for (const o of pushes.filter((p) => p.subject === 'ours')) {
    const d = o.deliver;
    out.push(
      `   ${o.size} ev/txn: answered p50 ${f(o.txnMs.p50)} ms, mean ${f(o.txnMs.mean)} ms (DynamoDB ${f(o.dynamo?.msPerTxn ?? NaN)} ms: ${o.dynamo?.calls.join(', ') ?? '—'}; ` +
        `SQS ${f(o.sqs?.msPerTxn ?? NaN)} ms: ${calls(o.sqs?.calls ?? {})}, ${f(o.sqs?.billedPerTxn ?? NaN)} billed); fresh copy: ${o.dynamo?.coldCache.calls.join(', ') ?? '—'}`,
    );
    if (d) {
      out.push(
        `      deliver: ${d.delivered} of ${d.events} events at the network, ${d.invocations} invocations (${f(d.eventsPerInvocation)} events each, ${f(d.invocationMs.mean)} ms mean, ${f(d.invocationMs.p99)} ms p99), ` +
          `${d.failedRecords} records reported failed; DynamoDB per event: ${calls(d.dynamo.calls)} (${f(d.dynamo.wruPerEvent)} WRU, ${f(d.dynamo.msPerEvent)} ms; mapping items ${f(d.dynamo.mapping.tableBytes, 0)} B + ${f(d.dynamo.mapping.indexBytes, 0)} B in byEvent); ` +
          `SQS per event: event source ${calls(d.eventSource.callsPerEvent)}, function ${calls(d.bridge.callsPerEvent)}; ` +
          `the local event source's own calls, left out: ${calls(d.eventSource.extras)} in all`,
      );
    }
  }
  return out.join('\n');
}

/** 3c., ours: the message mapping's DynamoDB calls on references (Matrix → network) and on the network's messages and changes. */
function renderRich(refs: import('./rich.js').ReferenceResult[], inbound: import('./rich.js').InboundResult | undefined): string {
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const calls = (c: Record<string, number>) =>
    Object.entries(c)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ×${f(v)}`)
      .join(', ') || 'none';
  const out: string[] = ['3c. The message mapping, ours: DynamoDB per request on references and on the network\'s messages (warm copy; RRU/WRU as billed).'];
  for (const r of refs) {
    out.push(
      `   Matrix → network, ${r.kind} of a message delivered earlier (${r.count}, ${r.errors} errors): push ${calls(r.push.calls)}; deliver ${calls(r.deliver.calls)} = ` +
        `${f(r.deliver.rruPerEvent)} RRU (${f(r.deliver.indexRruPerEvent)} of the byEvent index) + ${f(r.deliver.wruPerEvent)} WRU (${f(r.deliver.indexWruPerEvent)} of the index)`,
    );
  }
  for (const x of inbound?.parts ?? []) {
    out.push(
      `   network → Matrix, ${x.kind} (${x.count}, ${x.errors} errors): p50 ${f(x.latency.p50)} ms, mean ${f(x.latency.mean)} ms; ${calls(x.dynamo.calls)} = ${f(x.dynamo.rruPerEvent)} RRU + ${f(x.dynamo.wruPerEvent)} WRU ` +
        `(${f(x.dynamo.indexWruPerEvent)} of the index), ${f(x.dynamo.msPerEvent)} ms in DynamoDB` +
        (x.dynamo.mapping.writesPerEvent > 0 ? `; mapping items ${f(x.dynamo.mapping.tableBytes, 0)} B + ${f(x.dynamo.mapping.indexBytes, 0)} B in byEvent` : ''),
    );
  }
  if (inbound) out.push(`   network → Matrix, a message in a fresh copy (nothing in its memory): ${inbound.coldCache.calls.join(', ')} = ${f(inbound.coldCache.rru)} RRU + ${f(inbound.coldCache.wru)} WRU`);
  return out.join('\n');
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
