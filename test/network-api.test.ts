/**
 * docs/network-api.yaml, the network contract 2.3.0 as OpenAPI 3.1: the document is sound in
 * every way that can be checked here without network access (references, examples, operations,
 * the contract's paths, servers, security, headers, schemas that allow unknown fields), the
 * checker of test/support/network-api.ts says what it should, and the fake network's answers
 * conform to the document while a malformed request lands in its specErrors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import {
  checkAsAnswer,
  checkAsRequest,
  checkNetworkAnswer,
  checkNetworkApiValue,
  checkNetworkRequest,
  matchNetworkApiOperation,
  networkApiDocument,
  networkApiOperations,
} from './support/network-api.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { DeliveryKind, FakeNetwork } from './support/fake-network.js';

type Json = Record<string, any>;
const doc = networkApiDocument() as Json;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const pointerOf = (...tokens: string[]) => tokens.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
function at(pointer: string): unknown {
  let node: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    if (raw === '' && pointer === '') break;
    const t = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? node[Number(t)] : isObject(node) ? node[t] : undefined;
  }
  return node;
}
const resolve = (node: unknown): any => {
  let cur = node;
  while (isObject(cur) && typeof cur.$ref === 'string') cur = at(decodeURIComponent(cur.$ref.slice(1)));
  return cur;
};

/** Every node of the document with its pointer; example payloads are not walked into. */
function* walk(node: unknown, pointer = ''): Generator<{ node: unknown; pointer: string; key: string | undefined }> {
  yield { node, pointer, key: pointer.split('/').pop() };
  if (Array.isArray(node)) {
    for (const [i, v] of node.entries()) yield* walk(v, `${pointer}/${i}`);
  } else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'example' || k === 'examples' || k === 'default' || k === 'const' || k === 'enum') continue;
      yield* walk(v, pointer + pointerOf(k));
    }
  }
}

const operations = networkApiOperations();
const opNode = (pointer: string) => at(pointer) as Json;

// ---------------------------------------------------------------- the document

test('the document: OpenAPI 3.1.0, contract version 2.3.0, described', () => {
  assert.equal(doc.openapi, '3.1.0');
  assert.equal(doc.info?.version, '2.3.0');
  assert.ok(typeof doc.info?.title === 'string' && doc.info.title.length > 0);
  const description = String(doc.info?.description ?? '');
  for (const topic of ['X-Signature', 'Idempotency-Key', 'Retry-After', '501', '404', 'ignored', 'additionalProperties']) {
    assert.ok(description.includes(topic), `info.description speaks of ${topic}`);
  }
  // What 2.1 adds, said where a 2.0 network's author looks first.
  for (const topic of ['`2.1.0`', '`to`', '`direct`', '/network/members', '/network/profile', '/network/rooms/{remoteRoomId}', '`/members`', '`/profile`', 'avatarUrl']) {
    assert.ok(description.includes(topic), `info.description speaks of ${topic}`);
  }
  // What 2.2 adds, and what it means for a 2.1 network that has neither path: every link refused.
  for (const topic of ['`2.2.0`', '`POST /links`', '`POST /unlinks`', '`{"error": "<reason>"}`', '**a 2.1 network refuses every link**']) {
    assert.ok(description.includes(topic), `info.description speaks of ${topic}`);
  }
  // What 2.3 adds: Matrix users' avatars, with what a 2.2 network must know (fetch and keep: the link expires).
  for (const topic of ['`2.3.0`', '`avatar`', '`POST /profile`', 'MEDIA_LINK_HOURS']) {
    assert.ok(description.includes(topic), `info.description speaks of ${topic}`);
  }
  assert.ok(description.indexOf('`2.3.0`') < description.indexOf('`2.2.0`'), 'the newest version is told first');
  assert.ok(description.indexOf('`2.2.0`') < description.indexOf('`2.1.0`'), 'the newest version is told first');
  assert.deepEqual(
    (doc.tags as Json[]).map((t) => t.name).sort(),
    ['as', 'network'],
  );
});

test('every $ref resolves, and only local ones are used', () => {
  const refs: string[] = [];
  for (const { node, pointer } of walk(doc)) {
    if (!isObject(node) || typeof node.$ref !== 'string') continue;
    refs.push(node.$ref);
    assert.ok(node.$ref.startsWith('#/'), `${pointer}: ${node.$ref} is local`);
    assert.notEqual(at(decodeURIComponent(node.$ref.slice(1))), undefined, `${pointer}: ${node.$ref} resolves`);
  }
  assert.ok(refs.length > 50, `the document uses its components (${refs.length} refs)`);
  // And every component is used somewhere (a forgotten one is a sign of a wrong name).
  const text = JSON.stringify(doc);
  for (const [kind, group] of Object.entries(doc.components as Json)) {
    if (kind === 'securitySchemes') continue;
    for (const name of Object.keys(group as Json)) {
      assert.ok(text.includes(`"#/components/${kind}/${name}"`), `#/components/${kind}/${name} is referenced`);
    }
  }
  for (const name of Object.keys(doc.components.securitySchemes)) assert.ok(text.includes(`{"${name}":[]}`), `security scheme ${name} is used`);
});

test('the contract\'s paths are all there, each on its side with its servers, and nothing else', () => {
  const listed = operations.map((o) => `${o.side} ${o.method} ${o.template}`).sort();
  assert.deepEqual(listed, [
    'as GET /network/media/{server}/{mediaId}',
    'as POST /network/deletions',
    'as POST /network/edits',
    'as POST /network/media',
    'as POST /network/members',
    'as POST /network/messages',
    'as POST /network/profile',
    'as POST /network/reactions',
    'as POST /network/rooms/{remoteRoomId}',
    'network GET /rooms/{remoteRoomId}',
    'network GET /search/rooms',
    'network GET /search/users',
    'network GET /users/{remoteUserId}',
    'network POST /deletions',
    'network POST /edits',
    'network POST /links',
    'network POST /members',
    'network POST /messages',
    'network POST /profile',
    'network POST /reactions',
    'network POST /unlinks',
  ]);
  for (const [template, item] of Object.entries(doc.paths as Json)) {
    const side = template.startsWith('/network/') ? 'as' : 'network';
    const variable = side === 'as' ? 'asUrl' : 'networkUrl';
    assert.ok(Array.isArray(item.servers) && item.servers.length === 1, `${template}: one path-level server`);
    assert.equal(item.servers[0].url, `{${variable}}`, `${template}: served under {${variable}}`);
    assert.equal(typeof item.servers[0].variables?.[variable]?.default, 'string', `${template}: {${variable}} has a default`);
    for (const [method, op] of Object.entries(item as Json)) {
      if (method === 'servers' || method === 'parameters') continue;
      assert.deepEqual(op.tags, [side], `${method.toUpperCase()} ${template} is tagged ${side}`);
    }
  }
});

test('every operation: a unique operationId, a summary and description, documented responses, declared path parameters', () => {
  const ids = new Set<string>();
  for (const o of operations) {
    const op = opNode(o.pointer);
    const name = `${o.method} ${o.template}`;
    assert.ok(o.operationId && /^[A-Za-z][A-Za-z0-9]*$/.test(o.operationId), `${name} has an operationId`);
    assert.ok(!ids.has(o.operationId!), `${o.operationId} is unique`);
    ids.add(o.operationId!);
    assert.ok(typeof op.summary === 'string' && typeof op.description === 'string' && op.description.length > 40, `${name} is described`);
    const responses = op.responses as Json;
    assert.ok(isObject(responses) && Object.keys(responses).length > 0, `${name} documents its responses`);
    for (const [status, response] of Object.entries(responses)) {
      assert.match(status, /^([1-5][0-9]{2}|[1-5]XX|default)$/, `${name}: response key ${status}`);
      assert.ok(typeof resolve(response).description === 'string' || typeof response.description === 'string', `${name} ${status} has a description`);
    }
    assert.ok(Object.keys(responses).some((s) => s.startsWith('2')), `${name} documents a success`);
    // Path templates and path parameters agree (OpenAPI requires both ways).
    const inTemplate = [...o.template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    const params = ((op.parameters ?? []) as unknown[]).map(resolve);
    const declared = params.filter((p) => p.in === 'path').map((p) => p.name).sort();
    assert.deepEqual(declared, inTemplate, `${name}: path parameters`);
    for (const p of params) {
      assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in) && typeof p.name === 'string', `${name}: parameter ${p.name}`);
      if (p.in === 'path') assert.equal(p.required, true, `${name}: path parameter ${p.name} is required`);
      assert.ok(p.schema !== undefined, `${name}: parameter ${p.name} has a schema`);
    }
    const rb = resolve(op.requestBody);
    if (rb !== undefined) assert.ok(isObject(rb.content) && Object.keys(rb.content).length > 0, `${name}: request body content`);
  }
});

