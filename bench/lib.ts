/** Shared helpers for the benchmarks: statistics, the result table, HTTP, the peer processes. */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const ROOT_DIR = fileURLToPath(new URL('..', import.meta.url));

// ------------------------------------------------------------------ knobs

const envInt = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

export const QUICK = process.env.BENCH_QUICK === '1';

export interface Knobs {
  quick: boolean;
  /** Fresh processes per bundle for the cold start (and for `node -e 0`). */
  coldRuns: number;
  /** Calls per query kind and subject. */
  queries: number;
  /** Calls before the measured ones, per query kind and subject: JIT (ours, the peers and DynamoDB
   *  Local's Java all start cold), connection pools, first-call set-up. */
  warmup: number;
  /** Rounds of the DynamoDB Local warm-up (4 workers × 6 calls per round) before ours is measured. */
  dynamoWarmRounds: number;
  /** Transactions per size, for each push size. */
  pushTxns: Record<number, number>;
  /** 5., one room failing: rooms bridged, events per transaction (spread over the rooms round-robin),
   *  measured transactions per run (a) and (b), split into rounds that alternate (a) and (b). */
  oneRoom: { rooms: number; eventsPerTxn: number; txns: number; rounds: number; warmup: number };
  /** 6., end to end: messages, rooms they are spread over, the network's answer time (ms), measured runs of each way. */
  e2e: { messages: number; rooms: number; networkMs: number; runs: number };
  /** Which parts run: cold, query, push (cost follows push), oneroom, e2e. */
  only: Set<string>;
  /** Which peers run: bridge, botsdk. */
  peers: PeerKind[];
}

export function knobs(): Knobs {
  const only = new Set((process.env.BENCH_ONLY ?? 'cold,query,push,oneroom,e2e').split(',').map((s) => s.trim()).filter(Boolean));
  const peers = (process.env.BENCH_PEERS ?? 'bridge,botsdk').split(',').map((s) => s.trim()).filter((p): p is PeerKind => p === 'bridge' || p === 'botsdk');
  return {
    quick: QUICK,
    coldRuns: envInt('BENCH_COLD_RUNS', QUICK ? 5 : 20),
    queries: envInt('BENCH_QUERIES', QUICK ? 100 : 1000),
    warmup: envInt('BENCH_WARMUP', QUICK ? 50 : 300),
    dynamoWarmRounds: envInt('BENCH_DYNAMO_WARM', QUICK ? 60 : 250),
    pushTxns: QUICK ? { 1: 30, 10: 20, 100: 5, 1000: 2 } : { 1: 300, 10: 200, 100: 40, 1000: 10 },
    oneRoom: {
      rooms: Math.max(2, envInt('BENCH_ONEROOM_ROOMS', 10)),
      eventsPerTxn: envInt('BENCH_ONEROOM_EVENTS', 10),
      txns: envInt('BENCH_ONEROOM_TXNS', QUICK ? 200 : 800),
      rounds: envInt('BENCH_ONEROOM_ROUNDS', QUICK ? 2 : 4),
      warmup: QUICK ? 30 : 100,
    },
    e2e: {
      messages: envInt('BENCH_E2E_MESSAGES', 50),
      rooms: envInt('BENCH_E2E_ROOMS', 5),
      networkMs: envInt('BENCH_E2E_NETWORK_MS', 100),
      runs: envInt('BENCH_E2E_RUNS', QUICK ? 2 : 5),
    },
    only,
    peers,
  };
}

// ------------------------------------------------------------------ statistics

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export interface Latency {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

export function latency(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), mean: sum / (s.length || 1), max: s[s.length - 1] ?? NaN };
}

export const round = (v: number, digits = 2): number => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

// ------------------------------------------------------------------ the table

export type PeerKind = 'bridge' | 'botsdk';
export const PEER_NAMES: Record<PeerKind, string> = { bridge: 'matrix-appservice-bridge', botsdk: 'matrix-bot-sdk' };

