/** A real 3P network service reached over HTTP at NETWORK_URL, every request signed. */
import { unavailable } from '../../matrix/errors.js';
import { sign } from '../../signature.js';
import { PermanentDeliveryError, RetryLaterError, UnknownTargetError, UnsupportedDeliveryError } from '../network.js';

/** Retry-After: seconds, or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}
import type { DeliveryKind, LinkAnswer, LinkRequest, NetworkPort, RemoteRoom, RemoteUser, SearchFields, SearchHit } from '../network.js';

/** An id of the network's (docs/network-api.yaml NetworkId). */
const isNetworkId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255;

/**
 * A search's answer: a JSON array of `{id, fields?}`, or what is wrong with it. Unknown
 * keys are ignored, and so are `fields` entries that are not strings of at most 255 characters.
 */
function searchHits(json: unknown): SearchHit[] | string {
  if (!Array.isArray(json)) return 'is not a JSON array';
  const hits: SearchHit[] = [];
  for (const [i, item] of json.entries()) {
    const id = (item as { id?: unknown } | null)?.id;
    if (typeof item !== 'object' || item === null || Array.isArray(item) || !isNetworkId(id)) return `has no id (a string of 1 to 255 characters) at [${i}]`;
    const given = (item as { fields?: unknown }).fields;
    const fields = typeof given === 'object' && given !== null && !Array.isArray(given)
      ? Object.fromEntries(Object.entries(given).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].length <= 255))
      : undefined;
    hits.push(fields && Object.keys(fields).length ? { id, fields } : { id });
  }
  return hits;
}

/** The network's own id for what it took (`{"id": "…"}`, 1 to 255 characters); a v1 network answers none. */
function answeredId(text: string): string | undefined {
  try {
    const id = (JSON.parse(text) as { id?: unknown } | null)?.id;
    return typeof id === 'string' && id.length > 0 && id.length <= 255 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The reason a refusal gives (`{"error": "…"}`), at most 500 characters; its status when it gives none. */
function refusalReason(text: string, status: number): string {
  try {
    const error = (JSON.parse(text) as { error?: unknown } | null)?.error;
    if (typeof error === 'string' && error.trim()) return error.trim().slice(0, 500);
  } catch {
    // no JSON: the status says it
  }
  return `the network refused (HTTP ${status})`;
}

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Each kind of delivery, in words, for what the log says. */
const WHAT: Record<DeliveryKind, string> = {
  messages: 'message',
  edits: 'edit',
  deletions: 'deletion',
  reactions: 'reaction',
  members: 'membership change',
  profile: 'profile change',
};

export function webhookNetwork(opts: WebhookOptions): NetworkPort {
  const doFetch = opts.fetch ?? fetch;
  const call = (method: string, path: string, body = '', headers: Record<string, string> = {}) =>
    doFetch(opts.url + path, {
      method,
      body: method === 'GET' ? undefined : body,
      headers: { 'x-signature': sign(opts.secret, body), 'content-type': 'application/json', ...headers },
      signal: AbortSignal.timeout(opts.timeoutMs),
    });

  async function lookup<T>(kind: 'users' | 'rooms', id: string, valid: (j: any) => j is T): Promise<T | undefined> {
    let res: Response;
    try {
      res = await call('GET', `/${kind}/${encodeURIComponent(id)}`);
    } catch {
      // The HS's client is waiting on us: answer "try later" fast, never a false "not found".
      throw unavailable(`the network did not answer the ${kind} lookup in time`);
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw unavailable(`the network answered the ${kind} lookup with HTTP ${res.status}`);
    const json = await res.json().catch(() => undefined);
    if (!valid(json)) throw unavailable(`the network answered the ${kind} lookup with a body we cannot read`);
    return json;
  }

  /** GET /search/rooms|users?<fields>: what the network finds; 404 or 501 (a network without searches) is none. */
  async function search(kind: 'rooms' | 'users', fields: SearchFields): Promise<SearchHit[]> {
    let res: Response;
    try {
      res = await call('GET', `/search/${kind}?${new URLSearchParams(fields).toString()}`);
    } catch (e) {
      // A Matrix user waits: "try later", never a false "nothing".
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw unavailable(`the network ${timedOut ? 'did not answer the' : 'could not be reached for the'} ${kind} search${timedOut ? ' in time' : ''}`);
    }
    if (res.status === 404 || res.status === 501) return [];
    if (!res.ok) throw unavailable(`the network answered the ${kind} search with HTTP ${res.status}`);
    const hits = searchHits(await res.json().catch(() => undefined));
    if (typeof hits === 'string') throw unavailable(`the network's answer to the ${kind} search ${hits}`);
    return hits;
  }

  /** POST /links or /unlinks: the network's answer, or 503 when it gave none we can read. */
  async function link(path: '/links' | '/unlinks', request: LinkRequest): Promise<LinkAnswer> {
    let res: Response;
    try {
      res = await call('POST', path, JSON.stringify({ room: request.room, matrixRoomId: request.matrixRoomId, requestedBy: request.requestedBy }));
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      throw unavailable(`the network ${timedOut ? 'did not answer in time' : 'could not be reached'} (POST ${path})`);
    }
    const text = await res.text().catch(() => '');
    if (res.ok) return { approved: true };
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return { approved: false, reason: refusalReason(text, res.status) };
    throw unavailable(`the network answered POST ${path} with HTTP ${res.status}`);
  }

  return {
    requestLink: (request) => link('/links', request),
    async announceUnlink(request) {
      const answer = await link('/unlinks', request);
      // An unlink is not the network's to refuse: it is over on the Matrix side already.
      if (!answer.approved) throw new Error(`the network answered the unlink with a refusal: ${answer.reason}`);
    },
    searchRooms: (fields) => search('rooms', fields),
    searchUsers: (fields) => search('users', fields),
    lookupUser: (id) =>
      lookup('users', id, (j): j is RemoteUser =>
        typeof j?.displayName === 'string' && (j.avatarUrl === undefined || typeof j.avatarUrl === 'string')),
    lookupRoom: (id) =>
      lookup('rooms', id, (j): j is RemoteRoom => typeof j?.name === 'string' && (j.topic === undefined || typeof j.topic === 'string')),
    async deliver({ kind, body }) {
      let res: Response;
      try {
        res = await call('POST', `/${kind}`, JSON.stringify(body), { 'idempotency-key': body.id });
      } catch (e) {
        const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
        throw new RetryLaterError(`the network ${timedOut ? 'did not answer in time' : 'could not be reached'}`);
      }
      const text = await res.text().catch(() => '');
      if (res.ok) return { id: answeredId(text) };
      if (res.status === 501) throw new UnsupportedDeliveryError(`the network does not take ${kind} (HTTP 501)`);
      // Not the message it is about, for an edit, deletion or reaction; the room, for people coming and going.
      if (res.status === 404 && kind !== 'messages') throw new UnknownTargetError(`the network does not know what the ${WHAT[kind]} is about (HTTP 404)`);
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw new PermanentDeliveryError(`network refused the ${WHAT[kind]} with HTTP ${res.status}`);
      }
      throw new RetryLaterError(`network answered HTTP ${res.status}`, retryAfterMs(res.headers.get('retry-after')));
    },
  };
}
