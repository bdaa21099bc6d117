/**
 * Fuzz (issue 5, item 8): property-based tests with fast-check over every handler
 * (user-query, room-query, push, ping, unrecognized, network-inbound), invoked as API
 * Gateway invokes them, against DynamoDB Local, the fake HS and the fake webhook network.
 *
 * Inputs: random paths (encoded, raw, invalid percent-encoding, over-long IDs), methods,
 * extra headers, Authorization variants (right/wrong/missing/both, Basic, lower-case scheme,
 * no token, padding), ?access_token= and other query strings, X-Signature right/wrong/stale,
 * and bodies: random JSON, shaped-but-wrong transactions and inbound messages, text, bytes
 * that are not UTF-8, base64 bodies (valid and garbage), bodies over and near the 6 MB limit,
 * JSON nested 50,000 deep, and prototype-pollution JSON (`__proto__`, `constructor.prototype`).
 *
 * For every input:
 * - the answer is well-formed: a status from the handler's allowed set, a JSON object body
 *   (content-type application/json), and on errors a string `errcode` (M_…) and `error`;
 * - never an unclassified exception: no 500, no "unexpected error" log line;
 * - push never answers 503 here (the HS and the network are healthy, txnIds unique): a 503
 *   for a given body would make the HS resend the same bytes forever (a poison transaction);
 * - no secret in the logs: not the hs_token, the as_token or the network secret, nor any
 *   token a caller presented;
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
const FUNCTIONS: HttpFunctionName[] = ['user-query', 'room-query', 'push', 'ping', 'unrecognized', 'network-inbound', 'network-media-upload', 'network-media-download'];
const handlers = new Map<HttpFunctionName, Handler>();
for (const fn of FUNCTIONS) handlers.set(fn, (await import(`../functions/${fn}.ts`)).handler as Handler);

/** What each function may answer when the HS and the network are healthy. */
const ALLOWED: Record<HttpFunctionName, number[]> = {
  'user-query': [200, 400, 401, 403, 404],
  'room-query': [200, 400, 401, 403, 404],
  push: [200, 400, 401, 403, 413],
  ping: [200, 401, 403],
  unrecognized: [404, 405],
  'network-inbound': [200, 202, 400, 401, 403, 404, 413],
  // A fuzzed upload that passes the signature is a real upload: 200 is fine.
  'network-media-upload': [200, 400, 401, 403, 413],
  // No fuzzed link carries a valid signature.
  'network-media-download': [400, 403],
};
const SUCCESS_BODY: Partial<Record<HttpFunctionName, (status: number, body: any) => boolean>> = {
  'network-inbound': (s, b) => (s === 200 ? typeof b.event_id === 'string' : b.kept === true),
};

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
  unrecognized: [],
  'network-inbound': ['/network/messages', '/network/edits', '/network/deletions', '/network/reactions'],
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

const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('GET', 'PUT', 'POST') },
  { weight: 1, arbitrary: fc.constantFrom('DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'get', 'PROPFIND') },
);

const queryString = fc.dictionary(
  fc.oneof(fc.constantFrom('user_id', 'ts', 'kind', 'access_token', 'a', ''), fc.string({ unit: 'grapheme-ascii', maxLength: 8 })),
  text,
  { maxKeys: 3 },
);

const extraHeaders = fc.dictionary(
  fc.oneof(
    fc.constantFrom('content-type', 'x-signature', 'idempotency-key', 'content-length', 'x-forwarded-for', 'cookie'),
    fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }).map((s) => s.toLowerCase().replace(/[^a-z0-9-]/g, 'x')),
  ),
  text,
  { maxKeys: 3 },
);

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
/** Bodies, with more of the shape the function reads. */
const bodyFor = (fn: HttpFunctionName): fc.Arbitrary<Body> => {
  if (fn === 'push') return fc.oneof({ weight: 1, arbitrary: transaction.map((v) => JSON.stringify(v)) }, { weight: 2, arbitrary: body });
  if (fn === 'network-inbound') return fc.oneof({ weight: 1, arbitrary: goodInbound.map((v) => JSON.stringify(v)) }, { weight: 2, arbitrary: body });
  return body;
};
/** Rare, slow inputs: their own property with a few runs. */
const bigBody: fc.Arbitrary<Body> = fc.constantFrom<Body>(...HUGE, ...DEEP);

