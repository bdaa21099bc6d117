/**
 * Fuzz (issue 5, item 8): property-based tests with fast-check over every handler
 * (user-query, room-query, push, ping, thirdparty, provision, unrecognized, network-inbound with its four
 * kinds, network-media-upload, network-media-download), invoked as API Gateway invokes them, against
 * DynamoDB Local, the fake HS and the fake webhook network.
 *
 * Inputs: random paths (encoded, raw, invalid percent-encoding, over-long IDs), methods,
 * extra headers, Authorization variants (right/wrong/missing/both, Basic, lower-case scheme,
 * no token, padding), ?access_token= and other query strings, X-Signature right (over the raw
 * bytes)/wrong/stale/future/over the bytes decoded as UTF-8/a wrong and a right v1, and bodies: random JSON, shaped-but-wrong transactions and inbound messages, text, bytes
 * that are not UTF-8, base64 bodies (valid and garbage), bodies over and near the 6 MB limit,
 * JSON nested 50,000 deep, and prototype-pollution JSON (`__proto__`, `constructor.prototype`).
 * Network requests (issue 23): edits, deletions and reactions of seeded, unknown and
 * other-room targets, unknown kinds; media uploads of binary and text bodies with random and
 * valid `sender`/`filename`, the signature over the raw bytes; media links with random
 * `expires`/`sig` and paths, and real links (signLink) to seeded, unknown, over-limit media,
 * expired or tampered with. Third-party lookups (issue 24): protocols, searches and reverse
 * lookups with random and meaningful fields; a 200 is checked against the spec's protocols.yaml.
 * The provisioning API: the secret for a user, an invalid user ID or none, users' OpenID tokens
 * from the fake HS (alone, with their own user ID or another's), expired, foreign and wrong tokens,
 * other schemes; room IDs of the fuzz's rooms and odd ones, /links, unknown subpaths, every method;
 * link bodies with random `remote_room`s, page tokens for GET /links. Half of its cases are
 * requests it serves, on rooms Alice made, so links are made, refused, taken (409) and undone.
 *
 * For every input:
 * - the answer is well-formed: a status from the handler's allowed set, a JSON object body
 *   (content-type application/json), and on errors a string `errcode` (M_…) and `error`
 *   (for the network's endpoints, the contract's errcode for the status; for the provisioning
 *   API, README's); or, from the media
 *   link, the medium's bytes (base64-encoded), only for a real link, the bytes the HS has;
 * - an upload answered 200 is in the HS's media repository, with the bytes sent;
 * - what the network's requests make the AS send the HS is what the spec allows (the fake HS's
 *   specErrors);
 * - never an unclassified exception: no 500, no "unexpected error" log line;
 * - push never answers 503 here (the HS and the network are healthy, txnIds unique): a 503
 *   for a given body would make the HS resend the same bytes forever (a poison transaction);
 * - the provisioning API answers 200 only to valid credentials, for their user, for what that
 *   user may do (link: power level 50; list every link: admin), never 401 to valid credentials;
 * - no secret in the logs: not the hs_token, the as_token, the network secret or the provisioning
 *   secret, no OpenID token, nor any token a caller presented, nor a real media link's `sig`;
 * - `({}).polluted` stays undefined.
 *
 * FUZZ_SEED=<n> replays a run; FUZZ_RUNS scales the number of runs (default 1).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startAs, enc, AS_TOKEN, HS_TOKEN } from './support/as.js';
import type { HttpFunctionName } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import { apiGatewayEvent, lambdaContext } from './support/lambda.js';
import { MAX_BODY_BYTES } from '../lib/appservice/http.js';
import { escapeLocalpart } from '../lib/matrix/mapping.js';
import { MESSAGES } from '../lib/defaults.js';
import { checkAsResponse } from './support/spec.js';
import { sign, signLink } from '../lib/signature.js';

const network = await startFakeNetwork();
after(() => network.close());
/** The operator's bearer token for the provisioning API (it acts for the `?user_id=` it names). */
const PROVISIONING_SECRET = 'provisioning-secret-for-fuzz-7d41c0a9';
const as = await startAs({
  NETWORK: 'webhook',
  NETWORK_URL: network.url,
  NETWORK_SECRET: network.secret,
  NETWORK_TIMEOUT_MS: '1000',
  PROVISIONING_SECRET,
  // The default ({"*":"relay","example.org":"link"}) and one admin, who may list and unlink every link.
  PERMISSIONS: JSON.stringify({ '*': 'relay', 'example.org': 'link', '@admin:example.org': 'admin' }),
});
network.rooms.set('fuzz', { name: '#fuzz' });
network.rooms.set('lobby', { name: '#lobby' });
network.users.set('bob', { displayName: 'Bob' });
network.users.set('Carol', { displayName: 'Carol', avatarUrl: 'mxc://example.org/carol' });
assert.equal((await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc('#irc_fuzz:example.org')}` })).status, 200);
const ROOM = as.hs.aliases.get('#irc_fuzz:example.org') as string;

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

type Handler = (event: unknown, context: unknown) => Promise<{ statusCode?: number; headers?: Record<string, unknown>; body?: string }>;
const FUNCTIONS: HttpFunctionName[] = ['user-query', 'room-query', 'push', 'ping', 'thirdparty', 'provision', 'unrecognized', 'network-inbound', 'network-media-upload', 'network-media-download'];
const handlers = new Map<HttpFunctionName, Handler>();
for (const fn of FUNCTIONS) handlers.set(fn, (await import(`../functions/${fn}.ts`)).handler as Handler);

/** What each function may answer when the HS and the network are healthy. */
const ALLOWED: Record<HttpFunctionName, number[]> = {
  'user-query': [200, 400, 401, 403, 404],
  'room-query': [200, 400, 401, 403, 404],
  push: [200, 400, 401, 403, 413],
  ping: [200, 401, 403],
  // 404: another protocol, nothing found, a name outside the namespace. The network is healthy: no 503.
  thirdparty: [200, 400, 401, 403, 404],
  // 400: a room ID, user_id, body or page token it cannot take; 401: no token, or one neither the secret nor an
  // OpenID token the homeserver knows; 403: permission, power level, the bot kept out, a token for another user;
  // 404: unlinking a room not bridged, a path that is no route; 405: a method its path does not take; 409: bridged
  // already; 413: the body. The HS (OpenID, joins, power levels) and the network (approvals) are healthy: no 503.
  provision: [200, 400, 401, 403, 404, 405, 409, 413],
  unrecognized: [404, 405],
  // 404: an unknown kind (M_UNRECOGNIZED), or an edit/deletion/reaction of an unknown target (M_NOT_FOUND);
  // 403 also for an edit of someone else's message; 409: a reaction made already under another id.
  'network-inbound': [200, 202, 400, 401, 403, 404, 409, 413],
  // A fuzzed upload that passes the signature is a real upload: 200 is fine. 413: over 4 MiB.
  'network-media-upload': [200, 400, 401, 403, 413],
  // No X-Signature (a pre-signed link): no 401. 200 and 404 only for the real links made below
  // (signLink); 413 for the seeded medium over 4 MiB. 502 is for a failing HS: not here.
  'network-media-download': [200, 400, 403, 404, 413],
};
const SUCCESS_BODY: Partial<Record<HttpFunctionName, (status: number, body: any) => boolean>> = {
  // An event (messages and changes to them), a room (members, room details), a user (profile), or {} (details of a room nobody joined yet).
  'network-inbound': (s, b) =>
    s === 200
      ? (typeof b.event_id === 'string' && b.event_id.startsWith('$')) ||
        (typeof b.room_id === 'string' && b.room_id.startsWith('!')) ||
        (typeof b.user_id === 'string' && b.user_id.startsWith('@')) ||
        Object.keys(b).length === 0
      : b.kept === true,
  'network-media-upload': (s, b) => s === 200 && typeof b.contentUri === 'string' && /^mxc:\/\/[^/]+\/[^/]+$/.test(b.contentUri),
  // The protocol, or at least one location or user (the spec's answers are checked in check()).
  thirdparty: (s, b) => s === 200 && (Array.isArray(b) ? b.length > 0 : Array.isArray(b?.instances)),
};
/** The network contract's errcodes by status (docs/network-api.yaml, network -> AS): what the network's endpoints may answer. */
const NETWORK_ERRCODES: Record<number, string[]> = {
  400: ['M_BAD_JSON', 'M_NOT_JSON', 'M_INVALID_PARAM'],
  401: ['M_UNAUTHORIZED'],
  403: ['M_FORBIDDEN'],
  404: ['M_NOT_FOUND', 'M_UNRECOGNIZED'],
  // POST /network/reactions only
  409: ['M_DUPLICATE_ANNOTATION'],
  413: ['M_TOO_LARGE'],
};
const NETWORK_FUNCTIONS = new Set<HttpFunctionName>(['network-inbound', 'network-media-upload', 'network-media-download']);

/** Sends one request to a handler as API Gateway would, signed as the network signs (setup only). */
async function networkPost(fn: HttpFunctionName, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const raw = JSON.stringify(body);
  const event = apiGatewayEvent({ method: 'POST', path, headers: { 'x-signature': sign(network.secret, raw) }, rawBody: raw });
  const res = await (handlers.get(fn) as Handler)(event, lambdaContext(15_000));
  return { status: res.statusCode as number, body: JSON.parse(res.body ?? '{}') };
}

/** Messages of the network in room 'fuzz', bridged before the fuzzing: what edits, deletions and reactions may target. */
const TARGETS = ['target-0', 'target-1', 'target-2', 'target-3'];
/** Who wrote each target: only they may edit it (Matrix edits are the original sender's). */
const AUTHOR: Record<string, string> = {};
for (const [i, id] of TARGETS.entries()) {
  AUTHOR[id] = i % 2 ? 'Carol' : 'bob';
  const res = await networkPost('network-inbound', '/network/messages', { id, room: 'fuzz', sender: { id: AUTHOR[id] }, body: `target ${i}`, ts: 1_700_000_000_000 + i });
  assert.equal(res.status, 200, `seeding ${id}: ${JSON.stringify(res.body)}`);
}
/** Ids the fuzzed reactions take (besides random ones), so that deletions can take some back. */
const REACTIONS = ['reaction-0', 'reaction-1', 'reaction-2'];

/** Media in the fake HS's repository, for the real links below. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}
const SEEDED_MEDIA = [
  { bytes: pattern(3000, 1), type: 'image/png', filename: 'cat.png' },
  { bytes: Buffer.from('h\u00e9llo \u2713\n', 'utf8'), type: 'text/plain', filename: 'hello.txt' },
  { bytes: Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]), type: 'application/octet-stream', filename: 'caf\u00e9 "x".bin' },
  { bytes: Buffer.from('{"not":"json for the AS"}'), type: 'application/json', filename: undefined },
  { bytes: Buffer.alloc(0), type: 'application/octet-stream', filename: 'empty' },
].map((m) => ({ ...m, mediaId: (as.hs.addMedia(m.bytes, m.type, m.filename).split('/').pop() as string) }));
/** At the limit (served) and one byte over it (413, with its size). */
const AT_LIMIT = { bytes: pattern(MESSAGES.MEDIA_MAX_BYTES, 2), type: 'video/mp4', filename: 'at-limit.mp4' };
const OVER_LIMIT = { bytes: pattern(MESSAGES.MEDIA_MAX_BYTES + 1, 3), type: 'video/mp4', filename: 'over-limit.mp4' };
const AT_LIMIT_ID = as.hs.addMedia(AT_LIMIT.bytes, AT_LIMIT.type, AT_LIMIT.filename).split('/').pop() as string;
const OVER_LIMIT_ID = as.hs.addMedia(OVER_LIMIT.bytes, OVER_LIMIT.type, OVER_LIMIT.filename).split('/').pop() as string;

/**
 * The provisioning API's callers and rooms. Alice (a local user: `link`) makes the rooms (power
 * level 100), Dave is a moderator in them (50), Erin is at 0; Admin (`admin`, 0 in the rooms) may
 * list every link and unlink any room; Carol is on another server (`relay`).
 */
const BOT = '@ircbot:example.org';
const ALICE = '@alice:example.org';
const DAVE = '@dave:example.org';
const ERIN = '@erin:example.org';
const ADMIN = '@admin:example.org';
const CAROL = '@carol:other.org';
let provInviteSeq = 0;
/** A room Alice makes (private unless `public`), the bot invited (the invite pushed to the AS, which joins) or not, `moderators` at 50 and Erin at 0 in it. */
async function provisioningRoom(opts: { public?: boolean; inviteBot?: boolean; moderators?: string[] } = {}): Promise<string> {
  const { room } = as.hs.userCreateRoom(ALICE, { preset: opts.public ? 'public_chat' : 'private_chat' });
  for (const u of opts.moderators ?? []) as.hs.setPowerLevel(room.roomId, u, 50);
  // The moderators and Erin (at 0) are in the room: a room's status and links are for its members.
  for (const u of [...(opts.moderators ?? []), ERIN]) room.members.add(u);
  if (opts.inviteBot ?? true) {
    const invite = as.hs.userInvite(ALICE, room.roomId, BOT);
    assert.equal(await as.pushSend(`prov-invite-${++provInviteSeq}`, { events: [as.hs.clientEvent(room.roomId, invite)] }), 200);
    assert.ok(room.members.has(BOT), `the bot joined ${room.roomId}, invited`);
  }
  return room.roomId;
}
/**
 * The fuzz's rooms: two the bot was invited into (linked and unlinked at random), a public one it
 * joins at the first link, one it cannot join (403 BOT_NOT_IN_ROOM). ROOM (the network room
 * 'fuzz', which the other fuzzes post to) is kept out of the provisioning fuzz: an admin may unlink it.
 */
const PROV_ROOMS = [
  await provisioningRoom({ moderators: [DAVE] }),
  await provisioningRoom({ moderators: [DAVE] }),
  await provisioningRoom({ public: true, inviteBot: false, moderators: [DAVE] }),
  await provisioningRoom({ inviteBot: false, moderators: [DAVE] }),
];
/** Who may get a 200 for what (in the rooms above and those of the well-formed cases below). */
const MAY_LINK = new Set([ALICE, DAVE]);
const MAY_UNLINK = new Set([ALICE, DAVE, ADMIN]);
const MAY_LIST = new Set([ADMIN]);
/**
 * OpenID tokens, as a user's client gets them from the homeserver: expired ones, valid ones of
 * local users, and one the (fake) homeserver gives for a user of another server, which the AS must
 * not believe (a homeserver vouches for its own users only).
 */
const EXPIRED_OPENID = [as.hs.openIdToken(ALICE), as.hs.openIdToken(ADMIN)];
as.hs.expireOpenIdTokens();
const OPENID: Record<string, string> = Object.fromEntries([ALICE, DAVE, ERIN, ADMIN].map((u) => [u, as.hs.openIdToken(u)]));
const FOREIGN_OPENID = as.hs.openIdToken(CAROL);
const OPENID_TOKENS = [...EXPIRED_OPENID, ...Object.values(OPENID), FOREIGN_OPENID];

// ---------------------------------------------------------------------------------------- inputs

/** Secrets that must never be logged, whatever the request (the OpenID tokens are the users' credentials). */
const SECRETS = [HS_TOKEN, AS_TOKEN, network.secret, PROVISIONING_SECRET, ...OPENID_TOKENS];

const wrongToken = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 24 }).map((s) => `WRONG-${s.replace(/\s/g, '_')}`);
const token = fc.oneof(
  { weight: 4, arbitrary: fc.constant(HS_TOKEN) },
  { weight: 3, arbitrary: wrongToken },
  { weight: 1, arbitrary: fc.constantFrom(AS_TOKEN, network.secret, PROVISIONING_SECRET, `${HS_TOKEN}x`, HS_TOKEN.toUpperCase(), HS_TOKEN.slice(0, -1)) },
);
const authorization = fc.oneof(
  { weight: 4, arbitrary: token.map((t) => `Bearer ${t}`) },
  { weight: 1, arbitrary: token.map((t) => `bearer ${t}`) },
  { weight: 1, arbitrary: token.map((t) => `Bearer   ${t}   `) },
  { weight: 1, arbitrary: token.map((t) => `Bearer ${t} ${t}`) },
  { weight: 1, arbitrary: token.map((t) => `Basic ${Buffer.from(`as:${t}`).toString('base64')}`) },
  { weight: 1, arbitrary: token },
  { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', '', ' ', 'Bearer \u0000', 'Token x') },
);
const auth = fc.oneof(
  // What homeservers send: the current header, or the legacy query parameter.
  { weight: 3, arbitrary: fc.constant({ header: `Bearer ${HS_TOKEN}` }) },
  { weight: 1, arbitrary: fc.constant({ query: HS_TOKEN }) },
  {
    weight: 3,
    arbitrary: fc.record({
      header: fc.option(authorization, { nil: undefined, freq: 3 }),
      query: fc.option(token, { nil: undefined, freq: 2 }),
    }),
  },
);

const text = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const interestingIds = fc.constantFrom(
  '@irc_bob:example.org',
  '@irc__carol:example.org',
  '@irc_nobody:example.org',
  '@irc_=zz:example.org',
  '@IRC_BOB:example.org',
  '@irc_bob:other.org',
  '@ircbot:example.org',
  '@irc_:example.org',
  '@:example.org',
  `@irc_${'x'.repeat(300)}:example.org`,
  '#irc_fuzz:example.org',
  '#irc_lobby:example.org',
  '#irc_nowhere:example.org',
  '#irc_=e2=98=83:example.org',
  '#irc_\u0000:example.org',
  `#irc_${'=ff'.repeat(90)}:example.org`,
  '!room:example.org',
  'txn-1',
  '..',
  '.',
  '',
  '%',
  '%E0%A4%A',
  '%ED%A0%80',
  '%00',
  '%2F..%2F',
  '\u00e9\u{1F600}',
);
/** IDs a function's own route is about: in the namespace, known to the network or not, and mapped names. */
const relevantIds: Partial<Record<HttpFunctionName, fc.Arbitrary<string>>> = {
  'user-query': fc.oneof(
    fc.constantFrom('@irc_bob:example.org', '@irc__carol:example.org', '@irc_nobody:example.org'),
    text.map((s) => `@irc_${escapeLocalpart(s)}:example.org`),
  ),
  'room-query': fc.oneof(
    fc.constantFrom('#irc_fuzz:example.org', '#irc_lobby:example.org', '#irc_nowhere:example.org'),
    text.map((s) => `#irc_${escapeLocalpart(s)}:example.org`),
  ),
  // The protocol: ours, in another case, others.
  thirdparty: fc.constantFrom('irc', 'IRC', 'gitter', 'irc/x', 'irc%2Fx', '__proto__'),
};
/** One path segment: encoded as an HS would, raw, or one of the edge cases above. */
const segment = (fn: HttpFunctionName) =>
  fc.oneof(
    { weight: relevantIds[fn] ? 3 : 0, arbitrary: (relevantIds[fn] ?? fc.constant('')).map(encodeURIComponent) },
    { weight: 3, arbitrary: interestingIds.map((s) => (s.includes('%') ? s : encodeURIComponent(s))) },
    { weight: 2, arbitrary: text.map(encodeURIComponent) },
    { weight: 1, arbitrary: text },
    { weight: 1, arbitrary: interestingIds },
  );