test('every example validates against its schema, and each operation has its worked examples', () => {
  let checked = 0;
  for (const { node, pointer } of walk(doc)) {
    if (!isObject(node)) continue;
    // Media types, parameters and headers: `schema` beside `example` / `examples: {name: {value}}`.
    if (node.schema !== undefined && (node.example !== undefined || isObject(node.examples))) {
      const schemaPointer = pointer + '/schema';
      if (node.example !== undefined) {
        assert.deepEqual(checkNetworkApiValue(schemaPointer, node.example, `${pointer}/example`), []);
        checked++;
      }
      for (const [name, ex] of Object.entries((node.examples ?? {}) as Json)) {
        const example = resolve(ex);
        assert.ok('value' in example, `${pointer}/examples/${name} has a value`);
        assert.deepEqual(checkNetworkApiValue(schemaPointer, example.value, `${pointer}/examples/${name}`), []);
        checked++;
      }
    }
    // Schemas: `examples: [...]`.
    if (Array.isArray(node.examples)) {
      for (const [i, ex] of node.examples.entries()) {
        assert.deepEqual(checkNetworkApiValue(pointer, ex, `${pointer}/examples/${i}`), []);
        checked++;
      }
    }
  }
  assert.ok(checked > 40, `${checked} examples checked`);

  // A worked example for every JSON request and every documented JSON success answer.
  for (const o of operations) {
    const op = opNode(o.pointer);
    const name = `${o.method} ${o.template}`;
    const json = resolve(op.requestBody)?.content?.['application/json'];
    if (json) assert.ok(json.example !== undefined || Object.keys(json.examples ?? {}).length > 0, `${name}: request example`);
    const ok = resolve(op.responses['200'])?.content?.['application/json'];
    if (ok) assert.ok(ok.example !== undefined || Object.keys(ok.examples ?? {}).length > 0, `${name}: 200 example`);
  }
});

test('a wrong example would be caught: the schemas are strict where the contract is', () => {
  const errs = (ref: string, v: unknown) => checkNetworkApiValue(`#/components/schemas/${ref}`, v);
  const inbound = { id: 'irc-1', room: '#matrix', sender: { id: 'Bob' }, body: 'hi', ts: 1700000000000 };
  assert.deepEqual(errs('InboundMessage', inbound), []);
  assert.deepEqual(errs('InboundMessage', { ...inbound, anyFutureField: { x: 1 }, sender: { id: 'Bob', extra: true } }), [], 'unknown fields are allowed');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, id: '' }), [], 'id: 1 character at least');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, room: 'r'.repeat(256) }), [], 'room: 255 at most');
  assert.deepEqual(errs('InboundMessage', { ...inbound, room: 'r'.repeat(255) }), []);
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, ts: 1.5 }), [], 'ts: an integer');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, ts: 0 }), [], 'ts: positive');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, body: '' }), [], 'body: non-empty');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, msgtype: 'm.sticker' }), [], 'no stickers from the network');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, msgtype: 'm.image' }), [], 'a media msgtype requires media');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, media: { contentUri: 'mxc://hs/x' } }), [], 'media requires a media msgtype');
  assert.deepEqual(errs('InboundMessage', { ...inbound, msgtype: 'm.file', media: { contentUri: 'mxc://hs/x' } }), []);
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, mentions: Array.from({ length: 101 }, () => ({ id: 'x' })) }), [], 'at most 100 mentions');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, mentions: [{ name: 'x' }] }), [], 'a mention is by id or by userId');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, mentions: [{ userId: 'x' }] }), [], 'a userId is a Matrix user ID');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, msgtype: 'm.file', media: { contentUri: 'https://x/y' } }), [], 'contentUri is mxc://');
  assert.notDeepEqual(errs('InboundDeletion', { ...inbound, target: 'irc-0', reason: 'r'.repeat(1001) }), [], 'reason: 1000 at most');
  assert.notDeepEqual(errs('InboundReaction', { ...inbound, target: 'irc-0' }), [], 'a reaction needs its key');
  assert.notDeepEqual(errs('InboundEdit', { ...inbound, target: 'irc-0', msgtype: 'm.image' }), [], 'an edit carries no media');

  const outbound = { id: '$e', room: '#matrix', sender: { userId: '@alice:hs' }, msgtype: 'm.text', body: 'hi', ts: 1 };
  assert.deepEqual(errs('OutboundMessage', outbound), []);
  assert.deepEqual(errs('OutboundMessage', { ...outbound, msgtype: 'm.sticker', media: { mxc: 'mxc://hs/s' } }), []);
  assert.notDeepEqual(errs('OutboundMessage', { ...outbound, id: 'not-an-event-id' }), []);
  assert.notDeepEqual(errs('OutboundMessage', { ...outbound, media: { mxc: 'mxc://hs/v', tooLarge: true, url: 'https://as/network/media/hs/v' } }), [], 'no url when tooLarge');
  assert.notDeepEqual(errs('OutboundEdit', { ...outbound, target: { id: 'net-1' } }), [], 'a MessageRef always has eventId');
  assert.deepEqual(errs('DeliveryAnswer', {}), [], 'a 1.x network answers no id');
  assert.notDeepEqual(errs('DeliveryAnswer', { id: '' }), []);
  assert.deepEqual(errs('MatrixError', { errcode: 'M_FORBIDDEN', error: 'banned', reason: 'banned' }), []);
  assert.notDeepEqual(errs('MatrixError', { error: 'no errcode' }), []);
});