const signature = fc.oneof(
  { weight: 4, arbitrary: fc.constant('good') },
  { weight: 1, arbitrary: fc.constant('stale') },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: text },
  { weight: 1, arbitrary: fc.constant('t=1,v1=' + '0'.repeat(64)) },
);
const tweak = fc.constantFrom<'none' | 'b64-garbage' | 'null-body' | 'no-query'>('none', 'none', 'none', 'none', 'b64-garbage', 'null-body', 'no-query');

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
}

const caseOf = (fn: HttpFunctionName, bodies: fc.Arbitrary<Body> = bodyFor(fn)): fc.Arbitrary<Case> =>
  fc.record({
    fn: fc.constant(fn),
    method: method,
    path: path(fn),
    auth,
    query: queryString,
    headers: extraHeaders,
    body: bodies,
    signature,
    tweak,
  });

// ---------------------------------------------------------------------------------------- the property

let txnSeq = 0;
/** Answers seen, per function and status: printed, and checked for coverage at the end. */
const seen = new Map<HttpFunctionName, Map<number, number>>(FUNCTIONS.map((f) => [f, new Map()]));

async function check(c: Case): Promise<void> {
  const mark = as.logs.length;
  const query: Record<string, string> = { ...c.query };
  delete query.access_token;
  if (c.auth.query !== undefined) query.access_token = c.auth.query;
  const headers: Record<string, string> = { ...c.headers };
  delete headers.authorization;
  if (c.auth.header !== undefined) headers.authorization = c.auth.header;
  let path = c.path;
  // Unique txnIds, so that "a repeat of a done txnId" is not what every push meets.
  if (c.fn === 'push' && /\/transactions\/[^/]*$/.test(path)) path = `${path}fz${++txnSeq}`;
  if (c.signature !== undefined) {
    const raw = c.body === undefined ? '' : Buffer.isBuffer(c.body) ? c.body.toString('utf8') : c.body;
    if (c.signature === 'good') headers['x-signature'] = network.sign(raw);
    else if (c.signature === 'stale') headers['x-signature'] = network.sign(raw, Date.now() - 10 * 60_000);
    else headers['x-signature'] = c.signature;
  }
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
  const res = await handler(event, lambdaContext(15_000));
  const lines = as.logs.slice(mark);
  const where = `${c.fn} ${c.method} ${path.slice(0, 120)}`;

  assert.equal(typeof res?.statusCode, 'number', `${where}: no status`);
  const status = res.statusCode as number;
  const counts = seen.get(c.fn) as Map<number, number>;
  counts.set(status, (counts.get(status) ?? 0) + 1);
  let parsed: any;
  assert.doesNotThrow(() => (parsed = JSON.parse(res.body ?? '')), `${where}: body is not JSON: ${String(res.body).slice(0, 200)}`);
  assert.ok(parsed && typeof parsed === 'object' && !Array.isArray(parsed), `${where}: body is not a JSON object`);
  assert.equal(res.headers?.['content-type'], 'application/json', `${where}: content-type`);
  assert.ok(ALLOWED[c.fn].includes(status), `${where}: status ${status} ${JSON.stringify(parsed).slice(0, 300)}`);
  if (status >= 400) {
    assert.equal(typeof parsed.errcode, 'string', `${where}: errcode`);
    assert.match(parsed.errcode, /^M_[A-Z_]+$/, `${where}: errcode`);
    assert.equal(typeof parsed.error, 'string', `${where}: error`);
  } else {
    const shape = SUCCESS_BODY[c.fn];
    if (shape) assert.ok(shape(status, parsed), `${where}: success body ${JSON.stringify(parsed)}`);
    else assert.deepEqual(parsed, {}, `${where}: success body`);
  }

  const bad = lines.filter((l) => /"msg":"(unexpected error|configuration error)"/.test(l));
  assert.deepEqual(bad, [], `${where}: an unclassified exception was logged`);
  const presented = [c.auth.header, c.auth.query].filter((t): t is string => typeof t === 'string');
  const wrongTokens = presented.flatMap((t) => t.match(/WRONG-\S+/g) ?? []);
  for (const line of lines) {
    for (const s of [...SECRETS, ...wrongTokens]) assert.ok(!line.includes(s), `${where}: a token reached the logs: ${line.slice(0, 300)}`);
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
  ['unrecognized', 300],
  ['network-inbound', 500],
] as Array<[HttpFunctionName, number]>) {
  test(`fuzz ${fn}: always a well-formed Matrix answer, no unclassified error, no token in the logs, no pollution`, async (t) => {
    await fc.assert(fc.asyncProperty(caseOf(fn), check), params(n));
    t.diagnostic(`${fn} answers by status: ${JSON.stringify(Object.fromEntries(seen.get(fn) ?? []))}`);
  });
}

