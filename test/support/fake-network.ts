/**
 * A fake third-party network speaking the webhook contract (docs/network-api.yaml) over real
 * HTTP: it checks every request's X-Signature, knows the users and rooms it is given (and finds
 * them in searches), records what it receives, and can be told to refuse or fail deliveries, to
 * answer no ids (a 1.x network), to not support a kind of delivery (501), or to refuse targets it
 * never accepted (404).
 *
 * It also answers the AS's link requests (`POST /links`: may this Matrix room be linked to that
 * network room?) and unlink notices (`POST /unlinks`), signed as the deliveries are: both
 * approved (200 {}) unless told otherwise (refuseLinks, onLink), the approved ones recorded in
 * acceptedLinks / acceptedUnlinks.
 *
 * Every request the AS makes and every answer the fake gives is checked against the document
 * (test/support/network-api.ts); problems land in `specErrors`, which tests should assert stays
 * empty. The signing is done here with node:crypto, independently of lib/signature.ts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkNetworkAnswer, checkNetworkRequest } from './network-api.js';

/** The six kinds of delivery, by their path (`POST /<kind>`); `members` and `profile` since contract 2.1. */
export type DeliveryKind = 'messages' | 'edits' | 'deletions' | 'reactions' | 'members' | 'profile';
export const DELIVERY_KINDS: readonly DeliveryKind[] = ['messages', 'edits', 'deletions', 'reactions', 'members', 'profile'];

/** The link endpoints, by their path (`POST /links`, `POST /unlinks`). */
export type LinkKind = 'links' | 'unlinks';

/** The body of `POST /links` and `POST /unlinks`, as the fake records an approved one. */
export interface LinkRequest {
  /** the network room's id */
  room: string;
  /** the Matrix room, `!…` */
  matrixRoomId: string;
  /** the Matrix user who asked for the link (or the unlink), `@user:server` */
  requestedBy: string;
}

/** The kinds about a target (`target`), which `strictTargets` checks. */
const TARGETED_KINDS: ReadonlySet<DeliveryKind> = new Set(['edits', 'deletions', 'reactions']);

export interface Received {
  method: string;
  path: string;
  /** the pathname as it came, still percent-encoded */
  rawPath: string;
  body: any;
  idempotencyKey?: string;
  status: number;
  /** The kind, for a delivery (`POST /messages`, `/edits`, `/deletions`, `/reactions`, `/members`, `/profile`). */
  kind?: DeliveryKind;
  /** `links` or `unlinks`, for `POST /links` and `POST /unlinks`. */
  link?: LinkKind;
  /** What the fake answered (undefined while hanging). */
  answer?: unknown;
  headers: IncomingHttpHeaders;
}

/** A failing answer: a status (with `retryAfter`, a Retry-After header in seconds), or no answer at all. */
export type NetworkFailure = { status: number; retryAfter?: number } | { hang: true };

/** What `GET /search/rooms` and `/search/users` search: rooms or users. */
export type SearchKind = 'rooms' | 'users';
/** One search result, as the contract's SearchHit (anything else a test wants to answer goes too). */
export type SearchHit = { id: string; fields?: Record<string, unknown> } & Record<string, unknown>;

export interface FakeNetworkOptions {
  /** The shared NETWORK_SECRET. Default 'network-secret-for-tests'. */
  secret?: string;
  /** Answer `{"id": "net-<n>"}` to accepted messages and reactions (false: `{}`, as a 1.x network). Default true. */
  answerIds?: boolean;
  /** Answer 404 to an edit, deletion or reaction whose target was never accepted (see `knownMessageIds`); memberships and profiles have no target. Default false. */
  strictTargets?: boolean;
  /** Check requests and answers against docs/network-api.yaml into `specErrors`. Default true. */
  checkSpec?: boolean;
}

