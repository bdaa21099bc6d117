/**
 * 2. Query latency. The HS asks about a user or an alias the AS has never seen, one call after
 * the other; each call is a NEW ID, so it does the real work: for a user, register + display name
 * + record; for an alias, createRoom + the alias <-> room mapping. Ours: in-process invoke (no
 * API Gateway) with DynamoDB Local; peers: over their HTTP listener with their default stores.
 */
import type { FakeHs } from '../test/support/fake-hs.js';
import { enc, http, latency, now } from './lib.js';
import type { Latency, PeerKind } from './lib.js';
import { DOMAIN, PREFIX } from './subjects.js';
import type { DynamoTally, Ours, Peer } from './subjects.js';

export type QueryKind = 'user' | 'alias';

export interface QueryResult {
  subject: 'ours' | PeerKind;
  kind: QueryKind;
  latency: Latency;
  /** Calls not answered 200, or whose user/room is not on the fake HS afterwards. */
  errors: number;
  /** Measured calls whose user (registered, display name set) or room (with the alias) the fake HS holds. */
  verified: number;
  /** Ours only: DynamoDB per query, over the measured calls. */
  dynamo?: { callsPerQuery: number; rruPerQuery: number; wruPerQuery: number; msPerQuery: number; calls: Record<string, number> };
  /** Ours only: bytes our code logs per query. */
  logBytesPerQuery?: number;
}

let seq = 0;
const tag = () => `${Date.now().toString(36)}${(seq++).toString(36)}`;

function target(kind: QueryKind, run: string, i: number): { id: string; path: string } {
  if (kind === 'user') {
    const id = `@${PREFIX}${run}u${i}:${DOMAIN}`;
    return { id, path: `/_matrix/app/v1/users/${enc(id)}` };
  }
  const id = `#${PREFIX}${run}r${i}:${DOMAIN}`;
  return { id, path: `/_matrix/app/v1/rooms/${enc(id)}` };
}

function exists(hs: FakeHs, kind: QueryKind, id: string): boolean {
  if (kind === 'user') return hs.users.get(id)?.displayName === id.slice(1 + PREFIX.length, id.indexOf(':'));
  return hs.aliases.has(id);
}

async function measure(
  subject: 'ours' | PeerKind,
  kind: QueryKind,
  hs: FakeHs,
  n: number,
  warmup: number,
  call: (path: string) => Promise<number>,
  between?: { start(): void; stop(): void },
): Promise<QueryResult> {
  const run = tag();
  let errors = 0;
  const samples: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < warmup + n; i++) {
    if (i === warmup) between?.start();
    const { id, path } = target(kind, run, i);
    const t = now();
    const status = await call(path);
    const ms = now() - t;
    if (i < warmup) continue;
    samples.push(ms);
    ids.push(id);
    if (status !== 200) errors++;
  }
  between?.stop();
  const verified = ids.filter((id) => exists(hs, kind, id)).length;
  return { subject, kind, latency: latency(samples), errors: errors + (ids.length - verified), verified };
}

export async function queryOurs(ours: Ours, kind: QueryKind, n: number, warmup: number): Promise<QueryResult> {
  let tally: DynamoTally | undefined;
  let logBytes = 0;
  const r = await measure(
    'ours',
    kind,
    ours.hs,
    n,
    warmup,
    async (path) => (await ours.call(kind === 'user' ? 'user-query' : 'room-query', { method: 'GET', path })).status,
    {
      start: () => {
        ours.dynamoCounter.reset();
        logBytes = ours.logBytes();
      },
      stop: () => {
        tally = ours.dynamoCounter.reset();
        logBytes = ours.logBytes() - logBytes;
      },
    },
  );
  r.logBytesPerQuery = logBytes / n;
  if (tally) {
    const calls = Object.values(tally.calls).reduce((a, b) => a + b, 0);
    r.dynamo = { callsPerQuery: calls / n, rruPerQuery: tally.rru / n, wruPerQuery: tally.wru / n, msPerQuery: tally.ms / n, calls: tally.calls };
  }
  return r;
}

export async function queryPeer(peer: Peer, kind: QueryKind, n: number, warmup: number): Promise<QueryResult> {
  return measure(peer.kind, kind, peer.hs, n, warmup, async (path) => (await http('GET', `${peer.proc.url}${path}`, peer.headers)).status);
}
