/**
 * docs/provisioning-api.yaml, the provisioning API as OpenAPI 3.1: the document is sound (it
 * parses, every $ref resolves, every example validates against its schema, every operation has
 * an operationId and JSON answers with schemas, its paths are exactly the provision function's
 * routes in serverless.yml), and the provision function answers as it says: each answer's status
 * is one the operation documents and its body validates against that answer's schema (Ajv2020).
 * The checks are local (test/support/network-api.ts's are for the network contract only).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { startAs, enc } from './support/as.js';
import { uniq } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';

type Json = Record<string, any>;
const DOC_FILE = fileURLToPath(new URL('../docs/provisioning-api.yaml', import.meta.url));
const SERVERLESS_FILE = fileURLToPath(new URL('../serverless.yml', import.meta.url));
const PREFIX = '/_matrix/provision/v1';
const DOC_URI = 'https://provisioning-api.invalid/provisioning-api.yaml';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

const doc = parseYaml(readFileSync(DOC_FILE, 'utf8')) as Json;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const pointerOf = (...tokens: string[]) => tokens.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
const fragmentOf = (pointer: string) => pointer.split('/').map(encodeURIComponent).join('/');
function at(pointer: string): unknown {
  let node: unknown = doc;
  if (pointer === '') return node;
  for (const raw of pointer.slice(1).split('/')) {
    const t = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? node[Number(t)] : isObject(node) ? node[t] : undefined;
  }
  return node;
}
/** A node and its pointer, following $refs. */
function follow(pointer: string): { node: any; pointer: string } {
  let node = at(pointer);
  for (let i = 0; isObject(node) && typeof node.$ref === 'string' && i < 20; i++) {
    pointer = decodeURIComponent(node.$ref.slice(1));
    node = at(pointer);
  }
  return { node, pointer };
}

/** Every node with its pointer; example payloads are not walked into. */
function* walk(node: unknown, pointer = ''): Generator<{ node: unknown; pointer: string }> {
  yield { node, pointer };
  if (Array.isArray(node)) {
    for (const [i, v] of node.entries()) yield* walk(v, `${pointer}/${i}`);
  } else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'example' || k === 'examples' || k === 'default' || k === 'const' || k === 'enum') continue;
      yield* walk(v, pointer + pointerOf(k));
    }
  }
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false, logger: false });
ajv.addSchema({ ...structuredClone(doc), $id: DOC_URI });
const compiled = new Map<string, ValidateFunction>();
/** What is wrong with `value` as the schema at `pointer` (a JSON pointer into the document); [] when valid. */
function check(pointer: string, value: unknown, where = 'value'): string[] {
  let v = compiled.get(pointer);
  if (!v) compiled.set(pointer, (v = ajv.compile({ $ref: `${DOC_URI}#${fragmentOf(pointer)}` })));
  return v(value) ? [] : (v.errors ?? []).map((e) => `${where}${e.instancePath} ${e.message} (${e.schemaPath})`);
}

interface Operation {
  method: string;
  template: string;
  pointer: string;
  node: Json;
}
const operations: Operation[] = Object.entries(doc.paths as Json).flatMap(([template, item]) =>
  METHODS.filter((m) => isObject(item[m])).map((m) => ({ method: m.toUpperCase(), template, pointer: pointerOf('paths', template, m), node: item[m] })),
);

/** The document's template for a path under the prefix (`/rooms/%21a%3Ab/links` → `/rooms/{roomId}/links`). */
function templateOf(path: string): string | undefined {
  const parts = path.slice(PREFIX.length).split('/');
  return Object.keys(doc.paths).find((t) => {
    const ts = t.split('/');
    return ts.length === parts.length && ts.every((s, i) => /^\{.+\}$/.test(s) || s === parts[i]);
  });
}

