/**
 * A fake Matrix homeserver speaking real HTTP on 127.0.0.1, for integration
 * tests of the Application Service. It implements the Client-Server API calls
 * an AS makes (v3; register, profile, createRoom, directory, join, invite,
 * leave, send, state, redact, joined_members, account data; the media
 * repository's upload and both downloads) with the AS extensions (`as_token`,
 * `?user_id=` identity assertion, `?ts=` timestamp massaging), behaves like
 * Synapse where the spec leaves room, and can be told to fail on demand (see
 * FailRule).
 *
 * Membership and direct chats as Synapse 1.94 has them: createRoom's `invite`
 * with `is_direct` in the invite events' content, `trusted_private_chat`
 * giving the invitees the creator's power; state events (member events above
 * all) carrying `unsigned.prev_content` / `replaces_state` when pushed
 * (clientEvent); a profile change sending a new join event into each of the
 * user's rooms; `m.room.name` and `m.room.topic` only from the creator and
 * `moderators`. A local user's side (userCreateRoom for "start a direct chat",
 * userJoinRoom, userSetProfile) makes the events a test pushes to the AS.
 *
 * Rich messages as Synapse handles them: relations (`m.annotation` duplicates
 * refused with 400 M_DUPLICATE_ANNOTATION, edits and replies checked against
 * the spec's rules), redactions with Synapse's permission rules (own events;
 * anyone's for the room's creator and `moderators`), media uploads kept as raw
 * bytes and served back by the authenticated (spec v1.11) and the legacy
 * download endpoints (options: authenticatedMedia, freezeLegacyMedia,
 * maxUploadBytes).
 *
 * Options and methods make it as unkind as Synapse 1.94: an event size
 * limit, membership changes behind the AS's back (kick, ban, leave), a
 * send-transaction cache that restart() forgets, a database that
 * forgetEverything() loses. It also plays Synapse's side of the HS -> AS push
 * (push(): transaction ids 1, 2, 3... that a restart starts again at 1, the
 * same transaction retried with backoff until it is accepted).
 *
 * Its clients' third-party lookups (`GET /_matrix/client/v3/thirdparty/…`) are
 * passed on to the AS over HTTP as Synapse does (see thirdPartyLookup): the
 * protocols of its registration asked at its URL, answers merged and filtered,
 * every failure of the AS an empty answer. clientToken() gives a local user a
 * token to ask them with.
 *
 * Power levels as Synapse 1.94 keeps them: every room has an `m.room.power_levels` state event in
 * `initialState`, the content createRoom makes (synapsePowerLevels: the creator 100, the preset's
 * `invite`, `trusted_private_chat` invitees 100, `power_level_content_override`); `moderators`
 * mirrors the users at 50 or more (a user added to it directly counts as 50). Always checked:
 * `m.room.name` / `m.room.topic`, redacting others' events (`redact`), invites (`invite`); every
 * other state and message event only with `enforcePowerLevels`. setPowerLevel / setPowerLevels
 * change them as a new state event (push it with clientEvent).
 *
 * OpenID as Synapse serves it: `POST /user/{userId}/openid/request_token` for one's own user, and
 * the federation `GET /_matrix/federation/v1/openid/userinfo?access_token=` (no auth, as Synapse
 * asks none for it), recorded in `calls` like every request (openIdToken, expireOpenIdTokens).
 *
 * Every request body is checked against the spec fixtures (spec.ts); problems
 * land in `specErrors` (tests should assert it stays empty), as do problems
 * with the fake's own answers. (The federation userinfo request is checked by hand: the fixtures
 * hold the Client-Server and AS APIs only.)
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { checkCsRequest, checkCsResponse, checkEventContent, checkSchemaFile } from './spec.js';

export interface FakeHsOptions {
  asToken: string;
  /** e.g. 'example.org' */
  serverName: string;
  /** AS user namespace: `@<userPrefix>.*:<serverName>`, e.g. 'irc_' */
  userPrefix: string;
  /** the AS bot: `@<senderLocalpart>:<serverName>`; always exists */
  senderLocalpart: string;
  /**
   * Behave like a server without the legacy login API (spec v1.17+): AS
   * registration without `inhibit_login: true` gets 400
   * M_APPSERVICE_LOGIN_UNSUPPORTED. Default false.
   */
  requireInhibitLogin?: boolean;
  /** Check bodies against the spec fixtures into `specErrors`. Default true. */
  checkSpec?: boolean;
  /**
   * Refuse a send or state event whose federation form is over this many bytes (see pduBytes)
   * with 413 M_TOO_LARGE, storing nothing: Synapse's MAX_PDU_SIZE is 65536. Default: no limit.
   */
  maxEventBytes?: number;
  /**
   * Append an `m.room.member` event to the room's `events` for each join and invite made
   * through the API, as a real HS has them to push to the AS. Default false, because tests
   * count `events` as what the AS sent. (kick, ban, unban and leave always append theirs.)
   */
  recordMembership?: boolean;
  /**
   * restart() starts the AS transaction ids (nextTxnId, push) at 1 again, as Synapse on
   * SQLite does (it takes the highest pending txn, and completed ones are deleted). Default
   * true; false for a server whose ids go on across restarts (Synapse on PostgreSQL).
   */
  txnIdsRestartAtOne?: boolean;
  /**
   * The largest upload `POST /_matrix/media/v3/upload` takes, in bytes (Synapse's
   * `max_upload_size`, "50M"): a larger one is 413 M_TOO_LARGE, storing nothing. Default
   * 52428800 (50 MiB).
   */
  maxUploadBytes?: number;
  /**
   * Serve authenticated media (spec v1.11): `GET /_matrix/client/v1/media/download/...` with
   * the access token. false: behave like Synapse 1.94, which lacks the endpoint:
   * `404 {"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`. Default true.
   */
  authenticatedMedia?: boolean;
  /**
   * The unauthenticated `GET /_matrix/media/v3/download/...` answers 404 M_NOT_FOUND for
   * media uploaded after the server froze it (spec v1.11): here all the fake's media, as
   * on a server that implements the freeze (Synapse with `enable_authenticated_media`) and
   * was set up after it. Default false: the legacy endpoint serves everything, as Synapse
   * 1.94 does.
   */
  freezeLegacyMedia?: boolean;
  /**
   * Refuse a relation (`m.relates_to` with `rel_type` and `event_id`) to an event the fake
   * does not have (in no room's `events` or `initialState`, and no stored event relates to
   * it) with 400 M_UNKNOWN "Can't send relation to unknown event", as Synapse does. Default
   * false, because tests push events of Matrix users that the fake never stored (make them
   * with userSend to have them stored) and the AS relates to them (send status
   * `m.reference`s, say). A relation to an event of another room is always refused.
   */
  refuseUnknownRelationTargets?: boolean;
  /**
   * Synapse answers its clients' reverse lookups, `GET /thirdparty/location?alias=` and
   * `/thirdparty/user?userid=`, with `200 []` itself, asking no AS (its handler looks for the
   * ASes of protocol `None`, and there are none). true: the fake asks the AS
   * (`GET /_matrix/app/v1/thirdparty/location?alias=`, `…/user?userid=`), as the spec's AS API
   * describes and other homeservers may do. Default false.
   */
  forwardReverseLookups?: boolean;
  /**
   * Ask the AS's third-party lookups as Synapse before 1.81 did: under `/_matrix/app/unstable/`,
   * the hs_token as `?access_token=` and no Authorization header (Synapse 1.67, measured).
   * Default false: `/_matrix/app/v1/` with `Authorization: Bearer`, as Synapse 1.90+.
   */
  legacyThirdPartyPaths?: boolean;
  /**
   * Check every state and message event (API and userSend) against the room's power levels, as
   * Synapse's event auth does: a state event needs `events[type]` or `state_default`, a message
   * `events[type]` or `events_default` (403 M_FORBIDDEN "You don't have permission to post that
   * to the room. user_level (0) < send_level (50)"); a state key that is another user's ID is
   * refused; an `m.room.power_levels` change follows Synapse's rules (no level above one's own,
   * no change to a user at one's own level). Default false: only the room name and topic (and
   * redactions and invites, always) are checked, as before, because tests have the bot send
   * `m.bridge` into rooms where Synapse would give it level 0. Turn it on for a Matrix user's room
   * the bot is invited into (the bot has 0 there, `state_default` is 50).
   */
  enforcePowerLevels?: boolean;
  /**
   * Answer the AS's `DELETE /directory/room/{alias}` of an alias of its namespace that does not
   * exist with 404 M_NOT_FOUND "Unknown room alias", as the spec describes (and Synapse answers a
   * local user). Default false: 200 {}, as Synapse 1.94 answers an AS (its
   * delete_appservice_association does not look whether there was one).
   */
  deleteUnknownAlias404?: boolean;
}

/**
 * An `m.room.power_levels` content. The keys Synapse's createRoom writes are always there in a
 * room the fake made; one sent by a client may lack any of them (event auth then takes the spec's
 * defaults).
 */
export interface PowerLevelsContent {
  users?: Record<string, number>;
  users_default?: number;
  events?: Record<string, number>;
  events_default?: number;
  state_default?: number;
  ban?: number;
  kick?: number;
  redact?: number;
  invite?: number;
  [key: string]: unknown;
}

/**
 * The power levels Synapse 1.94's createRoom gives a room (RoomCreationHandler
 * _send_events_for_new_room): the creator 100, `invite` 0 for the private presets and 50 for
 * `public_chat`, the invitees 100 for `trusted_private_chat` (original_invitees_have_ops), then
 * the client's `power_level_content_override` merged over the top-level keys (a `users` there
 * replaces the map). `historical` (MSC2716) is Synapse's own, unspecced.
 */
export function synapsePowerLevels(creator: string, preset: string, invitees: string[] = [], override?: Record<string, unknown>): PowerLevelsContent {
  const content: PowerLevelsContent = {
    users: { [creator]: 100 },
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      'm.room.tombstone': 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 50,
    historical: 100,
  };
  if (preset === 'trusted_private_chat') for (const u of invitees) content.users![u] = 100;
  if (preset === 'private_chat' || preset === 'trusted_private_chat') content.invite = 0;
  if (override) Object.assign(content, structuredClone(override));
  return content;
}

/** A file in the fake's media repository (uploaded through the API, or addMedia). */
export interface FakeMedia {
  bytes: Buffer;
  /** the upload's `Content-Type` (application/octet-stream when it had none) */
  contentType: string;
  /** the upload's `?filename=` */
  filename?: string;
  /** the user it was uploaded as (`?user_id=`, or the bot) */
  uploader: string;
}

export interface FakeUser {
  displayName?: string;
  avatarUrl?: string;
}

export interface FakeEvent {
  eventId: string;
  type: string;
  sender: string;
  content: any;
  /** the `?ts=` the AS gave (timestamp massaging), if any */
  ts?: number;
  /** `ts` if given, else the time the fake received it */
  originServerTs: number;
  /** for message events sent with PUT .../send/{type}/{txnId} */
  txnId?: string;
  /** for state events */
  stateKey?: string;
  /**
   * For `m.room.redaction`: the event it redacts. (`content.redacts` holds it too: the fake
   * keeps the content as a room v11 event has it, and as Synapse serves any redaction to
   * clients and ASes; see ClientEvent.)
   */
  redacts?: string;
  /** Set once the event is redacted: the redaction's event ID. `content` is then pruned. */
  redactedBy?: string;
  /**
   * For a state event that replaced another of the same type and state key (in `events` or
   * `initialState`): that event's ID, as Synapse keeps it in `unsigned.replaces_state`.
   */
  replacesState?: string;
  /** The content of the event it replaced (see replacesState), as it was when this one was made. */
  prevContent?: any;
  /** The content as it was sent, kept when the event is redacted (a real HS drops it). */
  unredactedContent?: any;
}

export interface FakeRoom {
  roomId: string;
  creator: string;
  alias?: string;
  name?: string;
  topic?: string;
  /** 'public' or 'invite' (from preset / visibility / m.room.join_rules) */
  joinRule: string;
  members: Set<string>;
  invited: Set<string>;
  /** banned users: their joins and invites are refused until unban() */
  banned: Set<string>;
  /**
   * The users other than the creator at power level 50 or more, kept in step with the room's
   * `m.room.power_levels` (createRoom, setPowerLevel, a power levels event sent through the API).
   * A user a test adds here directly counts as 50 (the power levels content served then shows
   * them at 50): they may redact anyone's events and set the name and topic. Taking a user out
   * does not lower a level the power levels give them: use setPowerLevel.
   */
  moderators: Set<string>;
  /**
   * Events sent through /send, /state and /redact (and userSend, userRedact); the
   * `m.room.member` events of POST .../leave, of kick, ban, unban and leave, of userCreateRoom,
   * userJoinRoom and userSetProfile (and, with `recordMembership`, of API joins and invites,
   * of createRoom's join of the creator and its invites, and of API profile changes); not the
   * other state createRoom makes (see initialState). A state event here remembers the one it
   * replaced (replacesState, prevContent).
   */
  events: FakeEvent[];
  /**
   * The state the room was made with, as Synapse keeps it: createRoom's `initial_state` (an AS's
   * `m.bridge` event, say), `m.room.canonical_alias` for the alias it was made (or seeded)
   * with, and `m.room.name` / `m.room.topic` for its name and topic. Apart from `events`, so tests that count `events` as what the AS sent still can; GET
   * state answers from `events` first, then from this.
   */
  initialState: FakeEvent[];
}

/** An event as Synapse pushes it to an AS in a transaction (the client format). */
export interface ClientEvent {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  origin_server_ts: number;
  content: any;
  /** for state events only */
  state_key?: string;
  /**
   * For `m.room.redaction`, the redacted event's ID. Synapse (1.9x, any room version) serves
   * it both here (where room versions 1-10 have it; the fake's rooms are version 10, Synapse
   * 1.94's default) and as `content.redacts` (where version 11 has it): the fake does too.
   */
  redacts?: string;
  unsigned: {
    age: number;
    /** the redaction, for an event that was redacted (its content pruned) */
    redacted_because?: ClientEvent;
    /**
     * For a state event that replaced another (FakeEvent.replacesState): its event ID, and its
     * content and sender as the HS has them now (pruned if it was redacted since), as Synapse
     * 1.94 pushes them to an AS (`get_events_as_list(..., get_prev_content=True)`).
     */
    replaces_state?: string;
    prev_content?: Record<string, unknown>;
    /** Synapse's own addition, not in the spec */
    prev_sender?: string;
  };
}

/**
 * Delivers one HS -> AS transaction (`PUT /_matrix/app/v1/transactions/{txnId}`) and gives
 * the HTTP status; a throw (network error, timeout) counts as a failed attempt (status 0).
 */
export type PushSend = (txnId: string, body: { events: object[] }) => Promise<number>;

export interface PushOptions {
  /** give up after this many attempts (Synapse never does); default 8 */
  maxAttempts?: number;
  /** wait before the first retry, doubled for each later one; default 10 (Synapse: 2000) */
  backoffMs?: number;
  /** the longest wait; default 256 * backoffMs (Synapse: 2 s doubling up to 512 s) */
  maxBackoffMs?: number;
}

export interface PushResult {
  txnId: string;
  /** how many times the transaction was sent */
  attempts: number;
  /** the status of each attempt, 0 for a throw */
  statuses: number[];
  /** whether the last attempt got a 2xx */
  delivered: boolean;
}

/** What pduBytes measures: the parts of an event that are not the HS's own bookkeeping. */
export interface PduParts {
  roomId: string;
  sender: string;
  type: string;
  content: unknown;
  originServerTs: number;
  stateKey?: string;
}