const ROUTES: Record<HttpFunctionName, string[]> = {
  'user-query': ['/_matrix/app/v1/users/', '/users/'],
  'room-query': ['/_matrix/app/v1/rooms/', '/rooms/'],
  push: ['/_matrix/app/v1/transactions/', '/transactions/'],
  ping: ['/_matrix/app/v1/ping'],
  thirdparty: ['v1', 'unstable'].flatMap((v) => ['protocol/', 'location/', 'user/', 'location', 'user'].map((r) => `/_matrix/app/${v}/thirdparty/${r}`)),
  provision: ['/_matrix/provision/v1/rooms/', '/_matrix/provision/v1/links'],
  unrecognized: [],
  'network-inbound': ['/network/messages', '/network/edits', '/network/deletions', '/network/reactions', '/network/members', '/network/profile', '/network/rooms/'],
  'network-media-upload': ['/network/media'],
  'network-media-download': ['/network/media/'],
};
const ANY_PREFIX = Object.values(ROUTES).flat();
// Whatever API Gateway routes no other function to: other paths, and known paths with the wrong method.
ROUTES.unrecognized = ['/_matrix/app/v1/', '/_matrix/app/v2/', '/_matrix/app/unstable/', '/', '', '/_matrix/app/v1/thirdparty/protocol/', ...ANY_PREFIX];
const path = (fn: HttpFunctionName) =>
  fc
    .tuple(
      fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ROUTES[fn]) }, { weight: 1, arbitrary: fc.constantFrom(...ANY_PREFIX) }),
      fc.oneof({ weight: 1, arbitrary: fc.constant('') }, { weight: 4, arbitrary: segment(fn) }),
      fc.option(segment(fn), { nil: undefined, freq: 5 }),
    )
    .map(([prefix, a, b]) => prefix + (prefix.endsWith('/') || a === '' ? a : `/${a}`) + (b === undefined ? '' : `/${b}`));

/** Kinds network-inbound does not serve, some that JavaScript objects have: 404 M_UNRECOGNIZED. */
const UNKNOWN_KINDS = ['/network/message', '/network/Edits', '/network/reaction', '/network/media', '/network/__proto__', '/network/constructor', '/network/hasOwnProperty', '/network/toString', '/network/edits/x', '/network/%65dits', '/network/'];
/** Media servers and IDs: in the spec's grammar (mxc://), ours or not, seeded or not, and not in it. */
const mediaServer = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('example.org', 'other.org', 'localhost:8448', '[::1]:8448', '127.0.0.1') },
  { weight: 1, arbitrary: interestingIds },
  { weight: 1, arbitrary: text },
);
const grammarMediaId = fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/);
const mediaIdSegment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SEEDED_MEDIA.map((m) => m.mediaId), AT_LIMIT_ID, OVER_LIMIT_ID) },
  { weight: 3, arbitrary: grammarMediaId },
  { weight: 1, arbitrary: interestingIds },
  { weight: 1, arbitrary: text },
);
/** The path each function is routed, mostly; anything else (path()) now and then. */
const pathFor = (fn: HttpFunctionName): fc.Arbitrary<string> => {
  if (fn === 'network-inbound') {
    return fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...ROUTES[fn]) },
      { weight: 1, arbitrary: fc.constantFrom(...UNKNOWN_KINDS) },
      { weight: 2, arbitrary: path(fn) },
    );
  }
  // The upload reads no path (API Gateway routes POST /network/media to it).
  if (fn === 'network-media-upload') return fc.oneof({ weight: 4, arbitrary: fc.constant('/network/media') }, { weight: 1, arbitrary: path(fn) });
  if (fn === 'network-media-download') {
    return fc.oneof(
      { weight: 4, arbitrary: fc.tuple(mediaServer, mediaIdSegment).map(([a, b]) => `/network/media/${encodeURIComponent(a)}/${encodeURIComponent(b)}`) },
      { weight: 1, arbitrary: fc.tuple(mediaServer, mediaIdSegment).map(([a, b]) => `/network/media/${a}/${b}`) },
      { weight: 2, arbitrary: path(fn) },
    );
  }
  return path(fn);
};

const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'PUT', 'POST') },
  { weight: 1, arbitrary: fc.constantFrom('DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'get', 'PROPFIND') },
);

const queryString = fc.dictionary(
  fc.oneof(fc.constantFrom('user_id', 'ts', 'kind', 'access_token', 'a', ''), fc.string({ unit: 'grapheme-ascii', maxLength: 8 })),
  text,
  { maxKeys: 3 },
);
const nonEmpty = text.filter((s) => s.length > 0);
/** The upload's query: `sender` (known, new, random, empty, over-long, absent) and `filename`. */
const uploadQuery = fc
  .tuple(
    fc.record(
      {
        sender: fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom('bob', 'Carol', 'dave') },
          // A new user is registered: slow, so not too many.
          { weight: 2, arbitrary: nonEmpty },
          { weight: 1, arbitrary: fc.constantFrom('', ' ', 'x'.repeat(255), 'x'.repeat(256), '\u00e9'.repeat(200), '=ff'.repeat(100), '@irc_bob:example.org', '__proto__') },
        ),
        filename: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom('cat.png', 'notes.txt', 'caf\u00e9 \u{1F600}.jpg', 'a/b\\c.bin', '../../etc/passwd', 'x.'.repeat(100)) },
          { weight: 2, arbitrary: nonEmpty },
          { weight: 1, arbitrary: fc.constantFrom('', 'f'.repeat(255), 'f'.repeat(256)) },
        ),
      },
      { requiredKeys: [] },
    ),
    fc.option(queryString, { nil: undefined, freq: 3 }),
  )
  .map(([q, extra]) => ({ ...(extra ?? {}), ...q }) as Record<string, string>);
/** A link's query without its signature: `expires` and `sig` random, malformed, or of the right form but wrong. */
const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const linkQuery = fc
  .tuple(
    fc.record(
      {
        expires: fc.oneof(
          fc.integer({ min: 0, max: 2 ** 40 }).map(String),
          fc.integer({ min: -3600, max: 7 * 24 * 3600 }).map((d) => String(Math.floor(Date.now() / 1000) + d)),
          fc.constantFrom('', '0', '-1', '1e12', '9'.repeat(13), ' 1', '0x10', 'NaN'),
          text,
        ),
        sig: fc.oneof(hex(64), hex(63), hex(65), hex(64).map((h) => h.toUpperCase()), fc.constantFrom('', 'g'.repeat(64), '0'.repeat(64)), text),
      },
      { requiredKeys: [] },
    ),
    fc.option(queryString, { nil: undefined, freq: 3 }),
  )
  .map(([q, extra]) => ({ ...(extra ?? {}), ...q }) as Record<string, string>);
/** A lookup's query: the protocol's fields and the reverse lookups', with values the fake network knows, our IDs, and random ones. */
const lookupQuery = fc
  .tuple(
    fc.dictionary(
      fc.constantFrom('channel', 'nickname', 'alias', 'userid', 'network', 'limit', '__proto__', 'constructor'),
      fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom('fuzz', '#fuzz', 'lobby', 'bob', 'Carol', '#irc_fuzz:example.org', '@irc_bob:example.org', '@irc__carol:example.org', '@ircbot:example.org') },
        { weight: 2, arbitrary: text },
        { weight: 1, arbitrary: interestingIds },
        { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(255), 'x'.repeat(256), 'a\nb') },
      ),
      { maxKeys: 3 },
    ),
    fc.option(queryString, { nil: undefined, freq: 4 }),
  )
  .map(([q, extra]) => ({ ...(extra ?? {}), ...q }) as Record<string, string>);
const queryFor = (fn: HttpFunctionName): fc.Arbitrary<Record<string, string>> => {
  if (fn === 'thirdparty') return fc.oneof({ weight: 4, arbitrary: lookupQuery }, { weight: 1, arbitrary: queryString });
  if (fn === 'network-media-upload') return fc.oneof({ weight: 4, arbitrary: uploadQuery }, { weight: 1, arbitrary: queryString });
  if (fn === 'network-media-download') return fc.oneof({ weight: 4, arbitrary: linkQuery }, { weight: 1, arbitrary: queryString });
  return queryString;
};