/** What is wrong with an answer of the function, as the document says; [] when it is as documented. */
function checkAnswer(method: string, path: string, status: number, body: unknown): string[] {
  const template = templateOf(path);
  const name = `${method} ${path} → ${status}`;
  if (template === undefined) {
    // No such path: 404 M_UNRECOGNIZED.
    if (status !== 404) return [`${name}: a path the document does not have is answered 404`];
    return check(follow('/components/responses/Unrecognized').pointer + '/content/application~1json/schema', body, name);
  }
  const opPointer = pointerOf('paths', template, method.toLowerCase());
  if (!isObject(at(opPointer))) {
    // A method the path does not have: 405 M_UNRECOGNIZED.
    if (status !== 405) return [`${name}: a method the path does not have is answered 405`];
    return check(follow('/components/responses/WrongMethod').pointer + '/content/application~1json/schema', body, name);
  }
  const responses = at(opPointer + '/responses') as Json;
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
  if (key === undefined) return [`${name}: status not documented for ${method} ${template}`];
  const response = follow(opPointer + pointerOf('responses', key));
  const schemaPointer = response.pointer + '/content/application~1json/schema';
  if (at(schemaPointer) === undefined) return [`${name}: no JSON schema documented`];
  return check(schemaPointer, body, name);
}

// ---------------------------------------------------------------- the document

test('the document: OpenAPI 3.1.0, under {asUrl}/_matrix/provision/v1, bearer token or access_token', () => {
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(typeof doc.info?.title === 'string' && doc.info.title.length > 0);
  assert.ok(typeof doc.info?.version === 'string');
  assert.deepEqual(
    doc.servers.map((s: Json) => s.url),
    ['{asUrl}/_matrix/provision/v1'],
  );
  assert.ok(doc.servers[0].variables.asUrl.default);
  assert.deepEqual(doc.security, [{ bearer: [] }, { accessToken: [] }]);
  assert.deepEqual(doc.components.securitySchemes.bearer, { ...doc.components.securitySchemes.bearer, type: 'http', scheme: 'bearer' });
  assert.deepEqual(
    [doc.components.securitySchemes.accessToken.type, doc.components.securitySchemes.accessToken.in, doc.components.securitySchemes.accessToken.name],
    ['apiKey', 'query', 'access_token'],
  );
  for (const topic of ['PROVISIONING_SECRET', 'user_id', 'OpenID', 'access_token', 'M_MISSING_TOKEN', 'M_UNKNOWN_TOKEN', 'M_UNAUTHORIZED', '404 M_UNRECOGNIZED', '405 M_UNRECOGNIZED']) {
    assert.ok(String(doc.info.description).includes(topic), `info.description speaks of ${topic}`);
  }
});

test('every $ref resolves, only local ones are used, and every component is used', () => {
  let refs = 0;
  for (const { node, pointer } of walk(doc)) {
    if (!isObject(node) || typeof node.$ref !== 'string') continue;
    refs++;
    assert.ok(node.$ref.startsWith('#/'), `${pointer}: ${node.$ref} is local`);
    assert.notEqual(at(decodeURIComponent(node.$ref.slice(1))), undefined, `${pointer}: ${node.$ref} resolves`);
  }
  assert.ok(refs > 30, `the document uses its components (${refs} refs)`);
  const text = JSON.stringify(doc);
  for (const [kind, group] of Object.entries(doc.components as Json)) {
    if (kind === 'securitySchemes') continue;
    for (const name of Object.keys(group as Json)) {
      // The two answers for paths and methods no operation has are named in info.description instead.
      const used = text.includes(`"#/components/${kind}/${name}"`) || String(doc.info.description).includes(`#/components/${kind}/${name}`);
      assert.ok(used, `#/components/${kind}/${name} is used`);
    }
  }
});

test('the paths are exactly the provision function\'s routes in serverless.yml', () => {
  const serverless = parseYaml(readFileSync(SERVERLESS_FILE, 'utf8')) as Json;
  const routes = (serverless.functions.provision.events as Json[]).map((e) => String(e.httpApi));
  assert.ok(routes.length > 0);
  const fromServerless = routes
    .map((r) => {
      const [method, path] = r.split(' ') as [string, string];
      assert.ok(path.startsWith(PREFIX), `${r} is under ${PREFIX}`);
      return `${method} ${path.slice(PREFIX.length)}`;
    })
    .sort();
  assert.deepEqual(operations.map((o) => `${o.method} ${o.template}`).sort(), fromServerless);
});

