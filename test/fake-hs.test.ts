import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeHs } from './support/fake-hs.js';
import type { FakeHs } from './support/fake-hs.js';
import {
  checkAsRequest,
  checkAsResponse,
  checkCsRequest,
  checkCsResponse,
  checkEvent,
  checkEventContent,
  checkRegistration,
  matchOperation,
} from './support/spec.js';

const AS_TOKEN = 'as-secret';
const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const CS = '/_matrix/client/v3';

let hs: FakeHs;

interface CallOpts {
  token?: string | null; // null: no token at all
  tokenInQuery?: boolean;
  userId?: string;
  query?: Record<string, string>;
  rawBody?: string;
  signal?: AbortSignal;
}

async function call(method: string, path: string, body?: unknown, o: CallOpts = {}): Promise<{ status: number; json: any }> {
  const url = new URL(hs.url + path);
  const token = o.token === undefined ? AS_TOKEN : o.token;
  const headers: Record<string, string> = {};
  if (token !== null) {
    if (o.tokenInQuery) url.searchParams.set('access_token', token);
    else headers.authorization = `Bearer ${token}`;
  }
  if (o.userId !== undefined) url.searchParams.set('user_id', o.userId);
  for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, v);
  const payload = o.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const init: RequestInit = { method, headers };
  if (payload !== undefined) init.body = payload;
  if (o.signal) init.signal = o.signal;
  const res = await fetch(url, init);
  const text = await res.text();
  let json: any = text;
  try {
    json = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, json };
}

const enc = encodeURIComponent;

async function register(localpart: string): Promise<string> {
  const r = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: localpart, inhibit_login: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.user_id as string;
}

before(async () => {
  hs = await startFakeHs({ asToken: AS_TOKEN, serverName: SERVER, userPrefix: 'irc_', senderLocalpart: 'bot' });
});
after(async () => {
  await hs.close();
});
beforeEach(() => hs.reset());

describe('fake HS: authentication and identity assertion', () => {
  it('rejects a missing token with 401 M_MISSING_TOKEN and a wrong one with 401 M_UNKNOWN_TOKEN', async () => {
    const none = await call('POST', `${CS}/createRoom`, {}, { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.json.errcode, 'M_MISSING_TOKEN');
    const wrong = await call('POST', `${CS}/createRoom`, {}, { token: 'nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.errcode, 'M_UNKNOWN_TOKEN');
    assert.equal(hs.calls.length, 2, 'rejected calls are recorded too');
    assert.deepEqual(hs.calls.map((c) => c.status), [401, 401]);
    assert.equal(hs.rooms.size, 0);
  });

  it('accepts the token as ?access_token=', async () => {
    const r = await call('POST', `${CS}/createRoom`, {}, { tokenInQuery: true });
    assert.equal(r.status, 200);
    assert.equal(hs.rooms.get(r.json.room_id)?.creator, BOT);
  });

  it('allows user_id only for registered users in the namespace', async () => {
    const outside = await call('POST', `${CS}/createRoom`, {}, { userId: `@alice:${SERVER}` });
    assert.equal(outside.status, 403);
    assert.equal(outside.json.errcode, 'M_FORBIDDEN');
    const unregistered = await call('POST', `${CS}/createRoom`, {}, { userId: `@irc_nobody:${SERVER}` });
    assert.equal(unregistered.status, 403);
    assert.equal(unregistered.json.errcode, 'M_FORBIDDEN');
    const bot = await call('POST', `${CS}/createRoom`, {}, { userId: BOT });
    assert.equal(bot.status, 200);
    const bob = await register('irc_bob');
    const asBob = await call('POST', `${CS}/createRoom`, {}, { userId: bob });
    assert.equal(asBob.status, 200);
    assert.equal(hs.rooms.get(asBob.json.room_id)?.creator, bob);
    assert.equal(hs.calls.at(-1)?.userId, bob);
  });

  it('answers unknown endpoints with 404 M_UNRECOGNIZED and flags them as not in the spec', async () => {
    const r = await call('GET', `${CS}/account/whoami`);
    assert.equal(r.status, 404);
    assert.equal(r.json.errcode, 'M_UNRECOGNIZED');
    assert.match(hs.specErrors.join('\n'), /no operation .* GET \/_matrix\/client\/v3\/account\/whoami/);
  });

  it('answers malformed JSON with 400 M_NOT_JSON', async () => {
    const r = await call('POST', `${CS}/createRoom`, undefined, { rawBody: '{not json' });
    assert.equal(r.status, 400);
    assert.equal(r.json.errcode, 'M_NOT_JSON');
    assert.equal(hs.calls[0]?.body, '{not json');
  });
});

describe('fake HS: registration and profile', () => {
  it('registers namespaced users, refuses duplicates and users outside the namespace', async () => {
    const ok = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'irc_bob', inhibit_login: true }, { query: { kind: 'user' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.user_id, `@irc_bob:${SERVER}`);
    assert.equal(ok.json.access_token, undefined, 'no login when inhibit_login is true');
    assert.ok(hs.users.has(`@irc_bob:${SERVER}`));

    const again = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'irc_bob', inhibit_login: true });
    assert.equal(again.status, 400);
    assert.equal(again.json.errcode, 'M_USER_IN_USE');

    const outside = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'alice', inhibit_login: true });
    assert.equal(outside.status, 400);
    assert.equal(outside.json.errcode, 'M_EXCLUSIVE');

    const bad = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'irc_Bob' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.errcode, 'M_INVALID_USERNAME');

    const login = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'irc_carol' });
    assert.equal(login.status, 200);
    assert.equal(typeof login.json.access_token, 'string');
    assert.equal(typeof login.json.device_id, 'string');
    assert.deepEqual(hs.specErrors, []);
  });

  it('refuses registration without the application service type (as Synapse does)', async () => {
    const r = await call('POST', `${CS}/register`, { username: 'irc_bob' });
    assert.equal(r.status, 400);
    assert.equal(hs.users.has(`@irc_bob:${SERVER}`), false);
  });

  it('sets display name and avatar of the acting user only', async () => {
    const bob = await register('irc_bob');
    const dn = await call('PUT', `${CS}/profile/${enc(bob)}/displayname`, { displayname: 'Bob' }, { userId: bob });
    assert.equal(dn.status, 200);
    assert.deepEqual(dn.json, {});
    const av = await call('PUT', `${CS}/profile/${enc(bob)}/avatar_url`, { avatar_url: 'mxc://example.org/abc' }, { userId: bob });
    assert.equal(av.status, 200);
    assert.deepEqual(hs.users.get(bob), { displayName: 'Bob', avatarUrl: 'mxc://example.org/abc' });
    const other = await call('PUT', `${CS}/profile/${enc(bob)}/displayname`, { displayname: 'Eve' });
    assert.equal(other.status, 403, 'the bot may not set bob’s profile');
    assert.deepEqual(hs.specErrors, []);
  });
});