const extraHeaders = fc.dictionary(
  fc.oneof(
    fc.constantFrom('content-type', 'x-signature', 'idempotency-key', 'content-length', 'x-forwarded-for', 'cookie'),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }).map((s) => s.toLowerCase().replace(/[^a-z0-9-]/g, 'x')),
  ),
  text,
  { maxKeys: 3 },
);
/** An upload's media type: usual ones, odd but legal ones, none (the default application/json of the event), random. */
const mediaType = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('image/png', 'image/jpeg', 'text/plain', 'text/plain; charset=utf-8', 'application/octet-stream', 'video/mp4', 'audio/ogg') },
  { weight: 1, arbitrary: fc.constantFrom('', 'IMAGE/PNG', 'application/x-thing+json; a="b c"', 'x', '*/*', 'text/html') },
  { weight: 1, arbitrary: text },
);
const headersFor = (fn: HttpFunctionName): fc.Arbitrary<Record<string, string>> =>
  fn === 'network-media-upload'
    ? fc.tuple(fc.option(mediaType, { nil: undefined, freq: 4 }), extraHeaders).map(([t, h]) => (t === undefined ? h : { ...h, 'content-type': t }))
    : extraHeaders;

// Bodies.
const anyJson = fc.jsonValue({ maxDepth: 3 });
const pollutedObject = (o: unknown): string => {
  const json = JSON.stringify(o);
  const payload = '"__proto__":{"polluted":1,"isAdmin":true},"constructor":{"prototype":{"polluted":1}}';
  return json.startsWith('{') && json !== '{}' ? `{${payload},${json.slice(1)}` : `{${payload}}`;
};
const ts = fc.oneof(fc.integer({ min: 1, max: 2_000_000_000_000 }), fc.double(), anyJson);

const sloppyEvent = fc.record(
  {
    event_id: fc.oneof({ weight: 4, arbitrary: text.map((s) => `$${s}`) }, { weight: 1, arbitrary: anyJson }),
    room_id: fc.oneof({ weight: 4, arbitrary: fc.constant(ROOM) }, { weight: 1, arbitrary: fc.constantFrom('!other:example.org', '!', '') }, { weight: 1, arbitrary: anyJson }),
    sender: fc.oneof(fc.constantFrom('@alice:example.org', '@irc_bob:example.org', '@ircbot:example.org', ''), anyJson),
    type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('m.room.message', 'm.room.member', 'm.reaction') }, { weight: 1, arbitrary: text }),
    origin_server_ts: ts,
    content: fc.oneof(
      { weight: 4, arbitrary: fc.record({ msgtype: fc.oneof(fc.constantFrom('m.text', 'm.notice', 'm.image'), anyJson), body: fc.oneof(text, anyJson) }) },
      { weight: 1, arbitrary: fc.record({ membership: fc.constantFrom('invite', 'join', 'leave'), is_direct: fc.boolean() }) },
      { weight: 1, arbitrary: anyJson },
    ),
    state_key: fc.oneof(fc.constantFrom('@irc_bob:example.org', '@irc_nobody:example.org', '@irc__carol:example.org', ''), anyJson),
  },
  { requiredKeys: [] },
);
/** A message the bridge delivers, with random text and the odd extra field. */
const message = fc.record({
  event_id: text.map((s) => `$${s}`),
  room_id: fc.constant(ROOM),
  sender: fc.constantFrom('@alice:example.org', '@bob:other.org', '@irc_bob:example.org'),
  type: fc.constant('m.room.message'),
  origin_server_ts: fc.integer({ min: 0, max: 2 ** 45 }),
  content: fc.record({ msgtype: fc.constantFrom('m.text', 'm.notice', 'm.emote'), body: text, format: fc.constantFrom('org.matrix.custom.html') }, { requiredKeys: ['msgtype', 'body'] }),
  unsigned: anyJson,
});
/** An invite of a virtual user: registered (or ignored when the network does not know it) and joined. */
const invite = fc.record({
  event_id: text.map((s) => `$${s}`),
  room_id: fc.constantFrom(ROOM, '!nowhere:example.org'),
  sender: fc.constant('@alice:example.org'),
  type: fc.constant('m.room.member'),
  origin_server_ts: fc.integer({ min: 0, max: 2 ** 45 }),
  state_key: fc.constantFrom('@irc_bob:example.org', '@irc_nobody:example.org', '@irc__carol:example.org', '@irc_=zz:example.org'),
  content: fc.record({ membership: fc.constant('invite'), is_direct: fc.boolean() }),
});
const roomEvent = fc.oneof({ weight: 4, arbitrary: message }, { weight: 1, arbitrary: invite }, { weight: 2, arbitrary: sloppyEvent });
const transaction = fc.record(
  {
    events: fc.oneof({ weight: 5, arbitrary: fc.array(roomEvent, { maxLength: 4 }) }, { weight: 1, arbitrary: anyJson }),
    ephemeral: fc.array(anyJson, { maxLength: 2 }),
    'de.sorunome.msc2409.to_device': fc.array(anyJson, { maxLength: 2 }),
    device_lists: anyJson,
  },
  { requiredKeys: ['events'] },
);
const sloppyInbound = fc.record(
  {
    id: fc.oneof(text, anyJson),
    room: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('fuzz', 'lobby', 'nowhere', '') }, { weight: 1, arbitrary: text }, { weight: 1, arbitrary: anyJson }),
    sender: fc.oneof(
      { weight: 4, arbitrary: fc.record({ id: fc.oneof(fc.constantFrom('bob', 'Carol', 'dave'), text, anyJson), displayName: fc.oneof(text, anyJson) }, { requiredKeys: ['id'] }) },
      { weight: 1, arbitrary: anyJson },
    ),
    msgtype: fc.oneof(fc.constantFrom('m.text', 'm.notice', 'm.emote', 'm.image'), anyJson),
    body: fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: anyJson }),
    ts,
  },
  { requiredKeys: [] },
);
/** A well-formed inbound message with random names and text (room 'fuzz' exists, the others do not yet). */
const goodInbound = fc.record(
  {
    id: text.filter((s) => s.length > 0),
    room: fc.oneof(fc.constantFrom('fuzz', 'fuzz', 'lobby'), text.filter((s) => s.length > 0)),
    sender: fc.record({ id: fc.oneof(fc.constantFrom('bob', 'Carol', 'dave'), text.filter((s) => s.length > 0)), displayName: text.filter((s) => s.length > 0) }, { requiredKeys: ['id'] }),
    msgtype: fc.constantFrom('m.text', 'm.notice', 'm.emote'),
    body: text.filter((s) => s.length > 0),
    ts: fc.integer({ min: 1, max: 2 ** 45 }),
  },
  { requiredKeys: ['id', 'room', 'sender', 'body', 'ts'] },
);
const inbound = fc.oneof({ weight: 2, arbitrary: goodInbound }, { weight: 1, arbitrary: sloppyInbound });
/**
 * The envelope of an edit, deletion or reaction: mostly room 'fuzz' (where the targets are),
 * sometimes another room (404: the target is not there) or a random one.
 */
const changeEnvelope = {
  id: fc.oneof({ weight: 3, arbitrary: nonEmpty }, { weight: 1, arbitrary: fc.constantFrom(...TARGETS, ...REACTIONS) }),
  room: fc.oneof({ weight: 8, arbitrary: fc.constant('fuzz') }, { weight: 1, arbitrary: fc.constantFrom('lobby', 'nowhere') }, { weight: 1, arbitrary: nonEmpty }),
  // Mostly the same few users under the same names: a new user or a new name is registered (slow).
  sender: fc.oneof(
    { weight: 3, arbitrary: fc.record({ id: fc.constantFrom('bob', 'Carol', 'dave') }) },
    { weight: 1, arbitrary: fc.record({ id: fc.oneof(fc.constantFrom('bob', 'Carol', 'dave'), nonEmpty), displayName: nonEmpty }, { requiredKeys: ['id'] }) },
  ),
  ts: fc.integer({ min: 1, max: 2 ** 45 }),
};
/** A target: a seeded message, a fuzzed reaction, a random id (unknown: 404), or not an id (400). */
const target = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...TARGETS) },
  { weight: 1, arbitrary: fc.constantFrom(...REACTIONS) },
  { weight: 2, arbitrary: nonEmpty },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('', 'x'.repeat(256)), anyJson) },
);
/** Mentions, now and then one that is not (400). */
const mentions = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ id: fc.oneof(fc.constantFrom('bob', 'Carol', 'dave'), nonEmpty) }) },
    { weight: 2, arbitrary: fc.record({ userId: fc.constantFrom('@alice:example.org', '@irc_bob:example.org', '@nobody:other.org') }) },
    { weight: 1, arbitrary: fc.oneof(fc.record({ userId: fc.constantFrom('alice', '') }), anyJson) },
  ),
  { maxLength: 3 },
);
const goodEdit = fc
  .tuple(
    fc.record(
      {
        ...changeEnvelope,
        target,
        msgtype: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('m.text', 'm.notice', 'm.emote') }, { weight: 1, arbitrary: fc.constantFrom('m.image', 'm.sticker', '') }),
        body: nonEmpty,
        formattedBody: fc.oneof(
          { weight: 3, arbitrary: nonEmpty },
          { weight: 2, arbitrary: fc.constantFrom('<b>bold</b> <script>alert(1)</script>', '<a href="javascript:x">l</a><img src=x onerror=y>') },
          { weight: 1, arbitrary: fc.constant('') },
        ),
        mentions,
      },
      { requiredKeys: ['id', 'room', 'sender', 'target', 'body', 'ts'] },
    ),
    fc.nat(3),
  )
  // Mostly by the target's author: anyone else's edit is refused (403).
  .map(([e, n]) => (n > 0 && typeof e.target === 'string' && AUTHOR[e.target] ? { ...e, sender: { id: AUTHOR[e.target] } } : e));
const goodDeletion = fc.record(
  { ...changeEnvelope, target, reason: fc.oneof({ weight: 5, arbitrary: text }, { weight: 1, arbitrary: fc.constant('r'.repeat(1001)) }) },
  { requiredKeys: ['id', 'room', 'sender', 'target', 'ts'] },
);
const goodReaction = fc.record(
  {
    ...changeEnvelope,
    id: fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...REACTIONS) }, { weight: 3, arbitrary: nonEmpty }),
    target,
    key: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('\u{1F44D}', '\u2764\uFE0F', '+1') }, { weight: 2, arbitrary: nonEmpty }, { weight: 1, arbitrary: fc.constantFrom('', 'k'.repeat(256)) }),
  },
  { requiredKeys: ['id', 'room', 'sender', 'target', 'key', 'ts'] },
);
/** goodInbound, its random rooms mostly made 'nowhere' (kept as well): a new room is looked up on the HS, which is slow. */
const fewerNewRooms = fc.tuple(goodInbound, fc.nat(3)).map(([m, n]) => (n === 0 || m.room === 'fuzz' || m.room === 'lobby' ? m : { ...m, room: 'nowhere' }));
/**
 * Messages to room 'fuzz' (posted) or 'nowhere' (not on Matrix: kept, 202), mostly from the same
 * few users by their ids. What is slow is kept from being common: a new room is looked up on the
 * HS (goodInbound's random rooms, through the other cases), a new user or name registered.
 */
const routedMessage = fc
  .tuple(goodInbound, fc.nat(7), fc.constantFrom('bob', 'Carol', 'dave'), fc.nat(3), fc.nat(9))
  .map(([m, n, known, k, dm]) => {
    const routed = { ...m, room: n >= 5 ? 'nowhere' : 'fuzz', sender: k === 0 ? m.sender : { id: known } };
    // Now and then a private message (a direct chat with Alice, made on the first one).
    if (dm !== 0) return routed;
    const { room: _room, ...privately } = routed;
    return { ...privately, to: '@alice:example.org' };
  });
/** A network user joining or leaving (mostly room 'fuzz', which exists, and the known users). */
const goodMembership = fc.record(
  {
    room: fc.oneof({ weight: 6, arbitrary: fc.constant('fuzz') }, { weight: 1, arbitrary: fc.constant('nowhere') }, { weight: 1, arbitrary: nonEmpty }),
    user: fc.record({ id: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('bob', 'Carol', 'dave') }, { weight: 1, arbitrary: nonEmpty }), displayName: nonEmpty }, { requiredKeys: ['id'] }),
    membership: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('join', 'leave') }, { weight: 1, arbitrary: fc.constantFrom('ban', '', 'JOIN') }),
    reason: text,
    id: nonEmpty,
    ts: fc.integer({ min: 1, max: 2 ** 45 }),
  },
  { requiredKeys: ['room', 'user', 'membership'] },
);
const goodProfile = fc.record({
  user: fc.record(
    {
      id: fc.constantFrom('bob', 'Carol', 'dave'),
      displayName: fc.oneof({ weight: 4, arbitrary: nonEmpty }, { weight: 1, arbitrary: anyJson }),
      avatarUrl: fc.constantFrom('mxc://example.org/avatar', 'https://example.org/a.png', ''),
    },
    { requiredKeys: ['id'] },
  ),
});
const goodRoomDetails = fc.record({ name: fc.oneof({ weight: 3, arbitrary: text }, { weight: 1, arbitrary: anyJson }), topic: fc.oneof({ weight: 3, arbitrary: text }, { weight: 1, arbitrary: anyJson }) }, { requiredKeys: [] });
/** A body for each kind, mostly sent to its own route, now and then to another one. */
const CHANGE_BODIES = {
  messages: routedMessage,
  edits: goodEdit,
  deletions: goodDeletion,
  reactions: goodReaction,
  members: goodMembership,
  profile: goodProfile,
  'rooms/fuzz': goodRoomDetails,
} as const;
type Kind = keyof typeof CHANGE_BODIES;
const kind = fc.constantFrom<Kind>(...(Object.keys(CHANGE_BODIES) as Kind[]));
const routedInbound = fc
  .tuple(kind, kind, fc.nat(9))
  .chain(([kind, other, odd]) => {
    const route = odd === 0 ? other : kind;
    return fc
      .tuple(CHANGE_BODIES[kind] as fc.Arbitrary<unknown>, fc.option(fc.constantFrom('buffer', 'polluted'), { nil: undefined, freq: 6 }))
      .map(([b, form]): { path: string; body: Body } => ({ path: `/network/${route}`, body: form === 'buffer' ? Buffer.from(JSON.stringify(b)) : form === 'polluted' ? pollutedObject(b) : JSON.stringify(b) }));
  });
