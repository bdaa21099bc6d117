/**
 * The Application Service API's third-party lookups (item 5 of issue 24): the protocol's
 * metadata, searches of the network's rooms and users, and the way back from our aliases and
 * user IDs. Through the function (invoked as API Gateway does), and through the fake homeserver
 * over HTTP as Synapse asks them for its clients (`GET /_matrix/client/v3/thirdparty/…`), the
 * fake network answering the searches. Every answer of the AS is checked against the spec's
 * protocols.yaml, the homeserver's against third_party_lookup.yaml, the network's traffic
 * against docs/network-api.yaml.
 */
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { AS_TOKEN, HS_TOKEN, SERVER, startAs } from './support/as.js';
import type { AsUnderTest } from './support/as.js';
import { startFakeNetwork } from './support/fake-network.js';
import { startGateway } from './support/gateway.js';
import { synapseQueryPath } from './support/fake-hs.js';
import { checkAsResponse, checkRegistration } from './support/spec.js';
import { parseConfig } from '../lib/config.js';
import { THIRD_PARTY } from '../lib/defaults.js';
import { registration } from '../lib/appservice/registration.js';
import { openNetwork } from '../lib/bridge/adapters/open.js';
import { protocolMetadata, thirdPartyLookup } from '../lib/bridge/thirdparty.js';
import { namespaces } from '../lib/matrix/namespaces.js';
import { log } from '../lib/log.js';