describe('fake HS: rooms', () => {
  it('creates rooms with aliases, refuses a taken alias, resolves aliases', async () => {
    const r = await call('POST', `${CS}/createRoom`, { room_alias_name: 'irc_chan', name: 'Chan', topic: 'About', preset: 'public_chat', visibility: 'private' });
    assert.equal(r.status, 200);
    const roomId: string = r.json.room_id;
    assert.match(roomId, /^!.+:example\.org$/);
    const room = hs.rooms.get(roomId);
    assert.ok(room);
    assert.equal(room.alias, `#irc_chan:${SERVER}`);
    assert.equal(room.name, 'Chan');
    assert.equal(room.topic, 'About');
    assert.ok(room.members.has(BOT));
    assert.equal(hs.aliases.get(`#irc_chan:${SERVER}`), roomId);

    const taken = await call('POST', `${CS}/createRoom`, { room_alias_name: 'irc_chan' });
    assert.equal(taken.status, 400);
    assert.equal(taken.json.errcode, 'M_ROOM_IN_USE');
    assert.equal(hs.rooms.size, 1);

    const found = await call('GET', `${CS}/directory/room/${enc(`#irc_chan:${SERVER}`)}`);
    assert.equal(found.status, 200);
    assert.deepEqual(found.json, { room_id: roomId, servers: [SERVER] });
    const missing = await call('GET', `${CS}/directory/room/${enc(`#irc_none:${SERVER}`)}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.json.errcode, 'M_NOT_FOUND');
    assert.deepEqual(hs.specErrors, []);
  });

  it('joins by alias or ID (public rooms, or when invited) and invites', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const pub = await call('POST', `${CS}/createRoom`, { room_alias_name: 'irc_pub', preset: 'public_chat' });
    const j1 = await call('POST', `${CS}/join/${enc(`#irc_pub:${SERVER}`)}`, {}, { userId: bob });
    assert.equal(j1.status, 200);
    assert.equal(j1.json.room_id, pub.json.room_id);
    assert.ok(hs.rooms.get(pub.json.room_id)?.members.has(bob));

    const priv = await call('POST', `${CS}/createRoom`, { preset: 'private_chat' });
    const privId: string = priv.json.room_id;
    const refused = await call('POST', `${CS}/rooms/${enc(privId)}/join`, {}, { userId: carol });
    assert.equal(refused.status, 403);
    const inv = await call('POST', `${CS}/rooms/${enc(privId)}/invite`, { user_id: carol });
    assert.equal(inv.status, 200);
    const j2 = await call('POST', `${CS}/rooms/${enc(privId)}/join`, {}, { userId: carol });
    assert.equal(j2.status, 200);
    assert.ok(hs.rooms.get(privId)?.members.has(carol));

    const unknown = await call('POST', `${CS}/join/${enc(`#irc_nope:${SERVER}`)}`, {}, { userId: bob });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.errcode, 'M_NOT_FOUND');
    assert.deepEqual(hs.specErrors, []);
  });

  it('sends messages once per transaction ID, keeping ?ts=', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: `@alice:${SERVER}`, joinRule: 'public' });
    const path = `${CS}/rooms/${enc(room.roomId)}/send/m.room.message/net-1`;
    const content = { msgtype: 'm.text', body: 'hello' };

    const notMember = await call('PUT', path, content, { userId: bob, query: { ts: '1700000000000' } });
    assert.equal(notMember.status, 403);
    assert.equal(notMember.json.errcode, 'M_FORBIDDEN');

    await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob });
    const first = await call('PUT', path, content, { userId: bob, query: { ts: '1700000000000' } });
    assert.equal(first.status, 200);
    assert.match(first.json.event_id, /^\$/);
    const again = await call('PUT', path, content, { userId: bob, query: { ts: '1700000000000' } });
    assert.equal(again.json.event_id, first.json.event_id);
    assert.equal(room.events.length, 1);
    assert.deepEqual(
      { type: room.events[0]?.type, sender: room.events[0]?.sender, content: room.events[0]?.content, ts: room.events[0]?.ts, txnId: room.events[0]?.txnId },
      { type: 'm.room.message', sender: bob, content, ts: 1700000000000, txnId: 'net-1' },
    );
    const state = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.topic/`, { topic: 'New topic' }, { userId: bob });
    assert.equal(state.status, 200);
    assert.equal(room.topic, 'New topic');
    assert.equal(room.events.at(-1)?.stateKey, '');
    assert.deepEqual(hs.specErrors, []);
  });

  it('flags event content that does not match the event schema', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const r = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/send/m.room.message/t1`, { msgtype: 'm.text' });
    assert.equal(r.status, 200, 'accepted, as a server would');
    assert.match(hs.specErrors.join('\n'), /required property 'body'/);
  });
});