const deep = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);
const DEEP = [
  deep(50_000, '[', ']', ''),
  deep(50_000, '{"a":', '}'),
  `{"events":[${deep(50_000, '[', ']', '')}]}`,
  `{"events":[{"event_id":${deep(20_000, '[', ']', '')},"room_id":"${ROOM}","sender":"@alice:example.org","type":"m.room.message","origin_server_ts":1,"content":{"msgtype":"m.text","body":"deep"}}]}`,
  `{"events":[{"event_id":"$deep","room_id":"${ROOM}","sender":"@alice:example.org","type":"m.room.message","origin_server_ts":1,"content":{"msgtype":"m.text","body":"x","extra":${deep(20_000, '{"a":', '}')}}}]}`,
  `{"id":"deep","room":"fuzz","sender":{"id":"bob","displayName":${deep(20_000, '[', ']', '')}},"body":"x","ts":1700000000000}`,
  `{"id":${deep(20_000, '[', ']', '')},"room":"fuzz","sender":{"id":"bob"},"body":"x","ts":1700000000000}`,
];
const HUGE: Array<string | Buffer> = [
  `{"events":[],"pad":"${'y'.repeat(MAX_BODY_BYTES + 10)}"}`,
  Buffer.alloc(MAX_BODY_BYTES + 1, 0x7b),
  // Near the limit and valid: 5.5 MB of one message body (the network must take it as is).
  JSON.stringify({ events: [{ event_id: '$huge', room_id: ROOM, sender: '@alice:example.org', type: 'm.room.message', origin_server_ts: 1, content: { msgtype: 'm.text', body: 'z'.repeat(5_500_000) } }] }),
  JSON.stringify({ id: 'huge', room: 'fuzz', sender: { id: 'bob' }, body: 'z'.repeat(5_000_000), ts: 1_700_000_000_000 }),
];
const POLLUTION = [
  '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}',
  `{"__proto__":{"polluted":1},"events":[{"__proto__":{"polluted":1},"event_id":"$p","room_id":"${ROOM}","sender":"@alice:example.org","type":"m.room.message","origin_server_ts":1,"content":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"msgtype":"m.text","body":"x"}}]}`,
  '{"events":{"__proto__":{"length":1,"0":{"polluted":1}}}}',
  '{"events":[],"constructor":{"prototype":{"polluted":1}},"prototype":{"polluted":1}}',
  '{"id":"p1","room":"fuzz","sender":{"id":"bob","__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}},"body":"x","ts":1700000000000,"__proto__":{"polluted":1}}',
  '{"id":"p2","room":"fuzz","sender":{"__proto__":{"id":"bob","polluted":1}},"body":"x","ts":1700000000000}',
];

type Body = string | Buffer | undefined;
const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '[]', '"x"', '42', '{', '{"events": [', '\ufeff{"events":[]}') },
  { weight: 3, arbitrary: anyJson.map((v) => JSON.stringify(v)) },
  { weight: 6, arbitrary: transaction.map((v) => JSON.stringify(v)) },
  { weight: 6, arbitrary: inbound.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.oneof(transaction, inbound, anyJson).map(pollutedObject) },
  { weight: 2, arbitrary: fc.constantFrom(...POLLUTION) },
  { weight: 1, arbitrary: text },
  // Bytes that are not UTF-8 (and some that are), sent base64-encoded as API Gateway does.
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.oneof(transaction, inbound).map((v) => Buffer.from(JSON.stringify(v))) },
  { weight: 1, arbitrary: fc.constantFrom(...DEEP) },
);
/** A medium's bytes: binary (most not UTF-8), text, a few KB, one byte, none. */
const mediaBody: fc.Arbitrary<Body> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0]), Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('\ufeff'), pattern(20_000, 9)) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom<Body>(undefined, '') },
);
/** Bodies, with more of the shape the function reads. */
const bodyFor = (fn: HttpFunctionName): fc.Arbitrary<Body> => {
  if (fn === 'push') return fc.oneof({ weight: 1, arbitrary: transaction.map((v) => JSON.stringify(v)) }, { weight: 2, arbitrary: body });
  if (fn === 'network-inbound') return fc.oneof({ weight: 1, arbitrary: fewerNewRooms.map((v) => JSON.stringify(v)) }, { weight: 2, arbitrary: body });
  if (fn === 'network-media-upload') return fc.oneof({ weight: 3, arbitrary: mediaBody }, { weight: 1, arbitrary: body });
  // A GET: API Gateway passes a body all the same, and the link must not care.
  if (fn === 'network-media-download') return fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: body });
  if (fn === 'provision') return provisionBody;
  return body;
};
/** Rare, slow inputs: their own property with a few runs. */
const bigBody: fc.Arbitrary<Body> = fc.constantFrom<Body>(...HUGE, ...DEEP);

/**
 * X-Signature: good (over the raw bytes, as lib/signature.ts signs), stale, from the future,
 * over the body decoded as UTF-8 (wrong for bytes that are not UTF-8), a wrong and a good v1
 * (a rotation), missing, random, well-formed but wrong.
 */
const signature = fc.oneof(
  { weight: 4, arbitrary: fc.constant('good') },
  { weight: 1, arbitrary: fc.constantFrom('stale', 'future', 'lossy', 'two-v1') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: text },
  { weight: 1, arbitrary: fc.constant('t=1,v1=' + '0'.repeat(64)) },
);
const tweak = fc.constantFrom<'none' | 'b64-garbage' | 'null-body' | 'no-query'>('none', 'none', 'none', 'none', 'b64-garbage', 'null-body', 'no-query');

/**
 * A real media link (signLink with NETWORK_SECRET), made at the time of the request: to a
 * medium the HS has (`expect` its bytes), one it has not ('missing'), the one over the limit
 * ('too-large'), or to odd server names and IDs (no expectation but the allowed statuses);
 * whole, or expired or tampered with (`fault`: 403).
 */
interface Link {
  server: string;
  mediaId: string;
  expect?: { bytes: Buffer; type: string } | 'missing' | 'too-large';
  /** seconds from now to `expires` */
  expiresIn: number;
  fault: 'none' | 'sig-upper' | 'expired' | 'other-resource' | 'other-secret' | 'expires-moved' | 'sig-truncated' | 'no-sig';
}
const linkTarget = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SEEDED_MEDIA).map((m) => ({ server: 'example.org', mediaId: m.mediaId, expect: { bytes: m.bytes, type: m.type } })) },
  // The medium at the limit is served by the limits test below (4 MiB a time is slow); over it, the AS reads no bytes.
  { weight: 2, arbitrary: fc.constant({ server: 'example.org', mediaId: OVER_LIMIT_ID, expect: 'too-large' as const }) },
  { weight: 3, arbitrary: grammarMediaId.map((mediaId) => ({ server: 'example.org', mediaId, expect: 'missing' as const })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('other.org', 'localhost:8448', '[::1]:8448', '127.0.0.1', 'EXAMPLE.ORG'), fc.oneof(grammarMediaId, fc.constantFrom(...SEEDED_MEDIA.map((m) => m.mediaId))))
      .map(([server, mediaId]) => ({ server, mediaId, expect: 'missing' as const })),
  },
  { weight: 2, arbitrary: fc.tuple(fc.oneof(text, interestingIds), fc.oneof(text, interestingIds, grammarMediaId)).map(([server, mediaId]) => ({ server, mediaId })) },
);
const link: fc.Arbitrary<Link> = fc
  .tuple(
    linkTarget,
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom<Link['fault']>('none') },
      { weight: 1, arbitrary: fc.constantFrom<Link['fault']>('sig-upper', 'expired', 'other-resource', 'other-secret', 'expires-moved', 'sig-truncated', 'no-sig') },
    ),
    fc.oneof(fc.integer({ min: 2, max: 7 * 24 * 3600 }), fc.constant(10 * 365 * 24 * 3600)),
  )
  .map(([t, fault, expiresIn]) => ({ ...t, fault, expiresIn: fault === 'expired' ? -expiresIn : expiresIn }));
const linkPath = (l: Link) => `/network/media/${encodeURIComponent(l.server)}/${encodeURIComponent(l.mediaId)}`;

// The provisioning API: its own callers, paths, queries and bodies.
const PROVISION_PREFIX = '/_matrix/provision/v1';
/** Users the fuzz acts for: those above, a virtual user and the bot (`link` by their server, power level 0 in the rooms). */
const provisionActor = fc.constantFrom(ALICE, ALICE, DAVE, ERIN, ADMIN, ADMIN, CAROL, '@irc_bob:example.org', BOT);
/** Not user IDs: with the secret, 400. */
const badUserId = fc.oneof(
  fc.constantFrom('', 'alice', '@alice', '@:example.org', 'alice:example.org', '!room:example.org', '#a:example.org', '@alice:example.org ', '@al ice:example.org', `@${'a'.repeat(260)}:example.org`, '@alice:exa_mple.org', '@alice:example.org\u0000'),
  text.filter((s) => !s.startsWith('@')),
);
/** A bearer token that is neither the secret nor an OpenID token the homeserver knows. */
const wrongProvisionToken = fc.oneof(
  { weight: 3, arbitrary: wrongToken },
  {
    weight: 2,
    arbitrary: fc.constantFrom(HS_TOKEN, AS_TOKEN, network.secret, `${PROVISIONING_SECRET}x`, PROVISIONING_SECRET.toUpperCase(), PROVISIONING_SECRET.slice(0, -1), ...EXPIRED_OPENID, FOREIGN_OPENID, `${OPENID[ALICE]}x`),
  },
);
interface ProvisionAuth {
  auth: Case['auth'];
  /** `?user_id=`: a value, or null for none */
  userId: string | null;
  /** whom a 200 may be for: set only for credentials that are valid */
  actor?: string;
  actorBy?: 'secret' | 'openid';
  /** a valid OpenID token's user, the token in the header: without any query (no user_id), a 200 may be for them */
  owner?: string;
}
/**
 * Who calls: the secret (in the header, any case of the scheme, padded, or as ?access_token=) for a
 * user, an invalid user ID or none; a user's OpenID token, alone, with its own user ID or another
 * one (403); wrong, expired and foreign tokens; other schemes, no token, header and query disagreeing.
 */
