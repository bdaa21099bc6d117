/**
 * The Client-Server API client every function shares: the AS's own calls to its homeserver.
 * Plain fetch, typed calls, identity assertion (`user_id`), timestamp massaging (`ts`),
 * and retries on 429/5xx/timeouts bounded by the caller's deadline (the Lambda's time left).
 */
import { ErrCode, HomeserverError, MatrixError } from './errors.js';
import type { RoomAlias, RoomId, UserId } from './ids.js';
import { sleep } from '../time.js';
import { backoffMs } from '../backoff.js';
import type { Backoff } from '../backoff.js';
import { recordMetricsBy } from '../metrics.js';

export interface CsClientOptions {
  homeserverUrl: string;
  asToken: string;
  /** Longest a single HTTP request may take; the deadline cuts it shorter. */
  requestTimeoutMs?: number;
  maxAttempts?: number;
  /** First back-off step for 5xx and timeouts; doubles each attempt. */
  backoffMs?: number;
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** Epoch ms after which no request is started and no wait is begun. */
  deadline: number;
  /** Identity assertion: act as this user of our namespace. */
  asUser?: UserId;
}

export interface CreateRoomRequest {
  room_alias_name?: string;
  name?: string;
  topic?: string;
  preset?: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  visibility?: 'public' | 'private';
  invite?: string[];
  is_direct?: boolean;
  initial_state?: Array<{ type: string; state_key?: string; content: Record<string, unknown> }>;
  power_level_content_override?: Record<string, unknown>;
}

export type CsClient = ReturnType<typeof createCsClient>;

/** The homeserver's answer to a ping as it came: status 0 when there was none (unreachable, timed out). */
export interface PingAnswer {
  status: number;
  body: Record<string, unknown>;
}

const enc = encodeURIComponent;