test('every operation: a unique operationId, a summary, declared parameters, JSON answers with schemas and examples', () => {
  const ids = new Set<string>();
  for (const o of operations) {
    const name = `${o.method} ${o.template}`;
    assert.ok(typeof o.node.operationId === 'string' && o.node.operationId.length > 0, `${name}: operationId`);
    assert.ok(!ids.has(o.node.operationId), `${name}: operationId is unique`);
    ids.add(o.node.operationId);
    assert.ok(o.node.summary, `${name}: summary`);
    // Every {param} of the template is declared, on the operation or its path item.
    const declared = [...(doc.paths[o.template].parameters ?? []), ...(o.node.parameters ?? [])].map((p: Json) => (typeof p.$ref === 'string' ? at(decodeURIComponent(p.$ref.slice(1))) : p)) as Json[];
    for (const m of o.template.matchAll(/\{([^}]+)\}/g)) {
      assert.ok(declared.some((p) => p.in === 'path' && p.name === m[1] && p.required === true), `${name}: path parameter ${m[1]} declared`);
    }
    assert.ok(declared.some((p) => p.in === 'query' && p.name === 'user_id'), `${name}: user_id`);
    const statuses = Object.keys(o.node.responses);
    assert.ok(statuses.includes('200'), `${name}: 200`);
    for (const s of ['400', '401', '403', '405', '500', '503']) assert.ok(statuses.includes(s), `${name}: ${s}`);
    for (const status of statuses) {
      const r = follow(o.pointer + pointerOf('responses', status)).node;
      assert.ok(typeof (o.node.responses[status].description ?? r.description) === 'string', `${name} ${status}: description`);
      const json = r.content?.['application/json'];
      assert.ok(json?.schema, `${name} ${status}: a JSON schema`);
      assert.ok(json.example !== undefined || Object.keys(json.examples ?? {}).length > 0, `${name} ${status}: an example`);
    }
    const body = o.node.requestBody?.content?.['application/json'];
    if (body) assert.ok(body.schema && (body.example !== undefined || Object.keys(body.examples ?? {}).length > 0), `${name}: request schema and example`);
  }
  assert.deepEqual(operations.filter((o) => o.node.requestBody).map((o) => `${o.method} ${o.template}`), ['POST /rooms/{roomId}/links']);
  // The errors only some operations have.
  const statusesOf = (m: string, t: string) => Object.keys(operations.find((o) => o.method === m && o.template === t)!.node.responses);
  assert.ok(statusesOf('POST', '/rooms/{roomId}/links').includes('409'));
  assert.ok(statusesOf('POST', '/rooms/{roomId}/links').includes('413'));
  assert.ok(statusesOf('DELETE', '/rooms/{roomId}/links').includes('404'));
  assert.ok(operations.find((o) => o.template === '/links')!.node.parameters.some((p: Json) => p.name === 'from' && p.in === 'query'));
});

test('every example validates against its schema', () => {
  let checked = 0;
  for (const { node, pointer } of walk(doc)) {
    if (!isObject(node)) continue;
    if (node.schema !== undefined && (node.example !== undefined || isObject(node.examples))) {
      const schemaPointer = pointer + '/schema';
      if (node.example !== undefined) {
        assert.deepEqual(check(schemaPointer, node.example, `${pointer}/example`), []);
        checked++;
      }
      for (const [name, ex] of Object.entries((node.examples ?? {}) as Json)) {
        assert.ok(isObject(ex) && 'value' in ex, `${pointer}/examples/${name} has a value`);
        assert.deepEqual(check(schemaPointer, ex.value, `${pointer}/examples/${name}`), []);
        checked++;
      }
    }
    if (Array.isArray(node.examples)) {
      for (const [i, ex] of node.examples.entries()) {
        assert.deepEqual(check(pointer, ex, `${pointer}/examples/${i}`), []);
        checked++;
      }
    }
  }
  assert.ok(checked > 40, `${checked} examples checked`);
});