const provisionAuth: fc.Arbitrary<ProvisionAuth> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(
        fc.constantFrom<'header' | 'lower' | 'padded' | 'query' | 'both'>('header', 'header', 'header', 'lower', 'padded', 'query', 'both'),
        fc.oneof({ weight: 6, arbitrary: provisionActor.map((u) => ({ u, valid: true })) }, { weight: 1, arbitrary: badUserId.map((u) => ({ u, valid: false })) }, { weight: 1, arbitrary: fc.constant({ u: null, valid: false }) }),
      )
      .map(([form, { u, valid }]): ProvisionAuth => {
        const bearer = `${form === 'lower' ? 'bearer' : 'Bearer'}${form === 'padded' ? '   ' : ' '}${PROVISIONING_SECRET}${form === 'padded' ? '  ' : ''}`;
        const auth = form === 'query' ? { query: PROVISIONING_SECRET } : form === 'both' ? { header: bearer, query: PROVISIONING_SECRET } : { header: bearer };
        return { auth, userId: u, ...(valid ? { actor: u as string, actorBy: 'secret' as const } : {}) };
      }),
  },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom(...Object.keys(OPENID)), fc.constantFrom<'alone' | 'own' | 'other'>('alone', 'alone', 'alone', 'own', 'other'), provisionActor, fc.boolean())
      .map(([u, withUser, other, inQuery]): ProvisionAuth => {
        const t = OPENID[u] as string;
        const auth = inQuery ? { query: t } : { header: `Bearer ${t}` };
        const owner = inQuery ? {} : { owner: u };
        if (withUser === 'alone') return { auth, userId: null, actor: u, actorBy: 'openid', ...owner };
        if (withUser === 'own' || other === u) return { auth, userId: u, actor: u, actorBy: 'openid', ...owner };
        return { auth, userId: other, ...owner };
      }),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.oneof(
          { weight: 3, arbitrary: wrongProvisionToken.map((t) => ({ header: `Bearer ${t}` })) },
          { weight: 1, arbitrary: wrongProvisionToken.map((t) => ({ query: t })) },
          // Disagreeing: the secret or a good token one way, another the other way (403).
          {
            weight: 1,
            arbitrary: fc
              .tuple(fc.constantFrom(PROVISIONING_SECRET, OPENID[ALICE] as string), wrongProvisionToken)
              .map(([good, bad]) => ({ header: `Bearer ${good}`, query: bad, ...(good === OPENID[ALICE] ? { owner: ALICE } : {}) })),
          },
          // Not a bearer token (401): other schemes, two tokens, no token.
          {
            weight: 2,
            arbitrary: fc.constantFrom(PROVISIONING_SECRET, OPENID[ALICE] as string, 'WRONG-x').chain((t) =>
              fc.constantFrom(`Basic ${Buffer.from(`x:${t}`).toString('base64')}`, `Token ${t}`, t, `Bearer ${t} ${t}`, `Bearer${t}`, 'Bearer', 'Bearer ', '', ' ', 'Bearer \u0000').map((h) => ({ header: h })),
            ),
          },
          { weight: 1, arbitrary: fc.constant({}) },
        ),
        fc.option(fc.oneof(provisionActor, badUserId), { nil: null, freq: 3 }),
      )
      .map(([a, userId]): ProvisionAuth => {
        const { owner, ...auth } = a as Case['auth'] & { owner?: string };
        return { auth, userId, ...(owner === undefined ? {} : { owner }) };
      }),
  },
);
/** Room IDs: the fuzz's rooms (encoded, or raw as a client may send them), unknown ones, not room IDs, odd percent-encoding, slashes. */
const ODD_ROOM_IDS = [
  '!nowhere:example.org',
  '!x:other.org',
  '!x',
  '!',
  '!:',
  `!${'x'.repeat(260)}:example.org`,
  'abc',
  '',
  '#irc_fuzz:example.org',
  '@alice:example.org',
  '!a/b:example.org',
  '!a%2Fb:example.org',
  '%21abc%3Aexample.org',
  '%2521abc%253Aexample.org',
  '!a%ZZ:example.org',
  '%',
  '%E0%A4%A',
  '%ED%A0%80',
  '%00',
  '!%00:example.org',
  '..',
  '.',
  '%2F..%2F',
  '!\u00e9\u{1F600}:example.org',
  '__proto__',
];
const provisionRoomId = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...PROV_ROOMS).map(encodeURIComponent) },
  { weight: 2, arbitrary: fc.constantFrom(...PROV_ROOMS) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_ROOM_IDS).map((s) => (s.includes('%') ? s : encodeURIComponent(s))) },
  { weight: 1, arbitrary: fc.constantFrom(...ODD_ROOM_IDS) },
  { weight: 1, arbitrary: text.map((s) => encodeURIComponent(`!${s}`)) },
  { weight: 1, arbitrary: text },
);
const provisionPath: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(provisionRoomId, fc.constantFrom('/links', '/links', '')).map(([id, tail]) => `${PROVISION_PREFIX}/rooms/${id}${tail}`) },
  { weight: 2, arbitrary: fc.constant(`${PROVISION_PREFIX}/links`) },
  // Unknown subpaths: 404.
  { weight: 1, arbitrary: fc.tuple(provisionRoomId, fc.constantFrom('/links/', '/links/x', '/unknown', '/LINKS', '/links/..', '/', '/%2E%2E', '/links%2F')).map(([id, tail]) => `${PROVISION_PREFIX}/rooms/${id}${tail}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(PROVISION_PREFIX, `${PROVISION_PREFIX}/`, `${PROVISION_PREFIX}/rooms`, `${PROVISION_PREFIX}/rooms/`, `${PROVISION_PREFIX}/links/`, `${PROVISION_PREFIX}/Links`, `${PROVISION_PREFIX}/links/x`, `${PROVISION_PREFIX}//links`, `${PROVISION_PREFIX}/rooms//links`, '/_matrix/provision/v2/links', '/_matrix/provision/links'),
  },
  { weight: 1, arbitrary: path('provision') },
);
const provisionMethod = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE') }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'HEAD', 'OPTIONS', 'get') });
/** GET /links' page token: none, random, base64url JSON (of the key's shape or not: forged). */
const pageToken = fc.oneof(
  { weight: 2, arbitrary: text },
  { weight: 1, arbitrary: fc.constantFrom('', 'x', '=', 'e30', 'bnVsbA') },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.record({ pk: fc.oneof(text, fc.constantFrom('', 'ROOM#!x:example.org')), sk: fc.oneof(text, fc.constantFrom('', 'MAPPING')) }),
        fc.record({ pk: text, sk: text, extra: anyJson }),
        anyJson,
      )
      .map((k) => Buffer.from(JSON.stringify(k) ?? 'null').toString('base64url')),
  },
);
/** The network room to link: the fuzz's few (taken often: 409), 'fuzz' (ROOM's: 409), random names, empty, over-long, not strings. */
const remoteRoom = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('prov-a', 'prov-b', 'prov-c', 'fuzz') },
  { weight: 2, arbitrary: nonEmpty },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\t', 'x'.repeat(255), 'x'.repeat(256), '\u00e9'.repeat(200), '#'.repeat(240), 'a:b', 'a\u0000b', '__proto__', 'constructor', 'toString') },
  { weight: 1, arbitrary: anyJson },
);
/** A link's body: `remote_room` (from `remote`), now and then with other fields. */
const linkBody = (remote: fc.Arbitrary<unknown> = remoteRoom) =>
  fc
    .tuple(remote, fc.option(fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 2 }), { nil: undefined, freq: 4 }))
    .map(([r, extra]) => ({ ...(extra ?? {}), remote_room: r }));
const provisionBody: fc.Arbitrary<Body> = fc.oneof(
  { weight: 6, arbitrary: linkBody().map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: linkBody().map(pollutedObject) },
  { weight: 1, arbitrary: linkBody().map((b) => Buffer.from(JSON.stringify(b))) },
  { weight: 1, arbitrary: fc.constantFrom('{"remote_room":', '{"remote_room":"prov-a"', '{"remote_room":"prov-a"}x', '{"remote_room":"\\ud800"}', '{"remote_room":"a","remote_room":"prov-b"}') },
  { weight: 3, arbitrary: body },
);
/** Valid credentials (the secret, or the user's OpenID token), mostly of those who may link (Alice, Dave) or unlink (Admin too). */
const validProvisionAuth = fc
  .tuple(fc.constantFrom(ALICE, ALICE, ALICE, ALICE, DAVE, DAVE, DAVE, ADMIN, ADMIN, ERIN, CAROL, BOT), fc.boolean())
  .map(([u, byToken]): ProvisionAuth =>
    byToken && OPENID[u]
      ? { auth: { header: `Bearer ${OPENID[u]}` }, userId: null, actor: u, actorBy: 'openid' }
      : { auth: { header: `Bearer ${PROVISIONING_SECRET}` }, userId: u, actor: u, actorBy: 'secret' },
  );
/** A request the API serves, on the fuzz's rooms, by valid credentials: what gets past the checks (links made, taken, undone). */
const wellFormedProvision = fc
  .tuple(
    fc.constantFrom<[string, string]>(['GET', ''], ['GET', '/links'], ['POST', '/links'], ['POST', '/links'], ['POST', '/links'], ['POST', '/links'], ['DELETE', '/links'], ['DELETE', '/links'], ['GET', 'ALL']),
    // The rooms the bot is in (or joins: the public one) more often than the one it cannot join.
    fc.constantFrom(...PROV_ROOMS.slice(0, 3), ...PROV_ROOMS),
    fc.boolean(),
    validProvisionAuth,
    // Mostly the fuzz's few network rooms: taken (409) as often as not.
    linkBody(fc.oneof({ weight: 8, arbitrary: fc.constantFrom('prov-a', 'prov-b', 'prov-c', 'fuzz') }, { weight: 2, arbitrary: remoteRoom })),
    // Every link (GET /links): mostly asked by the admin, half the time from a page token.
    fc.boolean(),
    fc.option(pageToken, { nil: undefined, freq: 2 }),
  )
  .map(([[method, tail], roomId, raw, who, b, admin, from]) => ({
    method,
    path: tail === 'ALL' ? `${PROVISION_PREFIX}/links` : `${PROVISION_PREFIX}/rooms/${raw ? roomId : encodeURIComponent(roomId)}${tail}`,
    who: tail === 'ALL' && admin ? { ...who, ...(who.actorBy === 'openid' ? { auth: { header: `Bearer ${OPENID[ADMIN]}` } } : { userId: ADMIN }), actor: ADMIN } : who,
    body: method === 'POST' ? JSON.stringify(b) : undefined,
    from: tail === 'ALL' ? from : undefined,
  }));
/** A provisioning request: mostly well formed, for the fuzz's rooms and users; anything else now and then. */
function provisionCase(bodies: fc.Arbitrary<Body>): fc.Arbitrary<Case> {
  return fc.oneof({ weight: 1, arbitrary: anyProvisionCase(bodies) }, { weight: 1, arbitrary: fc.tuple(anyProvisionCase(bodies), wellFormedProvision).map(([c, w]) => wellFormed(c, w)) });
}
/** The well-formed request `w` in the random case `c`: its method, path, credentials, and its body unless `c`'s is one of the nasty ones (huge, deep). */
function wellFormed(c: Case, w: { method: string; path: string; who: ProvisionAuth; body: Body; from: string | undefined }): Case {
  const query: Record<string, string> = { ...c.query };
  delete query.user_id;
  if (w.who.userId !== null) query.user_id = w.who.userId;
  if (w.from !== undefined) query.from = w.from;
  const { actor: _a, actorBy: _b, ...rest } = c;
  const nasty = c.body !== undefined && Buffer.byteLength(c.body) > 30_000;
  return { ...rest, method: w.method, path: w.path, auth: w.who.auth, query, body: nasty ? c.body : w.body, tweak: 'none', actor: w.who.actor, actorBy: w.who.actorBy };
}
function anyProvisionCase(bodies: fc.Arbitrary<Body>): fc.Arbitrary<Case> {
  return fc
    .record({
      method: provisionMethod,
      path: provisionPath,
      who: provisionAuth,
      from: fc.option(pageToken, { nil: undefined, freq: 4 }),
      extra: fc.option(queryString, { nil: undefined, freq: 4 }),
      headers: extraHeaders,
      postBody: bodies,
      otherBody: fc.oneof({ weight: 4, arbitrary: fc.constant<Body>(undefined) }, { weight: 1, arbitrary: bodies }),
      signature: fc.option(signature, { nil: undefined, freq: 4 }),
      tweak,
    })
    .map(({ method, path: p, who, from, extra, headers, postBody, otherBody, signature: sig, tweak: tw }): Case => {
      const query: Record<string, string> = { ...(extra ?? {}) };
      delete query.user_id;
      delete query.from;
      if (who.userId !== null) query.user_id = who.userId;
      if (from !== undefined) query.from = from;
      // Without a query (API Gateway's event has none), neither user_id nor ?access_token= arrives: a
      // token in the header then acts for its owner, whatever user_id the case had.
      const noQuery = tw === 'no-query';
      const valid = noQuery
        ? who.owner !== undefined
          ? { actor: who.owner, actorBy: 'openid' as const }
          : {}
        : who.actor !== undefined
          ? { actor: who.actor, actorBy: who.actorBy }
          : {};
      return {
        fn: 'provision',
        method,
        path: p,
        auth: who.auth,
        query,
        headers,
        body: method.toUpperCase() === 'POST' ? postBody : otherBody,
        signature: sig,
        tweak: tw,
        ...valid,
      };
    });
}

interface Case {
  fn: HttpFunctionName;
  method: string;
  path: string;
  auth: { header?: string; query?: string };
  query: Record<string, string>;
  headers: Record<string, string>;
  body: Body;
  signature: string | undefined;
  tweak: 'none' | 'b64-garbage' | 'null-body' | 'no-query';
  /** download only: a real link, signed when the request is made (its query's expires and sig) */
  link?: Link;
  /** the status this case must get (the deterministic cases) */
  expect?: number;
  /** provision only: the user valid credentials act for (a 200 is for them only, never without them) */
  actor?: string;
  actorBy?: 'secret' | 'openid';
}

const caseOf = (fn: HttpFunctionName, bodies: fc.Arbitrary<Body> = bodyFor(fn)): fc.Arbitrary<Case> =>
  fn === 'provision' ? provisionCase(bodies) : fc.record({
    fn: fc.constant(fn),
    method: method,
    path: pathFor(fn),
    auth,
    query: queryFor(fn),
    headers: headersFor(fn),
    body: bodies,
    signature,
    tweak,
  });