test('2.1 schemas: direct chats, membership, profiles and room details; valid ones pass, wrong ones are caught', () => {
  const errs = (ref: string, v: unknown) => checkNetworkApiValue(`#/components/schemas/${ref}`, v);
  const inbound = { id: 'irc-1', room: '#matrix', sender: { id: 'Bob' }, body: 'hi', ts: 1700000000000 };
  const { room: _room, ...nowhere } = inbound;
  const direct = { ...nowhere, to: '@alice:example.org' };
  for (const [name, extra] of [
    ['InboundMessage', {}],
    ['InboundEdit', { target: 'irc-0' }],
    ['InboundDeletion', { target: 'irc-0' }],
    ['InboundReaction', { target: 'irc-0', key: '👍' }],
  ] as const) {
    assert.deepEqual(errs(name, { ...inbound, ...extra }), [], `${name} in a room`);
    assert.deepEqual(errs(name, { ...direct, ...extra }), [], `${name} privately, to a Matrix user`);
    assert.notDeepEqual(errs(name, { ...inbound, to: '@alice:example.org', ...extra }), [], `${name}: room and to`);
    assert.notDeepEqual(errs(name, { ...nowhere, ...extra }), [], `${name}: neither room nor to`);
    for (const to of ['alice', '#matrix:example.org', '@alice', '', 7]) assert.notDeepEqual(errs(name, { ...nowhere, to, ...extra }), [], `${name}: to ${JSON.stringify(to)}`);
  }
  assert.deepEqual(errs('InboundMessage', { ...inbound, sender: { id: 'Bob', avatarUrl: 'mxc://example.org/face' } }), [], 'an avatar from POST /network/media');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, sender: { id: 'Bob', avatarUrl: 'https://example.org/face.png' } }), [], 'avatarUrl is mxc://, never a URL to fetch');
  assert.notDeepEqual(errs('InboundMessage', { ...inbound, sender: { id: 'Bob', displayName: '' } }), [], 'a displayName is 1 character at least');

  const member = { room: '#matrix', user: { id: 'carol', displayName: 'Carol', avatarUrl: 'mxc://example.org/carol' }, membership: 'join' };
  assert.deepEqual(errs('InboundMembership', member), [], 'id and ts are optional');
  assert.deepEqual(errs('InboundMembership', { ...member, membership: 'leave', reason: 'bye', id: 'irc-part-1', ts: 1700000000000 }), []);
  assert.notDeepEqual(errs('InboundMembership', { ...member, membership: 'ban' }), [], 'the network cannot ban');
  assert.notDeepEqual(errs('InboundMembership', { ...member, membership: 'invite' }), []);
  assert.notDeepEqual(errs('InboundMembership', { user: member.user, membership: 'join', to: '@alice:example.org' }), [], 'memberships are of network rooms');
  assert.notDeepEqual(errs('InboundMembership', { ...member, user: { displayName: 'Carol' } }), [], 'user.id is required');
  assert.notDeepEqual(errs('InboundMembership', { ...member, user: { id: 'carol', avatarUrl: 'http://example.org/carol.png' } }), []);
  assert.notDeepEqual(errs('InboundMembership', { ...member, reason: 'r'.repeat(1001) }), [], 'reason: 1000 at most');
  assert.notDeepEqual(errs('InboundMembership', { ...member, ts: 0 }), [], 'ts: positive');

  assert.deepEqual(errs('InboundProfile', { user: { id: 'Bob', displayName: 'Robert' } }), []);
  assert.deepEqual(errs('InboundProfile', { user: { id: 'Bob', avatarUrl: 'mxc://example.org/face' } }), []);
  assert.notDeepEqual(errs('InboundProfile', { user: { id: 'Bob' } }), [], 'a profile says what changed');
  assert.notDeepEqual(errs('InboundProfile', {}), [], 'a profile names its user');
  assert.notDeepEqual(errs('InboundProfile', { user: { id: 'Bob', avatarUrl: 'https://example.org/face.png' } }), []);

  assert.deepEqual(errs('InboundRoomDetails', { name: 'Matrix talk' }), []);
  assert.deepEqual(errs('InboundRoomDetails', { topic: '' }), [], '"" removes the topic');
  assert.notDeepEqual(errs('InboundRoomDetails', {}), [], 'name or topic');
  assert.notDeepEqual(errs('InboundRoomDetails', { name: null }), []);
  assert.notDeepEqual(errs('InboundRoomDetails', { name: 'n'.repeat(256) }), [], 'name: 255 at most');
  assert.notDeepEqual(errs('InboundRoomDetails', { topic: 't'.repeat(4001) }), [], 'topic: 4000 at most');

  const outbound = { id: '$e', room: '#matrix', sender: { userId: '@alice:hs' }, msgtype: 'm.text', body: 'hi', ts: 1 };
  const { room: _r, ...unplaced } = outbound;
  assert.deepEqual(errs('OutboundMessage', { ...unplaced, direct: { with: 'Bob' } }), [], 'a message of a direct chat');
  assert.notDeepEqual(errs('OutboundMessage', { ...outbound, direct: { with: 'Bob' } }), [], 'room and direct');
  assert.notDeepEqual(errs('OutboundMessage', unplaced), [], 'neither room nor direct');
  assert.notDeepEqual(errs('OutboundMessage', { ...unplaced, direct: 'Bob' }), [], 'direct is an object');
  assert.notDeepEqual(errs('OutboundMessage', { ...unplaced, direct: {} }), [], 'direct names its user');
  for (const name of ['OutboundEdit', 'OutboundDeletion', 'OutboundReaction']) {
    const change = { ...unplaced, target: { eventId: '$t' }, key: '👍', direct: { with: 'Bob' } };
    assert.deepEqual(errs(name, change), [], `${name} in a direct chat`);
    assert.notDeepEqual(errs(name, { ...change, room: '#matrix' }), [], `${name}: room and direct`);
  }

  const joined = { id: '$m', room: '#matrix', sender: { userId: '@alice:hs' }, user: { userId: '@alice:hs', displayName: 'Alice' }, membership: 'join', ts: 1 };
  assert.deepEqual(errs('OutboundMembership', joined), []);
  assert.deepEqual(errs('OutboundMembership', { ...joined, sender: { userId: '@mod:hs' }, user: { userId: '@alice:hs' }, membership: 'ban', reason: 'spam' }), []);
  assert.notDeepEqual(errs('OutboundMembership', { ...joined, membership: 'kick' }), [], 'a kick is a leave by someone else');
  assert.notDeepEqual(errs('OutboundMembership', { ...joined, user: { userId: 'alice' } }), []);
  const { room: _m, ...membershipNowhere } = joined;
  assert.notDeepEqual(errs('OutboundMembership', { ...membershipNowhere, direct: { with: 'Bob' } }), [], 'memberships are of network rooms');
  const renamed = { id: '$p', room: '#matrix', sender: { userId: '@alice:hs', displayName: 'Alicia' }, previousDisplayName: 'Alice', ts: 1 };
  assert.deepEqual(errs('OutboundProfile', renamed), []);
  assert.deepEqual(errs('OutboundProfile', { ...renamed, sender: { userId: '@alice:hs' } }), [], 'a removed display name');
  assert.notDeepEqual(errs('OutboundProfile', { ...renamed, sender: {} }), []);

  assert.deepEqual(errs('RoomIdAnswer', { room_id: '!r:hs' }), []);
  assert.notDeepEqual(errs('RoomIdAnswer', { room_id: '#r:hs' }), []);
  assert.deepEqual(errs('RoomDetailsAnswer', {}), [], 'nobody has joined the room yet');
  assert.notDeepEqual(errs('UserIdAnswer', {}), []);
});

test('the schemas: valid JSON Schema 2020-12, unknown fields allowed everywhere, the contract\'s enums and limits', () => {
  const meta = new Ajv2020({ strict: false });
  for (const [name, schema] of Object.entries(doc.components.schemas as Json)) {
    assert.ok(meta.validateSchema(schema), `${name}: ${JSON.stringify(meta.errors)}`);
  }
  for (const { node, pointer } of walk(doc)) {
    if (!isObject(node)) continue;
    assert.notEqual(node.additionalProperties, false, `${pointer}: additionalProperties is never false`);
    assert.notEqual(node.unevaluatedProperties, false, `${pointer}: unevaluatedProperties is never false`);
    if (node.type === 'object') assert.equal(node.additionalProperties, true, `${pointer}: says additionalProperties: true`);
  }
  const s = doc.components.schemas as Json;
  assert.deepEqual([s.NetworkId.minLength, s.NetworkId.maxLength], [1, 255]);
  assert.deepEqual(s.OutboundMsgtype.enum, undefined, 'outbound msgtypes are open: clients send others (m.location, custom ones)');
  assert.deepEqual(s.OutboundMsgtype.examples, ['m.text', 'm.notice', 'm.emote', 'm.image', 'm.file', 'm.audio', 'm.video', 'm.sticker']);
  assert.deepEqual(s.InboundMsgtype.enum, ['m.text', 'm.notice', 'm.emote', 'm.image', 'm.file', 'm.audio', 'm.video']);
  assert.equal(s.InboundMsgtype.default, 'm.text');
  for (const ts of [s.InboundTimestamp, s.OutboundTimestamp]) assert.equal(ts.type, 'integer');
  assert.deepEqual(s.MatrixError.required, ['errcode', 'error']);
  // Since 2.1 a message, edit, deletion or reaction is in a room or a direct chat: exactly one of the two, never both required.
  for (const [names, where, other] of [
    [['InboundMessage', 'InboundEdit', 'InboundDeletion', 'InboundReaction'], 'InboundWhere', 'to'],
    [['OutboundMessage', 'OutboundEdit', 'OutboundDeletion', 'OutboundReaction'], 'OutboundWhere', 'direct'],
  ] as const) {
    assert.deepEqual(s[where].oneOf, [{ required: ['room'] }, { required: [other] }], `${where}: room or ${other}`);
    for (const name of names) {
      for (const field of ['id', 'sender', 'ts']) assert.ok(s[name].required.includes(field), `${name} requires ${field}`);
      assert.ok(!s[name].required.includes('room'), `${name} does not require room`);
      assert.ok(s[name].properties.room && s[name].properties[other], `${name} names room and ${other}`);
      assert.ok((s[name].allOf as Json[]).some((x) => x.$ref === `#/components/schemas/${where}`), `${name} is held to ${where}`);
    }
  }
  // Memberships and profiles are about network rooms only.
  for (const name of ['OutboundMembership', 'OutboundProfile']) {
    for (const field of ['id', 'room', 'sender', 'ts']) assert.ok(s[name].required.includes(field), `${name} requires ${field}`);
  }
  assert.deepEqual(s.InboundMembership.required, ['room', 'user', 'membership']);
  assert.deepEqual(s.InboundMembership.properties.membership.enum, ['join', 'leave']);
  assert.deepEqual(s.OutboundMembership.properties.membership.enum, ['join', 'leave', 'ban']);
});