test('a wrong value is caught: the schemas say what the code does', () => {
  const linked = { room_id: '!abc:example.org', kind: 'linked', remote_room: '#lobby', alias: '#irc_#lobby:example.org', linked_by: '@alice:example.org', linked_at: 1764892800000 };
  const bad = (pointer: string, value: unknown) => assert.notDeepEqual(check(pointer, value), [], `${JSON.stringify(value)} is not a ${pointer}`);
  const good = (pointer: string, value: unknown) => assert.deepEqual(check(pointer, value), []);
  good('/components/schemas/Link', linked);
  good('/components/schemas/Link', { room_id: '!d:example.org', kind: 'direct', matrix_user: '@alice:example.org', remote_user: 'Bob' });
  bad('/components/schemas/Link', { ...linked, linked_at: undefined });
  bad('/components/schemas/Link', { ...linked, kind: 'portal' });
  bad('/components/schemas/Link', { room_id: '!d:example.org', kind: 'direct', remote_room: '#lobby', alias: '#irc_#lobby:example.org' });
  bad('/components/schemas/NetworkLink', { room_id: '!d:example.org', kind: 'direct', matrix_user: '@alice:example.org', remote_user: 'Bob' });
  const status = { room_id: '!abc:example.org', user_id: '@alice:example.org', bridged: null, permission: 'link', bot_joined: false, needed_power_level: 50, can_link: false, can_unlink: false };
  good('/components/schemas/RoomStatus', status);
  bad('/components/schemas/RoomStatus', { ...status, permission: 'owner' });
  bad('/components/schemas/RoomStatus', { ...status, bridged: undefined });
  bad('/components/schemas/LinkList', { links: [linked, linked] });
  bad('/components/schemas/LinkRequest', { remote_room: '' });
  bad('/components/schemas/LinkRequest', { remote_room: 'x'.repeat(256) });
  bad('/components/schemas/LinkForbiddenError', { errcode: 'ORG.MATRIX_APPSERVICE_LAMBDA.NETWORK_REFUSED', error: 'no' });
  bad('/components/schemas/UnauthorizedError', { errcode: 'M_FORBIDDEN', error: 'no' });
  bad('/components/schemas/ForbiddenError', { errcode: 'M_FORBIDDEN' });
});

// ---------------------------------------------------------------- the function answers as documented