export interface FakeNetwork {
  url: string;
  secret: string;
  received: Received[];
  /** Messages the network accepted (2xx), in order: the same array as `acceptedBy.messages`. */
  accepted: any[];
  /** Every accepted delivery by kind, in order (a redelivery that is accepted again appears again). */
  acceptedBy: Record<DeliveryKind, any[]>;
  users: Map<string, { displayName: string; avatarUrl?: string }>;
  rooms: Map<string, { name: string; topic?: string }>;
  /**
   * Decides the answer to a delivery (any kind); undefined accepts it. `attempt` counts from 1
   * per kind and `id`. Asked after `unsupported`, before `strictTargets`.
   */
  onDeliver?: (body: any, attempt: number, kind: DeliveryKind) => NetworkFailure | undefined;
  /** Answer every lookup with this (e.g. 500, hang) instead of the directory. */
  lookupFailure?: NetworkFailure;
  /**
   * Decides the answer to a search (`GET /search/rooms|users?<fields>`, each query parameter's
   * values): a failure (`{status: 404}`: a network without searches; `{hang: true}`), or what to
   * answer 200 with (the hits; any other JSON, to answer malformed ones). Undefined, or a hook that
   * answers undefined: the default search, every room (by id or name) or user (by id or display
   * name) holding a given value, in any case.
   */
  onSearch?: (kind: SearchKind, fields: Record<string, string[]>) => unknown;
  /** Kinds this network does not support: answered 501. */
  unsupported: Set<DeliveryKind>;
  /**
   * Link requests the network approved (`POST /links` answered 200 {}), in order, as
   * `{room, matrixRoomId, requestedBy}` (a request repeated and approved again appears again).
   */
  acceptedLinks: LinkRequest[];
  /** Unlink notices the network took (`POST /unlinks` answered 200 {}), in order. */
  acceptedUnlinks: LinkRequest[];
  /**
   * Refuse link requests for a network room (`'*'`: every room) with `status` (a 4xx) and
   * `{"error": reason}`, the reason the AS shows the user; a later call for the same room
   * replaces it. A room's own refusal wins over `'*'`. Unlinks are never refused.
   */
  refuseLinks(room: string, status: number, reason: string): void;
  /** Approve every link request again. */
  clearLinkRefusals(): void;
  /**
   * Decides a failure for a link request or unlink notice (e.g. `{status: 503}`, `{hang: true}`)
   * before anything else; undefined goes on (refusals, then approval). `attempt` counts from 1
   * per kind, network room and Matrix room.
   */
  onLink?: (body: any, attempt: number, kind: LinkKind) => NetworkFailure | undefined;
  /** See FakeNetworkOptions.answerIds; may be changed at any time. */
  answerIds: boolean;
  /** See FakeNetworkOptions.strictTargets; may be changed at any time. */
  strictTargets: boolean;
  /**
   * Ids a target may name (its `id` or its `eventId`) under `strictTargets`: filled with the event
   * id and the answered network id of every accepted message and reaction; add your own (say,
   * the ids of messages that came from the network).
   */
  knownMessageIds: Set<string>;
  /** The network id answered for each accepted message or reaction, by Matrix event id (stable across redeliveries). */
  networkIds: Map<string, string>;
  /** Problems found checking requests and answers against docs/network-api.yaml. */
  specErrors: string[];
  /** Sign a JSON body for a request to the AS (POST /network/messages, …), as the real network would. */
  sign(body: string, now?: number): string;
  /** Sign a binary body (POST /network/media): the HMAC of the bytes `"<t>."` followed by the body's bytes. */
  signBytes(bytes: Buffer, now?: number): string;
  close(): Promise<void>;
}

const DEFAULT_SECRET = 'network-secret-for-tests';
const MAX_AGE_S = 300;

/** `X-Signature: t=<s>,v1=<hex HMAC-SHA256 of "<t>." + body bytes>`. */
export function signBytes(secret: string, bytes: Buffer | string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  const mac = createHmac('sha256', secret).update(`${t}.`).update(bytes).digest('hex');
  return `t=${t},v1=${mac}`;
}

type Check = { ok: true } | { ok: false; status: 401 | 403; reason: string };

/** The contract's check of a signature over `bytes`: any well-formed v1 matching, within 5 minutes. */
function verifyBytes(header: string | undefined, bytes: Buffer, secret: string, now = Date.now()): Check {
  if (!header) return { ok: false, status: 401, reason: 'X-Signature header is missing' };
  let t: number | undefined;
  const v1: Buffer[] = [];
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const key = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (key === 't') {
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return { ok: false, status: 401, reason: 'X-Signature has a bad t' };
      t = Number(value);
    } else if (key === 'v1' && /^[0-9a-fA-F]{64}$/.test(value)) v1.push(Buffer.from(value, 'hex'));
  }
  if (t === undefined || v1.length === 0 || v1.length > 8) return { ok: false, status: 401, reason: 'X-Signature is not of the form t=<seconds>,v1=<hex>' };
  if (Math.abs(now / 1000 - t) > MAX_AGE_S) return { ok: false, status: 403, reason: 'X-Signature timestamp is more than 5 minutes away from now' };
  const expected = createHmac('sha256', secret).update(`${t}.`).update(bytes).digest();
  return v1.some((s) => timingSafeEqual(s, expected)) ? { ok: true } : { ok: false, status: 403, reason: 'X-Signature does not match' };
}

const KINDS_BY_PATH = new Map<string, DeliveryKind>(DELIVERY_KINDS.map((k) => [`/${k}`, k]));