/** The route each function serves (check() gives each push a fresh txnId). */
const canonicalPath: Record<HttpFunctionName, () => string> = {
  'user-query': () => `/_matrix/app/v1/users/${enc('@irc_bob:example.org')}`,
  'room-query': () => `/_matrix/app/v1/rooms/${enc('#irc_lobby:example.org')}`,
  push: () => '/_matrix/app/v1/transactions/',
  ping: () => '/_matrix/app/v1/ping',
  unrecognized: () => '/_matrix/app/v1/thirdparty/protocol',
  'network-inbound': () => '/network/messages',
  'network-media-upload': () => '/network/media',
  'network-media-download': () => '/network/media/example.org/abc',
};

test('every handler, every huge, deeply nested and prototype-polluting body, with valid credentials', async () => {
  // Not left to chance: each of these slow or nasty bodies meets each handler once, past auth.
  for (const fn of FUNCTIONS) {
    for (const b of [...HUGE, ...DEEP, ...POLLUTION]) {
      await check({
        fn,
        method: fn === 'push' ? 'PUT' : fn === 'network-inbound' || fn === 'ping' ? 'POST' : 'GET',
        path: canonicalPath[fn](),
        auth: { header: `Bearer ${HS_TOKEN}` },
        query: {},
        headers: {},
        body: b,
        signature: 'good',
        tweak: 'none',
      });
    }
  }
});

test('fuzz every handler with huge and deeply nested bodies and everything else random', async () => {
  await fc.assert(fc.asyncProperty(fc.constantFrom(...FUNCTIONS).chain((fn) => caseOf(fn, bigBody)), check), params(30));
});

test('the fuzzing reached past the auth check: bodies were parsed, messages delivered and posted', async () => {
  // Guards the properties above from passing vacuously (e.g. every request refused at auth).
  const at = (fn: HttpFunctionName, status: number) => seen.get(fn)?.get(status) ?? 0;
  for (const fn of FUNCTIONS) for (const status of ALLOWED[fn]) assert.ok(at(fn, status) > 0, `${fn} never answered ${status}`);
  // What push queued goes out through the deliver function.
  await as.deliver();
  assert.ok(network.accepted.length > 0, 'some pushed message reached the network');
  assert.ok(as.hs.calls.some((c) => c.path.includes('/send/')), 'some inbound message was posted to the HS');
  assert.ok(as.logs.some((l) => l.includes('"errcode":"M_NOT_JSON"')), 'some body was not JSON');
  assert.ok(as.logs.some((l) => l.includes('"errcode":"M_TOO_LARGE"')), 'some body was too large');
});