const network = await startFakeNetwork();
after(() => network.close());
const SECRET = 'provisioning-secret-for-the-document';
const ADMIN = '@admin:example.org';
const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';
const as = await startAs(
  {
    NETWORK: 'webhook',
    NETWORK_URL: network.url,
    NETWORK_SECRET: network.secret,
    NETWORK_TIMEOUT_MS: '2000',
    PROVISIONING_SECRET: SECRET,
    PERMISSIONS: JSON.stringify({ '*': 'relay', 'example.org': 'link', [ADMIN]: 'admin' }),
  },
  { enforcePowerLevels: true },
);
after(() => assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says'));
const BOT = as.hs.botUserId;

/** A community's own room, made by `owner`, the bot invited and the invite pushed. */
async function communityRoom(owner = ALICE): Promise<FakeRoom> {
  const { room } = as.hs.userCreateRoom(owner, { preset: 'private_chat', name: 'Lobby' });
  const invite = as.hs.userInvite(owner, room.roomId, BOT);
  assert.equal(await as.pushSend(uniq('t'), { events: [as.hs.clientEvent(room.roomId, invite)] }), 200);
  assert.ok(room.members.has(BOT), 'the bot joined');
  return room;
}
function networkRoom(): string {
  const remote = uniq('lobby');
  network.rooms.set(remote, { name: `#${remote}` });
  return remote;
}

const answered: string[] = [];
/** One call of the provision function; its answer checked against the document, and its status and errcode as expected. */
async function call(
  method: string,
  path: string,
  expect: { status: number; errcode?: string },
  opts: { token?: string; userId?: string; body?: unknown; rawBody?: string; query?: Record<string, string>; headers?: Record<string, string>; fn?: 'provision' | 'unrecognized' } = {},
): Promise<Json> {
  const full = `${PREFIX}${path}`;
  const reply = await as.call(opts.fn ?? 'provision', {
    method,
    path: full,
    query: { ...opts.query, ...(opts.userId ? { user_id: opts.userId } : {}) },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(opts.rawBody !== undefined ? { rawBody: opts.rawBody } : {}),
    headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
  });
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  assert.deepEqual(checkAnswer(method, full, reply.status, reply.body), [], `${method} ${path}: ${JSON.stringify(reply.body)}`);
  assert.equal(reply.status, expect.status, `${method} ${path}: ${JSON.stringify(reply.body)}`);
  if (expect.errcode) assert.equal(reply.body.errcode, expect.errcode, `${method} ${path}`);
  answered.push(`${method} ${templateOf(full) ?? path} ${reply.status}`);
  return reply.body;
}
const asOperator = (userId: string) => ({ token: SECRET, userId });

test('the provision function answers every operation as the document says: successes and errors', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE);
  const path = `/rooms/${enc(room.roomId)}`;

  // Who calls.
  await call('GET', path, { status: 401, errcode: 'M_MISSING_TOKEN' });
  await call('GET', path, { status: 401, errcode: 'M_UNKNOWN_TOKEN' }, { token: 'not-a-token' });
  await call('GET', path, { status: 401, errcode: 'M_UNAUTHORIZED' }, { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } });
  await call('GET', path, { status: 400, errcode: 'M_MISSING_PARAM' }, { token: SECRET });
  await call('GET', path, { status: 400, errcode: 'M_INVALID_PARAM' }, { token: SECRET, userId: 'alice' });
  await call('GET', '/rooms/not-a-room', { status: 400, errcode: 'M_INVALID_PARAM' }, asOperator(ALICE));
  const token = as.hs.openIdToken(ALICE);
  await call('GET', path, { status: 403, errcode: 'M_FORBIDDEN' }, { token, userId: BOB });
  await call('GET', path, { status: 403, errcode: 'M_FORBIDDEN' }, { token, query: { access_token: 'another-token' } });

  // The status, by OpenID token (header or access_token) and by the operator's secret.
  const fresh = await call('GET', path, { status: 200 }, { token });
  assert.deepEqual(fresh, { room_id: room.roomId, user_id: ALICE, bridged: null, permission: 'link', bot_joined: true, power_level: 100, needed_power_level: 50, can_link: true, can_unlink: false });
  assert.deepEqual(await call('GET', path, { status: 200 }, { query: { access_token: token } }), fresh);
  assert.deepEqual(await call('GET', path, { status: 200 }, { token, userId: ALICE }), fresh);
  await call('GET', path, { status: 403, errcode: 'M_FORBIDDEN' }, asOperator(BOB));
  assert.deepEqual(await call('GET', `${path}/links`, { status: 200 }, asOperator(ALICE)), { links: [] });
  await call('GET', `${path}/links`, { status: 403, errcode: 'M_FORBIDDEN' }, asOperator(BOB));
  await call('GET', `${path}/links`, { status: 401, errcode: 'M_MISSING_TOKEN' });
  // A room the bot is not in: no power level.
  const { room: closed } = as.hs.userCreateRoom(ALICE, { preset: 'private_chat' });
  const absent = await call('GET', `/rooms/${enc(closed.roomId)}`, { status: 200 }, asOperator(ALICE));
  assert.equal(absent.bot_joined, false);
  assert.ok(!('power_level' in absent));

  // Linking: bad bodies, refusals, then a link.
  await call('POST', `${path}/links`, { status: 400, errcode: 'M_MISSING_PARAM' }, { ...asOperator(ALICE), body: {} });
  await call('POST', `${path}/links`, { status: 400, errcode: 'M_BAD_JSON' }, { ...asOperator(ALICE), body: { remote_room: 7 } });
  await call('POST', `${path}/links`, { status: 400, errcode: 'M_BAD_JSON' }, { ...asOperator(ALICE), body: [remote] });
  await call('POST', `${path}/links`, { status: 400, errcode: 'M_NOT_JSON' }, { ...asOperator(ALICE), rawBody: 'remote_room=#lobby' });
  await call('POST', `${path}/links`, { status: 400, errcode: 'M_INVALID_PARAM' }, { ...asOperator(ALICE), body: { remote_room: '   ' } });
  await call('POST', `${path}/links`, { status: 403, errcode: 'M_FORBIDDEN' }, { ...asOperator(BOB), body: { remote_room: remote } });
  await call('POST', `/rooms/${enc(closed.roomId)}/links`, { status: 403, errcode: 'ORG.MATRIX_APPSERVICE_LAMBDA.BOT_NOT_IN_ROOM' }, { ...asOperator(ALICE), body: { remote_room: networkRoom() } });
  const refusedRoom = networkRoom();
  network.refuseLinks(refusedRoom, 403, 'the channel operators said no');
  try {
    const refused = await call('POST', `${path}/links`, { status: 403, errcode: 'ORG.MATRIX_APPSERVICE_LAMBDA.NETWORK_REFUSED' }, { ...asOperator(ALICE), body: { remote_room: refusedRoom } });
    assert.equal(refused.reason, 'the channel operators said no');
  } finally {
    network.clearLinkRefusals();
  }
  const link = await call('POST', `${path}/links`, { status: 200 }, { token, body: { remote_room: remote } });
  assert.deepEqual({ ...link, linked_at: 0 }, { room_id: room.roomId, kind: 'linked', remote_room: remote, alias: `#irc_${remote}:example.org`, linked_by: ALICE, linked_at: 0 });
  const again = await call('POST', `${path}/links`, { status: 409, errcode: 'ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED' }, { ...asOperator(ALICE), body: { remote_room: networkRoom() } });
  assert.equal(again.room_id, room.roomId);
  const other = await communityRoom(ALICE);
  const taken = await call('POST', `/rooms/${enc(other.roomId)}/links`, { status: 409, errcode: 'ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED' }, { ...asOperator(ALICE), body: { remote_room: remote } });
  assert.equal(taken.room_id, room.roomId, 'the Matrix room the network room is bridged to');

  // The linked room's status and links.
  const status = await call('GET', path, { status: 200 }, { token });
  assert.deepEqual([status.bridged, status.can_link, status.can_unlink], [link, false, true]);
  assert.deepEqual(await call('GET', `${path}/links`, { status: 200 }, { token }), { links: [link] });

  // Every link: admins only, paged.
  await call('GET', '/links', { status: 403, errcode: 'M_FORBIDDEN' }, asOperator(ALICE));
  await call('GET', '/links', { status: 400, errcode: 'M_MISSING_PARAM' }, { token: SECRET });
  const all = await call('GET', '/links', { status: 200 }, asOperator(ADMIN));
  assert.ok(all.links.some((l: Json) => l.room_id === room.roomId && l.remote_room === remote));
  await call('GET', '/links', { status: 400, errcode: 'M_INVALID_PARAM' }, { ...asOperator(ADMIN), query: { from: 'garbage' } });

  // Wrong methods, and a path that is none of the operations, from the function itself and from the catch-all.
  await call('PUT', `${path}/links`, { status: 405, errcode: 'M_UNRECOGNIZED' }, asOperator(ALICE));
  // The body is read only by the operation that takes one: a POST without a body on a path without POST is a 405 too.
  await call('POST', path, { status: 405, errcode: 'M_UNRECOGNIZED' }, asOperator(ALICE));
  await call('POST', path, { status: 405, errcode: 'M_UNRECOGNIZED' }, { ...asOperator(ALICE), fn: 'unrecognized' });
  await call('DELETE', '/links', { status: 405, errcode: 'M_UNRECOGNIZED' }, asOperator(ADMIN));
  await call('PUT', `${path}/links`, { status: 405, errcode: 'M_UNRECOGNIZED' }, { ...asOperator(ALICE), fn: 'unrecognized' });
  await call('GET', `${path}/links/more`, { status: 404, errcode: 'M_UNRECOGNIZED' }, asOperator(ALICE));
  await call('GET', '/rooms', { status: 404, errcode: 'M_UNRECOGNIZED' }, { ...asOperator(ALICE), fn: 'unrecognized' });

  // Unlinking: not by someone not in the room, then by its moderator, then nothing is left.
  await call('DELETE', `${path}/links`, { status: 403, errcode: 'M_FORBIDDEN' }, asOperator(BOB));
  const unlinked = await call('DELETE', `${path}/links`, { status: 200 }, { token });
  assert.deepEqual(unlinked, { unlinked: link });
  await call('DELETE', `${path}/links`, { status: 404, errcode: 'M_NOT_FOUND' }, { token });
  assert.deepEqual(await call('GET', `${path}/links`, { status: 200 }, { token }), { links: [] });

  // Every operation was answered with a success and with errors.
  for (const o of operations) {
    const mine = answered.filter((a) => a.startsWith(`${o.method} ${o.template} `));
    assert.ok(mine.some((a) => a.endsWith(' 200')), `${o.method} ${o.template}: a success`);
    assert.ok(mine.some((a) => /\s[45]\d\d$/.test(a)), `${o.method} ${o.template}: an error`);
  }
});
