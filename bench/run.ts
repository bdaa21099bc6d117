/**
 * `npm run bench`: every benchmark of issue 5 (and issue 17's one room failing), ours beside the peers, printed as one table (with
 * the ratio ours/peer) and written to bench/results.json. See bench/README.md for what each figure
 * means and the knobs (BENCH_QUICK=1, BENCH_ONLY, BENCH_PEERS, ...).
 *
 * Progress goes to stderr; the table and the cost estimate go to stdout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
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

  // ---------------------------------------------------------------- 2., 3. and 5.: ours, then each peer
  const wantQuery = k.only.has('query');
  const wantPush = k.only.has('push');
  const wantOneRoom = k.only.has('oneroom');
  let oneRoom: import('./one-room.js').OneRoomResult | undefined;
  if (wantQuery || wantPush || wantOneRoom) {
    const { startOurs, startPeerSubject, WARM_CALLS_PER_ROUND } = await import('./subjects.js');
    const { queryOurs, queryPeer } = await import('./query.js');
    const { SIZES, bridgedRoomOurs, bridgedRoomPeer, pushOurs, pushPeer, transactions } = await import('./push.js');
    type QueryResult = Awaited<ReturnType<typeof queryOurs>>;
    type PushResult = Awaited<ReturnType<typeof pushOurs>>;
    const queries: QueryResult[] = [];
    const pushes: PushResult[] = [];
    const pushWarmup = k.quick ? 20 : 100;

    log(`   starting DynamoDB Local (and warming it up: ${k.dynamoWarmRounds * WARM_CALLS_PER_ROUND} calls) and a fake HS for ours ...`);
    const ours = await startOurs(k.dynamoWarmRounds);
    try {
      if (wantQuery) {
        for (const kind of ['user', 'alias'] as const) {
          log(`2. ${kind} query, ours: ${k.warmup} warm-up + ${k.queries} measured calls ...`);
          queries.push(await queryOurs(ours, kind, k.queries, k.warmup));
        }
      }
      if (wantPush) {
        const room = await bridgedRoomOurs(ours);
        for (const size of SIZES) {
          log(`3. push ${size} event(s)/txn, ours: ${k.pushTxns[size]} transactions ...`);
          pushes.push(await pushOurs(ours, room, size, k.pushTxns[size] ?? 1, pushWarmup));
        }
      }
      if (wantOneRoom) {
        // Ours only (the peers have no parked rooms to compare); its own rooms, after 2. and 3.
        const { oneRoomOurs } = await import('./one-room.js');
        oneRoom = await oneRoomOurs(ours, k.oneRoom, log);
      }
    } finally {
      await ours.stop();
    }
    for (const p of k.peers) {
      // A fresh process (and fake HS) for each part: the push benchmark must not inherit the
      // 2,600 users and rooms the queries leave in the peer's stores (nedb scans grow with them).
      if (wantQuery) {
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
      const section = '3. push throughput: m.room.message events from a Matrix user into a bridged room, no-op network';
      const of = (s: 'ours' | PeerKind, size: number) => pushes.find((q) => q.subject === s && q.size === size);
      for (const size of SIZES) {
        rows.push({ section, metric: `${size} ev/txn: events/s`, unit: 'ev/s', ours: of('ours', size)?.eventsPerSec ?? NaN, peers: Object.fromEntries(k.peers.map((p) => [p, of(p, size)?.eventsPerSec ?? NaN])), better: 'higher' });
        rows.push({ section, metric: `${size} ev/txn: time per txn p50`, unit: 'ms', ours: of('ours', size)?.txnMs.p50 ?? NaN, peers: Object.fromEntries(k.peers.map((p) => [p, of(p, size)?.txnMs.p50 ?? NaN])), better: 'lower' });
        const o = of('ours', size);
        rows.push({
          section,
          metric: `${size} ev/txn: mean per txn; ours less its DynamoDB time`,
          unit: 'ms',
          ours: (o?.txnMs.mean ?? NaN) - (o?.dynamo?.msPerTxn ?? NaN),
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
      const { PRICES, pushCost, queryCost } = await import('./cost.js');
      const bodyBytes = new Map<number, number>(SIZES.map((s) => [s, transactions('!room:example.org', s, 1)[0]?.body.length ?? 0]));
      const cost = [...pushCost(pushes, bodyBytes, [1, 10, 100]), ...(wantQuery ? queryCost(queries) : [])];
      results.cost = { prices: PRICES, estimates: cost };
      for (const c of cost) {
        rows.push({ section: `4. cost on paper (ours; ${PRICES.region} list prices assumed on ${PRICES.assumedOn}, see below)`, metric: c.workload, unit: 'USD', ours: round(c.total, 3), peers: {}, better: 'lower' });
      }
    }
  }

  if (oneRoom) {
    const { oneRoomRows } = await import('./one-room.js');
    results.oneRoom = oneRoom;
    rows.push(...oneRoomRows(oneRoom));
  }

  results.table = rows;
  results.durationS = round((Date.now() - started) / 1000, 1);
  writeFileSync(join(BENCH_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

  const out: string[] = [];
  out.push(`matrix-appservice-lambda benchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}${k.quick ? ', QUICK' : ''}`);
  out.push(`peers: ${Object.entries(peerVersions).map(([n, v]) => `${n} ${v}`).join(', ') || 'none'}; ↓ lower is better, ↑ higher is better; ratio = ours/peer`);
  out.push('');
  out.push(renderTable(rows, k.peers));
  const cost = (results.cost as { prices: typeof import('./cost.js').PRICES; estimates: Array<import('./cost.js').CostEstimate> } | undefined) ?? undefined;
  if (cost) {
    const p = cost.prices;
    out.push('');
    out.push(`4. Cost on paper, ours (USD). Prices: ${p.region}, assumed on ${p.assumedOn}: Lambda ${p.lambda.architecture} $${p.lambda.perGbSecond}/GB-s at ${p.lambda.memoryMb} MB + $${p.lambda.perMillionRequests}/M requests;`);
    out.push(`   HTTP API $${p.httpApi.perMillionRequests}/M requests (per 512 KB); DynamoDB on-demand $${p.dynamodb.perMillionWru}/M WRU, $${p.dynamodb.perMillionRru}/M RRU; CloudWatch Logs $${p.cloudwatchLogs.perGbIngested}/GB ingested.`);
    for (const c of cost.estimates) {
      out.push(`   ${c.workload}: $${c.total.toFixed(3)}  (${Math.round(c.invocations).toLocaleString('en-US')} invocations, ${c.billedMs} ms billed each)`);
      for (const l of c.lines) out.push(`      ${l.item.padEnd(32)} $${l.usd.toFixed(4).padStart(8)}   ${l.basis}`);
    }
  }
  if (oneRoom) {
    const { renderOneRoom } = await import('./one-room.js');
    out.push('');
    out.push(renderOneRoom(oneRoom));
  }
  out.push('');
  out.push(`took ${results.durationS} s; written to bench/results.json`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