test('security: X-Signature everywhere but the pre-signed media link (sig and expires in the query)', () => {
  const schemes = doc.components.securitySchemes as Json;
  assert.deepEqual([schemes.signature.type, schemes.signature.in, schemes.signature.name], ['apiKey', 'header', 'X-Signature']);
  assert.match(schemes.signature.description, /HMAC-SHA256/);
  assert.deepEqual([schemes.mediaLink.type, schemes.mediaLink.in, schemes.mediaLink.name], ['apiKey', 'query', 'sig']);
  assert.deepEqual(doc.security, [{ signature: [] }]);
  for (const o of operations) {
    const op = opNode(o.pointer);
    const expected = o.template === '/network/media/{server}/{mediaId}' ? [{ mediaLink: [] }] : undefined;
    assert.deepEqual(op.security, expected, `${o.method} ${o.template}: security`);
    for (const req of (op.security ?? doc.security) as Json[]) for (const name of Object.keys(req)) assert.ok(schemes[name], `${name} is defined`);
  }
  const link = opNode(matchNetworkApiOperation('as', 'GET', '/network/media/hs/m').pointer);
  const expires = (link.parameters as unknown[]).map(resolve).find((p) => p.name === 'expires');
  assert.deepEqual([expires?.in, expires?.required, expires?.schema?.type], ['query', true, 'integer']);
});

/** The AS's requests to the network that are not deliveries (2.2): asked or told while a Matrix user waits, never queued. */
const LINK_PATHS = ['/links', '/unlinks'];

test('headers: Idempotency-Key on every delivery, Retry-After on the retried answers', () => {
  const deliveries = operations.filter((x) => x.side === 'network' && x.method === 'POST' && !LINK_PATHS.includes(x.template));
  assert.deepEqual(deliveries.map((o) => o.template).sort(), ['/deletions', '/edits', '/members', '/messages', '/profile', '/reactions']);
  for (const o of deliveries) {
    const op = opNode(o.pointer);
    const key = (op.parameters as unknown[]).map(resolve).find((p) => p.name === 'Idempotency-Key');
    assert.deepEqual([key?.in, key?.required], ['header', true], `${o.template}: Idempotency-Key`);
    for (const status of ['429', '5XX']) {
      assert.ok(resolve(op.responses[status])?.headers?.['Retry-After'], `${o.template} ${status}: Retry-After`);
    }
    for (const status of ['404', '501']) {
      if (o.template !== '/messages' || status === '501') assert.ok(op.responses[status], `${o.template} documents ${status}`);
    }
  }
  for (const o of operations.filter((x) => x.side === 'as')) {
    const op = opNode(o.pointer);
    assert.ok(resolve(op.responses['429'])?.headers?.['Retry-After'], `${o.template} 429: Retry-After`);
  }
  // Links and unlinks are not deliveries: no Idempotency-Key, and nothing the AS retries, so no Retry-After.
  for (const template of LINK_PATHS) {
    const op = opNode(matchNetworkApiOperation('network', 'POST', template).pointer);
    assert.equal(op.parameters, undefined, `${template} takes no parameters (no Idempotency-Key)`);
    for (const [status, response] of Object.entries(op.responses as Json)) assert.equal(resolve(response).headers, undefined, `${template} ${status}: no headers`);
  }
});

test('binary bodies: the media upload and the media link', () => {
  const upload = opNode(matchNetworkApiOperation('as', 'POST', '/network/media').pointer);
  const uploadSchema = upload.requestBody.content['*/*']?.schema;
  assert.deepEqual([uploadSchema?.type, uploadSchema?.format, uploadSchema?.contentMediaType], ['string', 'binary', 'application/octet-stream']);
  const link = opNode(matchNetworkApiOperation('as', 'GET', '/network/media/hs/m').pointer);
  const body = link.responses['200'].content['*/*']?.schema;
  assert.deepEqual([body?.type, body?.format], ['string', 'binary']);
  assert.ok(link.responses['413'].content['application/json'].schema.allOf, '413 carries size');
});

// ---------------------------------------------------------------- the checker

test('the checker: valid traffic passes, invalid traffic is named, undocumented endpoints and statuses are caught', () => {
  const message = { id: '$e1', room: '#matrix', sender: { userId: '@alice:hs' }, msgtype: 'm.text', body: 'hi', ts: 1700000100000 };
  assert.deepEqual(checkNetworkRequest('POST', '/messages', message, { 'idempotency-key': '$e1', 'x-signature': 't=1,v1=00' }), []);
  assert.deepEqual(checkNetworkRequest('POST', '/messages', message), [], 'headers are checked only when given');
  assert.deepEqual(checkNetworkRequest('POST', '/messages', message, { 'x-signature': 't=1,v1=00' }), ['header parameter Idempotency-Key is required']);
  assert.deepEqual(checkNetworkRequest('POST', '/messages', message, { 'idempotency-key': '$e1' }), ['not authenticated: needs header X-Signature (signature)']);
  assert.deepEqual(checkNetworkRequest('POST', '/messages', { ...message, ts: 'now' }), ['body/ts must be integer']);
  assert.deepEqual(checkNetworkRequest('GET', '/users/a%2Fb', undefined), [], 'an encoded / stays in its segment');
  assert.deepEqual(checkNetworkRequest('GET', '/users/' + 'x'.repeat(256), undefined), ['path parameter remoteUserId must NOT have more than 255 characters']);
  assert.throws(() => checkNetworkRequest('GET', '/users/a/b', undefined), /no operation/);
  assert.throws(() => checkNetworkRequest('POST', '/network/messages', message), /no operation of the network/);
  assert.throws(() => checkNetworkRequest('PUT', '/messages', message), /has no PUT/);

  assert.deepEqual(checkNetworkAnswer('POST', '/messages', 200, { id: 'net-1' }), []);
  assert.deepEqual(checkNetworkAnswer('POST', '/messages', 204, undefined), [], '2XX, no body');
  assert.deepEqual(checkNetworkAnswer('POST', '/messages', 200, { id: 7 }), ['200 body/id must be string']);
  assert.deepEqual(checkNetworkAnswer('POST', '/edits', 200, { anything: ['goes'] }), [], 'the body of an edit\'s answer is ignored');
  assert.deepEqual(checkNetworkAnswer('GET', '/rooms/r', 200, { topic: 'no name' }), ["200 body must have required property 'name'"]);
  assert.deepEqual(checkNetworkAnswer('GET', '/users/u', 200, { displayName: 'U', avatarUrl: 'https://x/y.png' }).length, 1, 'avatars are mxc://');
  assert.deepEqual(checkNetworkAnswer('GET', '/users/u', 302, undefined), ['302 is not a documented answer of GET /users/{remoteUserId} (200, 404, 4XX, 5XX)']);

  const inbound = { id: 'irc-1', room: '#matrix', sender: { id: 'Bob' }, body: 'hello?', ts: 1700000000000 };
  assert.deepEqual(checkAsRequest('POST', '/network/messages', inbound), []);
  assert.deepEqual(checkAsRequest('POST', '/network/media?sender=Bob&filename=a.png', Buffer.from([1, 2, 3]), { 'x-signature': 't=1,v1=00', 'content-type': 'image/png' }), []);
  assert.deepEqual(checkAsRequest('POST', '/network/media', Buffer.from([1])), ['query parameter sender is required']);
  assert.deepEqual(checkAsRequest('GET', '/network/media/hs/abc?expires=1700000000&sig=00', undefined, {}), [], 'the link needs no X-Signature');
  assert.deepEqual(checkAsRequest('GET', '/network/media/hs/abc?expires=soon', undefined), ['query parameter expires must be integer', 'not authenticated: needs query sig (mediaLink)']);
  assert.deepEqual(checkAsAnswer('POST', '/network/messages', 202, { kept: true }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/messages', 403, { errcode: 'M_FORBIDDEN', error: 'banned', reason: 'banned' }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/messages', 400, { error: 'no errcode' }).length > 0, true);
  assert.deepEqual(checkAsAnswer('POST', '/network/messages', 429, { message: 'Too Many Requests' }), [], 'API Gateway throttling');
  assert.deepEqual(checkAsAnswer('POST', '/network/messages', 503, { errcode: 'M_UNKNOWN', error: 'later' }), [], '5XX');
  assert.deepEqual(checkAsAnswer('POST', '/network/messages', 409, { errcode: 'M_UNKNOWN', error: 'x' }).length, 1, '409 is not documented');
  assert.deepEqual(checkAsAnswer('POST', '/network/media', 200, { contentUri: 'mxc://hs/abc' }), []);
  assert.deepEqual(checkAsAnswer('GET', '/network/media/hs/abc?expires=1&sig=0', 200, Buffer.from('png'), 'image/png'), [], 'binary: documented for 200');
  assert.deepEqual(checkAsAnswer('GET', '/network/media/hs/abc', 200, Buffer.from('png')), []);
  assert.deepEqual(checkAsAnswer('GET', '/network/media/hs/abc', 413, { errcode: 'M_TOO_LARGE', error: 'big', size: 5_000_000 }), []);
  assert.deepEqual(checkAsAnswer('GET', '/network/media/hs/abc', 413, { errcode: 'M_TOO_LARGE', error: 'big' }), ["413 body must have required property 'size'"]);
  assert.deepEqual(checkAsAnswer('GET', '/network/media/hs/abc', 403, Buffer.from('x'), 'image/png').length, 1, 'an image where a Matrix error is documented');
  assert.throws(() => checkAsAnswer('POST', '/messages', 200, {}), /no operation of the AS/);
});