/** What the fake wants of a link request's body: `room`, `matrixRoomId` (`!…`) and `requestedBy` (`@user:server`). */
function linkBodyProblems(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return ['the body must be a JSON object'];
  const b = body as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof b.room !== 'string' || b.room === '') problems.push('room must be a non-empty string (the network room id)');
  if (typeof b.matrixRoomId !== 'string' || !/^![^\s]+$/.test(b.matrixRoomId)) problems.push('matrixRoomId must be a Matrix room ID (!…)');
  if (typeof b.requestedBy !== 'string' || !/^@[^:\s]+:\S+$/.test(b.requestedBy)) problems.push('requestedBy must be a Matrix user ID (@user:server)');
  return problems;
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

export async function startFakeNetwork(secretOrOptions: string | FakeNetworkOptions = {}): Promise<FakeNetwork> {
  const opts: FakeNetworkOptions = typeof secretOrOptions === 'string' ? { secret: secretOrOptions } : secretOrOptions;
  const secret = opts.secret ?? DEFAULT_SECRET;
  const checkSpec = opts.checkSpec ?? true;
  const attempts = new Map<string, number>();
  const hanging = new Set<ServerResponse>();
  let nextId = 0;
  /** Problems found so far, and the checks of the traffic since `specErrors` was last read. */
  const found: string[] = [];
  const unchecked: Array<() => void> = [];
  let acceptedBy: Record<DeliveryKind, any[]> = { messages: [], edits: [], deletions: [], reactions: [], members: [], profile: [] };
  /** network room (or '*') -> how link requests for it are refused */
  const linkRefusals = new Map<string, { status: number; reason: string }>();
  const net: FakeNetwork = {
    url: '',
    secret,
    received: [],
    get accepted() {
      return acceptedBy.messages;
    },
    set accepted(v: any[]) {
      acceptedBy.messages = v;
    },
    get acceptedBy() {
      return acceptedBy;
    },
    set acceptedBy(v: Record<DeliveryKind, any[]>) {
      acceptedBy = v;
    },
    users: new Map(),
    rooms: new Map(),
    unsupported: new Set(),
    acceptedLinks: [],
    acceptedUnlinks: [],
    refuseLinks: (room, status, reason) => {
      if (!Number.isInteger(status) || status < 400 || status > 499) throw new Error(`fake network: refuseLinks takes a 4xx status, not ${status}`);
      linkRefusals.set(room, { status, reason });
    },
    clearLinkRefusals: () => linkRefusals.clear(),
    answerIds: opts.answerIds ?? true,
    strictTargets: opts.strictTargets ?? false,
    knownMessageIds: new Set(),
    networkIds: new Map(),
    get specErrors() {
      // What came in since the last look is checked now (see checkRequest below).
      for (const check of unchecked.splice(0)) check();
      return found;
    },
    sign: (body, now) => signBytes(secret, Buffer.from(body, 'utf8'), now),
    signBytes: (bytes, now) => signBytes(secret, bytes, now),
    close: async () => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  /** Runs a check into specErrors; an undocumented endpoint (a throw) is a problem too. Returns false when it threw. */
  const spec = (where: string, check: () => string[]): boolean => {
    if (!checkSpec) return true;
    try {
      for (const e of check()) found.push(`${where}: ${e}`);
      return true;
    } catch (e) {
      found.push(`${where}: ${(e as Error).message}`);
      return false;
    }
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    const raw = bytes.toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    const method = req.method ?? '';
    const rec: Received = {
      method,
      path: decodePath(url.pathname),
      rawPath: url.pathname,
      body: undefined,
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      status: 0,
      kind: method === 'POST' ? KINDS_BY_PATH.get(url.pathname) : undefined,
      headers: req.headers,
    };
    if (method === 'POST' && (url.pathname === '/links' || url.pathname === '/unlinks')) rec.link = url.pathname.slice(1) as LinkKind;
    net.received.push(rec);
    const where = `${method} ${rec.path}`;

    let badJson = false;
    if (raw) {
      try {
        rec.body = JSON.parse(raw);
      } catch {
        badJson = true;
        rec.body = raw;
      }
    }
    // The AS's request, then its answer; an undocumented endpoint is reported once. Checked when
    // `specErrors` is read, not now: the first check compiles the document's schemas (seconds on a
    // busy machine), and the AS, in the same process, would wait it out past its network timeout.
    const checkRequest = () => spec(where, () => (badJson ? ['body is not JSON'] : checkNetworkRequest(method, url.pathname + url.search, rec.body, req.headers)));

    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      rec.status = status;
      rec.answer = body;
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      unchecked.push(() => {
        if (checkRequest()) spec(`answer ${status} to ${where}`, () => checkNetworkAnswer(method, url.pathname + url.search, status, body, 'application/json'));
      });
    };
    const fail = (f: NetworkFailure) => {
      if ('hang' in f) {
        hanging.add(res);
        unchecked.push(() => void checkRequest());
        return;
      }
      answer(f.status, { error: `failing on purpose with ${f.status}` }, f.retryAfter === undefined ? {} : { 'retry-after': String(f.retryAfter) });
    };

    const check = verifyBytes(req.headers['x-signature'] as string | undefined, bytes, secret);
    if (!check.ok) return answer(check.status, { error: check.reason });
    if (badJson) return answer(400, { error: 'the body is not JSON' });

    // One path segment, as the contract says: an ID's `/` must come as `%2F`.
    const [, lookup, rawId] = rec.rawPath.match(/^\/(users|rooms)\/([^/]+)$/) ?? [];
    const id = rawId === undefined ? undefined : decodePath(rawId);
    if (method === 'GET' && lookup && id) {
      if (net.lookupFailure) return fail(net.lookupFailure);
      const found = lookup === 'users' ? net.users.get(id) : net.rooms.get(id);
      return found ? answer(200, found) : answer(404, { error: 'unknown' });
    }

    const search = method === 'GET' ? (/^\/search\/(rooms|users)$/.exec(rec.rawPath)?.[1] as SearchKind | undefined) : undefined;
    if (search) {
      const fields: Record<string, string[]> = {};
      for (const [k, v] of url.searchParams) (fields[k] ??= []).push(v);
      const decided = net.onSearch?.(search, fields);
      const failure = decided as Partial<{ status: unknown; hang: unknown }> | undefined;
      if (typeof failure?.status === 'number' || failure?.hang === true) return fail(decided as NetworkFailure);
      if (decided !== undefined) return answer(200, decided);
      const wanted = Object.values(fields).flat().map((v) => v.toLowerCase());
      const holds = (...texts: Array<string | undefined>) => texts.some((t) => t !== undefined && wanted.some((w) => t.toLowerCase().includes(w)));
      const hits =
        search === 'rooms'
          ? [...net.rooms].filter(([id, r]) => holds(id, r.name)).map(([id]) => ({ id }))
          : [...net.users].filter(([id, u]) => holds(id, u.displayName)).map(([id]) => ({ id }));
      return answer(200, hits);
    }

    const link = rec.link;
    if (link) {
      const body = rec.body;
      const problems = linkBodyProblems(body);
      if (problems.length) {
        if (checkSpec) for (const p of problems) found.push(`${where}: ${p}`);
        return answer(400, { error: `bad ${link} request: ${problems.join('; ')}` });
      }
      const request: LinkRequest = { room: body.room, matrixRoomId: body.matrixRoomId, requestedBy: body.requestedBy };
      const key = `${link} ${request.room} ${request.matrixRoomId}`;
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      const f = net.onLink?.(body, n, link);
      if (f) return fail(f);
      if (link === 'links') {
        const refusal = linkRefusals.get(request.room) ?? linkRefusals.get('*');
        if (refusal) return answer(refusal.status, { error: refusal.reason });
        net.acceptedLinks.push(request);
      } else net.acceptedUnlinks.push(request);
      return answer(200, {});
    }

    const kind = rec.kind;
    if (kind) {
      const body = rec.body;
      const eventId = typeof body?.id === 'string' ? (body.id as string) : '';
      const key = `${kind} ${eventId}`;
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      if (net.unsupported.has(kind)) return answer(501, { error: `this network does not support ${kind}` });
      const f = net.onDeliver?.(body, n, kind);
      if (f) return fail(f);
      if (TARGETED_KINDS.has(kind) && net.strictTargets) {
        const target = body?.target;
        const known = [target?.id, target?.eventId].some((t) => typeof t === 'string' && net.knownMessageIds.has(t));
        if (!known) return answer(404, { error: 'unknown target' });
      }
      acceptedBy[kind].push(body);
      // Edits, deletions, memberships and profiles: the AS ignores the body of the answer.
      if (kind !== 'messages' && kind !== 'reactions') return answer(200, {});
      net.knownMessageIds.add(eventId);
      if (!net.answerIds) return answer(200, {});
      // A redelivery of the same event gets the same id, as a network that drops duplicates would answer.
      let netId = net.networkIds.get(eventId);
      if (netId === undefined) {
        netId = `net-${++nextId}`;
        net.networkIds.set(eventId, netId);
      }
      net.knownMessageIds.add(netId);
      return answer(200, { id: netId });
    }
    answer(404, { error: 'no such route' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  net.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return net;
}