describe('fake HS: failures on demand', () => {
  it('answers 429 with retry_after_ms, then normally', async () => {
    hs.fail({ kind: 'ratelimit', retryAfterMs: 1500, match: { pathIncludes: '/createRoom' } });
    const limited = await call('POST', `${CS}/createRoom`, {});
    assert.equal(limited.status, 429);
    assert.equal(limited.json.errcode, 'M_LIMIT_EXCEEDED');
    assert.equal(limited.json.retry_after_ms, 1500);
    assert.deepEqual(checkCsResponse('POST', `${CS}/createRoom`, 429, limited.json), []);
    const ok = await call('POST', `${CS}/createRoom`, {});
    assert.equal(ok.status, 200);
    assert.equal(hs.rooms.size, 1);
    assert.equal(hs.calls[0]?.failedBy, 'ratelimit');
  });

  it('answers 500 as many times as asked, only for matching calls', async () => {
    hs.fail({ kind: 'status', status: 500, times: 2, match: { method: 'POST', pathIncludes: /\/register$/ } });
    const room = await call('POST', `${CS}/createRoom`, {});
    assert.equal(room.status, 200, 'other paths are not affected');
    const body = { type: 'm.login.application_service', username: 'irc_bob', inhibit_login: true };
    const a = await call('POST', `${CS}/register`, body);
    const b = await call('POST', `${CS}/register`, body);
    const c = await call('POST', `${CS}/register`, body);
    assert.deepEqual([a.status, b.status, c.status], [500, 500, 200]);
    assert.equal(a.json.errcode, 'M_UNKNOWN');
    assert.ok(hs.users.has(`@irc_bob:${SERVER}`));
  });

  it('hangs until the client gives up; close() would end it', async () => {
    hs.fail({ kind: 'hang', match: { pathIncludes: '/send/' } });
    const room = hs.seedRoom({ creator: BOT });
    await assert.rejects(
      call('PUT', `${CS}/rooms/${enc(room.roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'x' }, { signal: AbortSignal.timeout(150) }),
      (e: Error) => e.name === 'TimeoutError' || e.name === 'AbortError',
    );
    assert.equal(hs.calls[0]?.status, 0);
    assert.equal(hs.calls[0]?.failedBy, 'hang');
    assert.equal(room.events.length, 0);
    const next = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'x' });
    assert.equal(next.status, 200, 'the rule was used up');
  });

  it('delays, then answers normally', async () => {
    hs.fail({ kind: 'delay', ms: 30, match: {} });
    const r = await call('POST', `${CS}/createRoom`, {});
    assert.equal(r.status, 200);
    assert.equal(hs.calls[0]?.failedBy, 'delay');
    assert.equal(hs.rooms.size, 1);
  });
});

describe('spec checks', () => {
  it('catches a bad CS request body', () => {
    assert.deepEqual(checkCsRequest('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'irc_bob', inhibit_login: true }), []);
    // The spec's /register schema has no `type` property (it is the AS API's
    // addition), so its absence is not a schema error; wrong types are.
    const errors = checkCsRequest('POST', `${CS}/register`, { username: 42, inhibit_login: 'yes' });
    assert.equal(errors.length, 2, errors.join('; '));
    assert.ok(checkCsRequest('POST', `${CS}/rooms/!r:hs/invite`, {}).some((e) => e.includes('user_id')));
    assert.ok(checkCsRequest('PUT', `${CS}/rooms/${enc('#alias:hs')}/send/m.room.message/1`, {}).some((e) => e.includes('roomId')));
  });

  it('records bad bodies the fake receives in specErrors', async () => {
    const r = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: 'irc_bob', inhibit_login: 'yes' });
    assert.equal(r.status, 200);
    assert.equal(hs.specErrors.length, 1);
    assert.match(hs.specErrors[0] ?? '', /inhibit_login must be boolean/);
  });

  it('throws for operations the spec does not have', () => {
    assert.throws(() => checkCsRequest('GET', `${CS}/createRoom`, undefined), /no GET/);
    assert.throws(() => checkCsRequest('POST', `${CS}/nonsense`, {}), /no operation/);
    assert.equal(matchOperation('cs', 'PUT', `${CS}/rooms/!r:hs/state/m.room.name`).operationId, 'setRoomStateWithKey');
    assert.equal(matchOperation('cs', 'POST', `${CS}/rooms/!r:hs/invite`).operationId, 'inviteUser');
  });

  it('checks AS answers', () => {
    assert.deepEqual(checkAsResponse('GET', '/_matrix/app/v1/users/@irc_bob:example.org', 200, {}), []);
    assert.deepEqual(checkAsResponse('GET', '/_matrix/app/v1/users/@irc_bob:example.org', 404, { errcode: 'M_NOT_FOUND', error: 'No such user' }), []);
    assert.deepEqual(checkAsResponse('GET', `/_matrix/app/v1/rooms/${enc('#irc_x:example.org')}`, 200, {}), []);
    assert.deepEqual(checkAsResponse('PUT', '/_matrix/app/v1/transactions/42', 200, {}), []);
    assert.deepEqual(checkAsResponse('POST', '/_matrix/app/v1/ping', 200, {}), []);
    assert.deepEqual(checkAsResponse('GET', '/users/@irc_bob:example.org', 200, {}), [], 'legacy path');
    assert.notDeepEqual(checkAsResponse('GET', '/_matrix/app/v1/users/@irc_bob:example.org', 404, { error: 'no errcode' }), []);
    assert.throws(() => checkAsResponse('GET', '/_matrix/app/v1/nonsense', 200, {}));
  });

  it('checks AS requests (transactions)', () => {
    const event = { type: 'm.room.message', event_id: '$e', room_id: '!r:hs', sender: '@alice:hs', origin_server_ts: 1, content: { msgtype: 'm.text', body: 'hi' } };
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: [event] }), []);
    assert.notDeepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: [{ type: 'm.room.message' }] }), []);
    assert.deepEqual(checkEvent('m.room.message', event), []);
    assert.notDeepEqual(checkEventContent('m.room.name', { name: 1 }), []);
  });

  it('checks registrations', () => {
    const reg = {
      id: 'lambda',
      url: 'http://127.0.0.1:3000',
      as_token: 'a',
      hs_token: 'b',
      sender_localpart: 'bot',
      namespaces: {
        users: [{ exclusive: true, regex: '@irc_.*:example\\.org' }],
        aliases: [{ exclusive: true, regex: '#irc_.*:example\\.org' }],
        rooms: [],
      },
      rate_limited: false,
    };
    assert.deepEqual(checkRegistration(reg), []);
    assert.deepEqual(checkRegistration({ ...reg, url: null }), []);
    assert.notDeepEqual(checkRegistration({ ...reg, namespaces: { users: [{ regex: '@irc_.*' }] } }), []);
    const { hs_token: _omit, ...noHsToken } = reg;
    assert.notDeepEqual(checkRegistration(noHsToken), []);
  });
});