/** One figure: ours beside each peer's, with the ratio ours/peer. */
export interface Row {
  section: string;
  metric: string;
  unit: string;
  ours: number | string;
  peers: Partial<Record<PeerKind, number | string>>;
  /** Lower is better (times, sizes) or higher (throughput); shown in the legend only. */
  better: 'lower' | 'higher' | '';
}

export function ratio(ours: number | string, peer: number | string | undefined): string {
  if (typeof ours !== 'number' || typeof peer !== 'number' || !Number.isFinite(ours) || !Number.isFinite(peer) || peer === 0) return '—';
  const r = ours / peer;
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

function fmt(v: number | string | undefined): string {
  if (v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 10_000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function renderTable(rows: Row[], peers: PeerKind[]): string {
  const head = ['figure', 'unit', 'ours', ...peers.map((p) => PEER_NAMES[p]), ...peers.map((p) => `ours/${p === 'bridge' ? 'bridge' : 'bot-sdk'}`)];
  const body: string[][] = [];
  let section = '';
  const sectionLines = new Set<number>();
  for (const r of rows) {
    if (r.section !== section) {
      section = r.section;
      sectionLines.add(body.length);
      body.push([`[${section}]`]);
    }
    body.push([
      `  ${r.metric}`,
      `${r.unit}${r.better === 'lower' ? ' ↓' : r.better === 'higher' ? ' ↑' : ''}`,
      fmt(r.ours),
      ...peers.map((p) => fmt(r.peers[p])),
      ...peers.map((p) => ratio(r.ours, r.peers[p])),
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.filter((_, j) => !sectionLines.has(j)).map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  ')];
  body.forEach((row, j) => out.push(sectionLines.has(j) ? (row[0] ?? '') : line(row)));
  return out.join('\n');
}

// ------------------------------------------------------------------ HTTP client (for the peers' listeners)

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

export interface HttpReply {
  status: number;
  body: string;
}

export function http(method: string, url: string, headers: Record<string, string>, body?: string): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        agent,
        method,
        hostname: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function closeHttp(): void {
  agent.destroy();
}

// ------------------------------------------------------------------ peer processes

export interface PeerProcess {
  kind: PeerKind;
  url: string;
  /** Resolves once the peer's event handler has seen `total` m.room.message events in all. */
  waitSeen(total: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PeerEnv {
  hsUrl: string;
  domain: string;
  asToken: string;
  hsToken: string;
  prefix: string;
}

/** Starts bench/peers/server.mjs for one peer, as a plain `node` process (no tsx). */
export async function startPeer(kind: PeerKind, env: PeerEnv): Promise<PeerProcess> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./peers/server.mjs', import.meta.url)), [kind], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      BENCH_HS_URL: env.hsUrl,
      BENCH_DOMAIN: env.domain,
      BENCH_AS_TOKEN: env.asToken,
      BENCH_HS_TOKEN: env.hsToken,
      BENCH_PREFIX: env.prefix,
    },
  });
  const waiters = new Map<number, () => void>();
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${kind} peer did not start within 60 s`)), 60_000);
    child.once('exit', (code) => reject(new Error(`${kind} peer exited with ${code} before it was ready`)));
    child.on('message', (m: { type?: string; port?: number; total?: number }) => {
      if (m.type === 'ready') {
        clearTimeout(t);
        resolve(Number(m.port));
      } else if (m.type === 'seen') {
        waiters.get(Number(m.total))?.();
        waiters.delete(Number(m.total));
      }
    });
  });
  return {
    kind,
    url: `http://127.0.0.1:${port}`,
    waitSeen: (total) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${kind} peer's handler did not see ${total} events within 120 s`)), 120_000);
        waiters.set(total, () => {
          clearTimeout(t);
          resolve();
        });
        child.send({ type: 'wait', total });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const enc = encodeURIComponent;
export const now = () => performance.now();
