/**
 * A fake third-party network speaking the webhook contract over real HTTP: it checks every
 * request's X-Signature, knows the users and rooms it is given, records what it receives,
 * and can be told to refuse or fail deliveries.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sign, verify } from '../../lib/signature.js';

export interface Received {
  method: string;
  path: string;
  /** the pathname as it came, still percent-encoded */
  rawPath: string;
  body: any;
  idempotencyKey?: string;
  status: number;
}

/** A failing answer: a status (with `retryAfter`, a Retry-After header in seconds), or no answer at all. */
export type NetworkFailure = { status: number; retryAfter?: number } | { hang: true };

export interface FakeNetwork {
  url: string;
  secret: string;
  received: Received[];
  /** Messages the network accepted (2xx), in order. */
  accepted: any[];
  users: Map<string, { displayName: string; avatarUrl?: string }>;
  rooms: Map<string, { name: string; topic?: string }>;
  /** Decides the answer to a delivery; undefined accepts it. */
  onDeliver?: (message: any, attempt: number) => NetworkFailure | undefined;
  /** Answer every lookup with this (e.g. 500, hang) instead of the directory. */
  lookupFailure?: NetworkFailure;
  /** Sign a body for POST /network/messages, as the real network would. */
  sign(body: string, now?: number): string;
  close(): Promise<void>;
}

export async function startFakeNetwork(secret = 'network-secret-for-tests'): Promise<FakeNetwork> {
  const attempts = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  const net: FakeNetwork = {
    url: '',
    secret,
    received: [],
    accepted: [],
    users: new Map(),
    rooms: new Map(),
    sign: (body, now) => sign(secret, body, now),
    close: async () => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const answer = (res: ServerResponse, rec: Received, status: number, body: unknown, headers: Record<string, string> = {}) => {
    rec.status = status;
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, rec: Received, f: NetworkFailure) => {
    if ('hang' in f) {
      hanging.add(res);
      return;
    }
    answer(res, rec, f.status, { error: `failing on purpose with ${f.status}` }, f.retryAfter === undefined ? {} : { 'retry-after': String(f.retryAfter) });
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    const rec: Received = {
      method: req.method ?? '',
      path: decodeURIComponent(url.pathname),
      rawPath: url.pathname,
      body: raw ? JSON.parse(raw) : undefined,
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      status: 0,
    };
    net.received.push(rec);
    const check = verify(req.headers['x-signature'] as string | undefined, raw, secret);
    if (!check.ok) return answer(res, rec, check.status, { error: check.reason });

    // One path segment, as the contract says: an ID's `/` must come as `%2F`.
    const [, kind, rawId] = rec.rawPath.match(/^\/(users|rooms)\/([^/]+)$/) ?? [];
    const id = rawId === undefined ? undefined : decodeURIComponent(rawId);
    if (req.method === 'GET' && kind && id) {
      if (net.lookupFailure) return fail(res, rec, net.lookupFailure);
      const found = kind === 'users' ? net.users.get(id) : net.rooms.get(id);
      return found ? answer(res, rec, 200, found) : answer(res, rec, 404, { error: 'unknown' });
    }
    if (req.method === 'POST' && rec.path === '/messages') {
      const n = (attempts.get(rec.body.id) ?? 0) + 1;
      attempts.set(rec.body.id, n);
      const f = net.onDeliver?.(rec.body, n);
      if (f) return fail(res, rec, f);
      net.accepted.push(rec.body);
      return answer(res, rec, 200, {});
    }
    answer(res, rec, 404, { error: 'no such route' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  net.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return net;
}