test('2.1 traffic: the checker takes the new routes both ways and names what breaks them', () => {
  const member = { room: '#matrix', user: { id: 'carol' }, membership: 'join' };
  assert.deepEqual(checkAsRequest('POST', '/network/members', member, { 'x-signature': 't=1,v1=00' }), []);
  assert.deepEqual(checkAsRequest('POST', '/network/members', { ...member, membership: 'ban' }), ['body/membership must be equal to one of the allowed values (["join","leave"])']);
  assert.deepEqual(checkAsRequest('POST', '/network/members', member, {}), ['not authenticated: needs header X-Signature (signature)']);
  assert.deepEqual(checkAsAnswer('POST', '/network/members', 200, { room_id: '!r:example.org' }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/members', 202, { kept: true }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/members', 403, { errcode: 'M_FORBIDDEN', error: 'banned', reason: 'banned' }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/members', 200, { event_id: '$e' }), ["200 body must have required property 'room_id'"]);
  assert.equal(checkAsAnswer('POST', '/network/members', 409, { errcode: 'M_UNKNOWN', error: 'x' }).length, 1, '409 is the reactions\' alone');

  assert.deepEqual(checkAsRequest('POST', '/network/profile', { user: { id: 'Bob', displayName: 'Robert' } }), []);
  assert.ok(checkAsRequest('POST', '/network/profile', { user: { id: 'Bob' } }).length > 0, 'what changed is required');
  assert.deepEqual(checkAsAnswer('POST', '/network/profile', 200, { user_id: '@irc__bob:example.org' }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/profile', 400, { errcode: 'M_BAD_JSON', error: 'user must give displayName or avatarUrl' }), []);

  assert.deepEqual(checkAsRequest('POST', `/network/rooms/${encodeURIComponent('#matrix')}`, { topic: 'new' }), []);
  assert.deepEqual(checkAsRequest('POST', '/network/rooms/a%2Fb', { name: '' }), [], 'an encoded / stays in its segment');
  assert.deepEqual(checkAsRequest('POST', '/network/rooms/' + 'x'.repeat(256), { name: 'n' }), ['path parameter remoteRoomId must NOT have more than 255 characters']);
  assert.ok(checkAsRequest('POST', '/network/rooms/x', {}).length > 0, 'name or topic is required');
  assert.throws(() => checkAsRequest('POST', '/network/rooms/a/b', { name: 'n' }), /no operation of the AS/);
  assert.throws(() => checkAsRequest('GET', '/network/rooms/x', undefined), /has no GET/);
  assert.deepEqual(checkAsAnswer('POST', '/network/rooms/x', 200, {}), [], 'nobody has joined it yet');
  assert.deepEqual(checkAsAnswer('POST', '/network/rooms/x', 200, { room_id: '!r:example.org' }), []);
  assert.deepEqual(checkAsAnswer('POST', '/network/rooms/x', 200, { room_id: 'r' }), ['200 body/room_id must match pattern "^!.+$"']);

  const headers = { 'idempotency-key': '$m', 'x-signature': 't=1,v1=00' };
  const joined = { id: '$m', room: '#matrix', sender: { userId: '@alice:hs' }, user: { userId: '@alice:hs' }, membership: 'join', ts: 1 };
  assert.deepEqual(checkNetworkRequest('POST', '/members', joined, headers), []);
  assert.deepEqual(checkNetworkRequest('POST', '/members', joined, { 'x-signature': 't=1,v1=00' }), ['header parameter Idempotency-Key is required']);
  assert.deepEqual(checkNetworkRequest('POST', '/profile', { id: '$p', room: '#matrix', sender: { userId: '@alice:hs' }, ts: 1 }, headers), []);
  assert.deepEqual(checkNetworkRequest('POST', '/profile', { id: '$p', room: '#matrix', sender: { userId: '@alice:hs' } }, headers), ["body must have required property 'ts'"]);
  assert.deepEqual(checkNetworkRequest('POST', '/messages', { id: '$e', direct: { with: 'Bob' }, sender: { userId: '@alice:hs' }, msgtype: 'm.text', body: 'hi', ts: 1 }, headers), []);
  for (const path of ['/members', '/profile']) {
    for (const status of [200, 204, 404, 408, 422, 429, 501, 503]) assert.deepEqual(checkNetworkAnswer('POST', path, status, undefined), [], `${path} ${status}`);
    assert.deepEqual(checkNetworkAnswer('POST', path, 200, { anything: ['goes'] }), [], `${path}: the body is ignored`);
  }
});

test('2.2 links: the schemas, the operations\' answers, and the checker on POST /links and POST /unlinks', () => {
  const errs = (ref: string, v: unknown) => checkNetworkApiValue(`#/components/schemas/${ref}`, v);
  const link = { room: '#matrix', matrixRoomId: '!community:example.org', requestedBy: '@mod:example.org' };
  const headers = { 'x-signature': 't=1,v1=00', 'content-type': 'application/json' };

  // The schemas: the body the AS sends (webhook.ts: room, matrixRoomId, requestedBy), and a refusal's.
  const s = doc.components.schemas as Json;
  assert.deepEqual(s.LinkRequest.required, ['room', 'matrixRoomId', 'requestedBy']);
  assert.deepEqual(errs('LinkRequest', link), []);
  assert.deepEqual(errs('LinkRequest', { ...link, anyFutureField: 1 }), [], 'unknown fields are allowed');
  assert.deepEqual(errs('LinkRequest', { ...link, room: 'r'.repeat(255) }), []);
  assert.notDeepEqual(errs('LinkRequest', { ...link, room: 'r'.repeat(256) }), [], 'room: 255 at most');
  assert.notDeepEqual(errs('LinkRequest', { ...link, room: '' }), [], 'room: 1 character at least');
  assert.notDeepEqual(errs('LinkRequest', { ...link, matrixRoomId: '#alias:example.org' }), [], 'matrixRoomId is a room ID, not an alias');
  assert.notDeepEqual(errs('LinkRequest', { ...link, requestedBy: 'mod' }), [], 'requestedBy is a Matrix user ID');
  assert.deepEqual(errs('LinkRefusal', { error: 'Only the operators of #matrix may link it' }), []);
  assert.deepEqual(errs('LinkRefusal', {}), [], 'the reason is optional');
  assert.notDeepEqual(errs('LinkRefusal', { error: 403 }), [], 'a reason is a string');

  // Both operations: the contract's global X-Signature, the same body, described answers.
  for (const path of LINK_PATHS) {
    const o = matchNetworkApiOperation('network', 'POST', path);
    const op = opNode(o.pointer);
    assert.equal(op.security, undefined, `${path}: signed with X-Signature like every request`);
    assert.deepEqual(op.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/LinkRequest' }, `${path}: a LinkRequest`);
    assert.ok(Object.keys(op.requestBody.content['application/json'].examples).length > 0, `${path}: request examples`);
  }
  assert.deepEqual(
    [matchNetworkApiOperation('network', 'POST', '/links').operationId, matchNetworkApiOperation('network', 'POST', '/unlinks').operationId],
    ['requestLink', 'announceUnlink'],
  );
  // What each answer to POST /links means to the AS: approved, refused (404 and 501 too: a 2.1 network), or undecided.
  const links = opNode(matchNetworkApiOperation('network', 'POST', '/links').pointer).responses as Json;
  const meaning = (status: string) => (links[status].$ref as string).replace('#/components/responses/', '');
  assert.deepEqual(
    ['2XX', '403', '404', '501', '4XX', '408', '429', '5XX'].map(meaning),
    ['NetworkLinkApproved', 'NetworkLinkRefused', 'NetworkLinkRefused', 'NetworkLinkRefused', 'NetworkLinkRefused', 'NetworkLinkUndecided', 'NetworkLinkUndecided', 'NetworkLinkUndecided'],
  );
  const unlinks = opNode(matchNetworkApiOperation('network', 'POST', '/unlinks').pointer).responses as Json;
  for (const status of ['404', '501', '4XX', '5XX']) assert.equal(unlinks[status].$ref, '#/components/responses/NetworkUnlinkNotTaken', `/unlinks ${status}`);

  // checkNetworkRequest: a well-formed request passes; a malformed one is named.
  assert.deepEqual(checkNetworkRequest('POST', '/links', link, headers), []);
  assert.deepEqual(checkNetworkRequest('POST', '/links', link), [], 'headers are checked only when given');
  assert.deepEqual(checkNetworkRequest('POST', '/links', link, { 'content-type': 'application/json' }), ['not authenticated: needs header X-Signature (signature)']);
  const { matrixRoomId: _m, ...noMatrixRoom } = link;
  assert.deepEqual(checkNetworkRequest('POST', '/links', noMatrixRoom, headers), ["body must have required property 'matrixRoomId'"]);
  assert.deepEqual(checkNetworkRequest('POST', '/links', { ...link, room: 42 }, headers), ['body/room must be string']);
  assert.deepEqual(checkNetworkRequest('POST', '/links', { ...link, requestedBy: 'mod' }, headers), ['body/requestedBy must match pattern "^@[^:]+:.+$"']);
  assert.deepEqual(checkNetworkRequest('POST', '/links', undefined, headers), ['body is required']);
  assert.deepEqual(checkNetworkRequest('POST', '/unlinks', link, headers), []);
  assert.deepEqual(checkNetworkRequest('POST', '/unlinks', { ...link, matrixRoomId: '#alias:example.org' }, headers), ['body/matrixRoomId must match pattern "^!.+$"']);
  assert.throws(() => checkNetworkRequest('GET', '/links', undefined), /has no GET/);
  assert.throws(() => checkNetworkRequest('POST', '/links/x', link), /no operation of the network/);
  assert.throws(() => checkAsRequest('POST', '/links', link), /no operation of the AS/, 'the network serves these, not the AS');

  // checkNetworkAnswer: the network's answers to them.
  for (const status of [200, 201, 204]) assert.deepEqual(checkNetworkAnswer('POST', '/links', status, undefined), [], `/links ${status}: approved`);
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 200, { anything: ['goes'] }), [], 'the body of an approval is ignored');
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 403, { error: 'Only the operators of #matrix may link it' }), [], 'a refusal with its reason');
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 403, { error: 'no' }, 'application/json; charset=utf-8'), []);
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 409, { error: 'Linking is closed' }), [], 'any other 4xx refuses too');
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 403, {}), [], 'a refusal without a reason');
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 403, undefined), []);
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 403, Buffer.from('go away'), 'text/plain'), [], 'a body that is not JSON: no reason');
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 403, { error: 403 }), ['403 body/error must be string']);
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 404, { error: 'no such route' }), [], 'a 2.1 network: a refusal');
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 501, undefined), [], 'a 2.1 network: a refusal');
  for (const status of [408, 429, 500, 503]) assert.deepEqual(checkNetworkAnswer('POST', '/links', status, { error: 'later' }), [], `/links ${status}: undecided`);
  assert.deepEqual(checkNetworkAnswer('POST', '/links', 302, undefined), ['302 is not a documented answer of POST /links (200, 403, 404, 408, 429, 501, 2XX, 4XX, 5XX)']);
  for (const status of [200, 204, 400, 404, 501, 503]) assert.deepEqual(checkNetworkAnswer('POST', '/unlinks', status, { anything: 1 }), [], `/unlinks ${status}`);
  assert.deepEqual(checkNetworkAnswer('POST', '/unlinks', 302, undefined).length, 1);
});