/** What each function's fuzz draws from: random cases, and for the network's endpoints many of the requests they serve. */
const casesFor = (fn: HttpFunctionName): fc.Arbitrary<Case> => {
  if (fn === 'network-inbound') {
    return fc.oneof(
      { weight: 6, arbitrary: caseOf(fn) },
      // Requests of each kind, mostly signed right (the other cases try the signatures): fewer,
      // as most get through, and those are slow (DynamoDB and the HS).
      {
        weight: 1,
        arbitrary: fc
          .tuple(caseOf(fn), routedInbound, fc.nat(4))
          .map(([c, r, n]): Case => ({ ...c, method: 'POST', ...r, ...(n === 0 ? {} : { signature: 'good', tweak: 'none' }) })),
      },
    );
  }
  if (fn === 'network-media-download') {
    return fc.oneof(
      { weight: 1, arbitrary: caseOf(fn) },
      // A real link, fetched as a network would (GET, mostly no extra query); everything else random.
      {
        weight: 1,
        arbitrary: fc
          .tuple(caseOf(fn), link, fc.option(queryString, { nil: undefined, freq: 4 }), fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST'))
          .map(([c, l, q, m]) => ({ ...c, method: m, path: linkPath(l), query: q ?? {}, link: l })),
      },
    );
  }
  return caseOf(fn);
};

// ---------------------------------------------------------------------------------------- the property

let txnSeq = 0;
/** Answers seen, per function and status: printed, and checked for coverage at the end. */
const seen = new Map<HttpFunctionName, Map<number, number>>(FUNCTIONS.map((f) => [f, new Map()]));
/** The same, of the random cases only (the fuzz properties), not the fixed ones. */
const seenFuzzing = new Map<HttpFunctionName, Map<number, number>>(FUNCTIONS.map((f) => [f, new Map()]));
/** The provisioning API's random 200s, by method and route ('POST room-links'…) and by credentials ('by openid'…). */
const provisionPast = new Map<string, number>();

/** The bytes a signature covers: the body exactly as sent (text as UTF-8). */
const bytesOf = (b: Body): string | Uint8Array => (b === undefined ? '' : b);

function signatureHeader(kind: string, b: Body): string {
  const now = Date.now();
  if (kind === 'good') return sign(network.secret, bytesOf(b), now);
  if (kind === 'stale') return sign(network.secret, bytesOf(b), now - 10 * 60_000);
  if (kind === 'future') return sign(network.secret, bytesOf(b), now + 10 * 60_000);
  // What a network that decodes the bytes before signing them would send: right only for UTF-8.
  if (kind === 'lossy') return sign(network.secret, Buffer.isBuffer(b) ? b.toString('utf8') : bytesOf(b), now);
  if (kind === 'two-v1') return `${sign('another-secret', bytesOf(b), now)},${sign(network.secret, bytesOf(b), now).split(',')[1]}`;
  return kind;
}

/** The query of a real link, signed now, and the statuses it may get ('any': those allowed). */
function signedLink(l: Link, tweak: Case['tweak']): { query: Record<string, string>; sig: string; expected: number[] | 'any' } {
  const expires = Math.floor(Date.now() / 1000) + l.expiresIn;
  const resource = `${l.server}/${l.mediaId}`;
  let sig = signLink(network.secret, l.fault === 'other-resource' ? `${resource}x` : resource, expires);
  if (l.fault === 'other-secret') sig = signLink('another-secret', resource, expires);
  const query: Record<string, string> = { expires: String(l.fault === 'expires-moved' ? expires + 1 : expires), sig };
  if (l.fault === 'sig-upper') query.sig = sig.toUpperCase();
  if (l.fault === 'sig-truncated') query.sig = sig.slice(0, -2);
  if (l.fault === 'no-sig') delete query.sig;
  let expected: number[] | 'any' = 'any';
  if (l.expect !== undefined) {
    const whole = l.expect === 'missing' ? 404 : l.expect === 'too-large' ? 413 : 200;
    if (tweak === 'no-query' || !['none', 'sig-upper'].includes(l.fault)) expected = [403];
    // The contract says hex, not which case: either answer will do.
    else if (l.fault === 'sig-upper') expected = [whole, 403];
    else expected = [whole];
  }
  return { query, sig, expected };
}

/** The provisioning API's errcodes by status (README, "The provisioning API"). */
const PROVISION_ERRCODES: Record<number, string[]> = {
  // A bad room ID, user_id or page token (M_INVALID_PARAM), none (M_MISSING_PARAM), a body not JSON or not of the shape.
  400: ['M_INVALID_PARAM', 'M_MISSING_PARAM', 'M_NOT_JSON', 'M_BAD_JSON'],
  // No token, a token neither the secret nor an OpenID token the homeserver knows; M_UNAUTHORIZED: an Authorization header that is not a bearer token.
  401: ['M_MISSING_TOKEN', 'M_UNKNOWN_TOKEN', 'M_UNAUTHORIZED'],
  403: ['M_FORBIDDEN', 'ORG.MATRIX_APPSERVICE_LAMBDA.BOT_NOT_IN_ROOM', 'ORG.MATRIX_APPSERVICE_LAMBDA.NETWORK_REFUSED'],
  // Unlinking a room that is not bridged (M_NOT_FOUND); a path that is no route (M_UNRECOGNIZED).
  404: ['M_NOT_FOUND', 'M_UNRECOGNIZED'],
  405: ['M_UNRECOGNIZED'],
  409: ['ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED'],
  413: ['M_TOO_LARGE'],
};
/** The route a provisioning path is (as README's table has them), or undefined. */
function provisionRoute(p: string): 'links' | 'room' | 'room-links' | undefined {
  const rest = p.startsWith(PROVISION_PREFIX) ? p.slice(PROVISION_PREFIX.length) : p;
  if (rest === '/links') return 'links';
  const m = /^\/rooms\/[^/]+(\/links)?$/.exec(rest);
  return m ? (m[1] ? 'room-links' : 'room') : undefined;
}
const METHODS_OF = { links: ['GET'], room: ['GET'], 'room-links': ['GET', 'POST', 'DELETE'] };
const isLinkView = (v: any): boolean =>
  !!v &&
  typeof v === 'object' &&
  typeof v.room_id === 'string' &&
  v.room_id.startsWith('!') &&
  (v.kind === 'direct'
    ? typeof v.matrix_user === 'string' && typeof v.remote_user === 'string'
    : ['alias', 'linked'].includes(v.kind) && typeof v.remote_room === 'string' && typeof v.alias === 'string' && v.alias.startsWith('#')) &&
  (v.kind !== 'linked' || (typeof v.linked_by === 'string' && v.linked_by.startsWith('@') && Number.isFinite(v.linked_at)));

/**
 * The provisioning API's answer: its errcode is the README's for the status; 405 only on a route,
 * 404 on a route only for unlinking a room that is not bridged, 409 only for a link; and a 200
 * only for valid credentials, for their user, for what that user may do (MAY_LINK…), in the
 * shape README gives.
 */
function checkProvisionAnswer(c: Case, p: string, status: number, body: any, where: string): void {
  const route = provisionRoute(p);
  const method = c.method;
  if (status >= 400) {
    assert.ok(PROVISION_ERRCODES[status]?.includes(body.errcode), `${where}: ${status} ${body.errcode} is not the README's: ${body.error}`);
    if (status === 405) assert.ok(route && !METHODS_OF[route].includes(method), `${where}: 405 for a route's own method: ${body.error}`);
    if (status === 404) {
      if (route === undefined) assert.equal(body.errcode, 'M_UNRECOGNIZED', `${where}: 404 ${body.errcode}`);
      else assert.ok(route === 'room-links' && method === 'DELETE' && body.errcode === 'M_NOT_FOUND', `${where}: 404 ${body.errcode} on a route: ${body.error}`);
    }
    if (status === 409) assert.ok(route === 'room-links' && method === 'POST', `${where}: 409 for no link: ${body.error}`);
    // Valid credentials are never "unauthorised".
    if (c.actor !== undefined) assert.notEqual(status, 401, `${where}: 401 for the valid credentials of ${c.actor} (${c.actorBy}): ${body.error}`);
    return;
  }
  assert.equal(status, 200, `${where}: ${status}`);
  assert.ok(c.actor !== undefined, `${where}: 200 without valid credentials (auth ${JSON.stringify(c.auth).slice(0, 120)}, user_id ${JSON.stringify(c.query.user_id)})`);
  assert.ok(route !== undefined && METHODS_OF[route].includes(method), `${where}: 200 for no route`);
  const actor = c.actor as string;
  if (route === 'links') {
    assert.ok(MAY_LIST.has(actor), `${where}: ${actor} may not list every link`);
    assert.ok(Array.isArray(body.links) && body.links.every((l: any) => isLinkView(l) && l.kind === 'linked'), `${where}: ${JSON.stringify(body).slice(0, 300)}`);
    assert.ok(body.next === undefined || typeof body.next === 'string', `${where}: next ${JSON.stringify(body.next)}`);
  } else if (route === 'room') {
    assert.ok(typeof body.room_id === 'string' && body.room_id.startsWith('!'), `${where}: room_id ${JSON.stringify(body.room_id)}`);
    assert.equal(body.user_id, actor, `${where}: the status of another user`);
    assert.ok(body.bridged === null || isLinkView(body.bridged), `${where}: bridged ${JSON.stringify(body.bridged)}`);
    assert.ok(['none', 'relay', 'link', 'admin'].includes(body.permission), `${where}: permission ${body.permission}`);
    for (const k of ['bot_joined', 'can_link', 'can_unlink']) assert.equal(typeof body[k], 'boolean', `${where}: ${k}`);
    assert.equal(typeof body.needed_power_level, 'number', `${where}: needed_power_level`);
    assert.ok(body.power_level === undefined || typeof body.power_level === 'number', `${where}: power_level`);
    if (body.can_link) assert.ok(MAY_LINK.has(actor) && body.bridged === null, `${where}: can_link for ${actor}`);
    if (body.can_unlink) assert.ok(MAY_UNLINK.has(actor) && body.bridged !== null, `${where}: can_unlink for ${actor}`);
  } else if (method === 'GET') {
    assert.ok(Array.isArray(body.links) && body.links.length <= 1 && body.links.every(isLinkView), `${where}: ${JSON.stringify(body).slice(0, 300)}`);
  } else if (method === 'POST') {
    assert.ok(MAY_LINK.has(actor), `${where}: ${actor} linked a room`);
    assert.ok(isLinkView(body) && body.kind === 'linked' && body.linked_by === actor, `${where}: ${JSON.stringify(body).slice(0, 300)}`);
  } else {
    assert.ok(MAY_UNLINK.has(actor), `${where}: ${actor} unlinked a room`);
    assert.ok(isLinkView(body.unlinked), `${where}: ${JSON.stringify(body).slice(0, 300)}`);
  }
}

/** Checks one request's answer (see the top of the file); gives its JSON body, for the well-formed cases to look into. */
async function check(c: Case, fixed = false): Promise<any> {
  const mark = as.logs.length;
  const specMark = as.hs.specErrors.length;
  const query: Record<string, string> = { ...c.query };
  delete query.access_token;
  if (c.auth.query !== undefined) query.access_token = c.auth.query;
  const headers: Record<string, string> = { ...c.headers };
  delete headers.authorization;
  if (c.auth.header !== undefined) headers.authorization = c.auth.header;
  let path = c.path;
  // Unique txnIds, so that "a repeat of a done txnId" is not what every push meets.
  if (c.fn === 'push' && /\/transactions\/[^/]*$/.test(path)) path = `${path}fz${++txnSeq}`;
  if (c.signature !== undefined) headers['x-signature'] = signatureHeader(c.signature, c.body);
  const linked = c.link ? signedLink(c.link, c.tweak) : undefined;
  if (linked) Object.assign(query, linked.query);
  const event = apiGatewayEvent({ method: c.method, path, query, headers, rawBody: c.body }) as Record<string, any>;
  if (c.tweak === 'b64-garbage') {
    event.isBase64Encoded = true;
    event.body = '%%%not*base64!!!' + (typeof event.body === 'string' ? event.body.slice(0, 100) : '');
  } else if (c.tweak === 'null-body') {
    event.body = null;
    event.isBase64Encoded = false;
  } else if (c.tweak === 'no-query') {
    delete event.queryStringParameters;
    event.rawQueryString = '';
  }
  const handler = handlers.get(c.fn) as Handler;
  const res = (await handler(event, lambdaContext(15_000))) as Awaited<ReturnType<Handler>> & { isBase64Encoded?: boolean };
  const lines = as.logs.slice(mark);
  const where = `${c.fn} ${c.method} ${path.slice(0, 120)}${c.link ? ` (link ${c.link.fault}, ${typeof c.link.expect === 'object' ? 'a seeded medium' : c.link.expect ?? 'odd'})` : ''}`;

  assert.equal(typeof res?.statusCode, 'number', `${where}: no status`);
  const status = res.statusCode as number;
  let answered: any;
  for (const m of fixed ? [seen] : [seen, seenFuzzing]) {
    const counts = m.get(c.fn) as Map<number, number>;
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  if (!fixed && c.fn === 'provision' && status === 200) {
    for (const k of [`${c.method} ${provisionRoute(path)}`, `by ${c.actorBy}`]) provisionPast.set(k, (provisionPast.get(k) ?? 0) + 1);
  }
  if (c.expect !== undefined) assert.equal(status, c.expect, `${where}: status ${status}, expected ${c.expect}: ${String(res.body).slice(0, 300)}`);
  if (linked && linked.expected !== 'any') {
    assert.ok(linked.expected.includes(status), `${where}: status ${status}, expected ${linked.expected.join(' or ')}: ${String(res.body).slice(0, 300)}`);
  }
  if (res.isBase64Encoded) {
    // Only the media link answers bytes, and only a real link to a medium the HS has.
    assert.equal(c.fn, 'network-media-download', `${where}: a base64 answer`);
    assert.equal(status, 200, `${where}: a base64 answer with status ${status}`);
    const expect = c.link?.expect;
    assert.ok(typeof expect === 'object', `${where}: bytes answered for a link that is not a real link to a seeded medium`);
    const bytes = Buffer.from(res.body ?? '', 'base64');
    assert.equal(Buffer.compare(bytes, expect.bytes), 0, `${where}: the bytes are not the medium's (${bytes.length} bytes, the HS has ${expect.bytes.length})`);
    assert.ok(String(res.headers?.['content-type']).startsWith(expect.type), `${where}: content-type ${String(res.headers?.['content-type'])}, the medium is ${expect.type}`);
  } else {
    let parsed: any;
    assert.doesNotThrow(() => (parsed = JSON.parse(res.body ?? '')), `${where}: body is not JSON: ${String(res.body).slice(0, 200)}`);
    answered = parsed;
    // The third-party lookups answer lists (of locations, of users); everything else an object.
    const list = c.fn === 'thirdparty' && status === 200;
    assert.ok(parsed && typeof parsed === 'object' && (list || !Array.isArray(parsed)), `${where}: body is not a JSON object`);
    if (c.fn === 'thirdparty') {
      // As the spec's protocols.yaml says (the legacy prefix has the same operations); a path that is
      // not a lookup (another route's, fuzzed) can only have been refused.
      const specPath = path.replace(/^\/_matrix\/app\/unstable\//, '/_matrix/app/v1/');
      let problems: string[] | undefined;
      try {
        problems = checkAsResponse('GET', specPath, status, parsed);
      } catch {
        assert.equal(status >= 400 && status < 500, true, `${where}: ${status} for a path that is no lookup`);
      }
      if (problems) assert.deepEqual(problems, [], `${where}: the answer is not the spec's`);
    }
    assert.equal(res.headers?.['content-type'], 'application/json', `${where}: content-type`);
    assert.ok(ALLOWED[c.fn].includes(status), `${where}: status ${status} ${JSON.stringify(parsed).slice(0, 300)}`);
    if (status >= 400) {
      assert.equal(typeof parsed.errcode, 'string', `${where}: errcode`);
      // The provisioning API has errcodes of its own, namespaced as the spec asks (README: "The provisioning API").
      assert.match(parsed.errcode, c.fn === 'provision' ? /^(M_[A-Z_]+|ORG\.MATRIX_APPSERVICE_LAMBDA\.[A-Z_]+)$/ : /^M_[A-Z_]+$/, `${where}: errcode`);
      assert.equal(typeof parsed.error, 'string', `${where}: error`);
      if (NETWORK_FUNCTIONS.has(c.fn)) {
        assert.ok(NETWORK_ERRCODES[status]?.includes(parsed.errcode), `${where}: ${status} ${parsed.errcode} is not in the contract: ${parsed.error}`);
      }
      // A route of network-inbound knows its kind: its 404 is about the target; any other kind is M_UNRECOGNIZED.
      if (c.fn === 'network-inbound' && status === 404) {
        // `/network/rooms/` is a route only with a room id after it.
        const known = (ROUTES['network-inbound'] as string[]).some((r) => (r.endsWith('/') ? path.startsWith(r) && path.length > r.length : path === r));
        assert.equal(parsed.errcode, known ? 'M_NOT_FOUND' : 'M_UNRECOGNIZED', `${where}: 404 ${parsed.errcode}: ${parsed.error}`);
      }
      if (status === 409 && c.fn !== 'provision') assert.equal(path, '/network/reactions', `${where}: 409 ${parsed.error}`);
      if (c.fn === 'network-media-download' && status === 413) {
        assert.ok(typeof parsed.size === 'number' && parsed.size > MESSAGES.MEDIA_MAX_BYTES, `${where}: a 413 gives the medium's size: ${JSON.stringify(parsed)}`);
      }
    }
    if (c.fn === 'provision') checkProvisionAnswer(c, path, status, parsed, where);
    else if (status < 400) {
      assert.notEqual(c.fn, 'network-media-download', `${where}: ${status} without the medium's bytes`);
      const shape = SUCCESS_BODY[c.fn];
      if (shape) assert.ok(shape(status, parsed), `${where}: success body ${JSON.stringify(parsed)}`);
      else assert.deepEqual(parsed, {}, `${where}: success body`);
    }
    if (c.fn === 'network-media-upload' && status === 200) {
      // A real upload: in the HS's media repository with the bytes sent, as a virtual user.
      const stored = as.hs.media.get(String(parsed.contentUri).split('/').pop() as string);
      assert.ok(stored, `${where}: ${parsed.contentUri} is not in the HS's media repository`);
      const sent = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body ?? '', 'utf8');
      assert.equal(Buffer.compare(stored.bytes, sent), 0, `${where}: the HS has ${stored.bytes.length} bytes, ${sent.length} were sent`);
      assert.match(stored.uploader, /^@irc_/, `${where}: uploaded as ${stored.uploader}, not as a virtual user`);
      const filename = event.queryStringParameters?.filename;
      if (filename) assert.equal(stored.filename, filename, `${where}: filename`);
    }
  }

  // What the network sends becomes only what the spec allows (the fake HS checks each call; a
  // media link's odd path is the link's own, and only the AS could have signed it).
  if (c.fn === 'network-inbound' || c.fn === 'network-media-upload') {
    const wrong = as.hs.specErrors.slice(specMark);
    assert.deepEqual(wrong, [], `${where}: the AS sent the HS what the spec does not allow: ${wrong.join('; ').slice(0, 500)}`);
  }

  const bad = lines.filter((l) => /"msg":"(unexpected error|configuration error)"/.test(l));
  assert.deepEqual(bad, [], `${where}: an unclassified exception was logged`);
  const presented = [c.auth.header, c.auth.query].filter((t): t is string => typeof t === 'string');
  const wrongTokens = presented.flatMap((t) => t.match(/WRONG-\S+/g) ?? []);
  // A working link is a credential for its medium until it expires.
  const linkSigs = linked ? [linked.sig] : [];
  for (const line of lines) {
    for (const s of [...SECRETS, ...wrongTokens, ...linkSigs]) assert.ok(!line.includes(s), `${where}: a token reached the logs: ${line.slice(0, 300)}`);
  }

  assert.equal(({} as Record<string, unknown>).polluted, undefined, `${where}: Object.prototype was polluted`);
  assert.equal(({} as Record<string, unknown>).isAdmin, undefined, `${where}: Object.prototype was polluted`);
  return answered;
}

const params = (numRuns: number): fc.Parameters<[Case]> => ({ numRuns: runs(numRuns), includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: SEED }) });