export function createCsClient(opts: CsClientOptions) {
  const base = opts.homeserverUrl.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? fetch;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  const maxAttempts = opts.maxAttempts ?? 6;
  // No cap of its own: the caller's deadline ends the waiting.
  const retries: Backoff = { firstMs: opts.backoffMs ?? 200, maxMs: Number.POSITIVE_INFINITY, jitter: 0.2 };

  async function request<T = Record<string, unknown>>(
    method: string,
    path: string,
    call: CallOptions & { body?: unknown; query?: Record<string, string | number | undefined>; contentType?: string },
  ): Promise<T> {
    // Bytes (a media upload) go as they are, under their own type; anything else as JSON.
    const bytes = call.body instanceof Uint8Array;
    const url = new URL(base + path);
    if (call.asUser) url.searchParams.set('user_id', call.asUser);
    for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    let last: HomeserverError | undefined;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const remaining = call.deadline - Date.now();
      if (remaining <= 0) break;
      let wait: number;
      try {
        const res = await doFetch(url, {
          method,
          headers: { authorization: `Bearer ${opts.asToken}`, 'content-type': bytes ? (call.contentType ?? 'application/octet-stream') : 'application/json' },
          body: call.body === undefined ? undefined : bytes ? (call.body as Uint8Array as unknown as BodyInit) : JSON.stringify(call.body),
          signal: AbortSignal.timeout(Math.min(requestTimeoutMs, remaining)),
        });
        const text = await res.text();
        let json: Record<string, unknown> = {};
        try {
          json = text ? JSON.parse(text) : {};
        } catch {
          json = { error: `a body that is not JSON` };
        }
        if (res.ok) return json as T;
        const errcode = typeof json.errcode === 'string' ? json.errcode : ErrCode.Unknown;
        recordMetricsBy('Errcode', typeof json.errcode === 'string' ? json.errcode : `HTTP_${res.status}`, { HomeserverError: 1 });
        const message = typeof json.error === 'string' ? json.error : 'no error text';
        last = new HomeserverError({ status: res.status, errcode }, `${method} ${path}: ${message} (HTTP ${res.status} ${errcode})`);
        if (res.status !== 429 && res.status < 500) throw last;
        const retryAfter = Number(json.retry_after_ms ?? (Number(res.headers.get('retry-after')) * 1000 || NaN));
        wait = backoffMs(attempt, retries, res.status === 429 && Number.isFinite(retryAfter) ? retryAfter : undefined);
      } catch (e) {
        if (e instanceof MatrixError) throw e;
        // fetch refused the request itself (a header it cannot send): no retry can change that.
        if (e instanceof TypeError && e.message !== 'fetch failed') throw new Error(`${method} ${path}: the request could not be made: ${e.message}`);
        const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
        recordMetricsBy('Errcode', timedOut ? 'TIMEOUT' : 'UNREACHABLE', { HomeserverError: 1 });
        last = new HomeserverError({ status: 0, errcode: ErrCode.Unknown }, `${method} ${path}: ${timedOut ? 'timed out' : 'unreachable'}`);
        wait = backoffMs(attempt, retries);
      }
      if (Date.now() + wait >= call.deadline) break;
      await sleep(wait);
    }
    const cause = last ?? new HomeserverError({ status: 0, errcode: ErrCode.Unknown }, `${method} ${path}: no time left`);
    throw new HomeserverError(cause.hs, `${cause.detail} (gave up before the deadline)`);
  }

  return {
    request,

    /**
     * Asks the homeserver to call our `POST /_matrix/app/v1/ping` (spec v1.7). One attempt, never
     * retried and never thrown: whatever the homeserver answers (or that it does not) is the diagnosis.
     */
    pingAppservice: async (appserviceId: string, transactionId: string, call: { deadline: number }): Promise<PingAnswer> => {
      const path = `/_matrix/client/v1/appservice/${enc(appserviceId)}/ping`;
      try {
        const res = await doFetch(base + path, {
          method: 'POST',
          headers: { authorization: `Bearer ${opts.asToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ transaction_id: transactionId }),
          signal: AbortSignal.timeout(Math.max(1, call.deadline - Date.now())),
        });
        const text = await res.text();
        let body: Record<string, unknown>;
        try {
          const parsed: unknown = text ? JSON.parse(text) : {};
          body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { error: text.slice(0, 200) };
        } catch {
          body = { error: `not JSON: ${text.slice(0, 200)}` };
        }
        return { status: res.status, body };
      } catch (e) {
        const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
        return { status: 0, body: { error: timedOut ? 'no answer in time' : `unreachable (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})` } };
      }
    },

    /** Registers a virtual user without creating a device or access token for it. */
    register: (localpart: string, call: CallOptions) =>
      request<{ user_id: UserId }>('POST', '/_matrix/client/v3/register', {
        ...call,
        query: { kind: 'user' },
        body: { type: 'm.login.application_service', username: localpart, inhibit_login: true },
      }),

    setDisplayName: (user: UserId, displayname: string, call: CallOptions) =>
      request('PUT', `/_matrix/client/v3/profile/${enc(user)}/displayname`, { ...call, asUser: user, body: { displayname } }),

    setAvatarUrl: (user: UserId, avatar_url: string, call: CallOptions) =>
      request('PUT', `/_matrix/client/v3/profile/${enc(user)}/avatar_url`, { ...call, asUser: user, body: { avatar_url } }),

    createRoom: (body: CreateRoomRequest, call: CallOptions) =>
      request<{ room_id: RoomId }>('POST', '/_matrix/client/v3/createRoom', { ...call, body }),

    resolveAlias: (alias: RoomAlias, call: CallOptions) =>
      request<{ room_id: RoomId; servers?: string[] }>('GET', `/_matrix/client/v3/directory/room/${enc(alias)}`, call),

    join: (roomIdOrAlias: string, call: CallOptions) =>
      request<{ room_id: RoomId }>('POST', `/_matrix/client/v3/join/${enc(roomIdOrAlias)}`, { ...call, body: {} }),

    /** Leaves a room (as `call.asUser`, a virtual user), with a reason the room sees. */
    leave: (roomId: RoomId, reason: string | undefined, call: CallOptions) =>
      request('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/leave`, { ...call, body: reason === undefined ? {} : { reason } }),
    invite: (roomId: RoomId, user: UserId, call: CallOptions) =>
      request('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { ...call, body: { user_id: user } }),

    /** Sends a room event; `txnId` makes a resend a no-op, `ts` keeps the 3P network's time. */
    sendEvent: (
      roomId: RoomId,
      type: string,
      txnId: string,
      content: Record<string, unknown>,
      call: CallOptions & { ts?: number },
    ) =>
      request<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/${enc(type)}/${enc(txnId)}`, {
        ...call,
        query: { ts: call.ts },
        body: content,
      }),

    /** Redacts an event; `txnId` makes a resend a no-op (spec v1.1+ path). */
    redact: (roomId: RoomId, eventId: string, txnId: string, reason: string | undefined, call: CallOptions) =>
      request<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/redact/${enc(eventId)}/${enc(txnId)}`, {
        ...call,
        body: reason ? { reason } : {},
      }),

    /** Uploads bytes to the media repository (as `asUser`, the virtual user it comes from). */
    uploadMedia: (bytes: Uint8Array, contentType: string, filename: string | undefined, call: CallOptions) =>
      request<{ content_uri: string }>('POST', '/_matrix/media/v3/upload', { ...call, body: bytes, contentType, query: { filename } }),

    /**
     * Downloads a medium: the authenticated endpoint (spec v1.11, with the as_token) first, the
     * legacy unauthenticated one where the homeserver has no such endpoint (Synapse before 1.111
     * answers 404 M_UNRECOGNIZED). At most `maxBytes` are read: a bigger medium is answered
     * `tooLarge` with its size (from Content-Length, or "more than maxBytes").
     */
    downloadMedia: async (server: string, mediaId: string, call: { deadline: number; maxBytes: number }): Promise<MediaDownload> => {
      const paths = [`/_matrix/client/v1/media/download/${enc(server)}/${enc(mediaId)}`, `/_matrix/media/v3/download/${enc(server)}/${enc(mediaId)}`];
      for (const [i, path] of paths.entries()) {
        const answer = await downloadOnce(doFetch, base + path, opts.asToken, call);
        // Only "this homeserver has no such endpoint" moves on to the legacy path.
        const unknownEndpoint = answer.kind === 'error' && (answer.errcode === ErrCode.Unrecognized || answer.status === 405);
        if (!unknownEndpoint || i === paths.length - 1) return answer;
      }
      throw new Error('unreachable');
    },

    /** Publishes a room in (or takes it out of) the homeserver's room directory under our network (spec v1.1, as the AS). */
    setAppserviceRoomVisibility: (networkId: string, roomId: RoomId, visibility: 'public' | 'private', call: CallOptions) =>
      request('PUT', `/_matrix/client/v3/directory/list/appservice/${enc(networkId)}/${enc(roomId)}`, { ...call, body: { visibility } }),

    /** A state event's content; 404 when the room has none. */
    getState: (roomId: RoomId, type: string, stateKey: string, call: CallOptions) =>
      request<Record<string, unknown>>('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, call),

    /** Points an alias at a room (as the bot, which owns our aliases). */
    setAlias: (alias: RoomAlias, roomId: RoomId, call: CallOptions) =>
      request('PUT', `/_matrix/client/v3/directory/room/${enc(alias)}`, { ...call, body: { room_id: roomId } }),

    /** Takes one of our aliases off its room (as the bot, which owns our aliases). */
    deleteAlias: (alias: RoomAlias, call: CallOptions) => request('DELETE', `/_matrix/client/v3/directory/room/${enc(alias)}`, call),

    /** The room's joined members, by user ID (as a member: the bot). */
    joinedMembers: (roomId: RoomId, call: CallOptions) =>
      request<{ joined?: Record<string, unknown> }>('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, call).then((r) => Object.keys(r.joined ?? {}) as UserId[]),

    sendState: (roomId: RoomId, type: string, stateKey: string, content: Record<string, unknown>, call: CallOptions) =>
      request<{ event_id: string }>('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, {
        ...call,
        body: content,
      }),
  };
}

/** A medium from the homeserver's media repository, or why not. */
export type MediaDownload =
  | { kind: 'ok'; bytes: Buffer; contentType: string; contentDisposition?: string }
  | { kind: 'tooLarge'; size: number; exact: boolean }
  | { kind: 'error'; status: number; errcode: string; error: string };

async function downloadOnce(doFetch: typeof fetch, url: string, asToken: string, call: { deadline: number; maxBytes: number }): Promise<MediaDownload> {
  let res: Response;
  try {
    res = await doFetch(url, { headers: { authorization: `Bearer ${asToken}` }, signal: AbortSignal.timeout(Math.max(1, call.deadline - Date.now())) });
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
    return { kind: 'error', status: 0, errcode: ErrCode.Unknown, error: timedOut ? 'the homeserver did not answer in time' : 'the homeserver could not be reached' };
  }
  if (!res.ok) {
    const text = await res.text().catch(() => '');
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch {
      // not Matrix JSON: the status alone tells
    }
    recordMetricsBy('Errcode', typeof json.errcode === 'string' ? json.errcode : `HTTP_${res.status}`, { HomeserverError: 1 });
    return { kind: 'error', status: res.status, errcode: typeof json.errcode === 'string' ? json.errcode : ErrCode.Unknown, error: typeof json.error === 'string' ? json.error : `HTTP ${res.status}` };
  }
  const length = Number(res.headers.get('content-length'));
  if (Number.isFinite(length) && length > call.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    return { kind: 'tooLarge', size: length, exact: true };
  }
  // No (or a wrong) Content-Length: read no more than the limit allows.
  const chunks: Buffer[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > call.maxBytes) {
      await reader.cancel().catch(() => undefined);
      return { kind: 'tooLarge', size, exact: false };
    }
    chunks.push(Buffer.from(value));
  }
  const contentDisposition = res.headers.get('content-disposition') ?? undefined;
  return { kind: 'ok', bytes: Buffer.concat(chunks), contentType: res.headers.get('content-type') ?? 'application/octet-stream', ...(contentDisposition ? { contentDisposition } : {}) };
}