// ---------------------------------------------------------------- the fake network

const SECRET = 'network-secret-for-tests';
/** What the AS sends: signed JSON, with the Idempotency-Key on deliveries. */
async function asCall(net: FakeNetwork, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const raw = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', net.secret).update(`${t}.${raw}`).digest('hex');
  const res = await fetch(net.url + path, {
    method,
    body: method === 'GET' ? undefined : raw,
    headers: { 'content-type': 'application/json', 'x-signature': `t=${t},v1=${v1}`, ...headers },
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, retryAfter: res.headers.get('retry-after') };
}
const deliver = (net: FakeNetwork, kind: DeliveryKind, body: Json & { id: string }) => asCall(net, 'POST', `/${kind}`, body, { 'idempotency-key': body.id });

const sender = { userId: '@alice:example.org' };
let seq = 0;
const message = (extra: Json = {}) => ({ id: `$m${++seq}`, room: '#matrix', sender, msgtype: 'm.text', body: `message ${seq}`, ts: 1700000000000 + seq, ...extra });
const edit = (target: Json) => ({ id: `$ed${++seq}`, room: '#matrix', sender, target, msgtype: 'm.text', body: 'edited', ts: 1700000000000 + seq });
const deletion = (target: Json) => ({ id: `$del${++seq}`, room: '#matrix', sender, target, reason: 'oops', ts: 1700000000000 + seq });
const reaction = (target: Json) => ({ id: `$r${++seq}`, room: '#matrix', sender, target, key: '👍', ts: 1700000000000 + seq });
const membership = (extra: Json = {}) => ({ id: `$mem${++seq}`, room: '#matrix', sender, user: { userId: sender.userId }, membership: 'join', ts: 1700000000000 + seq, ...extra });
const profile = (extra: Json = {}) => ({ id: `$p${++seq}`, room: '#matrix', sender: { ...sender, displayName: `Alice ${seq}` }, previousDisplayName: 'Alice', ts: 1700000000000 + seq, ...extra });

const net = await startFakeNetwork();
after(() => net.close());

test('the fake network: lookups and every kind of delivery, each answer as the document says', async () => {
  net.users.set('Bob', { displayName: 'Bob', avatarUrl: 'mxc://example.org/face' });
  net.rooms.set('#matrix', { name: '#matrix', topic: 'all about matrix' });
  assert.deepEqual(await asCall(net, 'GET', '/users/Bob').then((r) => [r.status, r.body]), [200, { displayName: 'Bob', avatarUrl: 'mxc://example.org/face' }]);
  assert.equal((await asCall(net, 'GET', '/users/Nobody')).status, 404);
  assert.deepEqual(await asCall(net, 'GET', `/rooms/${encodeURIComponent('#matrix')}`).then((r) => [r.status, r.body]), [200, { name: '#matrix', topic: 'all about matrix' }]);

  const rich = message({
    formattedBody: '<b>hi</b>',
    mentions: [{ userId: '@irc__bob:example.org', id: 'Bob' }],
    replyTo: { eventId: '$earlier', id: 'irc-1' },
    msgtype: 'm.image',
    media: { mxc: 'mxc://example.org/abc', url: 'https://as.example/network/media/example.org/abc?expires=1&sig=00', mimetype: 'image/png', size: 3, width: 1, height: 1 },
  });
  const sent = await deliver(net, 'messages', rich);
  assert.equal(sent.status, 200);
  assert.match(sent.body.id, /^net-\d+$/);
  assert.equal(net.networkIds.get(rich.id), sent.body.id);
  assert.deepEqual((await deliver(net, 'messages', rich)).body, sent.body, 'a redelivery gets the same id');

  assert.deepEqual(await deliver(net, 'edits', edit({ eventId: rich.id, id: sent.body.id })).then((r) => [r.status, r.body]), [200, {}]);
  const reacted = await deliver(net, 'reactions', reaction({ eventId: rich.id, id: sent.body.id }));
  assert.equal(reacted.status, 200);
  assert.match(reacted.body.id, /^net-\d+$/);
  assert.equal((await deliver(net, 'deletions', deletion({ eventId: '$some-reaction', id: reacted.body.id }))).status, 200);

  assert.equal(net.acceptedBy.messages.length, 2);
  assert.equal(net.accepted, net.acceptedBy.messages, 'accepted keeps meaning the messages');
  assert.deepEqual([net.acceptedBy.edits.length, net.acceptedBy.deletions.length, net.acceptedBy.reactions.length], [1, 1, 1]);
  assert.deepEqual(net.received.filter((r) => r.kind).map((r) => [r.kind, r.idempotencyKey === r.body.id]), [
    ['messages', true],
    ['messages', true],
    ['edits', true],
    ['reactions', true],
    ['deletions', true],
  ]);
  assert.deepEqual(net.specErrors, []);
});

test('searches: the checker takes the contract\'s traffic and names what breaks it; the fake network answers them as documented', async () => {
  assert.deepEqual(checkNetworkRequest('GET', '/search/rooms?channel=%23matrix', undefined, { 'x-signature': 't=1,v1=00' }), []);
  assert.deepEqual(checkNetworkRequest('GET', '/search/users?nickname=bob', undefined), []);
  assert.deepEqual(checkNetworkRequest('GET', '/search/users?nickname=bob', undefined, {}), ['not authenticated: needs header X-Signature (signature)']);
  assert.throws(() => checkNetworkRequest('GET', '/search/everything?q=x', undefined), /no operation/);
  assert.deepEqual(checkNetworkAnswer('GET', '/search/rooms?channel=x', 200, [{ id: '#x', fields: { channel: '#x', network: 'irc.example.org' }, extra: 1 }]), []);
  assert.deepEqual(checkNetworkAnswer('GET', '/search/rooms?channel=x', 200, []), []);
  assert.deepEqual(checkNetworkAnswer('GET', '/search/users?nickname=x', 404, undefined), [], 'a network without searches');
  assert.deepEqual(checkNetworkAnswer('GET', '/search/users?nickname=x', 501, undefined), []);
  assert.deepEqual(checkNetworkAnswer('GET', '/search/rooms?channel=x', 200, { rooms: [] }), ['200 body must be array']);
  assert.deepEqual(checkNetworkAnswer('GET', '/search/rooms?channel=x', 200, [{ name: 'x' }]), ["200 body/0 must have required property 'id'"]);
  assert.deepEqual(checkNetworkAnswer('GET', '/search/rooms?channel=x', 200, [{ id: '' }]), ['200 body/0/id must NOT have fewer than 1 characters']);

  net.rooms.set('#matrix-dev', { name: 'Matrix development' });
  net.users.set('bobby', { displayName: 'Robert' });
  const rooms = await asCall(net, 'GET', `/search/rooms?channel=${encodeURIComponent('#MATRIX')}`);
  assert.deepEqual([rooms.status, rooms.body], [200, [{ id: '#matrix' }, { id: '#matrix-dev' }]], 'every room holding the text, in any case');
  assert.deepEqual((await asCall(net, 'GET', '/search/users?nickname=robert')).body, [{ id: 'bobby' }], 'users by display name too');
  assert.deepEqual((await asCall(net, 'GET', '/search/users?nickname=nobody-at-all')).body, []);
  const asked: unknown[] = [];
  net.onSearch = (kind, fields) => {
    asked.push([kind, fields]);
    return fields.channel?.[0] === 'none' ? { status: 404 } : [{ id: '#x', fields: { network: 'n' } }];
  };
  assert.deepEqual((await asCall(net, 'GET', '/search/rooms?channel=x&channel=y')).body, [{ id: '#x', fields: { network: 'n' } }]);
  assert.equal((await asCall(net, 'GET', '/search/rooms?channel=none')).status, 404);
  assert.deepEqual(asked, [['rooms', { channel: ['x', 'y'] }], ['rooms', { channel: ['none'] }]]);
  net.onSearch = () => ({ status: 503, retryAfter: 3 });
  assert.deepEqual(await asCall(net, 'GET', '/search/users?nickname=x').then((r) => [r.status, r.retryAfter]), [503, '3']);
  net.onSearch = undefined;
  assert.deepEqual(net.specErrors, []);
});

test('the fake network: 1.x answers, unsupported kinds, unknown targets, failures — all as documented', async () => {
  net.answerIds = false;
  const plain = message();
  assert.deepEqual(await deliver(net, 'messages', plain).then((r) => [r.status, r.body]), [200, {}], 'a 1.x network answers no id');
  net.answerIds = true;

  net.unsupported.add('reactions');
  assert.equal((await deliver(net, 'reactions', reaction({ eventId: plain.id }))).status, 501);
  net.unsupported.clear();

  net.strictTargets = true;
  assert.equal((await deliver(net, 'edits', edit({ eventId: '$never-seen', id: 'net-never' }))).status, 404);
  assert.equal((await deliver(net, 'deletions', deletion({ eventId: '$never-seen' }))).status, 404);
  assert.equal((await deliver(net, 'edits', edit({ eventId: plain.id }))).status, 200, 'known by its event id');
  net.knownMessageIds.add('irc-42');
  assert.equal((await deliver(net, 'reactions', reaction({ eventId: '$bridged-from-the-network', id: 'irc-42' }))).status, 200, 'known by its network id');
  net.strictTargets = false;

  const seen: Array<[string, number, DeliveryKind]> = [];
  net.onDeliver = (body, attempt, kind) => {
    seen.push([body.id, attempt, kind]);
    return attempt === 1 ? { status: 503, retryAfter: 7 } : undefined;
  };
  const del = deletion({ eventId: plain.id });
  const first = await deliver(net, 'deletions', del);
  assert.deepEqual([first.status, first.retryAfter], [503, '7']);
  assert.equal((await deliver(net, 'deletions', del)).status, 200);
  assert.deepEqual(seen, [[del.id, 1, 'deletions'], [del.id, 2, 'deletions']]);
  net.onDeliver = (m, attempt) => (attempt < 2 ? { status: 429 } : undefined); // a v1-style, two-argument decider
  const m = message();
  assert.equal((await deliver(net, 'messages', m)).status, 429);
  assert.equal((await deliver(net, 'messages', m)).status, 200);
  net.onDeliver = () => ({ status: 422 });
  assert.equal((await deliver(net, 'messages', message())).status, 422);
  net.onDeliver = undefined;

  net.lookupFailure = { status: 500 };
  assert.equal((await asCall(net, 'GET', '/rooms/x')).status, 500);
  net.lookupFailure = undefined;

  // The fake checks the AS's signature: a wrong one is refused (as documented: 4XX).
  assert.equal((await asCall(net, 'GET', '/users/Bob', undefined, { 'x-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}` })).status, 403);
  assert.deepEqual(net.specErrors, []);
});

test('the fake network: memberships, profiles and direct chats (2.1), answered as documented; strictTargets leaves the target-less kinds alone', async () => {
  const joined = membership();
  assert.deepEqual(await deliver(net, 'members', joined).then((r) => [r.status, r.body]), [200, {}]);
  const kicked = membership({ sender: { userId: '@mod:example.org' }, membership: 'leave', reason: 'be nice' });
  assert.equal((await deliver(net, 'members', kicked)).status, 200);
  const renamed = profile();
  assert.deepEqual(await deliver(net, 'profile', renamed).then((r) => [r.status, r.body]), [200, {}]);
  assert.deepEqual(net.acceptedBy.members, [joined, kicked]);
  assert.deepEqual(net.acceptedBy.profile, [renamed]);
  assert.deepEqual(net.received.slice(-3).map((r) => [r.kind, r.idempotencyKey === r.body.id]), [['members', true], ['members', true], ['profile', true]]);

  // A direct chat: `direct` in place of `room`, for every kind that has a target too.
  const { room: _room, ...unplaced } = message();
  const privately = { ...unplaced, direct: { with: 'Bob' } };
  const sent = await deliver(net, 'messages', privately);
  assert.equal(sent.status, 200);
  assert.match(sent.body.id, /^net-\d+$/);
  const { room: _r, ...reactionUnplaced } = reaction({ eventId: privately.id, id: sent.body.id });
  assert.equal((await deliver(net, 'reactions', { ...reactionUnplaced, direct: { with: 'Bob' } })).status, 200);

  net.strictTargets = true;
  assert.equal((await deliver(net, 'members', membership())).status, 200, 'a membership has no target to know');
  assert.equal((await deliver(net, 'profile', profile())).status, 200, 'nor has a profile');
  assert.equal((await deliver(net, 'edits', edit({ eventId: '$never-seen' }))).status, 404, 'edits still are checked');
  net.strictTargets = false;

  net.unsupported.add('members');
  assert.equal((await deliver(net, 'members', membership())).status, 501);
  assert.equal((await deliver(net, 'profile', profile())).status, 200, 'one kind at a time');
  net.unsupported.clear();

  const seen: Array<[number, DeliveryKind]> = [];
  net.onDeliver = (_body, attempt, kind) => {
    seen.push([attempt, kind]);
    return attempt === 1 ? { status: 503, retryAfter: 2 } : undefined;
  };
  const again = profile();
  assert.deepEqual(await deliver(net, 'profile', again).then((r) => [r.status, r.retryAfter]), [503, '2']);
  assert.equal((await deliver(net, 'profile', again)).status, 200);
  assert.deepEqual(seen, [[1, 'profile'], [2, 'profile']]);
  net.onDeliver = undefined;
  assert.deepEqual(net.specErrors, []);
});

test('the fake network: links and unlinks (2.2), answered as documented; a malformed link request lands in specErrors', async () => {
  const link = { room: '#matrix', matrixRoomId: '!community:example.org', requestedBy: '@mod:example.org' };
  try {
    assert.deepEqual(await asCall(net, 'POST', '/links', link).then((r) => [r.status, r.body]), [200, {}], 'approved');
    assert.deepEqual(net.acceptedLinks.at(-1), link);
    net.refuseLinks('#matrix', 403, 'Only the operators of #matrix may link it');
    assert.deepEqual(await asCall(net, 'POST', '/links', link).then((r) => [r.status, r.body]), [403, { error: 'Only the operators of #matrix may link it' }], 'refused, with the reason');
    assert.deepEqual(await asCall(net, 'POST', '/unlinks', link).then((r) => [r.status, r.body]), [200, {}], 'an unlink is never refused');
    assert.deepEqual(net.acceptedUnlinks.at(-1), link);
    net.clearLinkRefusals();
    net.onLink = (_body, _attempt, kind) => (kind === 'links' ? { status: 503, retryAfter: 4 } : undefined);
    assert.equal((await asCall(net, 'POST', '/links', { ...link, room: '#later' })).status, 503, 'undecided');
    net.onLink = undefined;
    // Neither carries an Idempotency-Key: they are not deliveries.
    assert.ok(net.received.filter((r) => r.path === '/links' || r.path === '/unlinks').every((r) => r.idempotencyKey === undefined));
    assert.deepEqual(net.specErrors, []);
  } finally {
    net.clearLinkRefusals();
    net.onLink = undefined;
  }

  const bad = await startFakeNetwork();
  try {
    const { matrixRoomId: _m, ...noMatrixRoom } = link;
    assert.equal((await asCall(bad, 'POST', '/links', noMatrixRoom)).status, 400);
    await asCall(bad, 'POST', '/unlinks', { ...link, room: 7 });
    const errors = bad.specErrors;
    assert.ok(errors.includes("POST /links: body must have required property 'matrixRoomId'"), errors.join('\n'));
    assert.ok(errors.includes('POST /unlinks: body/room must be string'), errors.join('\n'));
    assert.ok(!errors.some((e) => e.startsWith('answer ')), `the fake's answers conform: ${errors.join('\n')}`);
  } finally {
    await bad.close();
  }
});

test('the fake network: malformed requests from the AS land in specErrors', async () => {
  const bad = await startFakeNetwork({ answerIds: false });
  try {
    const { ts: _ts, ...noTs } = message();
    await deliver(bad, 'messages', noTs);
    assert.ok(bad.specErrors.some((e) => e.includes("POST /messages: body must have required property 'ts'")), bad.specErrors.join('\n'));

    bad.specErrors.length = 0;
    await asCall(bad, 'POST', '/edits', edit({ id: 'net-1' })); // no eventId in the target, no Idempotency-Key
    assert.deepEqual(bad.specErrors, [
      'POST /edits: header parameter Idempotency-Key is required',
      "POST /edits: body/target must have required property 'eventId'",
    ]);

    bad.specErrors.length = 0;
    const res = await fetch(`${bad.url}/messages`, { method: 'POST', body: JSON.stringify(message()), headers: { 'idempotency-key': '$x' } });
    assert.equal(res.status, 401);
    assert.deepEqual(bad.specErrors, ['POST /messages: not authenticated: needs header X-Signature (signature)']);

    bad.specErrors.length = 0;
    assert.equal((await asCall(bad, 'POST', '/messages', '{not json', { 'idempotency-key': '$x' })).status, 400);
    assert.deepEqual(bad.specErrors, ['POST /messages: body is not JSON']);

    // 2.1: exactly one of room and direct; memberships only of rooms.
    bad.specErrors.length = 0;
    await deliver(bad, 'messages', message({ direct: { with: 'Bob' } }));
    const { room: _room, ...unplaced } = membership();
    await deliver(bad, 'members', { ...unplaced, direct: { with: 'Bob' } });
    await deliver(bad, 'members', membership({ membership: 'kick' }));
    const errors = bad.specErrors.join('\n');
    assert.match(errors, /POST \/messages: body must match exactly one schema in oneOf/);
    assert.match(errors, /POST \/members: body must have required property 'room'/);
    assert.match(errors, /POST \/members: body\/membership must be equal to one of the allowed values/);

    bad.specErrors.length = 0;
    await asCall(bad, 'POST', '/typing', { room: '#matrix' });
    assert.equal(bad.specErrors.length, 1);
    assert.match(bad.specErrors[0]!, /no operation of the network .* POST \/typing/);
  } finally {
    await bad.close();
  }
});

test('the fake network\'s signatures: sign and signBytes are the contract\'s HMAC, and the string form still starts it', async () => {
  const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x0a]);
  const now = 1_700_000_000_123;
  const expected = createHmac('sha256', SECRET).update(Buffer.concat([Buffer.from('1700000000.'), bytes])).digest('hex');
  assert.equal(net.signBytes(bytes, now), `t=1700000000,v1=${expected}`);
  const body = '{"id":"irc-1","body":"héllo"}';
  assert.equal(net.sign(body, now), `t=1700000000,v1=${createHmac('sha256', SECRET).update(`1700000000.${body}`).digest('hex')}`);
  assert.equal(net.sign(body, now), net.signBytes(Buffer.from(body, 'utf8'), now));

  const other = await startFakeNetwork('another-secret');
  try {
    assert.equal(other.secret, 'another-secret');
    assert.equal(other.answerIds, true);
    assert.equal(other.strictTargets, false);
    assert.equal((await asCall(other, 'GET', '/users/x')).status, 404, 'signed with its secret');
    assert.deepEqual(other.specErrors, []);
  } finally {
    await other.close();
  }
});