const AS_ID = 'matrix-appservice-lambda';
const network = await startFakeNetwork();
after(() => network.close());
const as: AsUnderTest = await startAs({
  NETWORK: 'webhook',
  NETWORK_URL: network.url,
  NETWORK_SECRET: network.secret,
  NETWORK_TIMEOUT_MS: '1000',
  PROTOCOL_NETWORK_NAME: 'Example IRC',
  PROTOCOL_ICON: 'mxc://example.org/ircIcon',
});
const thirdparty = (await import('../functions/thirdparty.js')).handler;
// The AS at a URL, for the homeserver to call: its third-party routes, as serverless.yml has them.
const gateway = await startGateway((method, path) => (method === 'GET' && /^\/_matrix\/app\/(v1|unstable)\/thirdparty\//.test(path) ? (thirdparty as never) : undefined));
as.hs.registration = { id: AS_ID, url: gateway.url, hsToken: HS_TOKEN, protocols: ['irc'] };
const alice = as.hs.clientToken('@alice:example.org');

/** The spec's path of an answer (the legacy prefix has the same operations). */
const specPath = (path: string) => path.replace(/^\/_matrix\/app\/unstable\//, '/_matrix/app/v1/');
const asProblems: string[] = [];
const checkAnswer = (path: string, status: number, body: unknown) => {
  for (const p of checkAsResponse('GET', specPath(path), status, body)) asProblems.push(`${path} → ${status}: ${p}`);
};

/** The homeserver asks the AS, with its hs_token, a path and a raw query string. */
async function ask(path: string, rawQuery = '', headers: Record<string, string> = { authorization: `Bearer ${HS_TOKEN}` }) {
  const res = await as.call('thirdparty', { method: 'GET', path, rawQuery, headers });
  checkAnswer(path, res.status, res.body);
  return res;
}
const q = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** A Matrix client asks the homeserver (over HTTP), with Alice's token. */
async function client(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${as.hs.url}/_matrix/client/v3${path}`, { headers: { authorization: `Bearer ${alice}` } });
  return { status: res.status, body: await res.json() };
}

const netFrom = () => network.received.length;
const gwFrom = () => gateway.requests.length;

afterEach(() => {
  // What the homeserver got from the AS over HTTP is checked too.
  for (const r of gateway.requests.splice(0)) checkAnswer(r.path, r.status, r.answer);
  assert.deepEqual(asProblems.splice(0), [], "the AS's answers are the spec's");
  assert.deepEqual(as.hs.specErrors, [], "the homeserver's traffic is the spec's");
  assert.deepEqual(network.specErrors, [], "the network's traffic is the contract's");
  network.onSearch = undefined;
  as.hs.options.forwardReverseLookups = false;
  as.hs.options.legacyThirdPartyPaths = false;
});

const EXPECTED_PROTOCOL = {
  user_fields: ['nickname'],
  location_fields: ['channel'],
  icon: 'mxc://example.org/ircIcon',
  field_types: {
    nickname: { regexp: THIRD_PARTY.FIELD_REGEXP, placeholder: 'Bob' },
    channel: { regexp: THIRD_PARTY.FIELD_REGEXP, placeholder: '#matrix' },
  },
  instances: [{ network_id: 'irc', desc: 'Example IRC', fields: {} }],
};

test('the protocol: its metadata from the configuration, and through the homeserver with the instance_id Synapse adds', async () => {
  const tableBefore = await as.table.items();
  const res = await ask('/_matrix/app/v1/thirdparty/protocol/irc');
  assert.equal(res.status, 200);
  const protocol = res.body as { user_fields: string[]; location_fields: string[]; field_types: Record<string, { regexp: string; placeholder: string }> };
  // The spec: every entry of user_fields and location_fields MUST have its field_types.
  for (const f of [...protocol.user_fields, ...protocol.location_fields]) assert.ok(protocol.field_types[f], f);
  for (const type of Object.values(protocol.field_types)) assert.match(type.placeholder, new RegExp(type.regexp), 'each placeholder is a valid value');
  assert.deepEqual(res.body, EXPECTED_PROTOCOL);

  const withId = { ...EXPECTED_PROTOCOL, instances: [{ ...EXPECTED_PROTOCOL.instances[0], instance_id: `${AS_ID}|irc` }] };
  assert.deepEqual(await client('/thirdparty/protocols'), { status: 200, body: { irc: withId } });
  assert.deepEqual(await client('/thirdparty/protocol/irc'), { status: 200, body: withId });
  // A protocol of no registration: Synapse answers without asking the AS.
  const before = gwFrom();
  assert.equal((await client('/thirdparty/protocol/gitter')).status, 404);
  assert.equal(gwFrom(), before, 'the AS was not asked about gitter');

  // Asked all the same: the spec's 404 for a protocol the AS does not provide.
  const unknown = await ask('/_matrix/app/v1/thirdparty/protocol/gitter');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.errcode, 'M_NOT_FOUND');
  assert.match(unknown.body.error, /"irc", not "gitter"/);

  // Nothing of this touched the table, the network or the homeserver's API (the client's calls only).
  assert.deepEqual(await as.table.items(), tableBefore);
  assert.deepEqual(network.received.filter((r) => r.path.includes('protocol')), []);
  assert.ok(as.hs.calls.every((c) => c.path.startsWith('/_matrix/client/v3/thirdparty/')), as.hs.calls.map((c) => c.path).join(', '));
});

test('a location search asks the network and answers our aliases, which a Matrix user joins', async () => {
  network.rooms.set('#matrix', { name: '#matrix', topic: 'all about matrix' });
  network.rooms.set('#matrix-dev', { name: '#matrix-dev' });
  network.rooms.set('#cooking', { name: '#cooking' });
  const from = netFrom();
  const res = await ask('/_matrix/app/v1/thirdparty/location/irc', q({ channel: '#Matrix' }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, [
    { alias: `#irc_#matrix:${SERVER}`, protocol: 'irc', fields: { channel: '#matrix' } },
    { alias: `#irc_#matrix-dev:${SERVER}`, protocol: 'irc', fields: { channel: '#matrix-dev' } },
  ]);
  // One signed GET (the fake checks the signature), the protocol's field as the query.
  const [search, ...more] = network.received.slice(from);
  assert.equal(more.length, 0);
  assert.equal(`${search!.method} ${search!.rawPath}`, 'GET /search/rooms');
  assert.equal(search!.status, 200);
  assert.match(String(search!.headers['x-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);

  // Through the homeserver, as a client searches; then a join of the alias found makes the room.
  const found = await client(`/thirdparty/location/irc?${q({ channel: 'matrix-dev' })}`);
  const alias: string = found.body[0]?.alias;
  assert.deepEqual(found, { status: 200, body: [{ alias: `#irc_#matrix-dev:${SERVER}`, protocol: 'irc', fields: { channel: '#matrix-dev' } }] });
  const joined = await as.hs.userJoin('@alice:example.org', alias);
  assert.equal(joined.status, 200, joined.error);
  assert.equal(as.hs.rooms.get(joined.roomId!)?.name, '#matrix-dev');
});

test("the network's own fields go with its results; the naming field is the network's id unless it says otherwise", async () => {
  network.onSearch = (kind, fields) => {
    assert.equal(kind, 'rooms');
    assert.deepEqual(fields, { channel: ['#rust'] }, 'the one field, nothing else of the query');
    return [
      { id: '#rust', fields: { network: 'irc.example.org' }, name: 'Rust', members: 12 },
      { id: '#rust-beginners', fields: { channel: '#rust-beginners (ask here)', network: 'irc.example.org', ignored: 7 } },
    ];
  };
  const res = await ask('/_matrix/app/v1/thirdparty/location/irc', `${q({ channel: '#rust' })}&limit=5&since=x`);
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, [
    { alias: `#irc_#rust:${SERVER}`, protocol: 'irc', fields: { channel: '#rust', network: 'irc.example.org' } },
    { alias: `#irc_#rust-beginners:${SERVER}`, protocol: 'irc', fields: { channel: '#rust-beginners (ask here)', network: 'irc.example.org' } },
  ]);
});

test('a user search answers the virtual users, which the user query then makes', async () => {
  network.users.set('Bob', { displayName: 'Bob' });
  network.users.set('bobby_tables', { displayName: 'Robert' });
  network.users.set('carol', { displayName: 'Carol' });
  const res = await ask('/_matrix/app/v1/thirdparty/user/irc', q({ nickname: 'bob' }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, [
    { userid: `@irc__bob:${SERVER}`, protocol: 'irc', fields: { nickname: 'Bob' } },
    { userid: `@irc_bobby__tables:${SERVER}`, protocol: 'irc', fields: { nickname: 'bobby_tables' } },
  ]);
  assert.equal(network.received.at(-1)?.rawPath, '/search/users');

  const found = await client(`/thirdparty/user/irc?${q({ nickname: 'Robert' })}`);
  const userId: string = found.body[0]?.userid;
  assert.deepEqual(found.body, [{ userid: `@irc_bobby__tables:${SERVER}`, protocol: 'irc', fields: { nickname: 'bobby_tables' } }]);
  // The ID found is a user the homeserver can ask the AS about (as it does for an invite).
  assert.equal((await as.hsCall('user-query', { method: 'GET', path: synapseQueryPath('users', userId) })).status, 200);
  assert.equal(as.hs.users.get(userId)?.displayName, 'Robert');
});

test('nothing found: the spec\'s 404 M_NOT_FOUND, from an empty answer or a network without searches; Synapse shows []', async () => {
  for (const answer of [() => [], () => ({ status: 404 }), () => ({ status: 501 })]) {
    network.onSearch = answer;
    const res = await ask('/_matrix/app/v1/thirdparty/location/irc', q({ channel: '#nowhere' }));
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
    assert.match(res.body.error, /no room for channel "#nowhere"/);
    assert.deepEqual(await client(`/thirdparty/location/irc?${q({ channel: '#nowhere' })}`), { status: 200, body: [] });
  }
  network.onSearch = () => [];
  assert.equal((await ask('/_matrix/app/v1/thirdparty/user/irc', q({ nickname: 'nobody' }))).status, 404);
});

test('an unknown protocol is 404 M_NOT_FOUND, and the network is not asked', async () => {
  const from = netFrom();
  for (const path of ['/_matrix/app/v1/thirdparty/location/gitter', '/_matrix/app/v1/thirdparty/user/gitter', '/_matrix/app/v1/thirdparty/location/IRC', '/_matrix/app/v1/thirdparty/user/irc%2Fx']) {
    const res = await ask(path, q({ channel: '#matrix', nickname: 'bob' }));
    assert.equal(res.status, 404, path);
    assert.equal(res.body.errcode, 'M_NOT_FOUND', path);
  }
  assert.equal(netFrom(), from);
  // Through the homeserver: a protocol nobody registered is never asked of the AS.
  const before = gwFrom();
  assert.deepEqual(await client(`/thirdparty/location/gitter?${q({ channel: '#matrix' })}`), { status: 200, body: [] });
  assert.equal(gwFrom(), before);
});

test('a bad query is 400 naming the parameter, and the network is not asked', async () => {
  const from = netFrom();
  const cases: Array<[string, string, string, RegExp]> = [
    ['location/irc', '', 'M_MISSING_PARAM', /needs channel/],
    ['location/irc', q({ nickname: 'bob' }), 'M_MISSING_PARAM', /needs channel/],
    ['user/irc', q({ channel: '#matrix' }), 'M_MISSING_PARAM', /needs nickname/],
    ['location/irc', 'channel=a&channel=b', 'M_INVALID_PARAM', /channel is given 2 times/],
    ['location/irc', q({ channel: '' }), 'M_INVALID_PARAM', /channel must be 1 to 255/],
    ['location/irc', q({ channel: 'x'.repeat(256) }), 'M_INVALID_PARAM', /channel must be 1 to 255/],
    ['user/irc', q({ nickname: 'two\nlines' }), 'M_INVALID_PARAM', /nickname must be 1 to 255 characters on one line/],
    ['location', '', 'M_MISSING_PARAM', /alias is required/],
    ['location', q({ alias: 'matrix' }), 'M_INVALID_PARAM', /is not a room alias/],
    ['location', `${q({ alias: '#irc_a:example.org' })}&${q({ alias: '#irc_b:example.org' })}`, 'M_INVALID_PARAM', /alias is given 2 times/],
    ['user', '', 'M_MISSING_PARAM', /userid is required/],
    ['user', q({ userid: 'irc_bob' }), 'M_INVALID_PARAM', /is not a Matrix user ID/],
  ];
  for (const [path, query, errcode, error] of cases) {
    const res = await ask(`/_matrix/app/v1/thirdparty/${path}`, query);
    assert.equal(res.status, 400, `${path}?${query}`);
    assert.equal(res.body.errcode, errcode, `${path}?${query}`);
    assert.match(res.body.error, error, `${path}?${query}`);
  }
  assert.equal(netFrom(), from, 'no search was made');
  // A path that is not validly percent-encoded, as pathId answers it.
  const bad = await ask('/_matrix/app/v1/thirdparty/location/%ZZ', q({ channel: 'x' }));
  assert.deepEqual([bad.status, bad.body.errcode], [400, 'M_INVALID_PARAM']);
});

test('the network failing is 503 (never a false "nothing"); Synapse shows its client []', async () => {
  const failures: Array<[string, () => unknown, RegExp]> = [
    ['a 500', () => ({ status: 500 }), /answered the rooms search with HTTP 500/],
    ['a 429', () => ({ status: 429 }), /HTTP 429/],
    ['a 403 (our signature refused)', () => ({ status: 403 }), /HTTP 403/],
    ['no answer in time', () => ({ hang: true }), /did not answer the rooms search in time/],
    ['an answer that is no array', () => ({ rooms: [] }), /is not a JSON array/],
    ['a result without its id', () => [{ id: '#ok' }, { name: 'no id' }], /has no id .* at \[1\]/],
    ['an id too long', () => [{ id: 'x'.repeat(256) }], /has no id/],
  ];
  for (const [what, answer, error] of failures) {
    network.onSearch = answer;
    const started = Date.now();
    const res = await ask('/_matrix/app/v1/thirdparty/location/irc', q({ channel: '#matrix' }));
    assert.equal(res.status, 503, what);
    assert.equal(res.body.errcode, 'M_UNKNOWN', what);
    assert.match(res.body.error, error, what);
    assert.ok(Date.now() - started < 5000, `${what}: answered within the network timeout`);
  }
  network.onSearch = () => ({ status: 500 });
  assert.deepEqual(await client(`/thirdparty/user/irc?${q({ nickname: 'bob' })}`), { status: 200, body: [] });
  // The fake's malformed answers are the contract's violations, on purpose: what it says about them, and nothing else.
  const problems = network.specErrors.splice(0);
  assert.ok(problems.every((p) => /answer 200 to GET \/search\/rooms: 200 body/.test(p)), problems.join('\n'));
  assert.ok(problems.length >= 2, problems.join('\n'));
});

test('results: at most 100, each alias once, a name too long for a Matrix ID left out', async () => {
  const long = 'r'.repeat(250); // a fine network id; #irc_<it>:example.org is over 255 bytes
  network.onSearch = () => [{ id: '#a' }, { id: long }, { id: '#a', fields: { network: 'again' } }, ...Array.from({ length: 150 }, (_, i) => ({ id: `#room${i}` }))];
  const from = as.logs.length;
  const res = await ask('/_matrix/app/v1/thirdparty/location/irc', q({ channel: '#' }));
  assert.equal(res.status, 200);
  assert.equal(res.body.length, THIRD_PARTY.MAX_RESULTS);
  assert.deepEqual(res.body[0], { alias: `#irc_#a:${SERVER}`, protocol: 'irc', fields: { channel: '#a' } });
  assert.equal(res.body[1].alias, `#irc_#room0:${SERVER}`);
  assert.equal(new Set(res.body.map((l: { alias: string }) => l.alias)).size, res.body.length);
  assert.ok(as.logs.slice(from).some((l) => l.includes('its name makes a Matrix ID over 255 bytes')));
  // Only names that cannot be Matrix IDs: nothing left is "nothing found".
  network.onSearch = () => [{ id: long }];
  assert.equal((await ask('/_matrix/app/v1/thirdparty/location/irc', q({ channel: 'r' }))).status, 404);
});

test('reverse lookups: from our own mapping, no network call; outside the namespace 404', async () => {
  const from = netFrom();
  const location = async (alias: string) => ask('/_matrix/app/v1/thirdparty/location', q({ alias }));
  const user = async (userid: string) => ask('/_matrix/app/v1/thirdparty/user', q({ userid }));
  assert.deepEqual((await location(`#irc_#matrix:${SERVER}`)).body, [{ alias: `#irc_#matrix:${SERVER}`, protocol: 'irc', fields: { channel: '#matrix' } }]);
  assert.deepEqual((await location(`#irc_#a=20b:${SERVER}`)).body, [{ alias: `#irc_#a=20b:${SERVER}`, protocol: 'irc', fields: { channel: '#a b' } }]);
  assert.deepEqual((await user(`@irc__bob:${SERVER}`)).body, [{ userid: `@irc__bob:${SERVER}`, protocol: 'irc', fields: { nickname: 'Bob' } }]);
  assert.deepEqual((await user(`@irc_=5bm=5datrix:${SERVER}`)).body, [{ userid: `@irc_=5bm=5datrix:${SERVER}`, protocol: 'irc', fields: { nickname: '[m]atrix' } }]);
  for (const res of [
    await location('#matrix:example.org'),
    await location('#irc_matrix:other.example'),
    await location(`#irc_:${SERVER}`),
    await location(`#irc_a=zz:${SERVER}`),
    await user(`@alice:${SERVER}`),
    await user(`@ircbot:${SERVER}`),
    await user(`@irc_Bob:${SERVER}`),
    await user('@irc_bob:other.example'),
  ]) {
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
  }
  assert.equal(netFrom(), from, 'the network was not asked');

  // Synapse answers its clients' reverse lookups itself, [] without asking the AS...
  const before = gwFrom();
  assert.deepEqual(await client(`/thirdparty/location?${q({ alias: `#irc_#matrix:${SERVER}` })}`), { status: 200, body: [] });
  assert.deepEqual(await client(`/thirdparty/user?${q({ userid: `@irc__bob:${SERVER}` })}`), { status: 200, body: [] });
  assert.equal(gwFrom(), before);
  // ...a homeserver that asks, as the spec's AS API describes, gets the mapping.
  as.hs.options.forwardReverseLookups = true;
  assert.deepEqual(await client(`/thirdparty/location?${q({ alias: `#irc_#matrix:${SERVER}` })}`), {
    status: 200,
    body: [{ alias: `#irc_#matrix:${SERVER}`, protocol: 'irc', fields: { channel: '#matrix' } }],
  });
  assert.deepEqual(await client(`/thirdparty/user?${q({ userid: `@irc__bob:${SERVER}` })}`), {
    status: 200,
    body: [{ userid: `@irc__bob:${SERVER}`, protocol: 'irc', fields: { nickname: 'Bob' } }],
  });
  assert.deepEqual(await client(`/thirdparty/user?${q({ userid: `@alice:${SERVER}` })}`), { status: 200, body: [] }, 'our 404, the client\'s []');
  assert.equal(netFrom(), from, 'the network was not asked');
});

test('the hs_token: 401 without one, 403 for a wrong one, before the network is asked; ?access_token= works and goes no further', async () => {
  const from = netFrom();
  const path = '/_matrix/app/v1/thirdparty/location/irc';
  const none = await ask(path, q({ channel: '#matrix' }), {});
  assert.deepEqual([none.status, none.body.errcode], [401, 'M_UNAUTHORIZED']);
  const wrong = await ask(path, q({ channel: '#matrix' }), { authorization: `Bearer ${AS_TOKEN}` });
  assert.deepEqual([wrong.status, wrong.body.errcode], [403, 'M_FORBIDDEN']);
  const disagree = await ask(path, q({ channel: '#matrix', access_token: 'other' }), { authorization: `Bearer ${HS_TOKEN}` });
  assert.deepEqual([disagree.status, disagree.body.errcode], [403, 'M_FORBIDDEN']);
  for (const p of ['/_matrix/app/v1/thirdparty/protocol/irc', '/_matrix/app/v1/thirdparty/user', '/_matrix/app/unstable/thirdparty/location/irc']) {
    assert.equal((await ask(p, q({ userid: `@irc_x:${SERVER}`, channel: 'x' }), { authorization: 'Bearer nope' })).status, 403, p);
  }
  assert.equal(netFrom(), from, 'nothing was asked without the hs_token');

  network.rooms.set('#matrix', { name: '#matrix' });
  const legacy = await ask(path, q({ channel: '#matrix', access_token: HS_TOKEN }), {});
  assert.equal(legacy.status, 200);
  assert.equal(network.received.at(-1)?.rawPath, '/search/rooms');
  assert.ok(!JSON.stringify(network.received.slice(from)).includes(HS_TOKEN), 'the hs_token never reaches the network');
});

test('Synapse before 1.81: /_matrix/app/unstable/thirdparty/… with ?access_token=, answered the same', async () => {
  as.hs.options.legacyThirdPartyPaths = true;
  network.rooms.set('#cooking', { name: '#cooking' });
  network.users.set('carol', { displayName: 'Carol' });
  const before = gwFrom();
  const withId = { ...EXPECTED_PROTOCOL, instances: [{ ...EXPECTED_PROTOCOL.instances[0], instance_id: `${AS_ID}|irc` }] };
  assert.deepEqual(await client('/thirdparty/protocol/irc'), { status: 200, body: withId });
  assert.deepEqual((await client(`/thirdparty/location/irc?${q({ channel: '#cooking' })}`)).body, [{ alias: `#irc_#cooking:${SERVER}`, protocol: 'irc', fields: { channel: '#cooking' } }]);
  assert.deepEqual((await client(`/thirdparty/user/irc?${q({ nickname: 'carol' })}`)).body, [{ userid: `@irc_carol:${SERVER}`, protocol: 'irc', fields: { nickname: 'carol' } }]);
  const calls = gateway.requests.slice(before);
  assert.equal(calls.length, 3);
  for (const c of calls) {
    assert.match(c.path, /^\/_matrix\/app\/unstable\/thirdparty\//);
    assert.equal(c.headers.authorization, undefined);
    assert.equal(c.status, 200);
  }
  // The AS's other routes under that prefix are not ours: the unknown-route function's 404.
  const other = await as.call('unrecognized', { method: 'GET', path: '/_matrix/app/unstable/users/@irc_x:example.org' });
  assert.deepEqual([other.status, other.body.errcode], [404, 'M_UNRECOGNIZED']);
});

test('the registration names the protocol, and the spec\'s registration schema takes it', () => {
  const cfg = parseConfig({ HOMESERVER_URL: 'http://hs', HOMESERVER_NAME: SERVER, AS_TOKEN: 'a', HS_TOKEN: 'h', TABLE_NAME: 't', QUEUE_URL: 'http://q', DEAD_LETTER_QUEUE_URL: 'http://d', PROTOCOL: 'gitter' });
  const reg = registration({ ...cfg, asUrl: 'https://as.example.org', asToken: 'a', hsToken: 'h', protocol: cfg.thirdParty.protocol });
  assert.deepEqual(reg.protocols, ['gitter']);
  assert.deepEqual(checkRegistration(reg), []);
});

test('the open network finds exactly the name given', async () => {
  const open = openNetwork(log);
  assert.deepEqual(await open.searchRooms({ channel: '#matrix' }), [{ id: '#matrix' }]);
  assert.deepEqual(await open.searchUsers({ nickname: 'Bob' }), [{ id: 'Bob' }]);
  const config = parseConfig({ HOMESERVER_URL: 'http://hs', HOMESERVER_NAME: SERVER, AS_TOKEN: 'a', HS_TOKEN: 'h', TABLE_NAME: 't', QUEUE_URL: 'http://q', DEAD_LETTER_QUEUE_URL: 'http://d' });
  const deps = { config: config as never, ns: namespaces(config), network: open, log };
  const found = await thirdPartyLookup(deps, { kind: 'location', protocol: 'irc', query: { channel: ['#Matrix Room'] } });
  assert.deepEqual(found, [{ alias: `#irc_#Matrix=20Room:${SERVER}`, protocol: 'irc', fields: { channel: '#Matrix Room' } }]);
  checkAnswer('/_matrix/app/v1/thirdparty/location/irc', 200, found);
  const users = await thirdPartyLookup(deps, { kind: 'user', protocol: 'irc', query: { nickname: ['Bob'] } });
  assert.deepEqual(users, [{ userid: `@irc__bob:${SERVER}`, protocol: 'irc', fields: { nickname: 'Bob' } }]);
  // The defaults: no icon, the network named after AS_ID.
  assert.deepEqual(protocolMetadata(config.thirdParty), { ...EXPECTED_PROTOCOL, icon: '', instances: [{ network_id: 'irc', desc: AS_ID, fields: {} }] });
  checkAnswer('/_matrix/app/v1/thirdparty/protocol/irc', 200, protocolMetadata(config.thirdParty));
});

test('last: a network that cannot be reached is 503 as well', async () => {
  await network.close();
  const res = await ask('/_matrix/app/v1/thirdparty/user/irc', q({ nickname: 'bob' }));
  assert.equal(res.status, 503);
  assert.match(res.body.error, /the network could not be reached for the users search/);
});