export interface RecordedCall {
  method: string;
  /** decoded pathname, e.g. /_matrix/client/v3/directory/room/#irc_x:example.org */
  path: string;
  /** the pathname as it came, still percent-encoded: shows whether an ID's `/` was sent as `%2F` */
  rawPath: string;
  query: Record<string, string>;
  /**
   * parsed JSON body; the raw text if it was not JSON; undefined if empty; for a media
   * upload, the bytes (a Buffer)
   */
  body: any;
  /** effective user: the `user_id` query parameter, or the bot ('' for the federation OpenID userinfo, which has none) */
  userId: string;
  /** 0 while the call is pending (hanging, delayed) */
  status: number;
  /** the answer's JSON body; a Buffer for media downloads */
  response: any;
  /** set when a FailRule answered (or held) this call */
  failedBy?: FailRule['kind'];
}

export interface FailMatch {
  method?: string;
  /** substring of, or RegExp tested against, the decoded path */
  pathIncludes?: string | RegExp;
  /** only calls acting as this user (`user_id` query, or the bot) */
  userId?: string;
}

export type FailRule = { match: FailMatch; /** default 1; Infinity for always */ times?: number } & (
  | { kind: 'status'; status: number; /** JSON body, or a string sent as text/plain; default {errcode:'M_UNKNOWN',error} */ body?: any }
  | { kind: 'ratelimit'; retryAfterMs: number }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number }
);

export interface SeedRoomOptions {
  creator: string;
  /** full alias, e.g. '#irc_x:example.org' */
  alias?: string;
  name?: string;
  topic?: string;
  joinRule?: 'public' | 'invite';
  members?: string[];
  invited?: string[];
  /** users at power level 50, besides the creator's 100 (see FakeRoom.moderators) */
  moderators?: string[];
}

/** What a local user's client asks createRoom for (userCreateRoom). */
export interface UserCreateRoomOptions {
  /** users to invite: their invites are made by createRoom, as Synapse does */
  invite?: string[];
  /** `is_direct`: the invite events carry `is_direct: true` */
  isDirect?: boolean;
  /** default `trusted_private_chat` when isDirect (Element's "start a direct chat"), else `private_chat` */
  preset?: string;
  name?: string;
  /** createRoom's `power_level_content_override` (see synapsePowerLevels) */
  powerLevelContentOverride?: Record<string, unknown>;
}

/** What userInvite puts into the invite event. */
export interface UserInviteOptions {
  reason?: string;
  /** `is_direct: true` in the content, as a client inviting to a direct chat */
  isDirect?: boolean;
}

export interface FakeHs {
  /** http://127.0.0.1:PORT */
  url: string;
  /**
   * The options it runs with (a copy of startFakeHs's). A test may change them as it goes:
   * checkSpec, requireInhibitLogin, maxEventBytes, recordMembership, txnIdsRestartAtOne,
   * maxUploadBytes, authenticatedMedia, freezeLegacyMedia, refuseUnknownRelationTargets,
   * enforcePowerLevels and deleteUnknownAlias404 hold from the next request (or restart); the
   * names and the token do not change.
   */
  options: FakeHsOptions;
  serverName: string;
  /** `@<senderLocalpart>:<serverName>` */
  botUserId: string;
  /**
   * What Synapse does when anyone resolves or joins an alias it does not know in an AS's
   * namespace: it asks the AS (GET /_matrix/app/v1/rooms/{alias}) and looks again. Set it to
   * ask the AS under test; unset, the fake answers 404 at once (the default, as before).
   */
  askAsAboutAlias?: (alias: string) => Promise<unknown>;
  /**
   * The AS registration as the homeserver loaded it, for the appservice ping (spec v1.7,
   * `POST /_matrix/client/v1/appservice/{appserviceId}/ping`), which calls the AS's
   * `POST /_matrix/app/v1/ping` with the hs_token as Synapse does. Unset, or `url: null`, a ping
   * answers 400 M_URL_NOT_SET.
   */
  registration?: {
    id: string;
    url: string | null;
    hsToken: string;
    /** how long the AS may take (a ping, a third-party lookup); default 10 s */
    pingTimeoutMs?: number;
    /** the registration's `protocols`: the third-party protocols whose lookups the HS asks the AS */
    protocols?: string[];
  };
  /**
   * An access token for a local user (not the AS's), made on first use: the fake takes it as
   * that user's, as Synapse takes a logged-in client's (for the third-party lookups, say).
   */
  clientToken(userId: string): string;
  /** every request, in arrival order (including rejected ones) */
  calls: RecordedCall[];
  /** registered users (the bot is always there) */
  users: Map<string, FakeUser>;
  rooms: Map<string, FakeRoom>;
  /** alias -> room ID */
  aliases: Map<string, string>;
  /** The application services' published room directory: room ID → the network it is listed under (PUT /directory/list/appservice). */
  appserviceDirectory: Map<string, { networkId: string; visibility: string }>;
  /** spec violations in requests received (and in the fake's own answers) */
  specErrors: string[];
  /** the media repository: media ID (of `mxc://<serverName>/<media ID>`) -> the file */
  media: Map<string, FakeMedia>;
  /**
   * Store a file as if a Matrix user uploaded it (`uploader`, default `@alice:<serverName>`),
   * without an HTTP call; gives its `mxc://<serverName>/<media ID>`.
   */
  addMedia(bytes: Buffer | Uint8Array | string, contentType: string, filename?: string, uploader?: string): string;
  /**
   * A local user (not the AS's) sends a room event from their client, as Synapse takes it:
   * they must be joined, a relation must be valid (no duplicate annotation, ...), the content
   * is checked against the spec. The event is appended to the room's `events` and returned
   * (push it to the AS with clientEvent); throws with the homeserver's error otherwise.
   */
  userSend(userId: string, roomId: string, type: string, content: Record<string, unknown>): FakeEvent;
  /**
   * A local user redacts an event from their client, with the rules of the redact endpoint
   * (own events; anyone's for the creator and `moderators`). Gives the `m.room.redaction`
   * event appended to the room's `events`; throws with the homeserver's error otherwise.
   */
  userRedact(userId: string, roomId: string, eventId: string, reason?: string): FakeEvent;
  /**
   * A local user (not the AS's) creates a room from their client, as Element does for "start a
   * direct chat" (`{preset: 'trusted_private_chat', is_direct: true, invite: [...]}`), with
   * createRoom's rules (the body checked against the spec). `events`: the creator's join and
   * one invite per invitee (with `is_direct: true` when isDirect), appended to the room's
   * `events` whatever recordMembership says; push them to the AS with clientEvent. Throws
   * with the homeserver's error when refused.
   */
  userCreateRoom(userId: string, opts?: UserCreateRoomOptions): { room: FakeRoom; events: FakeEvent[] };
  /**
   * A local user joins a room from their client (accepting an invite, or a public room), with
   * the rules of the join endpoint. Gives the join event, appended to the room's `events`
   * whatever recordMembership says (already joined: the join event `events` has, as Synapse
   * answers a repeated join with the same event); throws with the homeserver's error otherwise.
   */
  userJoinRoom(userId: string, roomId: string): FakeEvent;
  /**
   * A local user (not the AS's) invites someone from their client (`POST .../invite`), with the
   * rules of Synapse's event auth: the inviter joined, the invitee neither banned nor joined, the
   * inviter's level at least the room's `invite` (0 in a private room, 50 in a public one). Gives
   * the invite event (sender the inviter, the invitee's profile in the content, as Synapse), appended
   * to the room's `events` whatever recordMembership says; invited already: the invite event the
   * room has. Push it to the AS with clientEvent; the invitee may then join (the AS: `POST
   * /join/{roomId}?user_id=`). Throws with the homeserver's error otherwise.
   */
  userInvite(inviterId: string, roomId: string, inviteeId: string, opts?: UserInviteOptions): FakeEvent;
  /**
   * The room's power levels as `GET /rooms/{roomId}/state/m.room.power_levels/` answers them: its
   * current power levels event's content, with `moderators` a test added directly shown at 50.
   * Throws for an unknown room.
   */
  powerLevels(roomId: string): PowerLevelsContent;
  /** A user's power level in the room (`users[userId]`, else `users_default`). Throws for an unknown room. */
  powerLevel(roomId: string, userId: string): number;
  /**
   * Sets one user's power level: a new `m.room.power_levels` event (the current content with
   * `users[userId] = level`) from `by` (default the creator), appended to the room's `events` and
   * returned, with no permission check (a test's admin does it); `moderators` follows (level 50 or
   * more). Throws for an unknown room.
   */
  setPowerLevel(roomId: string, userId: string, level: number, by?: string): FakeEvent;
  /**
   * Like setPowerLevel for any keys: `changes` merged over the current content's top-level keys
   * (`{invite: 50}`, `{events: {...}}` replacing the events map, as Synapse's override does).
   */
  setPowerLevels(roomId: string, changes: Partial<PowerLevelsContent>, by?: string): FakeEvent;
  /**
   * An OpenID token for a user, as `POST /user/{userId}/openid/request_token` issues it (valid an
   * hour): `GET /_matrix/federation/v1/openid/userinfo?access_token=` answers `{"sub": userId}`.
   */
  openIdToken(userId: string): string;
  /** Every OpenID token issued so far expires: userinfo answers 401 M_UNKNOWN_TOKEN for each. */
  expireOpenIdTokens(): void;
  /**
   * A local user sets their global profile (fields left out stay); as Synapse does, a new
   * `m.room.member` `join` event with the new `displayname` / `avatar_url` (and `prevContent`,
   * the old member content) is appended in every room they are joined to; a room whose
   * member event would not change gets none (Synapse drops the duplicate). Gives those events.
   * A local user the fake did not know is added to `users` (GET profile then answers it).
   */
  userSetProfile(userId: string, profile: { displayName?: string; avatarUrl?: string }): Array<{ roomId: string; event: FakeEvent }>;
  /**
   * The content of the room's current state event of that type and state key (the last in
   * `events`, else in `initialState`), or undefined. Membership the fake did not record as
   * events (seeded members, API joins without recordMembership) is not there: see the room's
   * sets. Throws for an unknown room.
   */
  currentState(roomId: string, type: string, stateKey?: string): any;
  /** A user's global account data of that type (PUT /user/{userId}/account_data/{type}), or undefined. */
  accountData(userId: string, type: string): any;
  /** queue a failure; rules are tried in order, the first match wins */
  fail(rule: FailRule): void;
  /**
   * create a room directly (as if some user made it), without an HTTP call: its power levels those
   * createRoom gives (`public_chat` for joinRule 'public', else `private_chat`: the creator 100,
   * `moderators` 50), in `initialState` with the alias, name and topic
   */
  seedRoom(opts: SeedRoomOptions): FakeRoom;
  /** drop every queued failure, keeping state: the HS is healthy again */
  clearFailures(): void;
  /**
   * clear calls, state (media, account data and OpenID tokens too), failures and specErrors; drops hanging requests. Not the
   * AS transaction counter: the AS under test usually keeps its store between tests.
   */
  reset(): void;
  /**
   * A moderator kicks `userId` (joined or invited) out: `m.room.member` `leave` from `by`
   * (default the creator), appended to the room's events and returned. A kicked user may join
   * again (public room, or a new invite). Throws for an unknown room or a user not there.
   */
  kick(roomId: string, userId: string, by?: string, reason?: string): FakeEvent;
  /** Like kick, with membership `ban`: joins and invites of `userId` get 403 until unban(). */
  ban(roomId: string, userId: string, by?: string, reason?: string): FakeEvent;
  /** Lifts a ban: membership `leave` from `by` (default the creator). Throws if not banned. */
  unban(roomId: string, userId: string, by?: string): FakeEvent;
  /**
   * `userId` leaves (or rejects an invite) on their own: membership `leave` sent by them (what
   * `POST .../leave` does, without its checks).
   */
  leave(roomId: string, userId: string): FakeEvent;
  /**
   * A local user (not the AS's) joins `#alias` from their client, as Synapse handles it: an
   * alias it does not know in the AS's namespace is asked about first (askAsAboutAlias), then
   * looked up again. The join's status and room, as the client would see them.
   */
  userJoin(userId: string, alias: string): Promise<{ status: number; roomId?: string; error?: string }>;
  /**
   * The HS process restarts: it forgets its in-memory send-transaction cache (a repeated
   * `PUT .../send/{type}/{txnId}` makes a new event) and drops hanging requests; with
   * `txnIdsRestartAtOne` the AS transaction ids start at 1 again. Users, rooms, aliases, calls
   * and failure rules stay (they are in its database, or the test's).
   */
  restart(): void;
  /**
   * The HS loses its database (reset, restored backup): users (but the bot), rooms, aliases,
   * media, account data, OpenID tokens, the send-transaction cache and the AS transaction counter are gone, hanging
   * requests dropped. Keeps calls, specErrors and failure rules, so tests can see what followed.
   */
  forgetEverything(): void;
  /** The next AS transaction id: '1', '2', '3'... per fake HS (see txnIdsRestartAtOne). */
  nextTxnId(): string;
  /**
   * Push one transaction to the AS as Synapse does: take the next txn id, send, and until the
   * answer is a 2xx, send the same id with the same body again after a backoff (a 413 is no
   * exception). One transaction at a time: a push waits for the ones before it to finish,
   * and only then takes its id.
   */
  push(events: object[], send: PushSend, opts?: PushOptions): Promise<PushResult>;
  /**
   * A stored event in the form Synapse pushes it, for push(): a redaction with `redacts` at
   * the top and in `content`; a redacted event pruned, with `unsigned.redacted_because`; a
   * state event that replaced another with `unsigned.replaces_state`, `prev_content` and
   * `prev_sender`.
   */
  clientEvent(roomId: string, ev: FakeEvent): ClientEvent;
  /** Ends hanging requests and stops timers (a push() still backing off never settles). */
  close(): Promise<void>;
}

interface Answer {
  status: number;
  /** JSON, or a Buffer sent as is (media) */
  body: unknown;
  headers?: Record<string, string>;
  /** what the check against the spec sees instead of `body`, where Synapse's answer is not spec-shaped */
  specBody?: unknown;
}

type Handler = (ctx: Ctx) => Answer;

interface Ctx {
  method: string;
  path: string;
  query: Record<string, string>;
  body: any;
  userId: string;
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** a local user's own token (clientToken), not the AS's */
  asClient: boolean;
}

const CS = '_matrix/client/v3';
const LOCALPART = /^[a-z0-9._=\-/+]+$/;
const USER_ID = /^@[^:]+:.+$/;
/** Synapse's createRoom presets (RoomCreationHandler._presets_dict). */
const PRESETS = new Set(['private_chat', 'trusted_private_chat', 'public_chat']);

function err(status: number, errcode: string, error: string, extra?: Record<string, unknown>): Answer {
  return { status, body: { errcode, error, ...extra } };
}

function isPlainObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function randomId(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Synapse's random_string: ASCII letters. */
function randomLetters(n: number): string {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  return [...randomBytes(n)].map((b) => letters[b % letters.length]).join('');
}

/** Synapse's media IDs: 24 random ASCII letters. */
const mediaId = (): string => randomLetters(24);

/** A power level as Synapse's event auth reads one (an integer, or a string of one in old room versions). */
function toLevel(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return Number(v);
  return undefined;
}

/** A user's level in a power levels content: `users[userId]`, else `users_default`, else 0. */
function levelIn(pl: PowerLevelsContent, userId: string): number {
  const users = isPlainObject(pl.users) ? pl.users : {};
  return toLevel(users[userId]) ?? toLevel(pl.users_default) ?? 0;
}

/** Synapse's get_named_level: `ban`, `kick`, `redact` (default 50), `invite` (default 0). */
function namedLevel(pl: PowerLevelsContent, name: 'ban' | 'kick' | 'redact' | 'invite'): number {
  return toLevel(pl[name]) ?? (name === 'invite' ? 0 : 50);
}

/** Synapse's get_send_level: `events[type]`, else `state_default` (50) for state, `events_default` (0) for messages. */
function sendLevel(pl: PowerLevelsContent, type: string, isState: boolean): number {
  const events = isPlainObject(pl.events) ? pl.events : {};
  return toLevel(events[type]) ?? (isState ? (toLevel(pl.state_default) ?? 50) : (toLevel(pl.events_default) ?? 0));
}

// Synapse (synapse/media/_base.py): text types get a UTF-8 charset when they have none...
const TEXT_CONTENT_TYPES = new Set(['text/css', 'text/csv', 'text/html', 'text/calendar', 'text/plain', 'text/javascript', 'application/json', 'application/ld+json', 'application/rtf', 'image/svg+xml', 'text/xml']);
// ...and these are served `inline`, the rest as `attachment` (the spec's list of v1.12).
const INLINE_CONTENT_TYPES = new Set([
  'text/css', 'text/plain', 'text/csv', 'application/json', 'application/ld+json',
  'image/jpeg', 'image/gif', 'image/png', 'image/apng', 'image/webp', 'image/avif',
  'video/mp4', 'video/webm', 'video/ogg', 'video/quicktime',
  'audio/mp4', 'audio/webm', 'audio/aac', 'audio/mpeg', 'audio/ogg', 'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/flac', 'audio/x-flac',
]);

/**
 * The headers Synapse sends with a file: `Content-Type` as uploaded (a charset added to text
 * types), `Content-Disposition` `inline` or `attachment` with the file name as an RFC 2616
 * token when it is one (`filename=cat.png`), else RFC 5987 (`filename*=utf-8''caf%C3%A9.png`).
 */
export function mediaHeaders(contentType: string, size: number, filename: string | undefined): Record<string, string> {
  const type = contentType.toLowerCase();
  let disposition = INLINE_CONTENT_TYPES.has(type) ? 'inline' : 'attachment';
  if (filename) {
    const token = [...filename].every((c) => c.charCodeAt(0) > 32 && c.charCodeAt(0) < 127 && !'()<>@,;:\\"/[]?={}'.includes(c));
    disposition += token ? `; filename=${filename}` : `; filename*=utf-8''${synapseQuote(filename)}`;
  }
  return {
    'Content-Type': TEXT_CONTENT_TYPES.has(type) ? `${contentType}; charset=UTF-8` : contentType,
    'Content-Length': String(size),
    'Content-Disposition': disposition,
    'Cache-Control': 'public,max-age=86400,s-maxage=86400',
  };
}

/**
 * The redaction algorithm of room version 10 (the fake's rooms'): what a redacted event's
 * content keeps.
 */
function prunedContent(type: string, content: unknown): Record<string, unknown> {
  const keep: Record<string, string[]> = {
    'm.room.member': ['membership', 'join_authorised_via_users_server'],
    'm.room.create': ['creator'],
    'm.room.join_rules': ['join_rule', 'allow'],
    'm.room.power_levels': ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'],
    'm.room.history_visibility': ['history_visibility'],
  };
  const out: Record<string, unknown> = {};
  if (!isPlainObject(content)) return out;
  for (const k of keep[type] ?? []) if (k in content) out[k] = content[k];
  return out;
}

/**
 * How Synapse puts a user ID or alias into the path of an AS query: Python's
 * `urllib.parse.quote`, which leaves `/` (and `A-Z a-z 0-9 _ . - ~`) as is and percent-encodes
 * every other UTF-8 byte (Synapse issue #14511): `@irc.freenode.net/bob:hs` becomes
 * `%40irc.freenode.net/bob%3Ahs`.
 */
export function synapseQuote(id: string): string {
  let out = '';
  for (const byte of Buffer.from(id, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && /[A-Za-z0-9_.\-~/]/.test(ch) ? ch : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

// Placeholders as long as what a HS adds to the federation form of an event (room v3+).
const HASH = 'x'.repeat(43); // unpadded base64 of a SHA-256
const EVENT_REF = `$${HASH}`;
const SIGNATURE = 'x'.repeat(86); // unpadded base64 of an ed25519 signature

/**
 * The size in bytes that Synapse compares with its event limit (MAX_PDU_SIZE, 65536): the
 * canonical JSON of the event's federation form, with the hashes, signatures and references to
 * other events the HS adds; here placeholders of their real length, so the result is Synapse's
 * within a few bytes (depth and the number of auth events vary). JSON.stringify's output has
 * the length of canonical JSON (only the key order differs), UTF-8 as Synapse counts it.
 */
export function pduBytes(serverName: string, ev: PduParts): number {
  const pdu: Record<string, unknown> = {
    auth_events: [EVENT_REF, EVENT_REF, EVENT_REF], // create, power levels, the sender's membership
    content: ev.content,
    depth: 100,
    hashes: { sha256: HASH },
    origin: serverName,
    origin_server_ts: ev.originServerTs,
    prev_events: [EVENT_REF],
    room_id: ev.roomId,
    sender: ev.sender,
    signatures: { [serverName]: { 'ed25519:a_abcd': SIGNATURE } },
    type: ev.type,
    unsigned: { age_ts: ev.originServerTs },
  };
  if (ev.stateKey !== undefined) pdu.state_key = ev.stateKey;
  return Buffer.byteLength(JSON.stringify(pdu), 'utf8');
}

/** The path Synapse (1.90+) calls for a user or alias query, e.g. `/_matrix/app/v1/users/%40irc_bob%3Ahs`. */
export const synapseQueryPath = (kind: 'users' | 'rooms', id: string, legacy = false): string =>
  `${legacy ? '' : '/_matrix/app/v1'}/${kind}/${synapseQuote(id)}`;

export async function startFakeHs(given: FakeHsOptions): Promise<FakeHs> {
  const opts: FakeHsOptions = { ...given }; // fake.options: the test may change it
  const { asToken, serverName, userPrefix, senderLocalpart } = opts;
  const spec = (): boolean => opts.checkSpec ?? true;
  const botUserId = `@${senderLocalpart}:${serverName}`;

  const calls: RecordedCall[] = [];
  const users = new Map<string, FakeUser>();
  const rooms = new Map<string, FakeRoom>();
  const aliases = new Map<string, string>();
  const appserviceDirectory = new Map<string, { networkId: string; visibility: string }>();
  const specErrors: string[] = [];
  const media = new Map<string, FakeMedia>();
  let rules: Array<FailRule & { times: number }> = [];
  // user/room/type/txnId -> event_id: Synapse keeps it in process memory, so restart() clears it
  const txns = new Map<string, string>();
  let lastTxnId = 0; // the AS transaction counter (nextTxnId)
  let pushing: Promise<unknown> = Promise.resolve(); // the transaction in flight, if any
  const hanging = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  // access token -> local user (clientToken)
  const clientTokens = new Map<string, string>();
  // user -> account data type -> content (global account data; in the database)
  const accountDataStore = new Map<string, Map<string, unknown>>();
  // OpenID token -> its user and when it expires (Synapse's open_id_tokens table)
  const openIdTokens = new Map<string, { userId: string; validUntilMs: number }>();
  // alias -> who made it (Synapse's room_aliases.creator), for a local user's DELETE
  const aliasCreators = new Map<string, string>();

  const initUsers = (): void => {
    users.set(botUserId, { displayName: senderLocalpart });
  };
  initUsers();

  /** In the AS's namespace (users regex, or the bot). */
  const interested = (userId: string): boolean => {
    if (userId === botUserId) return true;
    const m = /^@([^:]+):(.+)$/.exec(userId);
    return !!m && m[2] === serverName && m[1]!.startsWith(userPrefix) && m[1]!.length > userPrefix.length;
  };

  const newEventId = (): string => `$${randomId(18)}`;

  /**
   * A room, with its state in `initialState`: the power levels (`powerLevels`; by default those
   * createRoom gives with the preset of the join rule, `moderators` at 50; null: none, createRoom's
   * initial_state has them), the canonical alias, name and topic.
   */
  const makeRoom = (o: SeedRoomOptions, powerLevels?: PowerLevelsContent | null): FakeRoom => {
    const room: FakeRoom = {
      roomId: `!${randomId(9)}:${serverName}`,
      creator: o.creator,
      joinRule: o.joinRule ?? 'invite',
      members: new Set([o.creator, ...(o.members ?? [])]),
      invited: new Set(o.invited ?? []),
      banned: new Set(),
      moderators: new Set(o.moderators ?? []),
      events: [],
      initialState: [],
    };
    let pl = powerLevels;
    if (pl === undefined) {
      pl = synapsePowerLevels(o.creator, o.joinRule === 'public' ? 'public_chat' : 'private_chat');
      for (const m of o.moderators ?? []) if (m !== o.creator) pl.users![m] = 50;
    }
    if (pl !== null) {
      room.initialState.push({ eventId: newEventId(), type: 'm.room.power_levels', sender: o.creator, content: pl, originServerTs: Date.now(), stateKey: '' });
    }
    if (o.alias !== undefined) {
      room.alias = o.alias;
      aliases.set(o.alias, room.roomId);
      aliasCreators.set(o.alias, o.creator);
      // As Synapse's createRoom with room_alias_name: the alias is the room's canonical one.
      room.initialState.push({
        eventId: newEventId(),
        type: 'm.room.canonical_alias',
        sender: o.creator,
        content: { alias: o.alias },
        originServerTs: Date.now(),
        stateKey: '',
      });
    }
    // As createRoom's `name` and `topic`: state events from the creator.
    if (o.name !== undefined) {
      room.name = o.name;
      room.initialState.push({ eventId: newEventId(), type: 'm.room.name', sender: o.creator, content: { name: o.name }, originServerTs: Date.now(), stateKey: '' });
    }
    if (o.topic !== undefined) {
      room.topic = o.topic;
      room.initialState.push({ eventId: newEventId(), type: 'm.room.topic', sender: o.creator, content: { topic: o.topic }, originServerTs: Date.now(), stateKey: '' });
    }
    rooms.set(room.roomId, room);
    return room;
  };

  /** The room's current state event of that type and key: the last in `events`, else in `initialState`. */
  const currentStateEvent = (room: FakeRoom, type: string, stateKey: string): FakeEvent | undefined => {
    for (let i = room.events.length - 1; i >= 0; i--) {
      const e = room.events[i]!;
      if (e.type === type && e.stateKey === stateKey) return e;
    }
    for (let i = room.initialState.length - 1; i >= 0; i--) {
      const e = room.initialState[i]!;
      if (e.type === type && e.stateKey === stateKey) return e;
    }
    return undefined;
  };

  /**
   * Appends a state event to the room's `events`, remembering the one it replaces (Synapse's
   * `unsigned.replaces_state`, and the `prev_content` it pushes to an AS).
   */
  const appendState = (room: FakeRoom, ev: FakeEvent): FakeEvent => {
    const prev = currentStateEvent(room, ev.type, ev.stateKey!);
    if (prev) {
      ev.replacesState = prev.eventId;
      ev.prevContent = structuredClone(prev.content);
    }
    room.events.push(ev);
    return ev;
  };

  /**
   * The content of an `m.room.member` event. Like Synapse, joins and invites carry the target's
   * profile, so the AS sees the display name it set; `extra` (a reason, createRoom's
   * `is_direct`) comes first, as Synapse builds it.
   */
  const memberContent = (target: string, membership: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
    const content: Record<string, unknown> = { ...extra, membership };
    const profile = membership === 'join' || membership === 'invite' ? users.get(target) : undefined;
    if (profile?.displayName !== undefined) content.displayname = profile.displayName;
    if (profile?.avatarUrl !== undefined) content.avatar_url = profile.avatarUrl;
    return content;
  };

  /** Appends an `m.room.member` event (see memberContent), remembering the one it replaces. */
  const memberEvent = (room: FakeRoom, target: string, membership: string, sender: string, reason?: string, extra: Record<string, unknown> = {}): FakeEvent => {
    const content = memberContent(target, membership, reason === undefined ? extra : { ...extra, reason });
    return appendState(room, { eventId: newEventId(), type: 'm.room.member', sender, content, originServerTs: Date.now(), stateKey: target });
  };

  // ------------------------------------------------------------ power levels

  /**
   * The power levels event auth reads: the current `m.room.power_levels` content (a room the
   * fake made always has one; one a test built by hand gets Synapse's private_chat default), with
   * the `moderators` a test added directly at 50. A copy.
   */
  const effectivePowerLevels = (room: FakeRoom): PowerLevelsContent => {
    const stored: unknown = currentStateEvent(room, 'm.room.power_levels', '')?.content;
    const pl: PowerLevelsContent = isPlainObject(stored) ? structuredClone(stored) : synapsePowerLevels(room.creator, 'private_chat');
    for (const m of room.moderators) {
      if (levelIn(pl, m) >= 50) continue;
      if (!isPlainObject(pl.users)) pl.users = {};
      pl.users[m] = 50;
    }
    return pl;
  };

  const powerOf = (room: FakeRoom, userId: string): number => levelIn(effectivePowerLevels(room), userId);

  /** `moderators` after a new power levels event: the users but the creator at 50 or more. */
  const syncModerators = (room: FakeRoom): void => {
    const stored: unknown = currentStateEvent(room, 'm.room.power_levels', '')?.content;
    if (!isPlainObject(stored)) return;
    room.moderators.clear();
    const users: Record<string, unknown> = isPlainObject(stored.users) ? stored.users : {};
    for (const u of Object.keys(users)) if (u !== room.creator && levelIn(stored, u) >= 50) room.moderators.add(u);
  };

  /**
   * Synapse's _check_power_levels (event_auth.py) for a new `m.room.power_levels` content from a
   * user at `userLevel`: user IDs and integer levels only (400); no level changed that was or
   * becomes above the sender's own, and no other user's level changed that equals it (403).
   */
  const powerLevelsChangeRefused = (old: PowerLevelsContent, next: Record<string, unknown>, sender: string, userLevel: number): Answer | undefined => {
    const newUsers: Record<string, unknown> = isPlainObject(next.users) ? next.users : {};
    for (const [k, v] of Object.entries(newUsers)) {
      if (!USER_ID.test(k)) return err(400, 'M_UNKNOWN', `Not a valid user_id: ${k}`);
      if (toLevel(v) === undefined) return err(400, 'M_UNKNOWN', `Not a valid power level: ${String(v)}`);
    }
    const checks: Array<[string, 'users' | 'events' | undefined]> = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'].map((k) => [k, undefined]);
    const oldUsers: Record<string, unknown> = isPlainObject(old.users) ? old.users : {};
    for (const u of new Set([...Object.keys(oldUsers), ...Object.keys(newUsers)])) checks.push([u, 'users']);
    const oldEvents: Record<string, unknown> = isPlainObject(old.events) ? old.events : {};
    const newEvents: Record<string, unknown> = isPlainObject(next.events) ? next.events : {};
    for (const t of new Set([...Object.keys(oldEvents), ...Object.keys(newEvents)])) checks.push([t, 'events']);
    for (const [key, dir] of checks) {
      const oldLoc: Record<string, unknown> = dir === undefined ? old : dir === 'users' ? oldUsers : oldEvents;
      const newLoc: Record<string, unknown> = dir === undefined ? next : dir === 'users' ? newUsers : newEvents;
      const oldLevel = key in oldLoc ? toLevel(oldLoc[key]) : undefined;
      const newLevel = key in newLoc ? toLevel(newLoc[key]) : undefined;
      if (oldLevel !== undefined && newLevel !== undefined && oldLevel === newLevel) continue;
      if (oldLevel === undefined && newLevel === undefined) continue;
      if (dir === 'users' && key !== sender && oldLevel === userLevel) {
        return err(403, 'M_FORBIDDEN', "You don't have permission to remove ops level equal to your own");
      }
      if ((oldLevel !== undefined && oldLevel > userLevel) || (newLevel !== undefined && newLevel > userLevel)) {
        return err(403, 'M_FORBIDDEN', "You don't have permission to add ops level greater than your own");
      }
    }
    return undefined;
  };

  /**
   * An invite as Synapse's event auth takes it: the inviter joined, the invitee neither banned
   * nor joined, the inviter at the room's `invite` level. The invite event when one was appended
   * (`record`, and not invited already), null when none was; the refusal otherwise.
   */
  const inviteIn = (room: FakeRoom, inviter: string, invitee: string, record: boolean, extra: Record<string, unknown> = {}, reason?: string): FakeEvent | null | Answer => {
    if (!room.members.has(inviter)) return err(403, 'M_FORBIDDEN', `User ${inviter} not in room ${room.roomId}`);
    if (room.banned.has(invitee)) return err(403, 'M_FORBIDDEN', `${invitee} is banned from the room`);
    if (room.members.has(invitee)) return err(403, 'M_FORBIDDEN', `${invitee} is already in the room.`);
    const pl = effectivePowerLevels(room);
    if (levelIn(pl, inviter) < namedLevel(pl, 'invite')) return err(403, 'M_FORBIDDEN', "You don't have permission to invite users");
    // Inviting again changes nothing, so no new event (Synapse answers with the old one).
    const again = room.invited.has(invitee);
    room.invited.add(invitee);
    return record && !again ? memberEvent(room, invitee, 'invite', inviter, reason, extra) : null;
  };

  /**
   * A join as Synapse's event auth takes it (a ban outlasts invites and public join rules).
   * The join event when one was appended (`record`), null when none was: not recorded, or
   * already joined (nothing changes); the refusal otherwise.
   */
  const joinIn = (room: FakeRoom, userId: string, record: boolean): FakeEvent | null | Answer => {
    if (room.banned.has(userId)) return err(403, 'M_FORBIDDEN', 'You are banned from this room');
    if (room.members.has(userId)) return null;
    if (room.joinRule !== 'public' && !room.invited.has(userId)) {
      return err(403, 'M_FORBIDDEN', 'You are not invited to this room.');
    }
    room.invited.delete(userId);
    room.members.add(userId);
    return record ? memberEvent(room, userId, 'join', userId) : null;
  };

  const joinRoom = (room: FakeRoom, userId: string): Answer => {
    const made = joinIn(room, userId, opts.recordMembership === true);
    if (made !== null && !('eventId' in made)) return made;
    return { status: 200, body: { room_id: room.roomId } };
  };

  /**
   * Whether the user left or was kicked (a `leave` member event of theirs, and not banned since):
   * Synapse's allow_departed_users lets them still read the room.
   */
  const departed = (room: FakeRoom, userId: string): boolean =>
    !room.banned.has(userId) && room.events.some((e) => e.type === 'm.room.member' && e.stateKey === userId && e.content.membership === 'leave');

  /**
   * Synapse sends a user's profile change (PUT profile, here userSetProfile) into every room
   * they are joined to (ProfileHandler._update_join_states): a new join event with the new
   * profile from the user; none where it would not change the member event (the same sender
   * and content: Synapse's deduplicate_state_event drops it).
   */
  const profileChanged = (userId: string): Array<{ roomId: string; event: FakeEvent }> => {
    const out: Array<{ roomId: string; event: FakeEvent }> = [];
    for (const room of rooms.values()) {
      if (!room.members.has(userId)) continue;
      const current = currentStateEvent(room, 'm.room.member', userId);
      if (current && current.sender === userId && isDeepStrictEqual(current.content, memberContent(userId, 'join'))) continue;
      out.push({ roomId: room.roomId, event: memberEvent(room, userId, 'join', userId) });
    }
    return out;
  };

  /**
   * Synapse's event auth for a state event (_can_send_event, _check_power_levels): the sender's
   * level against `events[type]` or `state_default`, 403 as Synapse words it. `m.room.name` and
   * `m.room.topic` always (the creator and moderators may, by default); other types only with
   * enforcePowerLevels, which also refuses a state key that is another user's ID and checks a
   * power levels change.
   */
  const stateRefused = (room: FakeRoom, sender: string, type: string, stateKey: string, content: Record<string, unknown>): Answer | undefined => {
    const enforce = opts.enforcePowerLevels === true;
    if (type !== 'm.room.name' && type !== 'm.room.topic' && !enforce) return undefined;
    const pl = effectivePowerLevels(room);
    const level = levelIn(pl, sender);
    const need = sendLevel(pl, type, true);
    if (level < need) return err(403, 'M_FORBIDDEN', `You don't have permission to post that to the room. user_level (${level}) < send_level (${need})`);
    if (!enforce) return undefined;
    if (stateKey.startsWith('@') && stateKey !== sender) return err(403, 'M_FORBIDDEN', 'You are not allowed to set others state');
    if (type === 'm.room.power_levels' && stateKey === '') return powerLevelsChangeRefused(pl, content, sender, level);
    return undefined;
  };

  /** A message event against `events[type]` or `events_default`: only with enforcePowerLevels. */
  const messageRefused = (room: FakeRoom, sender: string, type: string): Answer | undefined => {
    if (opts.enforcePowerLevels !== true) return undefined;
    const pl = effectivePowerLevels(room);
    const level = levelIn(pl, sender);
    const need = sendLevel(pl, type, false);
    return level < need ? err(403, 'M_FORBIDDEN', `You don't have permission to post that to the room. user_level (${level}) < send_level (${need})`) : undefined;
  };

  /** Synapse's event size limit, when the test asked for one. */
  const tooLarge = (parts: PduParts): Answer | undefined =>
    opts.maxEventBytes !== undefined && pduBytes(serverName, parts) > opts.maxEventBytes ? err(413, 'M_TOO_LARGE', 'event too large') : undefined;

  const parseTs = (ctx: Ctx): number | undefined | Answer => {
    const ts = ctx.query.ts;
    if (ts === undefined) return undefined;
    if (!/^\d+$/.test(ts)) return err(400, 'M_INVALID_PARAM', 'ts must be an integer');
    return Number(ts);
  };

  const needObject = (ctx: Ctx): Answer | undefined => {
    if (ctx.body === undefined) return err(400, 'M_NOT_JSON', 'Content not JSON.');
    if (!isPlainObject(ctx.body)) return err(400, 'M_BAD_JSON', 'Content must be a JSON object.');
    return undefined;
  };

  const checkContent = (ctx: Ctx, type: string): void => {
    if (!spec()) return;
    for (const e of checkEventContent(type, ctx.body)) specErrors.push(`${ctx.method} ${ctx.path}: ${e}`);
  };

  // ------------------------------------------------------------ relations and redactions

  /** An event the fake has, in any room (`events` or `initialState`), with its room. */
  const findEvent = (eventId: string): { room: FakeRoom; ev: FakeEvent } | undefined => {
    for (const room of rooms.values()) {
      const ev = room.events.find((e) => e.eventId === eventId) ?? room.initialState.find((e) => e.eventId === eventId);
      if (ev) return { room, ev };
    }
    return undefined;
  };

  /** Synapse's relation_from_event: `m.relates_to` with a string `rel_type` and `event_id` (a reply alone is none). */
  const relationOf = (content: unknown): { relType: string; eventId: string; key?: string } | undefined => {
    const rel: unknown = isPlainObject(content) ? content['m.relates_to'] : undefined;
    if (!isPlainObject(rel) || typeof rel.rel_type !== 'string' || typeof rel.event_id !== 'string') return undefined;
    return typeof rel.key === 'string' ? { relType: rel.rel_type, eventId: rel.event_id, key: rel.key } : { relType: rel.rel_type, eventId: rel.event_id };
  };

  /** Whether a stored (unredacted) event relates to this one: Synapse's event_is_target_of_relation. */
  const isRelationTarget = (eventId: string): boolean =>
    [...rooms.values()].some((room) => room.events.some((e) => e.redactedBy === undefined && relationOf(e.content)?.eventId === eventId));

  /**
   * Synapse's EventCreationHandler._validate_event_relation: the parent in the same room (or,
   * with refuseUnknownRelationTargets, known at all); an annotation with a key of at most 500
   * characters, not made twice by the same sender (same event type, target and key; a
   * redacted one no longer counts, as Synapse drops its relation).
   */
  const relationRefused = (room: FakeRoom, sender: string, type: string, content: unknown): Answer | undefined => {
    const rel = relationOf(content);
    if (!rel) return undefined;
    const parent = findEvent(rel.eventId);
    if (parent) {
      if (parent.room !== room) return err(400, 'M_UNKNOWN', 'Relations must be in the same room');
    } else if (opts.refuseUnknownRelationTargets && !isRelationTarget(rel.eventId)) {
      return err(400, 'M_UNKNOWN', "Can't send relation to unknown event");
    }
    if (rel.relType === 'm.annotation') {
      if (rel.key === undefined) return err(400, 'M_UNKNOWN', 'Missing aggregation key');
      if ([...rel.key].length > 500) return err(400, 'M_UNKNOWN', 'Aggregation key is too long');
      const twice = room.events.some((e) => {
        if (e.type !== type || e.sender !== sender || e.redactedBy !== undefined) return false;
        const r = relationOf(e.content);
        return r?.relType === 'm.annotation' && r.eventId === rel.eventId && r.key === rel.key;
      });
      if (twice) return err(400, 'M_DUPLICATE_ANNOTATION', "Can't send same reaction twice");
    }
    return undefined;
  };

  /**
   * What the spec says of `m.relates_to` and `m.mentions` beyond the event schemas, into
   * specErrors: the m.relates_to and m.mentions definitions; a reply's `m.in_reply_to`
   * naming an event; an annotation's `key`; an edit's validity ("Validity of replacement
   * events": `m.new_content` a valid content of the type; when the fake has the original,
   * the same sender, type and room, no state key, and not itself an edit).
   */
  const checkRelations = (where: string, room: FakeRoom, sender: string, type: string, content: unknown, stateKey?: string): void => {
    if (!spec() || !isPlainObject(content)) return;
    const problems: string[] = [];
    const rel: unknown = content['m.relates_to'];
    if (rel !== undefined) {
      if (!isPlainObject(rel)) problems.push('m.relates_to must be an object');
      else {
        if (rel.rel_type !== undefined || rel.event_id !== undefined) {
          problems.push(...checkSchemaFile('data/api/client-server/definitions/m.relates_to.yaml', rel, 'm.relates_to'));
        }
        if (rel['m.in_reply_to'] !== undefined) {
          const r: unknown = rel['m.in_reply_to'];
          if (!isPlainObject(r) || typeof r.event_id !== 'string' || !r.event_id.startsWith('$')) {
            problems.push('m.relates_to.m.in_reply_to must be {"event_id": "$..."}');
          }
        }
        if (rel.rel_type === 'm.annotation' && typeof rel.key !== 'string') problems.push('an m.annotation needs a string key');
        if (rel.rel_type === 'm.replace') {
          const next: unknown = content['m.new_content'];
          if (!isPlainObject(next)) problems.push('an m.replace needs m.new_content (an object)');
          else problems.push(...checkEventContent(type, next).map((e) => `m.new_content: ${e}`));
          if (stateKey !== undefined) problems.push('a replacement must not be a state event');
          const original = typeof rel.event_id === 'string' ? findEvent(rel.event_id) : undefined;
          if (original) {
            const o = original.ev;
            if (original.room !== room) problems.push(`a replacement must be in the room of the original ${o.eventId}`);
            if (o.sender !== sender) problems.push(`a replacement must have the sender of the original ${o.eventId} (${o.sender}), not ${sender}`);
            if (o.type !== type) problems.push(`a replacement must have the type of the original ${o.eventId} (${o.type}), not ${type}`);
            if (o.stateKey !== undefined) problems.push(`the original ${o.eventId} of a replacement must not be a state event`);
            if (relationOf(o.content)?.relType === 'm.replace') problems.push(`the original ${o.eventId} of a replacement must not be a replacement itself`);
          }
        }
      }
    }
    const mentions: unknown = content['m.mentions'];
    if (mentions !== undefined) {
      problems.push(...checkSchemaFile('data/api/client-server/definitions/m.mentions.yaml', mentions, 'm.mentions'));
      const ids: unknown = isPlainObject(mentions) ? mentions.user_ids : undefined;
      if (Array.isArray(ids)) {
        for (const id of ids) if (typeof id === 'string' && !/^@[^:]+:.+$/.test(id)) problems.push(`m.mentions.user_ids: ${id} is not a user ID`);
      }
    }
    for (const p of problems) specErrors.push(`${where}: ${p}`);
  };

  /**
   * A redaction as Synapse's redact servlet and EventCreationHandler make it (the sender is
   * a member; the caller checked): an event of another room is 400; who may not redact
   * others (not the creator nor a moderator) gets 404 for an event the HS does not have and
   * 403 for someone else's; who may, redacts even an unknown event ID (Synapse checks the
   * original only for users without the `redact` power). The target's content is pruned.
   */
  const redactIn = (room: FakeRoom, sender: string, eventId: string, body: Record<string, unknown>, originServerTs: number): FakeEvent | Answer => {
    const found = findEvent(eventId);
    if (found && found.room !== room) return err(400, 'M_UNKNOWN', 'Cannot redact event from a different room');
    const target = found?.ev;
    if (target?.type === 'm.room.create') return err(403, 'M_FORBIDDEN', 'Redacting create events is not permitted');
    const pl = effectivePowerLevels(room);
    if (levelIn(pl, sender) < namedLevel(pl, 'redact')) {
      if (!target) return err(404, 'M_NOT_FOUND', `Could not find event ${eventId}`);
      if (target.sender !== sender) return err(403, 'M_FORBIDDEN', "You don't have permission to redact events");
    }
    const content = { ...body, redacts: eventId };
    const big = tooLarge({ roomId: room.roomId, sender, type: 'm.room.redaction', content, originServerTs });
    if (big) return big;
    const ev: FakeEvent = { eventId: newEventId(), type: 'm.room.redaction', sender, content, originServerTs, redacts: eventId };
    room.events.push(ev);
    if (target && target.redactedBy === undefined) {
      const current = target.stateKey === '' && [...room.initialState, ...room.events].reverse().find((e) => e.type === target.type && e.stateKey === '') === target;
      target.unredactedContent = target.content;
      target.content = prunedContent(target.type, target.content);
      target.redactedBy = ev.eventId;
      if (current && target.type === 'm.room.name') delete room.name;
      if (current && target.type === 'm.room.topic') delete room.topic;
    }
    return ev;
  };

  const storeMedia = (bytes: Buffer, contentType: string, filename: string | undefined, uploader: string): string => {
    const id = mediaId();
    const m: FakeMedia = { bytes, contentType, uploader };
    if (filename !== undefined) m.filename = filename;
    media.set(id, m);
    return `mxc://${serverName}/${id}`;
  };

  // ------------------------------------------------------------ handlers

  const register: Handler = (ctx) => {
    const bad = needObject(ctx);
    if (bad) return bad;
    const b = ctx.body as Record<string, any>;
    if (b.type !== 'm.login.application_service') {
      // What Synapse answers when an access token comes without the AS type.
      return err(400, 'M_UNKNOWN', 'An access token should not be provided on requests to /register (except if type is m.login.application_service)');
    }
    if (ctx.query.kind !== undefined && ctx.query.kind !== 'user') {
      return err(403, 'M_FORBIDDEN', 'Guest access is disabled');
    }
    if (b.username === undefined) return err(400, 'M_MISSING_PARAM', 'username is required for application service registration');
    if (typeof b.username !== 'string' || b.username.length > 512) return err(400, 'M_INVALID_USERNAME', 'Invalid username');
    if (!LOCALPART.test(b.username)) {
      return err(400, 'M_INVALID_USERNAME', "User ID can only contain characters a-z, 0-9, or '=_-./+'");
    }
    const userId = `@${b.username}:${serverName}`;
    if (!interested(userId)) return err(400, 'M_EXCLUSIVE', 'Invalid user localpart for this application service.');
    if (opts.requireInhibitLogin && b.inhibit_login !== true) {
      return err(400, 'M_APPSERVICE_LOGIN_UNSUPPORTED', 'Application services must set inhibit_login: true');
    }
    if (users.has(userId)) return err(400, 'M_USER_IN_USE', 'User ID already taken.');
    // Synapse sets the localpart as the initial display name.
    users.set(userId, { displayName: b.username });
    const out: Record<string, unknown> = { user_id: userId, home_server: serverName };
    if (b.inhibit_login !== true) {
      out.access_token = `syt_${randomId()}`;
      out.device_id = typeof b.device_id === 'string' ? b.device_id : randomId(6).toUpperCase();
    }
    return { status: 200, body: out };
  };

  const getProfile: Handler = (ctx) => {
    const user = users.get(ctx.params.userId!);
    if (!user) return err(404, 'M_NOT_FOUND', 'Profile was not found');
    const out: Record<string, unknown> = {};
    if (user.displayName !== undefined) out.displayname = user.displayName;
    if (user.avatarUrl !== undefined) out.avatar_url = user.avatarUrl;
    return { status: 200, body: out };
  };

  const getProfileField: Handler = (ctx) => {
    const user = users.get(ctx.params.userId!);
    const key = ctx.params.key!;
    const value = key === 'displayname' ? user?.displayName : key === 'avatar_url' ? user?.avatarUrl : undefined;
    if (!user || value === undefined) return err(404, 'M_NOT_FOUND', 'Profile was not found');
    return { status: 200, body: { [key]: value } };
  };

  const setProfileField: Handler = (ctx) => {
    const bad = needObject(ctx);
    if (bad) return bad;
    const target = ctx.params.userId!;
    const key = ctx.params.key!;
    if (ctx.userId !== target) return err(403, 'M_FORBIDDEN', "Cannot set another user's profile");
    const user = users.get(target);
    if (!user) return err(404, 'M_NOT_FOUND', 'Profile was not found');
    const b = ctx.body as Record<string, any>;
    if (!(key in b)) return err(400, 'M_MISSING_PARAM', `Missing key '${key}'`);
    if (spec() && Object.keys(b).length !== 1) {
      specErrors.push(`${ctx.method} ${ctx.path}: body must contain exactly one property, the keyName '${key}'`);
    }
    const value: unknown = b[key];
    if (key === 'displayname') {
      if (typeof value !== 'string') return err(400, 'M_INVALID_PARAM', 'displayname must be a string');
      user.displayName = value;
    } else if (key === 'avatar_url') {
      if (typeof value !== 'string') return err(400, 'M_INVALID_PARAM', 'avatar_url must be a string');
      // Synapse accepts any string, the spec says it MUST be an MXC URI.
      if (spec() && !value.startsWith('mxc://')) specErrors.push(`${ctx.method} ${ctx.path}: avatar_url must be an mxc:// URI, got ${value}`);
      user.avatarUrl = value;
    }
    // Synapse sends the change into each of the user's rooms (see profileChanged).
    if (opts.recordMembership) profileChanged(target);
    return { status: 200, body: {} };
  };

  /**
   * Synapse's createRoom (handlers/room.py) for `creator`: a preset it knows (400 M_BAD_JSON
   * otherwise), user IDs to invite (400 otherwise), the alias free. The room's name, topic,
   * `initial_state` and canonical alias go to `initialState`. With `record`, the creator's join
   * and then the invites (`is_direct` in their content when the body's `is_direct` is truthy,
   * as Synapse copies it) are appended to `events` and returned. The power levels event first
   * in `initialState`: initial_state's, else synapsePowerLevels (`trusted_private_chat` gives the
   * invitees the creator's 100, Synapse's `original_invitees_have_ops`; then
   * `power_level_content_override`, whose `users` must hold the creator); `moderators` follows.
   */
  const createRoomFor = (creator: string, b: Record<string, any>, record: boolean): { room: FakeRoom; events: FakeEvent[] } | Answer => {
    let alias: string | undefined;
    if (b.room_alias_name !== undefined) {
      if (typeof b.room_alias_name !== 'string' || /[:\s]/.test(b.room_alias_name) || b.room_alias_name === '') {
        return err(400, 'M_INVALID_PARAM', 'Invalid characters in room alias');
      }
      alias = `#${b.room_alias_name}:${serverName}`;
      if (aliases.has(alias)) return err(400, 'M_ROOM_IN_USE', 'Room alias already taken');
    }
    const invites: unknown[] = Array.isArray(b.invite) ? b.invite : [];
    for (const u of invites) if (typeof u !== 'string' || !USER_ID.test(u)) return err(400, 'M_UNKNOWN', `Invalid user_id: ${String(u)}`);
    const preset: unknown = b.preset !== undefined ? b.preset : b.visibility === 'public' ? 'public_chat' : 'private_chat';
    const override: unknown = b.power_level_content_override;
    // Synapse's create_room checks this before anything else of the room.
    if (isPlainObject(override) && isPlainObject(override.users) && !(creator in override.users)) {
      return err(400, 'M_UNKNOWN', `Not a valid power_level_content_override: 'users' did not contain ${creator}`);
    }
    if (typeof preset !== 'string' || !PRESETS.has(preset)) return err(400, 'M_BAD_JSON', `'${String(preset)}' is not a valid preset`);
    let joinRule = preset === 'public_chat' ? 'public' : 'invite';
    let name: string | undefined;
    let topic: string | undefined;
    if (Array.isArray(b.initial_state)) {
      for (const ev of b.initial_state as unknown[]) {
        if (!isPlainObject(ev) || !isPlainObject(ev.content)) continue;
        if (ev.type === 'm.room.join_rules' && typeof ev.content.join_rule === 'string') joinRule = ev.content.join_rule;
        if (ev.type === 'm.room.name' && typeof ev.content.name === 'string') name = ev.content.name;
        if (ev.type === 'm.room.topic' && typeof ev.content.topic === 'string') topic = ev.content.topic;
      }
    }
    const seed: SeedRoomOptions = { creator, joinRule: joinRule === 'public' ? 'public' : 'invite' };
    if (alias !== undefined) seed.alias = alias;
    // `name` and `topic` are state events of their own, after initial_state's (seedRoom makes them).
    if (typeof b.name === 'string') seed.name = b.name;
    if (typeof b.topic === 'string') seed.topic = b.topic;
    const invited = invites as string[];
    // Synapse takes initial_state's power levels as they are (no preset, no override), else makes them.
    const givenPowerLevels = Array.isArray(b.initial_state) && (b.initial_state as unknown[]).some((ev) => isPlainObject(ev) && ev.type === 'm.room.power_levels' && (ev.state_key ?? '') === '' && isPlainObject(ev.content));
    const room = makeRoom(seed, givenPowerLevels ? null : synapsePowerLevels(creator, preset, invited, isPlainObject(override) ? override : undefined));
    if (seed.name === undefined && name !== undefined) room.name = name;
    if (seed.topic === undefined && topic !== undefined) room.topic = topic;
    // Synapse sends initial_state after the preset's events and before the alias's canonical
    // alias event; the order matters only for the same type and state key, which we keep last-wins.
    if (Array.isArray(b.initial_state)) {
      const made: FakeEvent[] = [];
      for (const ev of b.initial_state as unknown[]) {
        if (!isPlainObject(ev) || !isPlainObject(ev.content) || typeof ev.type !== 'string') continue;
        const stateKey = typeof ev.state_key === 'string' ? ev.state_key : '';
        made.push({ eventId: newEventId(), type: ev.type, sender: creator, content: ev.content, originServerTs: Date.now(), stateKey });
      }
      room.initialState.unshift(...made);
    }
    syncModerators(room);
    const events: FakeEvent[] = [];
    if (record) events.push(memberEvent(room, creator, 'join', creator));
    const extra: Record<string, unknown> = b.is_direct ? { is_direct: b.is_direct } : {};
    for (const invitee of invited) {
      if (record && !room.invited.has(invitee)) events.push(memberEvent(room, invitee, 'invite', creator, undefined, extra));
      room.invited.add(invitee);
    }
    return { room, events };
  };

  const createRoom: Handler = (ctx) => {
    const bad = needObject(ctx);
    if (bad) return bad;
    const made = createRoomFor(ctx.userId, ctx.body as Record<string, any>, opts.recordMembership === true);
    if (!('room' in made)) return made;
    return { status: 200, body: { room_id: made.room.roomId } };
  };

  const getAlias: Handler = (ctx) => {
    const alias = ctx.params.alias!;
    const roomId = aliases.get(alias);
    if (roomId === undefined) return err(404, 'M_NOT_FOUND', `Room alias ${alias} not found`);
    return { status: 200, body: { room_id: roomId, servers: [serverName] } };
  };

  const putAlias: Handler = (ctx) => {
    const bad = needObject(ctx);
    if (bad) return bad;
    const alias = ctx.params.alias!;
    const roomId: unknown = ctx.body.room_id;
    if (typeof roomId !== 'string') return err(400, 'M_MISSING_PARAM', 'Missing room_id');
    const room = rooms.get(roomId);
    // Synapse 1.94 (rest/client/directory.py) checks the room before anything else: a room it
    // does not have is 400 M_UNKNOWN, whatever the alias; then an alias it has is 409.
    if (!room) return err(400, 'M_UNKNOWN', 'Room does not exist');
    if (aliases.has(alias)) return err(409, 'M_UNKNOWN', `Room alias ${alias} already exists`);
    aliases.set(alias, roomId);
    aliasCreators.set(alias, ctx.userId);
    room.alias ??= alias;
    return { status: 200, body: {} };
  };

  /** An alias of the AS's namespace (`#<userPrefix>…:<serverName>`, as askAsAboutAlias has it). */
  const aliasOfAs = (alias: string): boolean => alias.startsWith(`#${userPrefix}`) && alias.endsWith(`:${serverName}`);

  /** The alias is gone: from `aliases`, and from its room's `alias` (another alias of the room, if any). */
  const dropAlias = (alias: string, roomId: string): void => {
    aliases.delete(alias);
    aliasCreators.delete(alias);
    const room = rooms.get(roomId);
    if (room?.alias === alias) {
      const other = [...aliases].find(([, r]) => r === roomId)?.[0];
      if (other === undefined) delete room.alias;
      else room.alias = other;
    }
  };

  /**
   * DELETE /directory/room/{alias} as Synapse 1.94 (ClientDirectoryServer.on_DELETE,
   * DirectoryHandler). The AS (any `?user_id=`): an alias outside its namespace is 400
   * M_EXCLUSIVE; one of its namespace is deleted, 200 {} even when there was none
   * (deleteUnknownAlias404: 404 M_NOT_FOUND); the room's canonical alias is left as it is. A
   * local user's client: an unknown alias is 404 M_NOT_FOUND "Unknown room alias"; who made it,
   * or a member with the level of `m.room.canonical_alias`, may (else 403); an alias of the AS's
   * namespace is 400 M_EXCLUSIVE; the canonical alias event loses it (a new event from the user).
   */
  const deleteAlias: Handler = (ctx) => {
    const alias = ctx.params.alias!;
    const roomId = aliases.get(alias);
    if (!ctx.asClient) {
      if (!aliasOfAs(alias)) return err(400, 'M_EXCLUSIVE', 'This application service has not reserved this kind of alias');
      if (roomId === undefined) return opts.deleteUnknownAlias404 ? err(404, 'M_NOT_FOUND', 'Unknown room alias') : { status: 200, body: {} };
      dropAlias(alias, roomId);
      return { status: 200, body: {} };
    }
    if (roomId === undefined) return err(404, 'M_NOT_FOUND', 'Unknown room alias');
    const room = rooms.get(roomId);
    if (aliasCreators.get(alias) !== ctx.userId) {
      if (!room || !room.members.has(ctx.userId)) return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${roomId}`);
      const pl = effectivePowerLevels(room);
      if (levelIn(pl, ctx.userId) < sendLevel(pl, 'm.room.canonical_alias', true)) return err(403, 'M_FORBIDDEN', "You don't have permission to delete the alias.");
    }
    if (aliasOfAs(alias)) return err(400, 'M_EXCLUSIVE', 'This alias is reserved by an application service.');
    dropAlias(alias, roomId);
    const canonical = room ? currentStateEvent(room, 'm.room.canonical_alias', '') : undefined;
    if (room && canonical && isPlainObject(canonical.content)) {
      const content: Record<string, unknown> = { ...canonical.content };
      let changed = false;
      if (content.alias === alias) {
        delete content.alias;
        changed = true;
      }
      if (Array.isArray(content.alt_aliases) && content.alt_aliases.includes(alias)) {
        const alt = content.alt_aliases.filter((a) => a !== alias);
        if (alt.length) content.alt_aliases = alt;
        else delete content.alt_aliases;
        changed = true;
      }
      if (changed) appendState(room, { eventId: newEventId(), type: 'm.room.canonical_alias', sender: ctx.userId, content, originServerTs: Date.now(), stateKey: '' });
    }
    return { status: 200, body: {} };
  };

  /**
   * Synapse 1.94 (rest/client/directory.py ClientAppserviceDirectoryListServer): only an AS may,
   * the room must exist, `visibility` is public or private.
   */
  const publishAppservice: Handler = (ctx) => {
    const bad = needObject(ctx);
    if (bad) return bad;
    const visibility: unknown = ctx.body.visibility;
    if (visibility !== 'public' && visibility !== 'private') return err(400, 'M_INVALID_PARAM', 'Invalid visibility setting');
    const roomId = ctx.params.roomId!;
    if (!rooms.has(roomId)) return err(404, 'M_NOT_FOUND', 'Unknown room');
    if (visibility === 'public') appserviceDirectory.set(roomId, { networkId: ctx.params.networkId!, visibility });
    else appserviceDirectory.delete(roomId);
    return { status: 200, body: {} };
  };

  const join: Handler = (ctx) => {
    const target = ctx.params.roomIdOrAlias!;
    const roomId = target.startsWith('#') ? aliases.get(target) : target;
    const room = roomId === undefined ? undefined : rooms.get(roomId);
    if (!room) return err(404, 'M_NOT_FOUND', `No known servers for ${target}`);
    return joinRoom(room, ctx.userId);
  };

  const joinById: Handler = (ctx) => {
    const room = rooms.get(ctx.params.roomId!);
    if (!room) return err(404, 'M_NOT_FOUND', 'No known servers');
    return joinRoom(room, ctx.userId);
  };

  /** POST .../invite: see inviteIn (the inviter's `invite` level is checked, as Synapse's event auth does). */
  const invite: Handler = (ctx) => {
    const bad = needObject(ctx);
    if (bad) return bad;
    const room = rooms.get(ctx.params.roomId!);
    if (!room || !room.members.has(ctx.userId)) return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${ctx.params.roomId}`);
    const invitee: unknown = ctx.body.user_id;
    if (typeof invitee !== 'string') return err(400, 'M_MISSING_PARAM', 'Missing user_id');
    const reason = typeof ctx.body.reason === 'string' ? ctx.body.reason : undefined;
    const made = inviteIn(room, ctx.userId, invitee, opts.recordMembership === true, {}, reason);
    if (made !== null && !('eventId' in made)) return made;
    return { status: 200, body: {} };
  };

  const send: Handler = (ctx) => {
    const ts = parseTs(ctx);
    if (typeof ts === 'object') return ts;
    const bad = needObject(ctx);
    if (bad) return bad;
    const { roomId, type, txnId } = ctx.params as { roomId: string; type: string; txnId: string };
    const room = rooms.get(roomId);
    if (!room || !room.members.has(ctx.userId)) return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${roomId}`);
    const key = JSON.stringify([ctx.userId, roomId, type, txnId]);
    const seen = txns.get(key);
    if (seen !== undefined) return { status: 200, body: { event_id: seen } };
    checkContent(ctx, type);
    const originServerTs = ts ?? Date.now();
    // Refused events are not cached: the same txnId with a smaller body may follow.
    const big = tooLarge({ roomId, sender: ctx.userId, type, content: ctx.body, originServerTs });
    if (big) return big;
    checkRelations(`${ctx.method} ${ctx.path}`, room, ctx.userId, type, ctx.body);
    const refused = relationRefused(room, ctx.userId, type, ctx.body) ?? messageRefused(room, ctx.userId, type);
    if (refused) return refused;
    const ev: FakeEvent = { eventId: newEventId(), type, sender: ctx.userId, content: ctx.body, originServerTs, txnId };
    if (ts !== undefined) ev.ts = ts;
    room.events.push(ev);
    txns.set(key, ev.eventId);
    return { status: 200, body: { event_id: ev.eventId } };
  };

  /**
   * GET a state event's content. As Synapse: only for members (the room is not world-readable);
   * m.room.member is answered from the membership sets, `m.room.power_levels` as
   * effectivePowerLevels, others from the last such state event (an empty content, a bridge's
   * removed `m.bridge`, is 200 {} as Synapse answers it).
   */
  const getState: Handler = (ctx) => {
    const { roomId, type } = ctx.params as { roomId: string; type: string };
    const stateKey = ctx.params.stateKey ?? '';
    const room = rooms.get(roomId);
    // As Synapse (check_user_in_room_or_world_readable, allow_departed_users): a user who left or
    // was kicked still reads the room (Synapse: as it was when they left; here, as it is); a room
    // the HS does not have, or one the user never joined or is banned from, is 403 "not in room".
    if (!room || (!room.members.has(ctx.userId) && !departed(room, ctx.userId))) return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${roomId}, and room previews are disabled`);
    if (type === 'm.room.member') {
      const membership = room.banned.has(stateKey) ? 'ban' : room.members.has(stateKey) ? 'join' : room.invited.has(stateKey) ? 'invite' : undefined;
      const left = room.events.some((e) => e.type === 'm.room.member' && e.stateKey === stateKey);
      if (membership) return { status: 200, body: { membership } };
      return left ? { status: 200, body: { membership: 'leave' } } : err(404, 'M_NOT_FOUND', 'Event not found.');
    }
    if (type === 'm.room.power_levels' && stateKey === '') return { status: 200, body: effectivePowerLevels(room) };
    const last = [...room.initialState, ...room.events].reverse().find((e) => e.type === type && e.stateKey === stateKey);
    return last ? { status: 200, body: last.content } : err(404, 'M_NOT_FOUND', 'Event not found.');
  };

  const state: Handler = (ctx) => {
    const ts = parseTs(ctx);
    if (typeof ts === 'object') return ts;
    const bad = needObject(ctx);
    if (bad) return bad;
    const { roomId, type } = ctx.params as { roomId: string; type: string };
    const stateKey = ctx.params.stateKey ?? '';
    const room = rooms.get(roomId);
    if (!room || !room.members.has(ctx.userId)) return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${roomId}`);
    checkContent(ctx, type);
    const c = ctx.body as Record<string, any>;
    const originServerTs = ts ?? Date.now();
    const big = tooLarge({ roomId, sender: ctx.userId, type, content: c, originServerTs, stateKey });
    if (big) return big;
    const refused = stateRefused(room, ctx.userId, type, stateKey, c);
    if (refused) return refused;
    if (stateKey === '') {
      if (type === 'm.room.name') room.name = typeof c.name === 'string' && c.name !== '' ? c.name : undefined;
      if (type === 'm.room.topic') room.topic = typeof c.topic === 'string' && c.topic !== '' ? c.topic : undefined;
      if (type === 'm.room.join_rules' && typeof c.join_rule === 'string') room.joinRule = c.join_rule;
    }
    const ev: FakeEvent = { eventId: newEventId(), type, sender: ctx.userId, content: c, originServerTs, stateKey };
    if (ts !== undefined) ev.ts = ts;
    appendState(room, ev);
    if (type === 'm.room.power_levels' && stateKey === '') syncModerators(room);
    return { status: 200, body: { event_id: ev.eventId } };
  };

  /**
   * POST .../rooms/{roomId}/leave as Synapse 1.94 (RoomMembershipRestServlet,
   * RoomMemberHandler.update_membership_locked, event_auth): any body or none (a `reason` goes
   * into the event); a room the HS does not have is 404 M_UNKNOWN "Not a known room"; a joined
   * or invited user leaves (an invite is rejected), the `leave` event sent by them appended to
   * `events`; leaving again with the same content answers 200 and adds nothing (Synapse's
   * deduplicate_state_event: the user's own leave is the current member event); anyone else
   * (never there, kicked, banned, left with another reason) gets 403 M_FORBIDDEN
   * "<user> not in room <room>." from the event auth.
   */
  const leaveRoom: Handler = (ctx) => {
    if (ctx.body !== undefined && !isPlainObject(ctx.body)) return err(400, 'M_BAD_JSON', 'Content must be a JSON object.');
    const roomId = ctx.params.roomId!;
    const room = rooms.get(roomId);
    if (!room) return err(404, 'M_UNKNOWN', 'Not a known room');
    const b = (ctx.body ?? {}) as Record<string, unknown>;
    const extra: Record<string, unknown> = 'reason' in b ? { reason: b.reason } : {};
    if (!room.members.has(ctx.userId) && !room.invited.has(ctx.userId)) {
      const current = currentStateEvent(room, 'm.room.member', ctx.userId);
      if (current && current.sender === ctx.userId && isDeepStrictEqual(current.content, { ...extra, membership: 'leave' })) return { status: 200, body: {} };
      return err(403, 'M_FORBIDDEN', `${ctx.userId} not in room ${roomId}.`);
    }
    room.members.delete(ctx.userId);
    room.invited.delete(ctx.userId);
    memberEvent(room, ctx.userId, 'leave', ctx.userId, undefined, extra);
    return { status: 200, body: {} };
  };

  /**
   * GET .../rooms/{roomId}/joined_members as Synapse 1.94 (MessageHandler.get_joined_members):
   * a local user's own token must be joined (403 "not in room" as GET state; one who left is
   * refused too); the AS (`?user_id=` or not) may when the user it acts as is joined, or any
   * joined member is in its namespace (else 403 "Appservice not in room", an unknown room
   * too). Each member's profile comes from their join event in `events` (its per-room profile),
   * else their global profile; both keys always there, `null` when unset, as Synapse answers
   * (the spec wants strings: its check sees the answer without the nulls).
   */
  const joinedMembers: Handler = (ctx) => {
    const roomId = ctx.params.roomId!;
    const room = rooms.get(roomId);
    const members = room ? [...room.members] : [];
    if (ctx.asClient) {
      if (!room || (!room.members.has(ctx.userId) && !departed(room, ctx.userId))) {
        return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${roomId}, and room previews are disabled`);
      }
      if (!room.members.has(ctx.userId)) {
        return err(403, 'M_FORBIDDEN', 'Getting joined members while not being a current member of the room is forbidden.');
      }
    } else if (!members.includes(ctx.userId) && !members.some(interested)) {
      return err(403, 'M_FORBIDDEN', 'Appservice not in room');
    }
    const joined: Record<string, { avatar_url: string | null; display_name: string | null }> = {};
    const checked: Record<string, { avatar_url?: string; display_name?: string }> = {};
    for (const m of members) {
      const ev = currentStateEvent(room!, 'm.room.member', m);
      const fromEvent = ev?.content.membership === 'join' ? (ev.content as Record<string, unknown>) : undefined;
      const user = users.get(m);
      const displayName = fromEvent ? fromEvent.displayname : user?.displayName;
      const avatarUrl = fromEvent ? fromEvent.avatar_url : user?.avatarUrl;
      joined[m] = { avatar_url: typeof avatarUrl === 'string' ? avatarUrl : null, display_name: typeof displayName === 'string' ? displayName : null };
      checked[m] = {};
      if (typeof avatarUrl === 'string') checked[m].avatar_url = avatarUrl;
      if (typeof displayName === 'string') checked[m].display_name = displayName;
    }
    return { status: 200, body: { joined }, specBody: { joined: checked } };
  };

  /**
   * PUT and GET /user/{userId}/account_data/{type} as Synapse 1.94 (AccountDataServlet): only
   * for the caller's own user (403 first, whatever the body); PUT takes a JSON object and
   * stores it; GET answers it, or 404 M_NOT_FOUND "Account data not found".
   */
  const putAccountData: Handler = (ctx) => {
    const { userId, type } = ctx.params as { userId: string; type: string };
    if (userId !== ctx.userId) return err(403, 'M_FORBIDDEN', 'Cannot add account data for other users.');
    const bad = needObject(ctx);
    if (bad) return bad;
    let mine = accountDataStore.get(userId);
    if (!mine) accountDataStore.set(userId, (mine = new Map()));
    mine.set(type, ctx.body);
    return { status: 200, body: {} };
  };

  const getAccountData: Handler = (ctx) => {
    const { userId, type } = ctx.params as { userId: string; type: string };
    if (userId !== ctx.userId) return err(403, 'M_FORBIDDEN', 'Cannot get account data for other users.');
    const content = accountDataStore.get(userId)?.get(type);
    return content === undefined ? err(404, 'M_NOT_FOUND', 'Account data not found') : { status: 200, body: content };
  };

  /** PUT .../rooms/{roomId}/redact/{eventId}/{txnId}: once per transaction ID, as send. */
  const redact: Handler = (ctx) => {
    const ts = parseTs(ctx);
    if (typeof ts === 'object') return ts;
    const bad = needObject(ctx);
    if (bad) return bad;
    const { roomId, eventId, txnId } = ctx.params as { roomId: string; eventId: string; txnId: string };
    const room = rooms.get(roomId);
    if (!room || !room.members.has(ctx.userId)) return err(403, 'M_FORBIDDEN', `User ${ctx.userId} not in room ${roomId}`);
    const key = JSON.stringify(['redact', ctx.userId, roomId, eventId, txnId]);
    const seen = txns.get(key);
    if (seen !== undefined) return { status: 200, body: { event_id: seen } };
    const made = redactIn(room, ctx.userId, eventId, ctx.body as Record<string, unknown>, ts ?? Date.now());
    if (!('eventId' in made)) return made; // refusals are not cached
    made.txnId = txnId;
    if (ts !== undefined) made.ts = ts;
    txns.set(key, made.eventId);
    return { status: 200, body: { event_id: made.eventId } };
  };

  /** An OpenID token valid an hour (Synapse's IdTokenServlet.EXPIRES_MS), 24 letters as Synapse's random_string. */
  const issueOpenIdToken = (userId: string): string => {
    const token = randomLetters(24);
    openIdTokens.set(token, { userId, validUntilMs: Date.now() + 3600 * 1000 });
    return token;
  };

  /**
   * POST /user/{userId}/openid/request_token as Synapse 1.94 (rest/client/openid.py): for the
   * requester's own user only (the AS's bot, a `?user_id=` of its namespace, or a local user's
   * token), else 403 first; then a JSON object body (its contents ignored).
   */
  const requestOpenIdToken: Handler = (ctx) => {
    if (ctx.params.userId !== ctx.userId) return err(403, 'M_FORBIDDEN', 'Cannot request tokens for other users.');
    const bad = needObject(ctx);
    if (bad) return bad;
    return { status: 200, body: { access_token: issueOpenIdToken(ctx.userId), token_type: 'Bearer', matrix_server_name: serverName, expires_in: 3600 } };
  };

  /**
   * GET /_matrix/federation/v1/openid/userinfo as Synapse 1.94 (OpenIdUserInfo, REQUIRE_AUTH
   * False): no token is 401 M_MISSING_TOKEN, an unknown or expired one 401 M_UNKNOWN_TOKEN.
   */
  const openIdUserinfo: Handler = (ctx) => {
    const token = ctx.query.access_token;
    if (token === undefined) return err(401, 'M_MISSING_TOKEN', 'Access Token required');
    const known = openIdTokens.get(token);
    if (!known || known.validUntilMs <= Date.now()) return err(401, 'M_UNKNOWN_TOKEN', 'Access Token unknown or expired');
    return { status: 200, body: { sub: known.userId } };
  };

  /**
   * POST /_matrix/media/v3/upload, as Synapse's UploadServlet: a Content-Length is required,
   * larger than maxUploadBytes is 413; `Content-Type` kept (default application/octet-stream).
   */
  const upload: Handler = (ctx) => {
    const length = ctx.headers['content-length'];
    if (length === undefined) return err(400, 'M_UNKNOWN', 'Request must specify a Content-Length');
    const bytes = Buffer.isBuffer(ctx.body) ? ctx.body : Buffer.alloc(0);
    const maxUploadBytes = opts.maxUploadBytes ?? 50 * 1024 * 1024;
    if (Number(length) > maxUploadBytes || bytes.length > maxUploadBytes) return err(413, 'M_TOO_LARGE', 'Upload request body is too large');
    const type = ctx.headers['content-type'];
    const filename = ctx.query.filename === undefined || ctx.query.filename === '' ? undefined : ctx.query.filename;
    const mxc = storeMedia(bytes, type === undefined || type === '' ? 'application/octet-stream' : type, filename, ctx.userId);
    return { status: 200, body: { content_uri: mxc } };
  };

  /** The file's bytes and headers; 404 M_NOT_FOUND for media the fake does not have (another server's too). */
  const serveMedia = (ctx: Ctx): Answer => {
    const { serverName: server, mediaId: id, fileName } = ctx.params;
    const m = server === serverName && id !== undefined ? media.get(id) : undefined;
    if (!m) return err(404, 'M_NOT_FOUND', 'Not found');
    return { status: 200, body: m.bytes, headers: mediaHeaders(m.contentType, m.bytes.length, fileName ?? m.filename) };
  };

  /** The legacy download (no token needed): after the freeze (freezeLegacyMedia), nothing is served. */
  const legacyDownload: Handler = (ctx) => (opts.freezeLegacyMedia ? err(404, 'M_NOT_FOUND', 'Not found') : serveMedia(ctx));

  const MEDIA_V3 = ['_matrix', 'media', 'v3'];
  const FEDERATION_V1 = ['_matrix', 'federation', 'v1'];
  const MEDIA_V1 = ['_matrix', 'client', 'v1', 'media'];

  // Path patterns over decoded segments; ':x?' = optional last segment. A route whose
  // `enabled` says false is not there at all (its path unknown: 404 M_UNRECOGNIZED).
  const routes: Array<{ method: string; pattern: string[]; handler: Handler; skipAssertion?: boolean; enabled?: () => boolean }> = [
    { method: 'POST', pattern: [...CS.split('/'), 'register'], handler: register, skipAssertion: true },
    { method: 'GET', pattern: [...CS.split('/'), 'profile', ':userId'], handler: getProfile },
    { method: 'GET', pattern: [...CS.split('/'), 'profile', ':userId', ':key'], handler: getProfileField },
    { method: 'PUT', pattern: [...CS.split('/'), 'profile', ':userId', ':key'], handler: setProfileField },
    { method: 'POST', pattern: [...CS.split('/'), 'createRoom'], handler: createRoom },
    { method: 'GET', pattern: [...CS.split('/'), 'directory', 'room', ':alias'], handler: getAlias },
    { method: 'PUT', pattern: [...CS.split('/'), 'directory', 'room', ':alias'], handler: putAlias },
    { method: 'DELETE', pattern: [...CS.split('/'), 'directory', 'room', ':alias'], handler: deleteAlias },
    { method: 'PUT', pattern: [...CS.split('/'), 'directory', 'list', 'appservice', ':networkId', ':roomId'], handler: publishAppservice },
    { method: 'POST', pattern: [...CS.split('/'), 'join', ':roomIdOrAlias'], handler: join },
    { method: 'POST', pattern: [...CS.split('/'), 'rooms', ':roomId', 'join'], handler: joinById },
    { method: 'POST', pattern: [...CS.split('/'), 'rooms', ':roomId', 'invite'], handler: invite },
    { method: 'POST', pattern: [...CS.split('/'), 'rooms', ':roomId', 'leave'], handler: leaveRoom },
    { method: 'GET', pattern: [...CS.split('/'), 'rooms', ':roomId', 'joined_members'], handler: joinedMembers },
    { method: 'PUT', pattern: [...CS.split('/'), 'user', ':userId', 'account_data', ':type'], handler: putAccountData },
    { method: 'GET', pattern: [...CS.split('/'), 'user', ':userId', 'account_data', ':type'], handler: getAccountData },
    { method: 'POST', pattern: [...CS.split('/'), 'user', ':userId', 'openid', 'request_token'], handler: requestOpenIdToken },
    // A federation endpoint (no auth at all, see handle); Synapse serves it on the same listener here.
    { method: 'GET', pattern: [...FEDERATION_V1, 'openid', 'userinfo'], handler: openIdUserinfo, skipAssertion: true },
    { method: 'PUT', pattern: [...CS.split('/'), 'rooms', ':roomId', 'send', ':type', ':txnId'], handler: send },
    { method: 'PUT', pattern: [...CS.split('/'), 'rooms', ':roomId', 'state', ':type', ':stateKey?'], handler: state },
    { method: 'GET', pattern: [...CS.split('/'), 'rooms', ':roomId', 'state', ':type', ':stateKey?'], handler: getState },
    { method: 'PUT', pattern: [...CS.split('/'), 'rooms', ':roomId', 'redact', ':eventId', ':txnId'], handler: redact },
    { method: 'POST', pattern: [...MEDIA_V3, 'upload'], handler: upload },
    // Synapse's legacy media resource has no auth at all: a `?user_id=` means nothing there.
    { method: 'GET', pattern: [...MEDIA_V3, 'download', ':serverName', ':mediaId', ':fileName?'], handler: legacyDownload, skipAssertion: true },
    // Synapse 1.94 has no such endpoint (authenticatedMedia: false): 404 M_UNRECOGNIZED.
    { method: 'GET', pattern: [...MEDIA_V1, 'download', ':serverName', ':mediaId', ':fileName?'], handler: serveMedia, enabled: () => opts.authenticatedMedia !== false },
  ];

  const matchPattern = (pattern: string[], segs: string[]): Record<string, string> | undefined => {
    const last = pattern[pattern.length - 1];
    const optional = last !== undefined && last.endsWith('?');
    if (segs.length !== pattern.length && !(optional && segs.length === pattern.length - 1)) return undefined;
    const params: Record<string, string> = {};
    for (let i = 0; i < pattern.length; i++) {
      const p = pattern[i]!;
      const s = segs[i];
      if (p.startsWith(':')) {
        if (s !== undefined) params[p.slice(1).replace(/\?$/, '')] = s;
      } else if (p !== s) return undefined;
    }
    return params;
  };

  // ------------------------------------------------------------ HTTP

  /** A JSON answer; a string as text/plain; a Buffer as is (its Content-Type in `headers`). */
  const respond = (res: ServerResponse, call: RecordedCall, status: number, payload: unknown, headers: Record<string, string> = {}): void => {
    call.status = status;
    call.response = payload;
    if (Buffer.isBuffer(payload)) {
      res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(payload.length), ...headers });
      res.end(payload);
      return;
    }
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const type = typeof payload === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  };

  /** The fake's answer against the spec (`body`: what to check, when not the answer as sent; see Answer.specBody). */
  const selfCheck = (call: RecordedCall, rawPath: string, body: unknown = call.response): void => {
    if (!spec()) return;
    let problems: string[];
    if (call.path.startsWith('/_matrix/federation/')) {
      // server-server/openid.yaml: 200 {"sub": string}, 401 the standard error.
      const b = body as Record<string, unknown> | undefined;
      const ok = call.status === 200 ? isPlainObject(b) && typeof b.sub === 'string' : isPlainObject(b) && typeof b.errcode === 'string';
      if (!ok) specErrors.push(`fake HS answer to ${call.method} ${call.path} is not spec-shaped: ${JSON.stringify(body)}`);
      return;
    }
    try {
      problems = checkCsResponse(call.method, rawPath, call.status, body);
    } catch {
      return; // an endpoint the spec lacks: already reported for the request
    }
    for (const p of problems) {
      const msg = `fake HS answer to ${call.method} ${call.path} is not spec-shaped: ${p}`;
      specErrors.push(msg);
      console.error(msg);
    }
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  /** Synapse's AppservicePingRestServlet: the AS's answer, or why there was none, with the time it took. */
  const pingAppservice = async (appserviceId: string, body: any): Promise<Answer> => {
    const reg = fake.registration;
    if (reg && appserviceId !== reg.id) return err(403, 'M_FORBIDDEN', 'Mismatching application service ID in path');
    if (!reg?.url) return err(400, 'M_URL_NOT_SET', 'Application service URL is not set');
    const started = Date.now();
    try {
      const res = await fetch(`${reg.url.replace(/\/+$/, '')}/_matrix/app/v1/ping`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reg.hsToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ transaction_id: isPlainObject(body) ? (body.transaction_id ?? null) : null }),
        signal: AbortSignal.timeout(reg.pingTimeoutMs ?? 10_000),
      });
      const text = await res.text();
      if (!res.ok) return err(502, 'M_BAD_STATUS', `Ping returned status ${res.status}`, { status: res.status, body: text });
    } catch (e) {
      if ((e as Error).name === 'TimeoutError') return err(504, 'M_CONNECTION_TIMEOUT', 'Connection to application service timed out');
      return err(502, 'M_CONNECTION_FAILED', 'Connection to application service failed');
    }
    return { status: 200, body: { duration_ms: Date.now() - started } };
  };

  /**
   * Synapse's ApplicationServiceApi asking the AS a third-party lookup (`path` under its prefix,
   * with the client's query `args`): the JSON of a 2xx answer; undefined for anything else, which
   * Synapse only logs ("query_3pe to … threw exception").
   */
  const askAsThirdParty = async (path: string, args: Array<[string, string]>): Promise<unknown> => {
    const reg = fake.registration;
    if (!reg?.url) return undefined;
    const legacy = opts.legacyThirdPartyPaths === true;
    const params = new URLSearchParams(args);
    if (legacy) params.append('access_token', reg.hsToken);
    const qs = params.toString();
    try {
      const res = await fetch(`${reg.url.replace(/\/+$/, '')}/_matrix/app/${legacy ? 'unstable' : 'v1'}${path}${qs ? `?${qs}` : ''}`, {
        headers: legacy ? {} : { authorization: `Bearer ${reg.hsToken}` },
        signal: AbortSignal.timeout(reg.pingTimeoutMs ?? 10_000),
      });
      if (!res.ok) return undefined;
      return await res.json();
    } catch {
      return undefined;
    }
  };

  /** Synapse's _is_valid_3pe_result: an object with string `field` and `protocol`, and an object `fields`. */
  const valid3pe = (r: unknown, field: string): boolean =>
    isPlainObject(r) && typeof r[field] === 'string' && typeof r.protocol === 'string' && isPlainObject(r.fields);

  /**
   * Synapse's client servlets for `/thirdparty/protocols`, `/protocol/{p}`, `/location[/{p}]` and
   * `/user[/{p}]` (rest/client/thirdparty.py, handlers/appservice.py): `parts` are the path's
   * segments after `thirdparty`, decoded. Undefined for a path it does not serve. `unchecked`:
   * Synapse's own answer is not what the spec says (its 404 has no errcode).
   */
  const thirdPartyLookup = async (parts: string[], query: URLSearchParams): Promise<(Answer & { unchecked?: true }) | undefined> => {
    const reg = fake.registration;
    const protocols = [...new Set(reg?.protocols ?? [])];
    // get_3pe_protocol: the AS's answer when it has a list of instances, each given an instance_id.
    const metadata = async (protocol: string): Promise<Record<string, any> | undefined> => {
      const info = await askAsThirdParty(`/thirdparty/protocol/${synapseQuote(protocol)}`, []);
      if (!isPlainObject(info) || !Array.isArray(info.instances)) return undefined;
      for (const instance of info.instances) {
        if (isPlainObject(instance) && instance.network_id !== undefined) instance.instance_id = `${reg!.id}|${String(instance.network_id)}`;
      }
      return info;
    };
    const [kind, protocol, ...rest] = parts;
    if (rest.length) return undefined;
    if (kind === 'protocols' && protocol === undefined) {
      const all: Record<string, unknown> = {};
      for (const p of protocols) {
        const info = await metadata(p);
        if (info) all[p] = info;
      }
      return { status: 200, body: all };
    }
    if (kind === 'protocol' && protocol !== undefined) {
      const info = protocols.includes(protocol) ? await metadata(protocol) : undefined;
      return info ? { status: 200, body: info } : { status: 404, body: { error: 'Unknown protocol' }, unchecked: true };
    }
    if (kind !== 'location' && kind !== 'user') return undefined;
    // query_3pe: the client's whole query but its access token, to each AS of the protocol; a
    // failure or an answer that is not a list is [], and results without the required fields go.
    const args = [...query].filter(([k]) => k !== 'access_token');
    const asked = protocol === undefined ? opts.forwardReverseLookups === true : protocols.includes(protocol);
    if (!asked) return { status: 200, body: [] };
    const answer = await askAsThirdParty(protocol === undefined ? `/thirdparty/${kind}` : `/thirdparty/${kind}/${synapseQuote(protocol)}`, args);
    const required = kind === 'user' ? 'userid' : 'alias';
    return { status: 200, body: Array.isArray(answer) ? answer.filter((r) => valid3pe(r, required)) : [] };
  };

  const ruleMatches = (rule: FailRule, call: RecordedCall): boolean => {
    const m = rule.match;
    if (m.method !== undefined && m.method.toUpperCase() !== call.method) return false;
    if (m.userId !== undefined && m.userId !== call.userId) return false;
    if (m.pathIncludes !== undefined) {
      if (typeof m.pathIncludes === 'string' ? !call.path.includes(m.pathIncludes) : !m.pathIncludes.test(call.path)) return false;
    }
    return true;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const rawQuery = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
    const query: Record<string, string> = Object.fromEntries(rawQuery);
    const segs = rawPath.split('/').slice(1).map(decodeSegment);
    const path = '/' + segs.join('/');
    // The Server-Server API (here the OpenID userinfo alone): no user, no token, not the CS spec.
    const federation = segs[0] === '_matrix' && segs[1] === 'federation';
    let userId = federation ? '' : (query.user_id ?? botUserId);
    let asClient = false;
    const call: RecordedCall = { method, path, rawPath, query, body: undefined, userId, status: 0, response: undefined };
    calls.push(call); // in arrival order
    const raw = await readBody(req);
    let body: any;
    let badJson = false;
    if (method === 'POST' && path === '/_matrix/media/v3/upload') {
      body = raw; // a media upload: the bytes, whatever they are
    } else if (raw.length > 0) {
      const text = raw.toString('utf8');
      try {
        body = JSON.parse(text);
      } catch {
        badJson = true;
        body = text;
      }
    }
    call.body = body;

    if (spec() && !badJson && federation) {
      // By hand, as the spec's server-server/openid.yaml has it: `access_token` is required.
      if (method !== 'GET' || path !== `/${FEDERATION_V1.join('/')}/openid/userinfo`) specErrors.push(`${method} ${path}: not a federation endpoint the fake serves (only GET /openid/userinfo)`);
      else if (query.access_token === undefined) specErrors.push(`${method} ${path}: query parameter access_token is required`);
    } else if (spec() && !badJson) {
      try {
        for (const e of checkCsRequest(method, rawPath, body)) specErrors.push(`${method} ${path}: ${e}`);
      } catch (e) {
        specErrors.push(`${method} ${path}: ${(e as Error).message}`);
      }
    }

    // The one endpoint anyone may call (Synapse answers it without a token): what npm start waits for.
    if (method === 'GET' && path === '/_matrix/client/versions') {
      respond(res, call, 200, { versions: ['v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8'], unstable_features: {} });
      return selfCheck(call, rawPath);
    }

    // Authentication: the as_token, as a Bearer header or ?access_token=. Not for the legacy
    // media download, which Synapse serves to anyone (a token given is not even looked at).
    // Nor for the federation OpenID userinfo (Synapse: REQUIRE_AUTH = False; its token is the query's).
    const unauthenticated = (method === 'GET' && segs.slice(0, 4).join('/') === '_matrix/media/v3/download') || federation;
    if (!unauthenticated) {
      const header = req.headers.authorization;
      const bearer = header !== undefined ? /^Bearer\s+(.+)$/i.exec(header)?.[1] : undefined;
      const token = bearer ?? query.access_token;
      if (token === undefined) return respond(res, call, 401, { errcode: 'M_MISSING_TOKEN', error: 'Missing access token.' });
      const client = clientTokens.get(token);
      if (token !== asToken && client === undefined) {
        return respond(res, call, 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Invalid access token passed.', soft_logout: false });
      }
      // A local user's own token: the request is theirs (a `?user_id=` is the AS's alone).
      if (client !== undefined) {
        userId = call.userId = client;
        asClient = true;
      }
    }

    // Injected failures.
    const idx = rules.findIndex((r) => ruleMatches(r, call));
    if (idx !== -1) {
      const rule = rules[idx]!;
      rule.times -= 1;
      if (rule.times <= 0) rules.splice(idx, 1);
      call.failedBy = rule.kind;
      switch (rule.kind) {
        case 'status':
          return respond(res, call, rule.status, rule.body ?? { errcode: 'M_UNKNOWN', error: `Injected failure (${rule.status})` });
        case 'ratelimit':
          return respond(
            res,
            call,
            429,
            { errcode: 'M_LIMIT_EXCEEDED', error: 'Too Many Requests', retry_after_ms: rule.retryAfterMs },
            { 'Retry-After': String(Math.ceil(rule.retryAfterMs / 1000)) },
          );
        case 'hang':
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          return;
        case 'delay':
          await sleep(rule.ms);
          break;
      }
    }

    if (badJson) return respond(res, call, 400, { errcode: 'M_NOT_JSON', error: 'Content not JSON.' });

    // Synapse: an unknown alias in the AS's namespace is asked about before it is answered.
    const aliasAsked = method === 'GET' && segs.length === 6 && segs.slice(0, 5).join('/') === `${CS}/directory/room` ? segs[5] : method === 'POST' && segs.length === 5 && segs.slice(0, 4).join('/') === `${CS}/join` && segs[4]?.startsWith('#') ? segs[4] : undefined;
    if (aliasAsked && !aliases.has(aliasAsked) && fake.askAsAboutAlias && aliasAsked.startsWith(`#${userPrefix}`) && aliasAsked.endsWith(`:${serverName}`)) {
      await fake.askAsAboutAlias(aliasAsked).catch(() => undefined);
    }

    const pinged = method === 'POST' && segs.length === 6 && segs.slice(0, 4).join('/') === '_matrix/client/v1/appservice' && segs[5] === 'ping' ? segs[4] : undefined;
    if (pinged !== undefined) {
      const answer = await pingAppservice(pinged, body);
      respond(res, call, answer.status, answer.body);
      return selfCheck(call, rawPath);
    }

    if (method === 'GET' && segs.slice(0, 4).join('/') === `${CS}/thirdparty`) {
      const answer = await thirdPartyLookup(segs.slice(4), rawQuery);
      if (answer) {
        respond(res, call, answer.status, answer.body);
        if (!answer.unchecked) selfCheck(call, rawPath);
        return;
      }
    }

    const answer = ((): Answer => {
      let pathKnown = false;
      for (const route of routes) {
        if (route.enabled && !route.enabled()) continue;
        const params = matchPattern(route.pattern, segs);
        if (!params) continue;
        pathKnown = true;
        if (route.method !== method) continue;
        // Identity assertion (Synapse: Auth._get_appservice_user).
        if (!route.skipAssertion && query.user_id !== undefined && !asClient) {
          if (!interested(userId)) return err(403, 'M_FORBIDDEN', `Application service cannot masquerade as this user (${userId}).`);
          if (!users.has(userId)) return err(403, 'M_FORBIDDEN', `Application service has not registered this user (${userId})`);
        }
        return route.handler({ method, path, query, body, userId, params, headers: req.headers, asClient });
      }
      return pathKnown ? err(405, 'M_UNRECOGNIZED', 'Unrecognized request') : err(404, 'M_UNRECOGNIZED', 'Unrecognized request');
    })();
    respond(res, call, answer.status, answer.body, answer.headers);
    selfCheck(call, rawPath, 'specBody' in answer ? answer.specBody : call.response);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      console.error('fake HS error', e);
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errcode: 'M_UNKNOWN', error: 'Internal server error' }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const dropHanging = (): void => {
    for (const res of hanging) res.socket?.destroy();
    hanging.clear();
  };

  // ------------------------------------------------------------ test-side membership changes

  const roomOf = (roomId: string): FakeRoom => {
    const room = rooms.get(roomId);
    if (!room) throw new Error(`fake HS: no room ${roomId}`);
    return room;
  };

  /** Out of the room and its invites; throws when the user is in neither (a test's mistake). */
  const removeMember = (room: FakeRoom, userId: string): void => {
    if (!room.members.has(userId) && !room.invited.has(userId)) {
      throw new Error(`fake HS: ${userId} is neither joined to nor invited to ${room.roomId}`);
    }
    room.members.delete(userId);
    room.invited.delete(userId);
  };

  const kick = (roomId: string, userId: string, by?: string, reason?: string): FakeEvent => {
    const room = roomOf(roomId);
    removeMember(room, userId);
    return memberEvent(room, userId, 'leave', by ?? room.creator, reason);
  };

  // Anyone may be banned, in the room or not (pre-emptive bans are common).
  const ban = (roomId: string, userId: string, by?: string, reason?: string): FakeEvent => {
    const room = roomOf(roomId);
    room.members.delete(userId);
    room.invited.delete(userId);
    room.banned.add(userId);
    return memberEvent(room, userId, 'ban', by ?? room.creator, reason);
  };

  const unban = (roomId: string, userId: string, by?: string): FakeEvent => {
    const room = roomOf(roomId);
    if (!room.banned.delete(userId)) throw new Error(`fake HS: ${userId} is not banned from ${roomId}`);
    return memberEvent(room, userId, 'leave', by ?? room.creator);
  };

  const leave = (roomId: string, userId: string): FakeEvent => {
    const room = roomOf(roomId);
    removeMember(room, userId);
    return memberEvent(room, userId, 'leave', userId);
  };

  // ------------------------------------------------------------ the HS -> AS push

  const nextTxnId = (): string => String(++lastTxnId);

  /** One attempt; the body is parsed anew each time, so a sender that changes it cannot. */
  const attempt = async (send: PushSend, txnId: string, json: string): Promise<number> => {
    try {
      return await send(txnId, JSON.parse(json) as { events: object[] });
    } catch {
      return 0;
    }
  };

  // Synapse's ApplicationServiceApi counts any 2xx as delivered (put_json raises on the rest).
  const delivered = (status: number): boolean => status >= 200 && status < 300;

  const pushOne = async (events: object[], send: PushSend, o: PushOptions): Promise<PushResult> => {
    const txnId = nextTxnId();
    const json = JSON.stringify({ events });
    const maxAttempts = o.maxAttempts ?? 8;
    const backoff = o.backoffMs ?? 10;
    const cap = o.maxBackoffMs ?? backoff * 256;
    const statuses: number[] = [];
    for (let wait = backoff; ; wait = Math.min(wait * 2, cap)) {
      const status = await attempt(send, txnId, json);
      statuses.push(status);
      if (delivered(status) || statuses.length >= maxAttempts) break;
      await sleep(wait);
    }
    return { txnId, attempts: statuses.length, statuses, delivered: delivered(statuses.at(-1)!) };
  };

  // Chained, because Synapse has one transaction in flight per AS: the rest wait behind it.
  const push = (events: object[], send: PushSend, o: PushOptions = {}): Promise<PushResult> => {
    const result = pushing.then(() => pushOne(events, send, o));
    pushing = result.catch(() => undefined);
    return result;
  };

  const clientEvent = (roomId: string, ev: FakeEvent): ClientEvent => {
    const out: ClientEvent = {
      event_id: ev.eventId,
      room_id: roomId,
      sender: ev.sender,
      type: ev.type,
      origin_server_ts: ev.originServerTs,
      content: structuredClone(ev.content),
      unsigned: { age: 0 },
    };
    if (ev.stateKey !== undefined) out.state_key = ev.stateKey;
    if (ev.redacts !== undefined) {
      out.redacts = ev.redacts;
      out.content.redacts = ev.redacts;
    }
    if (ev.redactedBy !== undefined) {
      const because = rooms.get(roomId)?.events.find((e) => e.eventId === ev.redactedBy);
      if (because) out.unsigned.redacted_because = clientEvent(roomId, because);
    }
    if (ev.replacesState !== undefined) {
      // Synapse reads the replaced event when it pushes: its content as it is now (pruned if redacted).
      const room = rooms.get(roomId);
      const prev = room?.events.find((e) => e.eventId === ev.replacesState) ?? room?.initialState.find((e) => e.eventId === ev.replacesState);
      out.unsigned.replaces_state = ev.replacesState;
      const prevContent: unknown = prev ? prev.content : ev.prevContent;
      if (prevContent !== undefined) out.unsigned.prev_content = structuredClone(prevContent) as Record<string, unknown>;
      if (prev) out.unsigned.prev_sender = prev.sender;
    }
    return out;
  };

  /** Throws the homeserver's refusal (an Answer), for the test-side helpers. */
  const refusal = (what: string, answer: Answer): never => {
    const b = answer.body as { errcode?: string; error?: string };
    throw new Error(`fake HS: ${what}: ${answer.status} ${b.errcode}: ${b.error}`);
  };

  /** An event made, or the homeserver's refusal thrown. */
  const orThrow = (what: string, made: FakeEvent | Answer): FakeEvent => ('eventId' in made ? made : refusal(what, made));

  const userSend = (userId: string, roomId: string, type: string, content: Record<string, unknown>): FakeEvent => {
    const room = rooms.get(roomId);
    const where = `${userId} sending ${type} to ${roomId}`;
    if (!room || !room.members.has(userId)) return orThrow(where, err(403, 'M_FORBIDDEN', `User ${userId} not in room ${roomId}`));
    if (spec()) for (const e of checkEventContent(type, content)) specErrors.push(`userSend ${type}: ${e}`);
    checkRelations(`userSend ${type}`, room, userId, type, content);
    const refused = relationRefused(room, userId, type, content) ?? messageRefused(room, userId, type);
    if (refused) return orThrow(where, refused);
    const ev: FakeEvent = { eventId: newEventId(), type, sender: userId, content, originServerTs: Date.now() };
    room.events.push(ev);
    return ev;
  };

  const userRedact = (userId: string, roomId: string, eventId: string, reason?: string): FakeEvent => {
    const room = rooms.get(roomId);
    const where = `${userId} redacting ${eventId} in ${roomId}`;
    if (!room || !room.members.has(userId)) return orThrow(where, err(403, 'M_FORBIDDEN', `User ${userId} not in room ${roomId}`));
    return orThrow(where, redactIn(room, userId, eventId, reason === undefined ? {} : { reason }, Date.now()));
  };

  const userCreateRoom = (userId: string, o: UserCreateRoomOptions = {}): { room: FakeRoom; events: FakeEvent[] } => {
    const body: Record<string, unknown> = { preset: o.preset ?? (o.isDirect ? 'trusted_private_chat' : 'private_chat') };
    if (o.isDirect !== undefined) body.is_direct = o.isDirect;
    if (o.invite !== undefined) body.invite = o.invite;
    if (o.name !== undefined) body.name = o.name;
    if (o.powerLevelContentOverride !== undefined) body.power_level_content_override = o.powerLevelContentOverride;
    if (spec()) for (const e of checkCsRequest('POST', `/${CS}/createRoom`, body)) specErrors.push(`userCreateRoom: ${e}`);
    const made = createRoomFor(userId, body, true);
    return 'room' in made ? made : refusal(`${userId} creating a room`, made);
  };

  const userJoinRoom = (userId: string, roomId: string): FakeEvent => {
    const where = `${userId} joining ${roomId}`;
    const room = rooms.get(roomId);
    if (!room) return refusal(where, err(404, 'M_NOT_FOUND', 'No known servers'));
    if (room.members.has(userId)) {
      const current = currentStateEvent(room, 'm.room.member', userId);
      // Joined already: Synapse answers with the join it has; the fake may not have recorded one.
      if (current?.content.membership === 'join') return current;
      return memberEvent(room, userId, 'join', userId);
    }
    const made = joinIn(room, userId, true);
    if (made === null) return refusal(where, err(500, 'M_UNKNOWN', 'no join event made'));
    return orThrow(where, made);
  };

  const userInvite = (inviterId: string, roomId: string, inviteeId: string, o: UserInviteOptions = {}): FakeEvent => {
    const where = `${inviterId} inviting ${inviteeId} to ${roomId}`;
    const room = rooms.get(roomId);
    if (!room) return refusal(where, err(403, 'M_FORBIDDEN', `User ${inviterId} not in room ${roomId}`));
    if (!USER_ID.test(inviteeId)) return refusal(where, err(400, 'M_INVALID_PARAM', `Invalid user_id: ${inviteeId}`));
    const wasInvited = room.invited.has(inviteeId);
    const made = inviteIn(room, inviterId, inviteeId, true, o.isDirect ? { is_direct: true } : {}, o.reason);
    if (made !== null) return orThrow(where, made);
    // Invited already: the invite event the room has (Synapse answers with it); one is made for a seeded invite.
    const current = currentStateEvent(room, 'm.room.member', inviteeId);
    if (wasInvited && current?.content.membership === 'invite') return current;
    return memberEvent(room, inviteeId, 'invite', inviterId, o.reason, o.isDirect ? { is_direct: true } : {});
  };

  const roomPowerChange = (roomId: string, change: (pl: PowerLevelsContent) => void, by?: string): FakeEvent => {
    const room = roomOf(roomId);
    const content = effectivePowerLevels(room);
    change(content);
    const ev = appendState(room, { eventId: newEventId(), type: 'm.room.power_levels', sender: by ?? room.creator, content, originServerTs: Date.now(), stateKey: '' });
    syncModerators(room);
    return ev;
  };

  const userSetProfile = (userId: string, profile: { displayName?: string; avatarUrl?: string }): Array<{ roomId: string; event: FakeEvent }> => {
    let user = users.get(userId);
    if (!user) users.set(userId, (user = {}));
    if (profile.displayName !== undefined) user.displayName = profile.displayName;
    if (profile.avatarUrl !== undefined) user.avatarUrl = profile.avatarUrl;
    return profileChanged(userId);
  };

  const fake: FakeHs = {
    url: `http://127.0.0.1:${port}`,
    serverName,
    botUserId,
    options: opts,
    calls,
    users,
    rooms,
    aliases,
    appserviceDirectory,
    specErrors,
    media,
    addMedia(bytes, contentType, filename, uploader) {
      const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
      return storeMedia(buf, contentType, filename, uploader ?? `@alice:${serverName}`);
    },
    userSend,
    userRedact,
    userCreateRoom,
    userJoinRoom,
    userInvite,
    userSetProfile,
    currentState(roomId, type, stateKey = '') {
      const room = roomOf(roomId);
      if (type === 'm.room.power_levels' && stateKey === '') return effectivePowerLevels(room);
      return currentStateEvent(room, type, stateKey)?.content;
    },
    powerLevels(roomId) {
      return effectivePowerLevels(roomOf(roomId));
    },
    powerLevel(roomId, userId) {
      return powerOf(roomOf(roomId), userId);
    },
    setPowerLevel(roomId, userId, level, by) {
      return roomPowerChange(
        roomId,
        (pl) => {
          if (!isPlainObject(pl.users)) pl.users = {};
          pl.users[userId] = level;
        },
        by,
      );
    },
    setPowerLevels(roomId, changes, by) {
      return roomPowerChange(roomId, (pl) => Object.assign(pl, structuredClone(changes)), by);
    },
    openIdToken: issueOpenIdToken,
    expireOpenIdTokens(): void {
      for (const t of openIdTokens.values()) t.validUntilMs = 0;
    },
    accountData(userId, type) {
      return accountDataStore.get(userId)?.get(type);
    },
    fail(rule: FailRule): void {
      rules.push({ ...rule, times: rule.times ?? 1 });
    },
    seedRoom: (o) => makeRoom(o),
    clearFailures(): void {
      rules = [];
    },
    clientToken(userId: string): string {
      for (const [token, user] of clientTokens) if (user === userId) return token;
      const token = `syt_${randomId()}`;
      clientTokens.set(token, userId);
      return token;
    },
    reset(): void {
      clientTokens.clear();
      openIdTokens.clear();
      aliasCreators.clear();
      calls.length = 0;
      specErrors.length = 0;
      users.clear();
      initUsers();
      rooms.clear();
      aliases.clear();
      appserviceDirectory.clear();
      accountDataStore.clear();
      media.clear();
      txns.clear();
      rules = [];
      dropHanging();
    },
    kick,
    ban,
    unban,
    leave,
    async userJoin(userId, alias) {
      if (!aliases.has(alias) && fake.askAsAboutAlias && alias.startsWith(`#${userPrefix}`) && alias.endsWith(`:${serverName}`)) {
        await fake.askAsAboutAlias(alias).catch(() => undefined);
      }
      const roomId = aliases.get(alias);
      const room = roomId === undefined ? undefined : rooms.get(roomId);
      if (!room) return { status: 404, error: `Room alias ${alias} not found` };
      const answer = joinRoom(room, userId);
      return answer.status === 200 ? { status: 200, roomId: room.roomId } : { status: answer.status, error: String((answer.body as any)?.error) };
    },
    restart(): void {
      txns.clear();
      dropHanging();
      if (opts.txnIdsRestartAtOne ?? true) lastTxnId = 0;
    },
    forgetEverything(): void {
      clientTokens.clear();
      openIdTokens.clear();
      aliasCreators.clear();
      users.clear();
      initUsers();
      rooms.clear();
      aliases.clear();
      appserviceDirectory.clear();
      accountDataStore.clear();
      media.clear();
      txns.clear();
      lastTxnId = 0; // completed transactions lived in the database too
      dropHanging();
    },
    nextTxnId,
    push,
    clientEvent,
    async close(): Promise<void> {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      dropHanging();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return fake;
}