for (const [fn, n] of [
  ['user-query', 400],
  ['room-query', 300],
  ['push', 700],
  ['ping', 200],
  ['thirdparty', 300],
  ['unrecognized', 300],
  ['network-inbound', 500],
  ['network-media-upload', 200],
  ['network-media-download', 200],
  // Last: its links of random network rooms are kept from the network's requests above.
  ['provision', 120],
] as Array<[HttpFunctionName, number]>) {
  test(`fuzz ${fn}: always a well-formed Matrix answer, no unclassified error, no token in the logs, no pollution`, async (t) => {
    await fc.assert(
      fc.asyncProperty(casesFor(fn), async (c) => {
        await check(c);
      }),
      params(n),
    );
    t.diagnostic(`${fn} answers by status: ${JSON.stringify(Object.fromEntries(seen.get(fn) ?? []))}`);
    if (fn === 'provision') t.diagnostic(`provision 200s: ${JSON.stringify(Object.fromEntries(provisionPast))}`);
  });
}

/** The route each function serves (check() gives each push a fresh txnId). */
const canonicalPath: Record<HttpFunctionName, () => string> = {
  'user-query': () => `/_matrix/app/v1/users/${enc('@irc_bob:example.org')}`,
  'room-query': () => `/_matrix/app/v1/rooms/${enc('#irc_lobby:example.org')}`,
  push: () => '/_matrix/app/v1/transactions/',
  ping: () => '/_matrix/app/v1/ping',
  thirdparty: () => '/_matrix/app/v1/thirdparty/location/irc',
  provision: () => `${PROVISION_PREFIX}/rooms/${encodeURIComponent(PROV_ROOMS[0] as string)}/links`,
  unrecognized: () => '/_matrix/app/v1/thirdparty/protocol',
  'network-inbound': () => '/network/messages',
  'network-media-upload': () => '/network/media',
  'network-media-download': () => linkPath(CANONICAL_LINK),
};
const CANONICAL_METHOD: Record<HttpFunctionName, string> = {
  'user-query': 'GET',
  'room-query': 'GET',
  push: 'PUT',
  ping: 'POST',
  thirdparty: 'GET',
  provision: 'POST',
  unrecognized: 'GET',
  'network-inbound': 'POST',
  'network-media-upload': 'POST',
  'network-media-download': 'GET',
};
/** A real link to a seeded medium: the link's request is valid whatever body comes with it. */
const CANONICAL_LINK: Link = { server: 'example.org', mediaId: SEEDED_MEDIA[0]!.mediaId, expect: { bytes: SEEDED_MEDIA[0]!.bytes, type: SEEDED_MEDIA[0]!.type }, expiresIn: 3600, fault: 'none' };
/** A valid request to each function but for its body (provision: a link of the fuzz's first room, by Alice, with the secret). */
const canonicalCase = (fn: HttpFunctionName, b: Body): Case => ({
  fn,
  method: CANONICAL_METHOD[fn],
  path: canonicalPath[fn](),
  auth: { header: `Bearer ${fn === 'provision' ? PROVISIONING_SECRET : HS_TOKEN}` },
  query: fn === 'network-media-upload' ? { sender: 'bob', filename: 'nasty.bin' } : fn === 'thirdparty' ? { channel: 'fuzz' } : fn === 'provision' ? { user_id: ALICE } : {},
  ...(fn === 'provision' ? { actor: ALICE, actorBy: 'secret' as const } : {}),
  headers: fn === 'network-media-upload' ? { 'content-type': 'application/octet-stream' } : {},
  body: b,
  signature: 'good',
  tweak: 'none',
  ...(fn === 'network-media-download' ? { link: CANONICAL_LINK } : {}),
});

test('every handler, every huge, deeply nested and prototype-polluting body, with valid credentials', async () => {
  // Not left to chance: each of these slow or nasty bodies meets each handler once, past auth.
  for (const fn of FUNCTIONS) {
    for (const b of [...HUGE, ...DEEP, ...POLLUTION]) await check(canonicalCase(fn, b), true);
  }
});

test('media at and over the 4 MiB limit, both ways', async () => {
  // Upload: the limit is taken, one byte more is 413 (the signature is right: it is the size).
  await check({ ...canonicalCase('network-media-upload', pattern(MESSAGES.MEDIA_MAX_BYTES, 4)), expect: 200 }, true);
  await check({ ...canonicalCase('network-media-upload', pattern(MESSAGES.MEDIA_MAX_BYTES + 1, 5)), expect: 413 }, true);
  // Download (Lambda's response limit): the medium at the limit is served, the one over it is 413 with its size.
  const at: Link = { server: 'example.org', mediaId: AT_LIMIT_ID, expect: { bytes: AT_LIMIT.bytes, type: AT_LIMIT.type }, expiresIn: 60, fault: 'none' };
  const over: Link = { server: 'example.org', mediaId: OVER_LIMIT_ID, expect: 'too-large', expiresIn: 60, fault: 'none' };
  for (const l of [at, over]) await check({ ...canonicalCase('network-media-download', undefined), path: linkPath(l), link: l }, true);
});

test('a reaction made twice: under another id 409 M_DUPLICATE_ANNOTATION, under its own id its first event', async () => {
  const reaction = (id: string) => JSON.stringify({ id, room: 'fuzz', sender: { id: 'dave' }, target: 'target-3', key: '\u{1F986}', ts: 1_700_000_000_000 });
  await check({ ...canonicalCase('network-inbound', reaction('duck-1')), path: '/network/reactions', expect: 200 }, true);
  await check({ ...canonicalCase('network-inbound', reaction('duck-2')), path: '/network/reactions', expect: 409 }, true);
  await check({ ...canonicalCase('network-inbound', reaction('duck-1')), path: '/network/reactions', expect: 200 }, true);
});

test('an edit and a deletion by their author, well formed: posted to the HS as m.replace and a redaction (the random ones reach it only now and then)', async () => {
  const edit = JSON.stringify({ id: 'edit-fixed', room: 'fuzz', sender: { id: AUTHOR['target-0'] }, target: 'target-0', body: 'target 0, edited', ts: 1_700_000_000_100 });
  await check({ ...canonicalCase('network-inbound', edit), path: '/network/edits', expect: 200 }, true);
  const deletion = JSON.stringify({ id: 'deletion-fixed', room: 'fuzz', sender: { id: AUTHOR['target-1'] }, target: 'target-1', ts: 1_700_000_000_200 });
  await check({ ...canonicalCase('network-inbound', deletion), path: '/network/deletions', expect: 200 }, true);
});

test('the conversation routes, well formed: a join and a leave, a profile, room details, a private message', async () => {
  const at = (path: string, b: unknown, expect: number) => check({ ...canonicalCase('network-inbound', JSON.stringify(b)), path, expect }, true);
  await at('/network/members', { room: 'fuzz', user: { id: 'erin', displayName: 'Erin' }, membership: 'join' }, 200);
  await at('/network/members', { room: 'fuzz', user: { id: 'erin' }, membership: 'leave', reason: 'bye' }, 200);
  await at('/network/members', { room: 'nowhere', user: { id: 'erin' }, membership: 'join' }, 202);
  await at('/network/profile', { user: { id: 'erin', displayName: 'Erin E' } }, 200);
  await at('/network/rooms/fuzz', { topic: 'fuzzed' }, 200);
  await at('/network/messages', { id: 'pm-fixed', to: '@alice:example.org', sender: { id: 'erin' }, body: 'psst', ts: 1_700_000_000_000 }, 200);
});

/** Who sends a provisioning request: a tool with the secret for a user, a user's OpenID token, or credentials as they are (then no 200). */
type ProvisionWho = { secret: string } | { openId: string } | { auth: Case['auth']; query?: Record<string, string> };
/** One provisioning request, checked as every answer is, with the status it must get: its JSON body. */
function provisionRequest(method: string, route: string, who: ProvisionWho, expect: number | undefined, b?: unknown): Promise<any> {
  return check(
    {
      fn: 'provision',
      method,
      path: `${PROVISION_PREFIX}${route}`,
      auth: 'secret' in who ? { header: `Bearer ${PROVISIONING_SECRET}` } : 'openId' in who ? { header: `Bearer ${OPENID[who.openId]}` } : who.auth,
      query: 'secret' in who ? { user_id: who.secret } : 'auth' in who ? (who.query ?? {}) : {},
      headers: {},
      body: b === undefined || typeof b === 'string' ? b : JSON.stringify(b),
      signature: undefined,
      tweak: 'none',
      ...(expect === undefined ? {} : { expect }),
      ...('secret' in who ? { actor: who.secret, actorBy: 'secret' as const } : 'openId' in who ? { actor: who.openId, actorBy: 'openid' as const } : {}),
    },
    true,
  );
}

