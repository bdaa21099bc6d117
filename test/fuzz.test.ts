/**
 * Fuzz (issue 5, item 8): property-based tests with fast-check over every handler
 * (user-query, room-query, push, ping, thirdparty, unrecognized, network-inbound with its four
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
 *
 * For every input:
 * - the answer is well-formed: a status from the handler's allowed set, a JSON object body
 *   (content-type application/json), and on errors a string `errcode` (M_…) and `error`
 *   (for the network's endpoints, the contract's errcode for the status); or, from the media
 *   link, the medium's bytes (base64-encoded), only for a real link, the bytes the HS has;
 * - an upload answered 200 is in the HS's media repository, with the bytes sent;
 * - what the network's requests make the AS send the HS is what the spec allows (the fake HS's
 *   specErrors);
 * - never an unclassified exception: no 500, no "unexpected error" log line;
 * - push never answers 503 here (the HS and the network are healthy, txnIds unique): a 503
 *   for a given body would make the HS resend the same bytes forever (a poison transaction);
 * - no secret in the logs: not the hs_token, the as_token or the network secret, nor any
 *   token a caller presented, nor a real media link's `sig`;
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
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '1000' });
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
const FUNCTIONS: HttpFunctionName[] = ['user-query', 'room-query', 'push', 'ping', 'thirdparty', 'unrecognized', 'network-inbound', 'network-media-upload', 'network-media-download'];
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

// ---------------------------------------------------------------------------------------- inputs

/** Secrets that must never be logged, whatever the request. */
const SECRETS = [HS_TOKEN, AS_TOKEN, network.secret];

const wrongToken = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 24 }).map((s) => `WRONG-${s.replace(/\s/g, '_')}`);
const token = fc.oneof(
  { weight: 4, arbitrary: fc.constant(HS_TOKEN) },
  { weight: 3, arbitrary: wrongToken },
  { weight: 1, arbitrary: fc.constantFrom(AS_TOKEN, network.secret, `${HS_TOKEN}x`, HS_TOKEN.toUpperCase(), HS_TOKEN.slice(0, -1)) },
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
}

const caseOf = (fn: HttpFunctionName, bodies: fc.Arbitrary<Body> = bodyFor(fn)): fc.Arbitrary<Case> =>
  fc.record({
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

async function check(c: Case, fixed = false): Promise<void> {
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
  for (const m of fixed ? [seen] : [seen, seenFuzzing]) {
    const counts = m.get(c.fn) as Map<number, number>;
    counts.set(status, (counts.get(status) ?? 0) + 1);
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
      assert.match(parsed.errcode, /^M_[A-Z_]+$/, `${where}: errcode`);
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
      if (status === 409) assert.equal(path, '/network/reactions', `${where}: 409 ${parsed.error}`);
      if (c.fn === 'network-media-download' && status === 413) {
        assert.ok(typeof parsed.size === 'number' && parsed.size > MESSAGES.MEDIA_MAX_BYTES, `${where}: a 413 gives the medium's size: ${JSON.stringify(parsed)}`);
      }
    } else {
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
] as Array<[HttpFunctionName, number]>) {
  test(`fuzz ${fn}: always a well-formed Matrix answer, no unclassified error, no token in the logs, no pollution`, async (t) => {
    await fc.assert(fc.asyncProperty(casesFor(fn), (c) => check(c)), params(n));
    t.diagnostic(`${fn} answers by status: ${JSON.stringify(Object.fromEntries(seen.get(fn) ?? []))}`);
  });
}

/** The route each function serves (check() gives each push a fresh txnId). */
const canonicalPath: Record<HttpFunctionName, () => string> = {
  'user-query': () => `/_matrix/app/v1/users/${enc('@irc_bob:example.org')}`,
  'room-query': () => `/_matrix/app/v1/rooms/${enc('#irc_lobby:example.org')}`,
  push: () => '/_matrix/app/v1/transactions/',
  ping: () => '/_matrix/app/v1/ping',
  thirdparty: () => '/_matrix/app/v1/thirdparty/location/irc',
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
  unrecognized: 'GET',
  'network-inbound': 'POST',
  'network-media-upload': 'POST',
  'network-media-download': 'GET',
};
/** A real link to a seeded medium: the link's request is valid whatever body comes with it. */
const CANONICAL_LINK: Link = { server: 'example.org', mediaId: SEEDED_MEDIA[0]!.mediaId, expect: { bytes: SEEDED_MEDIA[0]!.bytes, type: SEEDED_MEDIA[0]!.type }, expiresIn: 3600, fault: 'none' };
/** A valid request to each function but for its body. */
const canonicalCase = (fn: HttpFunctionName, b: Body): Case => ({
  fn,
  method: CANONICAL_METHOD[fn],
  path: canonicalPath[fn](),
  auth: { header: `Bearer ${HS_TOKEN}` },
  query: fn === 'network-media-upload' ? { sender: 'bob', filename: 'nasty.bin' } : fn === 'thirdparty' ? { channel: 'fuzz' } : {},
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

test('the conversation routes, well formed: a join and a leave, a profile, room details, a private message', async () => {
  const at = (path: string, b: unknown, expect: number) => check({ ...canonicalCase('network-inbound', JSON.stringify(b)), path, expect }, true);
  await at('/network/members', { room: 'fuzz', user: { id: 'erin', displayName: 'Erin' }, membership: 'join' }, 200);
  await at('/network/members', { room: 'fuzz', user: { id: 'erin' }, membership: 'leave', reason: 'bye' }, 200);
  await at('/network/members', { room: 'nowhere', user: { id: 'erin' }, membership: 'join' }, 202);
  await at('/network/profile', { user: { id: 'erin', displayName: 'Erin E' } }, 200);
  await at('/network/rooms/fuzz', { topic: 'fuzzed' }, 200);
  await at('/network/messages', { id: 'pm-fixed', to: '@alice:example.org', sender: { id: 'erin' }, body: 'psst', ts: 1_700_000_000_000 }, 200);
});

test('fuzz every handler with huge and deeply nested bodies and everything else random', async () => {
  await fc.assert(fc.asyncProperty(fc.constantFrom(...FUNCTIONS).chain((fn) => caseOf(fn, bigBody)), (c) => check(c)), params(30));
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
  ];
  for (const [fn, statuses] of PAST_THE_CHECKS) for (const status of statuses) assert.ok(fuzzed(fn, status) > 0, `no random case of ${fn} got ${status}`);
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