test('the provisioning API, well formed: status, link, the same link again and another room for it (409), unlink twice (404), the admin list, wrong methods, credentials', async () => {
  const [a, b] = [await provisioningRoom(), await provisioningRoom()];
  // The fuzz's room the bot was not invited into (and, private, may not join).
  const noBot = PROV_ROOMS[3] as string;
  const at = (roomId: string, tail = '') => `/rooms/${encodeURIComponent(roomId)}${tail}`;
  const req = provisionRequest;
  const errcode = async (p: Promise<any>, code: string) => assert.equal((await p).errcode, code);
  const remote = 'prov-fixed';

  // The room's status: Alice (by the secret) may link it, Erin (by her OpenID token, power level 0) may not.
  const status = await req('GET', at(a), { secret: ALICE }, 200);
  assert.deepEqual(
    [status.room_id, status.user_id, status.bridged, status.permission, status.bot_joined, status.power_level, status.needed_power_level, status.can_link, status.can_unlink],
    [a, ALICE, null, 'link', true, 100, 50, true, false],
  );
  const erins = await req('GET', at(a), { openId: ERIN }, 200);
  assert.deepEqual([erins.user_id, erins.power_level, erins.can_link], [ERIN, 0, false]);
  assert.deepEqual(await req('GET', at(a, '/links'), { openId: ALICE }, 200), { links: [] });

  // The link, by Alice's OpenID token: the network approved it.
  const link = await req('POST', at(a, '/links'), { openId: ALICE }, 200, { remote_room: remote });
  assert.deepEqual({ ...link, linked_at: 0 }, { room_id: a, kind: 'linked', remote_room: remote, alias: `#irc_${remote}:example.org`, linked_by: ALICE, linked_at: 0 });
  assert.ok(network.acceptedLinks.some((l) => l.matrixRoomId === a && l.room === remote && l.requestedBy === ALICE), 'the network approved the link');
  assert.deepEqual((await req('GET', at(a, '/links'), { secret: ALICE }, 200)).links, [link]);
  // Again: the room is bridged (409); another room for the same network room: 409, with the room it is linked to.
  assert.equal((await req('POST', at(a, '/links'), { secret: ALICE }, 409, { remote_room: remote })).room_id, a);
  assert.equal((await req('POST', at(b, '/links'), { secret: ALICE }, 409, { remote_room: remote })).room_id, a);
  assert.equal((await req('POST', at(b, '/links'), { secret: ALICE }, 409, { remote_room: 'fuzz' })).room_id, ROOM);
  // Refused (403): Erin's power level, Carol's permission (relay: another server), a room the bot may not join.
  await errcode(req('POST', at(b, '/links'), { openId: ERIN }, 403, { remote_room: 'prov-fixed-2' }), 'M_FORBIDDEN');
  await errcode(req('POST', at(b, '/links'), { secret: CAROL }, 403, { remote_room: 'prov-fixed-2' }), 'M_FORBIDDEN');
  await errcode(req('POST', at(noBot, '/links'), { secret: ALICE }, 403, { remote_room: 'prov-fixed-2' }), 'ORG.MATRIX_APPSERVICE_LAMBDA.BOT_NOT_IN_ROOM');
  // Bodies (400, 413) and room IDs (400) it cannot take.
  await errcode(req('POST', at(b, '/links'), { secret: ALICE }, 400, {}), 'M_MISSING_PARAM');
  await errcode(req('POST', at(b, '/links'), { secret: ALICE }, 400, { remote_room: 42 }), 'M_BAD_JSON');
  await errcode(req('POST', at(b, '/links'), { secret: ALICE }, 400, { remote_room: 'x'.repeat(256) }), 'M_INVALID_PARAM');
  await errcode(req('POST', at(b, '/links'), { secret: ALICE }, 400, '{"remote_room": '), 'M_NOT_JSON');
  await errcode(req('POST', at(b, '/links'), { secret: ALICE }, 413, { remote_room: 'prov-fixed-2', pad: 'x'.repeat(MAX_BODY_BYTES) }), 'M_TOO_LARGE');
  await errcode(req('GET', at('not-a-room-id'), { secret: ALICE }, 400), 'M_INVALID_PARAM');
  await errcode(req('GET', `/rooms/%E0%A4%A/links`, { secret: ALICE }, 400), 'M_INVALID_PARAM');

  // Every link: the admin's only.
  await errcode(req('GET', '/links', { secret: ALICE }, 403), 'M_FORBIDDEN');
  await errcode(req('GET', '/links', { openId: DAVE }, 403), 'M_FORBIDDEN');
  assert.ok((await req('GET', '/links', { openId: ADMIN }, 200)).links.some((l: any) => l.room_id === a && l.remote_room === remote), 'the admin lists the link');
  // Methods a route does not take (405), paths that are no route (404).
  await errcode(req('PUT', at(a, '/links'), { secret: ALICE }, 405), 'M_UNRECOGNIZED');
  await errcode(req('DELETE', at(a), { secret: ALICE }, 405), 'M_UNRECOGNIZED');
  await errcode(req('POST', '/links', { secret: ADMIN }, 405, { remote_room: remote }), 'M_UNRECOGNIZED');
  await errcode(req('GET', at(a, '/links/x'), { secret: ALICE }, 404), 'M_UNRECOGNIZED');

  // Credentials: none (401); garbage, an expired token, one for a user of another server (401); not a
  // bearer token (401); the secret for nobody, or not a user ID (400); a token for another user (403).
  const raw = (auth: Case['auth'], query?: Record<string, string>): ProvisionWho => ({ auth, ...(query ? { query } : {}) });
  await errcode(req('GET', at(a), raw({}), 401), 'M_MISSING_TOKEN');
  await errcode(req('GET', at(a), raw({ header: 'Bearer WRONG-provisioning' }), 401), 'M_UNKNOWN_TOKEN');
  await errcode(req('GET', at(a), raw({ header: `Bearer ${EXPIRED_OPENID[0]}` }), 401), 'M_UNKNOWN_TOKEN');
  await errcode(req('GET', at(a), raw({ header: `Bearer ${FOREIGN_OPENID}` }), 401), 'M_UNKNOWN_TOKEN');
  await errcode(req('GET', at(a), raw({ header: `Bearer ${HS_TOKEN}` }, { user_id: ALICE }), 401), 'M_UNKNOWN_TOKEN');
  await req('GET', at(a), raw({ header: `Basic ${Buffer.from(`alice:${PROVISIONING_SECRET}`).toString('base64')}` }, { user_id: ALICE }), 401);
  await errcode(req('GET', at(a), raw({ header: `Bearer ${PROVISIONING_SECRET}` }), 400), 'M_MISSING_PARAM');
  await errcode(req('GET', at(a), raw({ header: `Bearer ${PROVISIONING_SECRET}` }, { user_id: 'alice' }), 400), 'M_INVALID_PARAM');
  await errcode(req('GET', at(a), raw({ header: `Bearer ${OPENID[ERIN]}` }, { user_id: ALICE }), 403), 'M_FORBIDDEN');

  // Unlink: not by Erin (403); by Alice, and the network is told; again: 404.
  await errcode(req('DELETE', at(a, '/links'), { openId: ERIN }, 403), 'M_FORBIDDEN');
  assert.deepEqual((await req('DELETE', at(a, '/links'), { openId: ALICE }, 200)).unlinked, link);
  assert.ok(network.acceptedUnlinks.some((l) => l.matrixRoomId === a && l.room === remote), 'the network was told of the unlink');
  await errcode(req('DELETE', at(a, '/links'), { secret: ALICE }, 404), 'M_NOT_FOUND');
  // The network room is free again; the admin (power level 0 there) may unlink any room.
  assert.equal((await req('POST', at(b, '/links'), { secret: ALICE }, 200, { remote_room: remote })).room_id, b);
  assert.equal((await req('DELETE', at(b, '/links'), { openId: ADMIN }, 200)).unlinked.room_id, b);
  // A public room the bot was not invited into: it joins at the link.
  const open = await provisioningRoom({ public: true, inviteBot: false });
  assert.equal(as.hs.rooms.get(open)?.members.has(BOT), false);
  await req('POST', at(open, '/links'), { secret: ALICE }, 200, { remote_room: 'prov-fixed-open' });
  assert.ok(as.hs.rooms.get(open)?.members.has(BOT), 'the bot joined the public room');
  // Two rooms ask for one network room at once: one gets it, the other 409 (the network room's record is the
  // lock), with the room it went to when that is known already ("is being bridged just now" otherwise).
  const race = [await provisioningRoom(), await provisioningRoom()];
  const raced = await Promise.all(race.map((r) => req('POST', at(r, '/links'), { secret: ALICE }, undefined, { remote_room: 'prov-fixed-race' })));
  const [won, lost] = raced[0].kind === 'linked' ? raced : [raced[1], raced[0]];
  assert.equal(won.kind, 'linked', `one link of two at once: ${JSON.stringify(raced)}`);
  assert.equal(lost.errcode, 'ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED', `the other of two links at once: ${JSON.stringify(lost)}`);
  assert.ok(lost.room_id === undefined || lost.room_id === won.room_id, `409 names ${lost.room_id}, the link went to ${won.room_id}`);
  // A room the bridge made for a network room: only an admin unlinks it.
  network.rooms.set('prov-made', { name: '#prov-made' });
  assert.equal((await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc('#irc_prov-made:example.org')}` })).status, 200);
  const made = as.hs.aliases.get('#irc_prov-made:example.org') as string;
  await errcode(req('DELETE', at(made, '/links'), { secret: ALICE }, 403), 'M_FORBIDDEN');
  assert.equal((await req('DELETE', at(made, '/links'), { secret: ADMIN }, 200)).unlinked.kind, 'alias');
});

test('the provisioning API: a page token the bridge did not give is refused (400), not handed to DynamoDB', async () => {
  // Of the shape decodeKey() takes ({pk, sk} strings) but no key DynamoDB takes: an empty key attribute, an attribute more.
  for (const key of [{ pk: '', sk: '' }, { pk: 'ROOM#!x:example.org', sk: '' }, { pk: 'ROOM#!x:example.org', sk: 'MAPPING', extra: 0 }]) {
    const from = Buffer.from(JSON.stringify(key)).toString('base64url');
    const refused = await provisionRequest('GET', '/links', { auth: { header: `Bearer ${PROVISIONING_SECRET}` }, query: { user_id: ADMIN, from } }, 400);
    assert.equal(refused.errcode, 'M_INVALID_PARAM', `from=${from} (${JSON.stringify(key)}): ${JSON.stringify(refused)}`);
  }
});

test('fuzz every handler with huge and deeply nested bodies and everything else random', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...FUNCTIONS).chain((fn) => caseOf(fn, bigBody)),
      async (c) => {
        await check(c);
      },
    ),
    params(30),
  );
});

test('the fuzzing reached past the auth check: bodies were parsed, messages delivered and posted', async () => {
  // Guards the properties above from passing vacuously (e.g. every request refused at auth).
  const at = (fn: HttpFunctionName, status: number) => seen.get(fn)?.get(status) ?? 0;
  for (const fn of FUNCTIONS) for (const status of ALLOWED[fn]) assert.ok(at(fn, status) > 0, `${fn} never answered ${status}`);
  // The fixed cases above are valid requests of the network's endpoints: the random ones must get through by themselves.
  const fuzzed = (fn: HttpFunctionName, status: number) => seenFuzzing.get(fn)?.get(status) ?? 0;
  const PAST_THE_CHECKS: Array<[HttpFunctionName, number[]]> = [
    ['network-inbound', [200, 202, 404]],
    ['network-media-upload', [200]],
    ['network-media-download', [200, 404, 413]],
    // Statuses, links refused (power level, permission), made, taken (409), undone, and unlinks of unbridged rooms (404).
    ['provision', [200, 403, 404, 409]],
  ];
  for (const [fn, statuses] of PAST_THE_CHECKS) for (const status of statuses) assert.ok(fuzzed(fn, status) > 0, `no random case of ${fn} got ${status}`);
  // The provisioning API's random cases got through with each kind of credentials, and made or undid links.
  const past = (k: string) => provisionPast.get(k) ?? 0;
  for (const k of ['by secret', 'by openid', 'GET room']) assert.ok(past(k) > 0, `no random provisioning request ${k} got 200`);
  assert.ok(past('POST room-links') + past('DELETE room-links') > 0, 'no random provisioning request linked or unlinked a room');
  // What push queued goes out through the deliver function.
  await as.deliver();
  assert.ok(network.accepted.length > 0, 'some pushed message reached the network');
  assert.ok(as.hs.calls.some((c) => c.path.includes('/send/')), 'some inbound message was posted to the HS');
  assert.ok(as.logs.some((l) => l.includes('"errcode":"M_NOT_JSON"')), 'some body was not JSON');
  assert.ok(as.logs.some((l) => l.includes('"errcode":"M_TOO_LARGE"')), 'some body was too large');
  // The network's changes and media reached the HS.
  const done = (f: (c: (typeof as.hs.calls)[number]) => boolean) => as.hs.calls.some((c) => c.status === 200 && f(c));
  assert.ok(done((c) => c.path.includes('/send/m.room.message/') && c.body?.['m.relates_to']?.rel_type === 'm.replace'), 'some edit was posted to the HS');
  assert.ok(done((c) => c.path.includes('/send/m.reaction/')), 'some reaction was posted to the HS');
  assert.ok(done((c) => c.path.includes('/redact/')), 'some deletion was posted to the HS');
  assert.ok(done((c) => c.path === '/_matrix/media/v3/upload'), 'some medium was uploaded to the HS');
  assert.ok(done((c) => c.path.includes('/media/download/')), 'some medium was downloaded from the HS');
  // The conversation routes: the virtual user left, its profile set, the topic set, a direct chat made.
  assert.ok(done((c) => c.path.endsWith('/leave')), 'some network user left a room');
  assert.ok(done((c) => c.path.includes('/state/m.room.topic')), 'some room details were set');
  assert.ok(done((c) => c.path.endsWith('/createRoom') && c.body?.is_direct === true), 'some direct chat was made');
});
