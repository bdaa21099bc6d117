import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { pduBytes, startFakeHs, synapsePowerLevels } from './support/fake-hs.js';
import type { FakeHs, FakeHsOptions, PushSend } from './support/fake-hs.js';
import {
  checkAsRequest,
  checkAsResponse,
  checkCsRequest,
  checkCsResponse,
  checkEvent,
  checkEventContent,
  checkRegistration,
  checkSchemaFile,
  matchOperation,
} from './support/spec.js';

const AS_TOKEN = 'as-secret';
const SERVER = 'example.org';
const BOT = `@bot:${SERVER}`;
const CS = '/_matrix/client/v3';

let hs: FakeHs;

interface CallOpts {
  /** another fake HS than the shared one */
  on?: FakeHs;
  token?: string | null; // null: no token at all
  tokenInQuery?: boolean;
  userId?: string;
  query?: Record<string, string>;
  rawBody?: string;
  signal?: AbortSignal;
}

async function call(method: string, path: string, body?: unknown, o: CallOpts = {}): Promise<{ status: number; json: any }> {
  const url = new URL((o.on ?? hs).url + path);
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

async function register(localpart: string, on?: FakeHs): Promise<string> {
  const o: CallOpts = {};
  if (on) o.on = on;
  const r = await call('POST', `${CS}/register`, { type: 'm.login.application_service', username: localpart, inhibit_login: true }, o);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.user_id as string;
}

const BASE: FakeHsOptions = { asToken: AS_TOKEN, serverName: SERVER, userPrefix: 'irc_', senderLocalpart: 'bot' };

/** A fake HS with options of its own for one describe block: reset before each test, closed after. */
function hsWith(extra: Partial<FakeHsOptions>): () => FakeHs {
  let other: FakeHs | undefined;
  before(async () => {
    other = await startFakeHs({ ...BASE, ...extra });
  });
  after(() => other?.close());
  beforeEach(() => other?.reset());
  return () => other!;
}

before(async () => {
  hs = await startFakeHs(BASE);
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

  it('refuses a wrong ?access_token= with 401 M_UNKNOWN_TOKEN, and stores nothing', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const r = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'x' }, { token: 'nope', tokenInQuery: true });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { errcode: 'M_UNKNOWN_TOKEN', error: 'Invalid access token passed.', soft_logout: false });
    assert.equal(room.events.length, 0);
    assert.deepEqual(hs.specErrors, []);
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
    // a moderator: the topic below needs the power (see the state power tests)
    const room = hs.seedRoom({ creator: `@alice:${SERVER}`, joinRule: 'public', moderators: [bob] });
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

const sendPath = (roomId: string, txnId: string, type = 'm.room.message'): string => `${CS}/rooms/${enc(roomId)}/send/${type}/${txnId}`;
const text = (body: string) => ({ msgtype: 'm.text', body });

describe('fake HS: event size limit (maxEventBytes)', () => {
  const strict = hsWith({ maxEventBytes: 65536 });
  const TS = 1700000000000;

  it('accepts an event of exactly the limit, refuses one byte more with 413 M_TOO_LARGE and stores nothing', async () => {
    const on = strict();
    const bob = await register('irc_bob', on);
    const room = on.seedRoom({ creator: BOT, members: [bob] });
    const base = pduBytes(SERVER, { roomId: room.roomId, sender: bob, type: 'm.room.message', content: text(''), originServerTs: TS });
    assert.ok(base > 400 && base < 1000, `the envelope counts: ${base} bytes`);
    const fits = 'x'.repeat(65536 - base);

    const ok = await call('PUT', sendPath(room.roomId, 't1'), text(fits), { on, userId: bob, query: { ts: String(TS) } });
    assert.equal(ok.status, 200);
    const over = await call('PUT', sendPath(room.roomId, 't2'), text(fits + 'x'), { on, userId: bob, query: { ts: String(TS) } });
    assert.equal(over.status, 413);
    assert.deepEqual(over.json, { errcode: 'M_TOO_LARGE', error: 'event too large' });
    assert.equal(room.events.length, 1);

    const smaller = await call('PUT', sendPath(room.roomId, 't2'), text('short'), { on, userId: bob });
    assert.equal(smaller.status, 200, 'a refused event is not in the transaction cache');
    assert.deepEqual(room.events.map((e) => e.content.body.length), [fits.length, 5]);
    assert.deepEqual(on.specErrors, []);
  });

  it('counts UTF-8 bytes, not characters', async () => {
    const on = strict();
    const room = on.seedRoom({ creator: BOT });
    const euros = '€'.repeat(22_000); // 22,000 characters, 66,000 bytes
    const r = await call('PUT', sendPath(room.roomId, 't1'), text(euros), { on });
    assert.equal(r.status, 413);
    assert.equal(r.json.errcode, 'M_TOO_LARGE');
    assert.equal(room.events.length, 0);
  });

  it('limits state events too, leaving the room state as it was', async () => {
    const on = strict();
    const room = on.seedRoom({ creator: BOT, topic: 'Old' });
    const r = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.topic/`, { topic: 'y'.repeat(70_000) }, { on });
    assert.equal(r.status, 413);
    assert.equal(r.json.errcode, 'M_TOO_LARGE');
    assert.equal(room.topic, 'Old');
    assert.equal(room.events.length, 0);
  });

  it('has no limit unless asked', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const r = await call('PUT', sendPath(room.roomId, 't1'), text('z'.repeat(100_000)));
    assert.equal(r.status, 200);
    assert.equal(room.events.length, 1);
  });
});

describe('fake HS: kick, ban, unban, leave', () => {
  const MOD = `@mod:${SERVER}`;

  it('a kicked user can no longer send, and may join a public room again', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: `@alice:${SERVER}`, joinRule: 'public' });
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob })).status, 200);
    assert.equal(room.events.length, 0, 'API joins add no event by default');

    const ev = hs.kick(room.roomId, bob);
    assert.deepEqual(
      { type: ev.type, stateKey: ev.stateKey, sender: ev.sender, content: ev.content },
      { type: 'm.room.member', stateKey: bob, sender: `@alice:${SERVER}`, content: { membership: 'leave' } },
    );
    assert.equal(room.events.at(-1), ev);
    assert.equal(room.members.has(bob), false);

    const refused = await call('PUT', sendPath(room.roomId, 't1'), text('hi'), { userId: bob });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.errcode, 'M_FORBIDDEN');
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob })).status, 200);
    assert.equal((await call('PUT', sendPath(room.roomId, 't1'), text('hi'), { userId: bob })).status, 200);
    assert.deepEqual(hs.specErrors, []);
  });

  it('a user kicked from an invite-only room needs a new invite', async () => {
    const carol = await register('irc_carol');
    const room = hs.seedRoom({ creator: BOT, invited: [carol], members: [MOD] });
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: carol })).status, 200);
    const ev = hs.kick(room.roomId, carol, MOD, 'spam');
    assert.equal(ev.sender, MOD);
    assert.deepEqual(ev.content, { membership: 'leave', reason: 'spam' });
    const refused = await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: carol });
    assert.equal(refused.status, 403);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: carol })).status, 200);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: carol })).status, 200);
  });

  it('a banned user cannot join (even a public room by alias) nor be invited, until unbanned', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, alias: `#irc_pub:${SERVER}`, joinRule: 'public', members: [bob] });
    const ev = hs.ban(room.roomId, bob, MOD, 'flood');
    assert.deepEqual({ sender: ev.sender, stateKey: ev.stateKey, content: ev.content }, { sender: MOD, stateKey: bob, content: { membership: 'ban', reason: 'flood' } });
    assert.ok(room.banned.has(bob));
    assert.equal(room.members.has(bob), false);

    const join = await call('POST', `${CS}/join/${enc(`#irc_pub:${SERVER}`)}`, {}, { userId: bob });
    assert.equal(join.status, 403);
    assert.deepEqual(join.json, { errcode: 'M_FORBIDDEN', error: 'You are banned from this room' });
    const invite = await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: bob });
    assert.equal(invite.status, 403);
    assert.equal(invite.json.errcode, 'M_FORBIDDEN');
    assert.equal((await call('PUT', sendPath(room.roomId, 't1'), text('hi'), { userId: bob })).status, 403);

    const lifted = hs.unban(room.roomId, bob);
    assert.deepEqual({ sender: lifted.sender, content: lifted.content }, { sender: BOT, content: { membership: 'leave' } });
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob })).status, 200);
    assert.deepEqual(room.events.map((e) => e.content.membership), ['ban', 'leave']);
  });

  it('a user may be banned before ever joining', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, joinRule: 'public' });
    hs.ban(room.roomId, bob);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob })).status, 403);
  });

  it('leave is sent by the user; leaving an invite rejects it', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const room = hs.seedRoom({ creator: BOT, members: [bob], invited: [carol] });
    const left = hs.leave(room.roomId, bob);
    assert.deepEqual({ sender: left.sender, stateKey: left.stateKey, content: left.content }, { sender: bob, stateKey: bob, content: { membership: 'leave' } });
    assert.equal((await call('PUT', sendPath(room.roomId, 't1'), text('hi'), { userId: bob })).status, 403);
    hs.leave(room.roomId, carol);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: carol })).status, 403);
  });

  it('throws on a test’s mistakes: unknown room, a user not there, unbanning who is not banned', () => {
    const room = hs.seedRoom({ creator: BOT });
    assert.throws(() => hs.kick('!nope:example.org', BOT), /no room/);
    assert.throws(() => hs.kick(room.roomId, `@irc_x:${SERVER}`), /neither joined/);
    assert.throws(() => hs.leave(room.roomId, `@irc_x:${SERVER}`), /neither joined/);
    assert.throws(() => hs.unban(room.roomId, `@irc_x:${SERVER}`), /not banned/);
    assert.equal(room.events.length, 0);
  });

  describe('with recordMembership', () => {
    const rec = hsWith({ recordMembership: true });

    it('API joins and invites append m.room.member events with the profile, as a real HS has them', async () => {
      const on = rec();
      const bob = await register('irc_bob', on);
      const carol = await register('irc_carol', on);
      await call('PUT', `${CS}/profile/${enc(bob)}/displayname`, { displayname: 'Bob' }, { on, userId: bob });
      const room = on.seedRoom({ creator: BOT, joinRule: 'public' });
      assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { on, userId: bob })).status, 200);
      assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { on, userId: bob })).status, 200, 'joined already: no event');
      assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: carol }, { on })).status, 200);
      assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: carol }, { on })).status, 200, 'invited again: no event');
      assert.deepEqual(
        room.events.map((e) => [e.type, e.sender, e.stateKey, e.content]),
        [
          ['m.room.member', bob, bob, { membership: 'join', displayname: 'Bob' }],
          ['m.room.member', BOT, carol, { membership: 'invite', displayname: 'irc_carol' }],
        ],
      );
      assert.deepEqual(on.specErrors, []);
    });
  });
});

describe('fake HS: restart() and forgetEverything()', () => {
  it('restart() forgets the send-transaction cache: the same PUT makes a second event', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const first = await call('PUT', sendPath(room.roomId, 'net-1'), text('hello'));
    const again = await call('PUT', sendPath(room.roomId, 'net-1'), text('hello'));
    assert.equal(again.json.event_id, first.json.event_id);
    hs.restart();
    const after = await call('PUT', sendPath(room.roomId, 'net-1'), text('hello'));
    assert.equal(after.status, 200);
    assert.notEqual(after.json.event_id, first.json.event_id);
    assert.deepEqual(room.events.map((e) => e.content.body), ['hello', 'hello']);
  });

  it('restart() keeps users, rooms, aliases, calls and failure rules, and drops hanging requests', async () => {
    const bob = await register('irc_bob');
    const created = await call('POST', `${CS}/createRoom`, { room_alias_name: 'irc_chan' });
    hs.fail({ kind: 'hang', match: { pathIncludes: '/send/' } });
    const hanging = call('PUT', sendPath(created.json.room_id, 't1'), text('x'));
    while (!hs.calls.some((c) => c.failedBy === 'hang')) await delay(5);
    hs.fail({ kind: 'status', status: 502, match: { pathIncludes: '/profile/' } });
    const calls = hs.calls.length;

    hs.restart();
    await assert.rejects(hanging, TypeError, 'the connection went with the process');
    assert.ok(hs.users.has(bob));
    assert.ok(hs.rooms.has(created.json.room_id));
    assert.equal(hs.aliases.get(`#irc_chan:${SERVER}`), created.json.room_id);
    assert.equal(hs.calls.length, calls);
    assert.equal((await call('GET', `${CS}/profile/${enc(bob)}`)).status, 502, 'failure rules stay');
  });

  it('forgetEverything() loses users, rooms, aliases and the caches, and keeps calls and failure rules', async () => {
    const bob = await register('irc_bob');
    const created = await call('POST', `${CS}/createRoom`, { room_alias_name: 'irc_chan' });
    await call('PUT', sendPath(created.json.room_id, 'net-1'), text('hello'));
    hs.fail({ kind: 'status', status: 500, match: { pathIncludes: '/createRoom' } });
    hs.nextTxnId();
    const calls = hs.calls.length;

    hs.forgetEverything();
    assert.deepEqual([...hs.users.keys()], [BOT], 'the bot stays (it comes from the registration file)');
    assert.equal(hs.rooms.size, 0);
    assert.equal(hs.aliases.size, 0);
    assert.equal(hs.calls.length, calls);
    assert.equal(hs.nextTxnId(), '1');
    assert.equal((await call('GET', `${CS}/directory/room/${enc(`#irc_chan:${SERVER}`)}`)).status, 404);
    assert.equal((await call('GET', `${CS}/profile/${enc(bob)}`)).status, 404);
    assert.equal(await register('irc_bob'), bob, 'the AS may register its user again');
    assert.equal((await call('POST', `${CS}/createRoom`, {})).status, 500, 'failure rules stay');
    const room = await call('POST', `${CS}/createRoom`, {});
    assert.equal((await call('PUT', sendPath(room.json.room_id, 'net-1'), text('hello'))).status, 200);
    assert.equal(hs.rooms.get(room.json.room_id)?.events.length, 1);
  });
});

/** What a fake AS does with one transaction attempt: answer a status, or drop the connection. */
type AsAnswer = number | 'drop';

/**
 * A minimal AS over real HTTP: answers `PUT /_matrix/app/v1/transactions/{txnId}` with the
 * given answers in turn (then 200) and records each attempt.
 */
async function startAs(answers: AsAnswer[]): Promise<{ send: PushSend; received: Array<{ txnId: string; body: any; at: number }>; close(): Promise<void> }> {
  const received: Array<{ txnId: string; body: any; at: number }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const txnId = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
      received.push({ txnId, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now() });
      const answer = answers.shift() ?? 200;
      if (answer === 'drop') return req.socket.destroy();
      res.writeHead(answer, { 'Content-Type': 'application/json' });
      res.end(answer === 200 ? '{}' : JSON.stringify({ errcode: 'M_UNKNOWN', error: `answer ${answer}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const send: PushSend = async (txnId, body) => {
    const res = await fetch(`${url}/_matrix/app/v1/transactions/${enc(txnId)}`, {
      method: 'PUT',
      headers: { authorization: 'Bearer hs-secret', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    return res.status;
  };
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { send, received, close };
}

describe('fake HS: transactions to the AS (nextTxnId, push, clientEvent)', () => {
  it('numbers transactions 1, 2, 3… and starts again at 1 after a restart', () => {
    hs.restart();
    assert.deepEqual([hs.nextTxnId(), hs.nextTxnId(), hs.nextTxnId()], ['1', '2', '3']);
    hs.reset();
    assert.equal(hs.nextTxnId(), '4', 'reset() is test isolation: the AS under test may still remember 1-3');
    hs.restart();
    assert.equal(hs.nextTxnId(), '1');
  });

  describe('with txnIdsRestartAtOne: false', () => {
    const pg = hsWith({ txnIdsRestartAtOne: false });
    it('goes on counting across restarts, but not across a lost database', () => {
      const on = pg();
      assert.deepEqual([on.nextTxnId(), on.nextTxnId()], ['1', '2']);
      on.restart();
      assert.equal(on.nextTxnId(), '3');
      on.forgetEverything();
      assert.equal(on.nextTxnId(), '1');
    });
  });

  it('turns a stored event into the client format Synapse pushes', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    await call('PUT', sendPath(room.roomId, 't1'), text('hi'), { userId: bob, query: { ts: '1700000000000' } });
    await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`, { name: 'Chan' });
    hs.kick(room.roomId, bob);
    const [msg, name, kick] = room.events.map((e) => hs.clientEvent(room.roomId, e));
    assert.deepEqual(msg, {
      event_id: room.events[0]!.eventId,
      room_id: room.roomId,
      sender: bob,
      type: 'm.room.message',
      origin_server_ts: 1700000000000,
      content: text('hi'),
      unsigned: { age: 0 },
    });
    assert.equal('state_key' in msg!, false, 'a message has no state_key');
    assert.equal(name?.state_key, '');
    assert.equal(kick?.state_key, bob);
    assert.deepEqual(checkEvent('m.room.message', msg), []);
    assert.deepEqual(checkEvent('m.room.name', name), []);
    assert.deepEqual(checkEvent('m.room.member', kick), []);
    msg!.content.body = 'changed';
    assert.equal(room.events[0]!.content.body, 'hi', 'a copy: the stored event stays');
  });

  it('retries a failed transaction with the same id and body, backing off, a 413 like any failure', async () => {
    const as = await startAs([500, 413, 'drop', 200]);
    try {
      const room = hs.seedRoom({ creator: BOT });
      await call('PUT', sendPath(room.roomId, 't1'), text('hi'));
      const events = room.events.map((e) => hs.clientEvent(room.roomId, e));
      const result = await hs.push(events, as.send, { backoffMs: 20 });
      assert.deepEqual({ ...result, txnId: undefined }, { txnId: undefined, attempts: 4, statuses: [500, 413, 0, 200], delivered: true });
      assert.deepEqual(as.received.map((r) => r.txnId), Array(4).fill(result.txnId));
      for (const r of as.received) assert.deepEqual(r.body, { events });
      assert.deepEqual(checkAsRequest('PUT', `/_matrix/app/v1/transactions/${result.txnId}`, as.received[0]!.body), []);
      const gaps = as.received.slice(1).map((r, i) => r.at - as.received[i]!.at);
      // 20, 40, 80 ms (less a millisecond or two of timer slack)
      gaps.forEach((gap, i) => assert.ok(gap >= 20 * 2 ** i - 3, `gap ${i}: ${gap} ms`));
    } finally {
      await as.close();
    }
  });

  it('gives up after maxAttempts (Synapse never does), and the next push takes the next id', async () => {
    const as = await startAs([503, 503, 503]);
    try {
      const first = await hs.push([], as.send, { maxAttempts: 3, backoffMs: 1 });
      assert.deepEqual({ attempts: first.attempts, statuses: first.statuses, delivered: first.delivered }, { attempts: 3, statuses: [503, 503, 503], delivered: false });
      const next = await hs.push([], as.send, { backoffMs: 1 });
      assert.equal(next.txnId, String(Number(first.txnId) + 1));
      assert.equal(next.delivered, true);
    } finally {
      await as.close();
    }
  });

  it('has one transaction in flight: a later push waits until the earlier one is delivered', async () => {
    const as = await startAs([500, 500, 200, 200]);
    try {
      const a = hs.push([{ n: 'a' }], as.send, { backoffMs: 5 });
      const b = hs.push([{ n: 'b' }], as.send, { backoffMs: 5 });
      const [ra, rb] = await Promise.all([a, b]);
      assert.equal(Number(rb.txnId), Number(ra.txnId) + 1);
      assert.deepEqual(
        as.received.map((r) => [r.txnId, r.body.events[0].n]),
        [[ra.txnId, 'a'], [ra.txnId, 'a'], [ra.txnId, 'a'], [rb.txnId, 'b']],
      );
    } finally {
      await as.close();
    }
  });

  it('after a restart sends txn id 1 again with other events: an id alone names no transaction', async () => {
    const as = await startAs([]);
    try {
      hs.restart();
      const before = await hs.push([{ n: 'before' }], as.send);
      hs.restart();
      const afterRestart = await hs.push([{ n: 'after' }], as.send);
      assert.deepEqual([before.txnId, afterRestart.txnId], ['1', '1']);
      assert.deepEqual(as.received.map((r) => [r.txnId, r.body.events[0].n]), [['1', 'before'], ['1', 'after']]);
    } finally {
      await as.close();
    }
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

// ------------------------------------------------------------------ rich messages (issue 23)

interface RawOpts {
  on?: FakeHs;
  token?: string | null;
  userId?: string;
  query?: Record<string, string>;
  body?: Buffer;
  /** undefined: none sent */
  contentType?: string;
  signal?: AbortSignal;
}

/** A request with a binary body and answer (media), keeping the answer's bytes and headers. */
async function raw(method: string, path: string, o: RawOpts = {}): Promise<{ status: number; headers: Headers; bytes: Buffer; json: any }> {
  const url = new URL((o.on ?? hs).url + path);
  const token = o.token === undefined ? AS_TOKEN : o.token;
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (o.contentType !== undefined) headers['content-type'] = o.contentType;
  if (o.userId !== undefined) url.searchParams.set('user_id', o.userId);
  for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, v);
  const init: RequestInit = { method, headers };
  if (o.body !== undefined) init.body = new Uint8Array(o.body);
  if (o.signal) init.signal = o.signal;
  const res = await fetch(url, init);
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    // binary
  }
  return { status: res.status, headers: res.headers, bytes, json };
}

const UPLOAD = '/_matrix/media/v3/upload';
const downloadV1 = (mxc: string, name?: string): string => `/_matrix/client/v1/media/download/${mxc.slice('mxc://'.length)}${name === undefined ? '' : `/${enc(name)}`}`;
const downloadV3 = (mxc: string, name?: string): string => `/_matrix/media/v3/download/${mxc.slice('mxc://'.length)}${name === undefined ? '' : `/${enc(name)}`}`;
const mediaIdOf = (mxc: string): string => mxc.slice(mxc.lastIndexOf('/') + 1);
// Not UTF-8, not JSON: bytes must come back as they went.
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x7b, 0x22]);

describe('fake HS: media repository', () => {
  it('keeps an upload as raw bytes with its type and name, and serves it back from both download endpoints', async () => {
    const bob = await register('irc_bob');
    const up = await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png', userId: bob, query: { filename: 'cat.png' } });
    assert.equal(up.status, 200, JSON.stringify(up.json));
    assert.match(up.json.content_uri, /^mxc:\/\/example\.org\/[A-Za-z]{24}$/);
    assert.deepEqual(Object.keys(up.json), ['content_uri']);
    const stored = hs.media.get(mediaIdOf(up.json.content_uri));
    assert.deepEqual(stored, { bytes: PNG, contentType: 'image/png', filename: 'cat.png', uploader: bob });
    assert.ok(Buffer.isBuffer(hs.calls.at(-1)?.body), 'the call records the bytes');

    const v1 = await raw('GET', downloadV1(up.json.content_uri));
    assert.equal(v1.status, 200);
    assert.deepEqual(v1.bytes, PNG);
    assert.equal(v1.headers.get('content-type'), 'image/png');
    assert.equal(v1.headers.get('content-length'), String(PNG.length));
    assert.equal(v1.headers.get('content-disposition'), 'inline; filename=cat.png');
    assert.ok(Buffer.isBuffer(hs.calls.at(-1)?.response));

    const renamed = await raw('GET', downloadV1(up.json.content_uri, 'other name.png'));
    assert.deepEqual(renamed.bytes, PNG);
    assert.equal(renamed.headers.get('content-disposition'), "inline; filename*=utf-8''other%20name.png", 'the name in the path wins');

    const legacy = await raw('GET', downloadV3(up.json.content_uri), { token: null });
    assert.equal(legacy.status, 200, 'the legacy endpoint needs no token');
    assert.deepEqual(legacy.bytes, PNG);
    assert.equal(legacy.headers.get('content-disposition'), 'inline; filename=cat.png');
    const legacyNamed = await raw('GET', downloadV3(up.json.content_uri, 'x.png'), { token: null });
    assert.equal(legacyNamed.headers.get('content-disposition'), 'inline; filename=x.png');
    assert.deepEqual(hs.specErrors, []);
  });

  it('sends types and names as Synapse does: a charset for text, attachment for the rest, RFC 5987 for non-token names', async () => {
    const bare = await raw('POST', UPLOAD, { body: Buffer.from('data') });
    assert.equal(bare.status, 200);
    assert.equal(hs.media.get(mediaIdOf(bare.json.content_uri))?.contentType, 'application/octet-stream', 'the spec default');
    assert.equal(hs.media.get(mediaIdOf(bare.json.content_uri))?.filename, undefined);
    assert.equal(hs.media.get(mediaIdOf(bare.json.content_uri))?.uploader, BOT);
    const b = await raw('GET', downloadV1(bare.json.content_uri));
    assert.equal(b.headers.get('content-type'), 'application/octet-stream');
    assert.equal(b.headers.get('content-disposition'), 'attachment', 'no filename when the upload had none');

    const txt = await raw('POST', UPLOAD, { body: Buffer.from('hello'), contentType: 'text/plain', query: { filename: 'hi.txt' } });
    const t = await raw('GET', downloadV1(txt.json.content_uri));
    assert.equal(t.headers.get('content-type'), 'text/plain; charset=UTF-8');
    assert.equal(t.headers.get('content-disposition'), 'inline; filename=hi.txt');

    const pdf = await raw('POST', UPLOAD, { body: Buffer.from('%PDF'), contentType: 'application/pdf', query: { filename: 'café menu.pdf' } });
    assert.equal(hs.media.get(mediaIdOf(pdf.json.content_uri))?.filename, 'café menu.pdf');
    const p = await raw('GET', downloadV1(pdf.json.content_uri));
    assert.equal(p.headers.get('content-disposition'), "attachment; filename*=utf-8''caf%C3%A9%20menu.pdf");

    const empty = await raw('POST', UPLOAD, { body: Buffer.alloc(0), contentType: 'text/plain' });
    assert.equal(empty.status, 200, 'an empty file is a file');
    assert.equal((await raw('GET', downloadV1(empty.json.content_uri))).bytes.length, 0);
    assert.deepEqual(hs.specErrors, []);
  });

  it('answers 404 M_NOT_FOUND for media it does not have, and wants the token on the authenticated endpoint', async () => {
    const mxc = hs.addMedia(PNG, 'image/png');
    for (const path of [downloadV1(`mxc://${SERVER}/nope`), downloadV3(`mxc://${SERVER}/nope`), downloadV1(`mxc://other.org/${mediaIdOf(mxc)}`)]) {
      const r = await raw('GET', path);
      assert.equal(r.status, 404, path);
      assert.equal(r.json.errcode, 'M_NOT_FOUND');
    }
    const anonymous = await raw('GET', downloadV1(mxc), { token: null });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json.errcode, 'M_MISSING_TOKEN');
    const wrong = await raw('GET', downloadV1(mxc), { token: 'nope' });
    assert.equal(wrong.json.errcode, 'M_UNKNOWN_TOKEN');
    assert.deepEqual(hs.specErrors, []);
  });

  it('uploads need the token, and a ?user_id= registered in the namespace; nothing is stored otherwise', async () => {
    const anonymous = await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png', token: null });
    assert.equal(anonymous.status, 401);
    const outside = await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png', userId: `@alice:${SERVER}` });
    assert.equal(outside.status, 403);
    assert.equal(outside.json.errcode, 'M_FORBIDDEN');
    const unregistered = await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png', userId: `@irc_nobody:${SERVER}` });
    assert.equal(unregistered.status, 403);
    assert.equal(hs.media.size, 0);
  });

  it('addMedia seeds what a Matrix user uploaded; reset() forgets media', async () => {
    const mxc = hs.addMedia('a file', 'text/plain', 'a.txt');
    assert.match(mxc, /^mxc:\/\/example\.org\/[A-Za-z]{24}$/);
    assert.deepEqual(hs.media.get(mediaIdOf(mxc)), { bytes: Buffer.from('a file'), contentType: 'text/plain', filename: 'a.txt', uploader: `@alice:${SERVER}` });
    const other = hs.addMedia(new Uint8Array([1, 2, 3]), 'image/gif', undefined, `@carol:${SERVER}`);
    assert.equal(hs.media.get(mediaIdOf(other))?.uploader, `@carol:${SERVER}`);
    assert.equal(hs.media.get(mediaIdOf(other))?.filename, undefined);
    assert.deepEqual((await raw('GET', downloadV1(other))).bytes, Buffer.from([1, 2, 3]));
    hs.reset();
    assert.equal(hs.media.size, 0);
    assert.equal((await raw('GET', downloadV1(mxc))).status, 404);
  });

  it('failure rules apply to media routes too, the unauthenticated one included', async () => {
    const mxc = hs.addMedia(PNG, 'image/png');
    hs.fail({ kind: 'status', status: 500, match: { pathIncludes: '/media/v3/upload' } });
    const failed = await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png' });
    assert.equal(failed.status, 500);
    assert.equal(hs.media.size, 1, 'nothing stored');
    assert.equal((await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png' })).status, 200);

    hs.fail({ kind: 'status', status: 502, match: { pathIncludes: '/client/v1/media/download/' } });
    assert.equal((await raw('GET', downloadV1(mxc))).status, 502);
    assert.equal((await raw('GET', downloadV1(mxc))).status, 200);

    hs.fail({ kind: 'hang', match: { pathIncludes: '/media/v3/download/' } });
    await assert.rejects(raw('GET', downloadV3(mxc), { token: null, signal: AbortSignal.timeout(150) }), (e: Error) => e.name === 'TimeoutError' || e.name === 'AbortError');
    assert.equal(hs.calls.at(-1)?.failedBy, 'hang');
    assert.deepEqual((await raw('GET', downloadV3(mxc), { token: null })).bytes, PNG);
  });

  describe('with maxUploadBytes', () => {
    const small = hsWith({ maxUploadBytes: 10 });
    it('takes an upload of exactly the limit and refuses one byte more with 413 M_TOO_LARGE, storing nothing', async () => {
      const on = small();
      const ok = await raw('POST', UPLOAD, { on, body: Buffer.alloc(10, 1), contentType: 'image/png' });
      assert.equal(ok.status, 200);
      const big = await raw('POST', UPLOAD, { on, body: Buffer.alloc(11, 1), contentType: 'image/png' });
      assert.equal(big.status, 413);
      assert.deepEqual(big.json, { errcode: 'M_TOO_LARGE', error: 'Upload request body is too large' });
      assert.equal(on.media.size, 1);
      assert.deepEqual(on.specErrors, []);
    });
  });

  describe('with authenticatedMedia: false (Synapse 1.94)', () => {
    const old = hsWith({ authenticatedMedia: false });
    it('answers the authenticated download 404 M_UNRECOGNIZED; the legacy one serves the file', async () => {
      const on = old();
      const mxc = on.addMedia(PNG, 'image/png', 'cat.png');
      const v1 = await raw('GET', downloadV1(mxc), { on });
      assert.equal(v1.status, 404);
      assert.deepEqual(v1.json, { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' });
      assert.equal((await raw('GET', downloadV1(mxc, 'x.png'), { on })).json.errcode, 'M_UNRECOGNIZED');
      const v3 = await raw('GET', downloadV3(mxc), { on });
      assert.equal(v3.status, 200);
      assert.deepEqual(v3.bytes, PNG);
      assert.deepEqual(on.specErrors, [], 'the spec has the endpoint: calling it is no mistake');
    });
  });

  it('takes option changes through hs.options from the next request on', async () => {
    const mxc = hs.addMedia(PNG, 'image/png');
    try {
      hs.options.authenticatedMedia = false;
      assert.equal((await raw('GET', downloadV1(mxc))).json.errcode, 'M_UNRECOGNIZED');
      hs.options.freezeLegacyMedia = true;
      assert.equal((await raw('GET', downloadV3(mxc), { token: null })).status, 404);
      hs.options.maxUploadBytes = 1;
      assert.equal((await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png' })).status, 413);
    } finally {
      delete hs.options.authenticatedMedia;
      delete hs.options.freezeLegacyMedia;
      delete hs.options.maxUploadBytes;
    }
    assert.equal((await raw('GET', downloadV1(mxc))).status, 200);
    assert.equal((await raw('GET', downloadV3(mxc), { token: null })).status, 200);
    assert.equal((await raw('POST', UPLOAD, { body: PNG, contentType: 'image/png' })).status, 200);
  });

  describe('with freezeLegacyMedia', () => {
    const frozen = hsWith({ freezeLegacyMedia: true });
    it('answers the legacy download 404 M_NOT_FOUND; the authenticated one serves the file', async () => {
      const on = frozen();
      const mxc = on.addMedia(PNG, 'image/png');
      const v3 = await raw('GET', downloadV3(mxc), { on, token: null });
      assert.equal(v3.status, 404);
      assert.equal(v3.json.errcode, 'M_NOT_FOUND');
      const v1 = await raw('GET', downloadV1(mxc), { on });
      assert.equal(v1.status, 200);
      assert.deepEqual(v1.bytes, PNG);
    });
  });
});

const redactPath = (roomId: string, eventId: string, txnId: string): string => `${CS}/rooms/${enc(roomId)}/redact/${enc(eventId)}/${txnId}`;

describe('fake HS: redactions', () => {
  it('a member redacts their own event: the target is pruned, the redaction is stored and pushed with redacts at the top and in content', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    const sent = await call('PUT', sendPath(room.roomId, 't1'), text('oops'), { userId: bob });
    const r = await call('PUT', redactPath(room.roomId, sent.json.event_id, 'd1'), { reason: 'typo' }, { userId: bob, query: { ts: '1700000000000' } });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.match(r.json.event_id, /^\$/);
    const [target, redaction] = room.events;
    assert.deepEqual(
      { ...redaction, eventId: undefined },
      { eventId: undefined, type: 'm.room.redaction', sender: bob, content: { reason: 'typo', redacts: sent.json.event_id }, originServerTs: 1700000000000, ts: 1700000000000, redacts: sent.json.event_id, txnId: 'd1' },
    );
    assert.equal(redaction?.eventId, r.json.event_id);
    assert.equal(target?.redactedBy, r.json.event_id);
    assert.deepEqual(target?.content, {});
    assert.deepEqual(target?.unredactedContent, text('oops'));

    const pushed = hs.clientEvent(room.roomId, redaction!);
    assert.equal(pushed.redacts, sent.json.event_id);
    assert.deepEqual(pushed.content, { reason: 'typo', redacts: sent.json.event_id });
    assert.deepEqual(checkEvent('m.room.redaction', pushed), []);
    const pruned = hs.clientEvent(room.roomId, target!);
    assert.deepEqual(pruned.content, {});
    assert.equal(pruned.unsigned.redacted_because?.event_id, r.json.event_id);
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: [pruned, pushed] }), []);
    assert.deepEqual(hs.specErrors, []);
  });

  it('answers a repeated transaction ID with the same redaction; another ID redacts again', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const sent = await call('PUT', sendPath(room.roomId, 't1'), text('x'));
    const a = await call('PUT', redactPath(room.roomId, sent.json.event_id, 'd1'), {});
    const b = await call('PUT', redactPath(room.roomId, sent.json.event_id, 'd1'), {});
    assert.equal(b.status, 200);
    assert.equal(b.json.event_id, a.json.event_id);
    assert.equal(room.events.filter((e) => e.type === 'm.room.redaction').length, 1);
    const c = await call('PUT', redactPath(room.roomId, sent.json.event_id, 'd2'), {});
    assert.equal(c.status, 200);
    assert.notEqual(c.json.event_id, a.json.event_id, 'Synapse lets an event be redacted twice');
    assert.equal(room.events[0]?.redactedBy, a.json.event_id, 'the first redaction is the one that counts');
    assert.deepEqual(hs.specErrors, []);
  });

  it('permissions: own events for anyone; anyone’s for the creator and moderators; members only', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const dave = await register('irc_dave');
    const room = hs.seedRoom({ creator: BOT, members: [bob, carol, `@alice:${SERVER}`], moderators: [carol] });
    assert.deepEqual([...room.moderators], [carol]);
    const byBob = (await call('PUT', sendPath(room.roomId, 'b1'), text('bob 1'), { userId: bob })).json.event_id as string;
    const byBob2 = (await call('PUT', sendPath(room.roomId, 'b2'), text('bob 2'), { userId: bob })).json.event_id as string;
    const byCarol = (await call('PUT', sendPath(room.roomId, 'c1'), text('carol'), { userId: carol })).json.event_id as string;
    const byAlice = hs.userSend(`@alice:${SERVER}`, room.roomId, 'm.room.message', text('alice')).eventId;

    const other = await call('PUT', redactPath(room.roomId, byCarol, 'x1'), {}, { userId: bob });
    assert.equal(other.status, 403);
    assert.deepEqual(other.json, { errcode: 'M_FORBIDDEN', error: "You don't have permission to redact events" });
    const outsider = await call('PUT', redactPath(room.roomId, byBob, 'x2'), {}, { userId: dave });
    assert.equal(outsider.status, 403);
    assert.equal(outsider.json.errcode, 'M_FORBIDDEN');
    assert.match(outsider.json.error, /not in room/);
    assert.equal(room.events.some((e) => e.type === 'm.room.redaction'), false, 'refusals store nothing');

    assert.equal((await call('PUT', redactPath(room.roomId, byBob, 'x3'), {}, { userId: carol })).status, 200, 'a moderator');
    assert.equal((await call('PUT', redactPath(room.roomId, byBob2, 'x4'), {})).status, 200, 'the creator (the bot)');
    assert.equal((await call('PUT', redactPath(room.roomId, byAlice, 'x5'), {})).status, 200, "the creator, a local user's event");
    assert.equal((await call('PUT', redactPath(room.roomId, byCarol, 'x6'), {}, { userId: carol })).status, 200, 'her own');
    assert.ok([byBob, byBob2, byCarol, byAlice].every((id) => room.events.find((e) => e.eventId === id)?.redactedBy !== undefined));
    assert.deepEqual(hs.specErrors, []);
  });

  it('an unknown event is 404 for who may redact only their own; the creator or a moderator redacts it anyway, as Synapse', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    const r = await call('PUT', redactPath(room.roomId, '$nope', 'd1'), {}, { userId: bob });
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { errcode: 'M_NOT_FOUND', error: 'Could not find event $nope' });
    const byCreator = await call('PUT', redactPath(room.roomId, '$nope', 'd2'), {});
    assert.equal(byCreator.status, 200);
    assert.equal(room.events.at(-1)?.redacts, '$nope');
  });

  it('refuses an event of another room with 400, and unknown rooms with 403', async () => {
    const a = hs.seedRoom({ creator: BOT });
    const b = hs.seedRoom({ creator: BOT });
    const inB = (await call('PUT', sendPath(b.roomId, 't1'), text('b'))).json.event_id as string;
    const cross = await call('PUT', redactPath(a.roomId, inB, 'd1'), {});
    assert.equal(cross.status, 400);
    assert.equal(cross.json.error, 'Cannot redact event from a different room');
    const noRoom = await call('PUT', redactPath(`!nope:${SERVER}`, inB, 'd2'), {});
    assert.equal(noRoom.status, 403);
    assert.equal(b.events[0]?.redactedBy, undefined);
  });

  it('a redacted room name is gone; state keeps what the redaction algorithm keeps', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const name = (await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`, { name: 'Chan' })).json.event_id as string;
    assert.equal(room.name, 'Chan');
    await call('PUT', redactPath(room.roomId, name, 'd1'), {});
    assert.equal(room.name, undefined);
    const got = await call('GET', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`);
    assert.deepEqual([got.status, got.json], [200, {}]);
    const rules = (await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.join_rules/`, { join_rule: 'public' })).json.event_id as string;
    await call('PUT', redactPath(room.roomId, rules, 'd2'), {});
    assert.deepEqual(room.events.find((e) => e.eventId === rules)?.content, { join_rule: 'public' });
  });

  it('userRedact: a local user redacts from their client, with the same rules', async () => {
    const alice = `@alice:${SERVER}`;
    const room = hs.seedRoom({ creator: alice, members: [BOT] });
    const botMsg = (await call('PUT', sendPath(room.roomId, 't1'), text('from the bridge'))).json.event_id as string;
    const own = hs.userSend(alice, room.roomId, 'm.room.message', text('mine'));
    const redaction = hs.userRedact(alice, room.roomId, own.eventId, 'spam');
    assert.deepEqual(redaction.content, { reason: 'spam', redacts: own.eventId });
    assert.equal(own.redactedBy, redaction.eventId);
    hs.userRedact(alice, room.roomId, botMsg); // the creator
    assert.equal(room.events[0]?.redactedBy !== undefined, true);
    assert.throws(() => hs.userRedact(`@mallory:${SERVER}`, room.roomId, botMsg), /403 M_FORBIDDEN/);
    assert.throws(() => hs.userSend(`@mallory:${SERVER}`, room.roomId, 'm.room.message', text('x')), /403 M_FORBIDDEN/);
  });
});

const relates = (rel: Record<string, unknown>) => ({ 'm.relates_to': rel });
const reaction = (eventId: string, key: string) => relates({ rel_type: 'm.annotation', event_id: eventId, key });

describe('fake HS: relations (reactions, edits, replies) and rich content', () => {
  it('refuses the same reaction twice with 400 M_DUPLICATE_ANNOTATION; another key, sender, or after a redaction is fine', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const room = hs.seedRoom({ creator: BOT, members: [bob, carol] });
    const target = (await call('PUT', sendPath(room.roomId, 't1'), text('hi'))).json.event_id as string;
    const first = await call('PUT', sendPath(room.roomId, 'r1', 'm.reaction'), reaction(target, '👍'), { userId: bob });
    assert.equal(first.status, 200);
    const retry = await call('PUT', sendPath(room.roomId, 'r1', 'm.reaction'), reaction(target, '👍'), { userId: bob });
    assert.deepEqual([retry.status, retry.json.event_id], [200, first.json.event_id], 'a retried transaction is no duplicate');
    const twice = await call('PUT', sendPath(room.roomId, 'r2', 'm.reaction'), reaction(target, '👍'), { userId: bob });
    assert.equal(twice.status, 400);
    assert.deepEqual(twice.json, { errcode: 'M_DUPLICATE_ANNOTATION', error: "Can't send same reaction twice" });
    assert.equal((await call('PUT', sendPath(room.roomId, 'r3', 'm.reaction'), reaction(target, '🎉'), { userId: bob })).status, 200);
    assert.equal((await call('PUT', sendPath(room.roomId, 'r4', 'm.reaction'), reaction(target, '👍'), { userId: carol })).status, 200);
    assert.equal((await call('PUT', redactPath(room.roomId, first.json.event_id, 'd1'), {}, { userId: bob })).status, 200);
    assert.equal((await call('PUT', sendPath(room.roomId, 'r5', 'm.reaction'), reaction(target, '👍'), { userId: bob })).status, 200, 'the redacted one no longer counts');
    assert.equal(room.events.filter((e) => e.type === 'm.reaction').length, 4);
    assert.throws(() => hs.userSend(bob, room.roomId, 'm.reaction', reaction(target, '👍')), /400 M_DUPLICATE_ANNOTATION/);
    assert.deepEqual(hs.specErrors, []);
  });

  it('refuses an annotation without a key or with a key over 500 characters, and a relation to another room', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const other = hs.seedRoom({ creator: BOT });
    const target = (await call('PUT', sendPath(room.roomId, 't1'), text('hi'))).json.event_id as string;
    const noKey = await call('PUT', sendPath(room.roomId, 'r1', 'm.reaction'), relates({ rel_type: 'm.annotation', event_id: target }));
    assert.deepEqual([noKey.status, noKey.json.error], [400, 'Missing aggregation key']);
    assert.equal((await call('PUT', sendPath(room.roomId, 'r2', 'm.reaction'), reaction(target, '😀'.repeat(500)))).status, 200, '500 code points');
    const long = await call('PUT', sendPath(room.roomId, 'r3', 'm.reaction'), reaction(target, 'x'.repeat(501)));
    assert.deepEqual([long.status, long.json.error], [400, 'Aggregation key is too long']);
    const cross = await call('PUT', sendPath(other.roomId, 'r4', 'm.reaction'), reaction(target, '👍'));
    assert.deepEqual([cross.status, cross.json.error], [400, 'Relations must be in the same room']);
    const unknown = await call('PUT', sendPath(room.roomId, 'r5', 'm.reaction'), reaction('$unknown', '👍'));
    assert.equal(unknown.status, 200, 'an unknown target is taken unless refuseUnknownRelationTargets');
  });

  describe('with refuseUnknownRelationTargets', () => {
    const strict = hsWith({ refuseUnknownRelationTargets: true });
    it('refuses a relation to an event it does not have, unless something already relates to it', async () => {
      const on = strict();
      const room = on.seedRoom({ creator: BOT, members: [`@alice:${SERVER}`] });
      const r = await call('PUT', sendPath(room.roomId, 'r1', 'm.reaction'), reaction('$unknown', '👍'), { on });
      assert.deepEqual([r.status, r.json.errcode, r.json.error], [400, 'M_UNKNOWN', "Can't send relation to unknown event"]);
      const reply = await call('PUT', sendPath(room.roomId, 'm1'), { ...text('re'), ...relates({ 'm.in_reply_to': { event_id: '$unknown' } }) }, { on });
      assert.equal(reply.status, 200, 'a reply is no relation to Synapse');
      const known = on.userSend(`@alice:${SERVER}`, room.roomId, 'm.room.message', text('hi'));
      assert.equal((await call('PUT', sendPath(room.roomId, 'r2', 'm.reaction'), reaction(known.eventId, '👍'), { on })).status, 200);
      assert.deepEqual(on.specErrors, []);
    });
  });

  it('takes well-formed rich messages without spec errors: media, sticker, reply, edit, mentions, HTML', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    const mxc = hs.addMedia(PNG, 'image/png', 'cat.png');
    const image = { msgtype: 'm.image', body: 'cat.png', url: mxc, info: { mimetype: 'image/png', size: PNG.length, w: 1, h: 1 } };
    const img = await call('PUT', sendPath(room.roomId, 'm1'), image, { userId: bob });
    assert.equal(img.status, 200);
    const file = { msgtype: 'm.file', body: 'a.pdf', url: mxc, filename: 'a.pdf', info: { mimetype: 'application/pdf', size: 4 } };
    assert.equal((await call('PUT', sendPath(room.roomId, 'm2'), file, { userId: bob })).status, 200);
    const sticker = { body: 'a cat', url: mxc, info: { mimetype: 'image/png', w: 1, h: 1, size: PNG.length } };
    assert.equal((await call('PUT', sendPath(room.roomId, 's1', 'm.sticker'), sticker, { userId: bob })).status, 200);
    const reply = {
      msgtype: 'm.text',
      body: 'nice',
      format: 'org.matrix.custom.html',
      formatted_body: '<b>nice</b>',
      'm.mentions': { user_ids: [`@alice:${SERVER}`] },
      ...relates({ 'm.in_reply_to': { event_id: img.json.event_id } }),
    };
    const r = await call('PUT', sendPath(room.roomId, 'm3'), reply, { userId: bob });
    const edit = { msgtype: 'm.text', body: '* nicer', 'm.new_content': { msgtype: 'm.text', body: 'nicer' }, ...relates({ rel_type: 'm.replace', event_id: r.json.event_id }) };
    assert.equal((await call('PUT', sendPath(room.roomId, 'm4'), edit, { userId: bob })).status, 200);
    assert.equal((await call('PUT', sendPath(room.roomId, 'r1', 'm.reaction'), reaction(img.json.event_id, '😺'))).status, 200);
    assert.deepEqual(hs.specErrors, []);
    for (const ev of room.events) assert.deepEqual(checkEvent(ev.type, hs.clientEvent(room.roomId, ev)), [], ev.type);
  });

  it('records wrong rich content in specErrors (accepted, as Synapse would)', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    const target = (await call('PUT', sendPath(room.roomId, 't1'), text('hi'))).json.event_id as string;
    const errorsOf = async (txnId: string, type: string, content: unknown, userId?: string): Promise<string> => {
      hs.specErrors.length = 0;
      const o: CallOpts = {};
      if (userId !== undefined) o.userId = userId;
      const r = await call('PUT', sendPath(room.roomId, txnId, type), content, o);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return hs.specErrors.join('\n');
    };
    assert.match(await errorsOf('e1', 'm.reaction', relates({ rel_type: 'm.reference', event_id: target, key: '👍' })), /m\.reaction content\/m\.relates_to\/rel_type must be equal to one of the allowed values/);
    assert.match(await errorsOf('e2', 'm.reaction', relates({ rel_type: 'm.annotation', event_id: 42, key: '👍' })), /m\.reaction content\/m\.relates_to\/event_id must be string/);
    assert.match(await errorsOf('e3', 'm.sticker', { body: 'cat', url: 'mxc://example.org/abc' }), /m\.sticker content must have required property 'info'/);
    assert.match(await errorsOf('e4', 'm.room.message', { msgtype: 'm.image', body: 'x.png', info: { w: 'wide' } }), /m\.room\.message content\/info\/w must be integer/);
    assert.match(await errorsOf('e5', 'm.room.message', { ...text('re'), ...relates({ 'm.in_reply_to': target }) }), /m\.in_reply_to must be/);
    assert.match(await errorsOf('e6', 'm.room.message', { ...text('* x'), ...relates({ rel_type: 'm.replace', event_id: target }) }), /needs m\.new_content/);
    assert.match(await errorsOf('e7', 'm.room.message', { ...text('* x'), 'm.new_content': { msgtype: 'm.text' }, ...relates({ rel_type: 'm.replace', event_id: target }) }), /m\.new_content: m\.room\.message content must have required property 'body'/);
    assert.match(
      await errorsOf('e8', 'm.room.message', { ...text('* x'), 'm.new_content': text('x'), ...relates({ rel_type: 'm.replace', event_id: target }) }, bob),
      /a replacement must have the sender of the original/,
    );
    assert.match(await errorsOf('e9', 'm.room.message', { ...text('x'), ...relates({ rel_type: 'm.replace' }) }), /m\.relates_to must have required property 'event_id'/);
    assert.match(await errorsOf('e10', 'm.room.message', { ...text('x'), 'm.mentions': { user_ids: 'bob' } }), /m\.mentions\/user_ids must be array/);
    assert.match(await errorsOf('e11', 'm.room.message', { ...text('x'), 'm.mentions': { user_ids: ['bob'] } }), /bob is not a user ID/);
  });
});

describe('spec checks: rich messages', () => {
  it('knows the media, redaction endpoints and the relation definitions', () => {
    assert.equal(matchOperation('cs', 'POST', '/_matrix/media/v3/upload').operationId, 'uploadContent');
    assert.equal(matchOperation('cs', 'GET', '/_matrix/client/v1/media/download/example.org/abc').operationId, 'getContentAuthed');
    assert.equal(matchOperation('cs', 'GET', '/_matrix/media/v3/download/example.org/abc/x.png').operationId, 'getContentOverrideName');
    assert.equal(matchOperation('cs', 'PUT', `${CS}/rooms/!r:hs/redact/$e/1`).operationId, 'redactEvent');
    assert.deepEqual(checkCsResponse('POST', '/_matrix/media/v3/upload', 200, { content_uri: 'mxc://example.org/abc' }), []);
    assert.notDeepEqual(checkCsResponse('POST', '/_matrix/media/v3/upload', 200, { content_uri: 'https://example.org/abc' }), []);
    assert.deepEqual(checkSchemaFile('data/api/client-server/definitions/m.relates_to.yaml', { rel_type: 'm.replace', event_id: '$e' }), []);
    assert.notDeepEqual(checkSchemaFile('data/api/client-server/definitions/m.relates_to.yaml', { rel_type: 'm.replace' }), []);
    assert.throws(() => checkSchemaFile('data/nope.yaml', {}), /no spec fixture/);
    assert.deepEqual(checkEventContent('m.reaction', reaction('$e', '👍')), []);
  });
});

// ------------------------------------------------------------------ third-party lookups (issue 24)

describe("fake HS: its clients' third-party lookups, passed on to the AS as Synapse does", () => {
  /** A stub AS at a URL: what it was asked, and what it answers (by path, without the prefix). */
  const asked: Array<{ path: string; query: string; authorization?: string }> = [];
  let answers: Record<string, { status: number; body: unknown }> = {};
  const stub = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://as');
    asked.push({ path: url.pathname, query: url.search, authorization: req.headers.authorization });
    const a = answers[url.pathname.replace(/^\/_matrix\/app\/(v1|unstable)/, '')] ?? { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'none' } };
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
  });
  let asUrl = '';
  before(async () => {
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    asUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => stub.close(() => r())));
  beforeEach(() => {
    asked.length = 0;
    answers = {};
    hs.options.forwardReverseLookups = false;
    hs.options.legacyThirdPartyPaths = false;
    hs.registration = { id: 'bridge', url: asUrl, hsToken: 'hs-secret', protocols: ['irc', 'gitter'] };
  });
  const protocol = (desc: string) => ({
    user_fields: ['nickname'],
    location_fields: ['channel'],
    icon: '',
    field_types: { nickname: { regexp: '.+', placeholder: 'Bob' }, channel: { regexp: '.+', placeholder: '#matrix' } },
    instances: [{ network_id: desc.toLowerCase(), desc, fields: {} }],
  });
  const client = (path: string, token = hs.clientToken('@alice:example.org')) => call('GET', `${CS}/thirdparty${path}`, undefined, { token });

  it('a local user asks with their own token; an unknown token is refused', async () => {
    assert.equal((await client('/protocols', 'syt_not-a-token')).status, 401);
    assert.equal((await client('/protocols')).status, 200);
    assert.equal(hs.calls.at(-1)?.userId, '@alice:example.org');
    assert.equal(hs.clientToken('@alice:example.org'), hs.clientToken('@alice:example.org'), 'one token per user');
    assert.notEqual(hs.clientToken('@alice:example.org'), hs.clientToken('@bob:example.org'));
  });

  it('protocols: each of the registration asked, instance_id added, a protocol the AS fails left out', async () => {
    answers['/thirdparty/protocol/irc'] = { status: 200, body: protocol('Libera') };
    answers['/thirdparty/protocol/gitter'] = { status: 500, body: { errcode: 'M_UNKNOWN', error: 'down' } };
    const all = await client('/protocols');
    assert.equal(all.status, 200);
    assert.deepEqual(Object.keys(all.json), ['irc']);
    assert.deepEqual(all.json.irc.instances, [{ network_id: 'libera', desc: 'Libera', fields: {}, instance_id: 'bridge|libera' }]);
    assert.deepEqual(asked.map((a) => [a.path, a.authorization]), [
      ['/_matrix/app/v1/thirdparty/protocol/irc', 'Bearer hs-secret'],
      ['/_matrix/app/v1/thirdparty/protocol/gitter', 'Bearer hs-secret'],
    ]);
    assert.equal((await client('/protocol/irc')).json.instances[0].instance_id, 'bridge|libera');
    // Synapse's 404 for a protocol without an answer, and for one no AS registered (never asked).
    const before = asked.length;
    assert.deepEqual(await client('/protocol/gitter'), { status: 404, json: { error: 'Unknown protocol' } });
    assert.deepEqual(await client('/protocol/slack'), { status: 404, json: { error: 'Unknown protocol' } });
    assert.equal(asked.length, before + 1, 'slack was not asked');
    // An answer without a list of instances is no answer.
    answers['/thirdparty/protocol/irc'] = { status: 200, body: { user_fields: [] } };
    assert.deepEqual((await client('/protocols')).json, {});
    assert.deepEqual(hs.specErrors, []);
  });

  it("searches: the client's query but its token passed on; results without their fields dropped; any failure []", async () => {
    answers['/thirdparty/location/irc'] = {
      status: 200,
      body: [{ alias: '#irc_#a:example.org', protocol: 'irc', fields: { channel: '#a' } }, { alias: '#irc_#b:example.org', protocol: 'irc' }, 'junk'],
    };
    const token = hs.clientToken('@alice:example.org');
    const res = await call('GET', `${CS}/thirdparty/location/irc?channel=%23a&channel=%23b&x=a+b`, undefined, { token, tokenInQuery: true });
    assert.deepEqual(res, { status: 200, json: [{ alias: '#irc_#a:example.org', protocol: 'irc', fields: { channel: '#a' } }] });
    assert.deepEqual(asked.map((a) => [a.path, a.query]), [['/_matrix/app/v1/thirdparty/location/irc', '?channel=%23a&channel=%23b&x=a+b']]);
    // The AS failing, or answering no list: [] (Synapse logs it).
    answers['/thirdparty/user/irc'] = { status: 503, body: { errcode: 'M_UNKNOWN', error: 'later' } };
    assert.deepEqual(await client('/user/irc?nickname=bob'), { status: 200, json: [] });
    answers['/thirdparty/user/irc'] = { status: 200, body: { userid: '@irc_bob:example.org' } };
    assert.deepEqual(await client('/user/irc?nickname=bob'), { status: 200, json: [] });
    // A protocol no AS registered: [] without asking.
    const before = asked.length;
    assert.deepEqual(await client('/location/slack?channel=x'), { status: 200, json: [] });
    assert.equal(asked.length, before);
    assert.deepEqual(hs.specErrors, []);
  });

  it('reverse lookups: [] without asking, as Synapse; asked with forwardReverseLookups', async () => {
    answers['/thirdparty/user'] = { status: 200, body: [{ userid: '@irc_bob:example.org', protocol: 'irc', fields: { nickname: 'bob' } }] };
    assert.deepEqual(await client('/user?userid=%40irc_bob%3Aexample.org'), { status: 200, json: [] });
    assert.equal(asked.length, 0, 'the AS was not asked');
    hs.options.forwardReverseLookups = true;
    assert.deepEqual((await client('/user?userid=%40irc_bob%3Aexample.org')).json, answers['/thirdparty/user']!.body);
    assert.deepEqual(asked.map((a) => a.path + a.query), ['/_matrix/app/v1/thirdparty/user?userid=%40irc_bob%3Aexample.org']);
    assert.deepEqual(hs.specErrors, []);
  });

  it('legacyThirdPartyPaths: /_matrix/app/unstable/, the hs_token in the query and no header (Synapse before 1.81)', async () => {
    hs.options.legacyThirdPartyPaths = true;
    answers['/thirdparty/protocol/irc'] = { status: 200, body: protocol('Libera') };
    assert.equal((await client('/protocol/irc')).status, 200);
    assert.deepEqual(asked, [{ path: '/_matrix/app/unstable/thirdparty/protocol/irc', query: '?access_token=hs-secret', authorization: undefined }]);
  });

  it('no registration, or one without a URL: nothing to ask', async () => {
    hs.registration = { id: 'bridge', url: null, hsToken: 'hs-secret', protocols: ['irc'] };
    assert.deepEqual(await client('/protocols'), { status: 200, json: {} });
    hs.registration = undefined;
    assert.deepEqual(await client('/location/irc?channel=x'), { status: 200, json: [] });
    assert.deepEqual(asked, []);
  });

  it('knows the Client-Server lookups and checks them against third_party_lookup.yaml', () => {
    assert.equal(matchOperation('cs', 'GET', `${CS}/thirdparty/protocols`).operationId, 'getProtocols');
    assert.equal(matchOperation('cs', 'GET', `${CS}/thirdparty/location/irc`).operationId, 'queryLocationByProtocol');
    assert.equal(matchOperation('cs', 'GET', `${CS}/thirdparty/user`).operationId, 'queryUserByID');
    assert.deepEqual(checkCsResponse('GET', `${CS}/thirdparty/protocol/irc`, 200, { ...protocol('Libera'), instances: [{ network_id: 'l', desc: 'L', fields: {}, instance_id: 'b|l' }] }), []);
    assert.notDeepEqual(checkCsResponse('GET', `${CS}/thirdparty/protocols`, 200, { irc: { instances: [] } }), []);
    assert.equal(matchOperation('as', 'GET', '/_matrix/app/v1/thirdparty/location/irc').operationId, 'queryLocationByProtocol');
  });
});

describe('fake HS: POST /rooms/{roomId}/leave', () => {
  const leavePath = (roomId: string) => `${CS}/rooms/${enc(roomId)}/leave`;

  it('a joined user leaves (reason in the event), an invited one rejects the invite: removed, the leave event from them appended', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const room = hs.seedRoom({ creator: BOT, members: [bob], invited: [carol] });
    const left = await call('POST', leavePath(room.roomId), { reason: 'bye' }, { userId: bob });
    assert.deepEqual([left.status, left.json], [200, {}]);
    assert.equal(room.members.has(bob), false);
    assert.deepEqual(
      room.events.map((e) => [e.type, e.sender, e.stateKey, e.content]),
      [['m.room.member', bob, bob, { reason: 'bye', membership: 'leave' }]],
    );
    assert.equal((await call('PUT', sendPath(room.roomId, 't1'), text('hi'), { userId: bob })).status, 403);

    const rejected = await call('POST', leavePath(room.roomId), {}, { userId: carol });
    assert.equal(rejected.status, 200);
    assert.equal(room.invited.has(carol), false);
    assert.deepEqual(room.events.at(-1)?.content, { membership: 'leave' });
    assert.equal(room.events.at(-1)?.sender, carol);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: carol })).status, 403, 'the invite is gone');
    // the bot itself (no ?user_id=)
    assert.equal((await call('POST', leavePath(room.roomId), {})).status, 200);
    assert.equal(room.members.has(BOT), false);
    assert.deepEqual(hs.specErrors, []);
  });

  it('refuses as Synapse 1.94: an unknown room 404 M_UNKNOWN; never there, kicked or banned 403 "<user> not in room <room>."', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const dave = await register('irc_dave');
    const room = hs.seedRoom({ creator: BOT, members: [carol, dave] });
    const unknown = await call('POST', leavePath(`!nope:${SERVER}`), {}, { userId: bob });
    assert.deepEqual([unknown.status, unknown.json], [404, { errcode: 'M_UNKNOWN', error: 'Not a known room' }]);
    const never = await call('POST', leavePath(room.roomId), {}, { userId: bob });
    assert.deepEqual([never.status, never.json], [403, { errcode: 'M_FORBIDDEN', error: `${bob} not in room ${room.roomId}.` }]);
    hs.kick(room.roomId, carol);
    const kicked = await call('POST', leavePath(room.roomId), {}, { userId: carol });
    assert.deepEqual([kicked.status, kicked.json.error], [403, `${carol} not in room ${room.roomId}.`]);
    hs.ban(room.roomId, dave);
    const banned = await call('POST', leavePath(room.roomId), {}, { userId: dave });
    assert.deepEqual([banned.status, banned.json.errcode], [403, 'M_FORBIDDEN']);
    assert.ok(room.banned.has(dave), 'still banned');
    assert.deepEqual(room.events.map((e) => e.content.membership), ['leave', 'ban'], 'only the kick and the ban');
    assert.deepEqual(hs.specErrors, []);
  });

  it('leaving again with the same content is 200 and adds nothing (Synapse drops the duplicate); with another reason 403', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    assert.equal((await call('POST', leavePath(room.roomId), {}, { userId: bob })).status, 200);
    const again = await call('POST', leavePath(room.roomId), {}, { userId: bob });
    assert.deepEqual([again.status, again.json], [200, {}]);
    assert.equal(room.events.length, 1);
    const other = await call('POST', leavePath(room.roomId), { reason: 'really' }, { userId: bob });
    assert.equal(other.status, 403);
    assert.equal(room.events.length, 1);
    // joined again (not recorded): a leave is a leave, not the duplicate of the old one
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: bob })).status, 200);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob })).status, 200);
    assert.equal((await call('POST', leavePath(room.roomId), {}, { userId: bob })).status, 200);
    assert.equal(room.members.has(bob), false);
    assert.equal(room.events.length, 2);
    assert.deepEqual(hs.specErrors, []);
  });

  it('takes no body (Synapse does; the spec wants one) and refuses a body that is not an object with 400 M_BAD_JSON', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    const bad = await call('POST', leavePath(room.roomId), ['x'], { userId: bob });
    assert.deepEqual([bad.status, bad.json.errcode], [400, 'M_BAD_JSON']);
    assert.ok(room.members.has(bob));
    assert.match(hs.specErrors.join('\n'), /leave: body must be object/);
    hs.specErrors.length = 0;
    assert.equal((await call('POST', leavePath(room.roomId), undefined, { userId: bob })).status, 200);
    assert.deepEqual(hs.specErrors, [`POST ${CS}/rooms/${room.roomId}/leave: body is required`]);
    assert.equal(matchOperation('cs', 'POST', leavePath('!r:hs')).operationId, 'leaveRoom');
  });
});

describe('fake HS: unsigned.prev_content and replaces_state on state events', () => {
  const rec = hsWith({ recordMembership: true });
  const statePath = (roomId: string, type: string, key = '') => `${CS}/rooms/${enc(roomId)}/state/${type}/${enc(key)}`;

  it('a state event remembers the one it replaced; clientEvent pushes replaces_state, prev_content and prev_sender as Synapse', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob], moderators: [bob] });
    const one = (await call('PUT', statePath(room.roomId, 'm.room.name'), { name: 'One' })).json.event_id as string;
    const two = (await call('PUT', statePath(room.roomId, 'm.room.name'), { name: 'Two' }, { userId: bob })).json.event_id as string;
    const [first, second] = room.events;
    assert.deepEqual([first?.replacesState, first?.prevContent], [undefined, undefined]);
    assert.deepEqual([second?.eventId, second?.replacesState, second?.prevContent], [two, one, { name: 'One' }]);
    assert.deepEqual(hs.clientEvent(room.roomId, first!).unsigned, { age: 0 });
    const pushed = hs.clientEvent(room.roomId, second!);
    assert.deepEqual(pushed.unsigned, { age: 0, replaces_state: one, prev_content: { name: 'One' }, prev_sender: BOT });
    assert.deepEqual(checkEvent('m.room.name', pushed), []);
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: [pushed] }), []);
    // another state key, another type: nothing to replace
    await call('PUT', statePath(room.roomId, 'm.bridge', 'irc'), { protocol: { id: 'irc' } });
    assert.equal(room.events.at(-1)?.replacesState, undefined);
    // the room's initial state is replaced too
    const named = hs.seedRoom({ creator: BOT, name: 'Seeded' });
    await call('PUT', statePath(named.roomId, 'm.room.name'), { name: 'Renamed' });
    assert.deepEqual(hs.clientEvent(named.roomId, named.events[0]!).unsigned.prev_content, { name: 'Seeded' });
    assert.equal(named.events[0]?.replacesState, named.initialState.find((e) => e.type === 'm.room.name')?.eventId);
    assert.deepEqual(hs.specErrors, []);
  });

  it('prev_content is the replaced event as the HS has it when pushing: pruned once redacted', async () => {
    const room = hs.seedRoom({ creator: BOT });
    const one = (await call('PUT', statePath(room.roomId, 'm.room.name'), { name: 'One' })).json.event_id as string;
    await call('PUT', statePath(room.roomId, 'm.room.name'), { name: 'Two' });
    const second = room.events[1]!;
    await call('PUT', `${CS}/rooms/${enc(room.roomId)}/redact/${enc(one)}/r1`, {});
    assert.deepEqual(hs.clientEvent(room.roomId, second).unsigned.prev_content, {});
    assert.deepEqual(second.prevContent, { name: 'One' }, 'what it replaced when it was made');
  });

  it('member events from invites, joins, kicks, bans and unbans carry the previous membership', async () => {
    const on = rec();
    const bob = await register('irc_bob', on);
    const room = on.seedRoom({ creator: BOT });
    await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: bob }, { on });
    await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { on, userId: bob });
    on.kick(room.roomId, bob, BOT, 'out');
    on.ban(room.roomId, bob);
    on.unban(room.roomId, bob);
    const pushed = room.events.map((e) => on.clientEvent(room.roomId, e));
    assert.deepEqual(
      pushed.map((e) => [e.content.membership, e.unsigned.prev_content?.membership, e.unsigned.prev_sender]),
      [
        ['invite', undefined, undefined],
        ['join', 'invite', BOT],
        ['leave', 'join', bob],
        ['ban', 'leave', BOT],
        ['leave', 'ban', BOT],
      ],
    );
    assert.deepEqual(pushed[1]?.unsigned.prev_content, { membership: 'invite', displayname: 'irc_bob' });
    assert.deepEqual(pushed[2]?.unsigned.replaces_state, room.events[1]?.eventId);
    for (const e of pushed) assert.deepEqual(checkEvent('m.room.member', e), []);
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: pushed }), []);
    assert.deepEqual(on.specErrors, []);
  });
});

describe('fake HS: createRoom with is_direct, invite and presets', () => {
  const rec = hsWith({ recordMembership: true });

  it('invites the listed users; trusted_private_chat: join rule invite, the invitees get the power (moderators); no events by default', async () => {
    const bob = await register('irc_bob');
    const r = await call('POST', `${CS}/createRoom`, { preset: 'trusted_private_chat', is_direct: true, invite: [bob] });
    assert.equal(r.status, 200);
    const room = hs.rooms.get(r.json.room_id)!;
    assert.deepEqual([...room.invited], [bob]);
    assert.deepEqual([...room.moderators], [bob]);
    assert.equal(room.joinRule, 'invite');
    assert.deepEqual(room.events, [], 'createRoom records no membership unless asked');
    const priv = hs.rooms.get((await call('POST', `${CS}/createRoom`, { preset: 'private_chat', invite: [bob] })).json.room_id)!;
    assert.deepEqual([...priv.invited], [bob]);
    assert.deepEqual([...priv.moderators], [], 'private_chat gives invitees no power');
    assert.deepEqual(hs.specErrors, []);
  });

  it('with recordMembership: the creator\'s join, then the invites, with is_direct when asked', async () => {
    const on = rec();
    const bob = await register('irc_bob', on);
    const alice = `@alice:${SERVER}`;
    const dm = on.rooms.get((await call('POST', `${CS}/createRoom`, { preset: 'trusted_private_chat', is_direct: true, invite: [bob, alice] }, { on })).json.room_id)!;
    assert.deepEqual(
      dm.events.map((e) => [e.type, e.sender, e.stateKey, e.content]),
      [
        ['m.room.member', BOT, BOT, { membership: 'join', displayname: 'bot' }],
        ['m.room.member', BOT, bob, { is_direct: true, membership: 'invite', displayname: 'irc_bob' }],
        ['m.room.member', BOT, alice, { is_direct: true, membership: 'invite' }],
      ],
    );
    const group = on.rooms.get((await call('POST', `${CS}/createRoom`, { invite: [bob] }, { on })).json.room_id)!;
    assert.deepEqual(group.events.at(-1)?.content, { membership: 'invite', displayname: 'irc_bob' }, 'no is_direct unless asked');
    assert.equal(group.events.length, 2);
    assert.deepEqual(on.specErrors, []);
  });

  it('refuses an unknown preset (400 M_BAD_JSON) and an invite that is not a user ID (400), making no room', async () => {
    const preset = await call('POST', `${CS}/createRoom`, { preset: 'secret_chat' });
    assert.deepEqual([preset.status, preset.json], [400, { errcode: 'M_BAD_JSON', error: "'secret_chat' is not a valid preset" }]);
    const invite = await call('POST', `${CS}/createRoom`, { invite: ['bob'] });
    assert.deepEqual([invite.status, invite.json], [400, { errcode: 'M_UNKNOWN', error: 'Invalid user_id: bob' }]);
    assert.equal(hs.rooms.size, 0);
    assert.deepEqual(hs.specErrors, [
      `POST ${CS}/createRoom: body/preset must be equal to one of the allowed values (["private_chat","public_chat","trusted_private_chat"])`,
      `POST ${CS}/createRoom: body/invite/0 must match pattern "^@"`,
      `POST ${CS}/createRoom: body/invite/0 must match format "mx-user-id"`,
    ]);
  });

  it('keeps the name and topic as state events of the creator (GET state, currentState)', async () => {
    const r = await call('POST', `${CS}/createRoom`, { name: 'Chan', topic: 'About', initial_state: [{ type: 'm.room.name', content: { name: 'Overridden' } }] });
    const room = hs.rooms.get(r.json.room_id)!;
    assert.equal(room.name, 'Chan');
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.name'), { name: 'Chan' });
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.topic'), { topic: 'About' });
    const got = await call('GET', `${CS}/rooms/${enc(room.roomId)}/state/m.room.topic/`);
    assert.deepEqual([got.status, got.json], [200, { topic: 'About' }]);
    const fromInitial = hs.rooms.get((await call('POST', `${CS}/createRoom`, { initial_state: [{ type: 'm.room.name', content: { name: 'Initial' } }] })).json.room_id)!;
    assert.equal(fromInitial.name, 'Initial');
    assert.equal(fromInitial.initialState.filter((e) => e.type === 'm.room.name').length, 1);
    assert.deepEqual(hs.specErrors, []);
  });
});

describe('fake HS: account data', () => {
  const adPath = (userId: string, type: string) => `${CS}/user/${enc(userId)}/account_data/${enc(type)}`;
  const ALICE = `@alice:${SERVER}`;

  it('stores a user\'s own account data, per user, and answers it back', async () => {
    const bob = await register('irc_bob');
    const direct = { [ALICE]: ['!dm:example.org'] };
    const put = await call('PUT', adPath(bob, 'm.direct'), direct, { userId: bob });
    assert.deepEqual([put.status, put.json], [200, {}]);
    const got = await call('GET', adPath(bob, 'm.direct'), undefined, { userId: bob });
    assert.deepEqual([got.status, got.json], [200, direct]);
    assert.deepEqual(hs.accountData(bob, 'm.direct'), direct);
    assert.equal(hs.accountData(BOT, 'm.direct'), undefined, 'per user');
    // the bot (no ?user_id=), and a local user with their own token
    assert.equal((await call('PUT', adPath(BOT, 'org.example.state'), { a: 1 })).status, 200);
    assert.deepEqual(hs.accountData(BOT, 'org.example.state'), { a: 1 });
    assert.equal((await call('PUT', adPath(ALICE, 'm.direct'), { [bob]: ['!x:example.org'] }, { token: hs.clientToken(ALICE) })).status, 200);
    assert.deepEqual(hs.accountData(ALICE, 'm.direct'), { [bob]: ['!x:example.org'] });
    assert.equal((await call('PUT', adPath(bob, 'm.direct'), { replaced: [] }, { userId: bob })).status, 200);
    assert.deepEqual(hs.accountData(bob, 'm.direct'), { replaced: [] });
    assert.deepEqual(hs.specErrors, []);
    hs.reset();
    assert.equal(hs.accountData(ALICE, 'm.direct'), undefined);
  });

  it('refuses other users\' account data with 403 M_FORBIDDEN, and answers 404 for a type never set', async () => {
    const bob = await register('irc_bob');
    const put = await call('PUT', adPath(ALICE, 'm.direct'), {}, { userId: bob });
    assert.deepEqual([put.status, put.json], [403, { errcode: 'M_FORBIDDEN', error: 'Cannot add account data for other users.' }]);
    const get = await call('GET', adPath(bob, 'm.direct'));
    assert.deepEqual([get.status, get.json], [403, { errcode: 'M_FORBIDDEN', error: 'Cannot get account data for other users.' }]);
    const none = await call('GET', adPath(bob, 'm.direct'), undefined, { userId: bob });
    assert.deepEqual([none.status, none.json], [404, { errcode: 'M_NOT_FOUND', error: 'Account data not found' }]);
    assert.equal(hs.accountData(ALICE, 'm.direct'), undefined);
    assert.deepEqual(hs.specErrors, []);
    const bad = await call('PUT', adPath(bob, 'm.direct'), [1], { userId: bob });
    assert.deepEqual([bad.status, bad.json.errcode], [400, 'M_BAD_JSON']);
    assert.equal(matchOperation('cs', 'PUT', adPath('@a:hs', 'm.direct')).operationId, 'setAccountData');
    assert.equal(matchOperation('cs', 'GET', adPath('@a:hs', 'm.direct')).operationId, 'getAccountData');
  });
});

describe('fake HS: GET /rooms/{roomId}/joined_members', () => {
  const membersPath = (roomId: string) => `${CS}/rooms/${enc(roomId)}/joined_members`;
  const ALICE = `@alice:${SERVER}`;
  const CAROL = `@carol:${SERVER}`;

  it('answers the joined members with their profiles as Synapse 1.94: both keys, null when unset', async () => {
    const bob = await register('irc_bob');
    await call('PUT', `${CS}/profile/${enc(bob)}/displayname`, { displayname: 'Bob' }, { userId: bob });
    await call('PUT', `${CS}/profile/${enc(bob)}/avatar_url`, { avatar_url: 'mxc://example.org/bob' }, { userId: bob });
    const room = hs.seedRoom({ creator: BOT, members: [ALICE], invited: [CAROL], joinRule: 'public' });
    await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { userId: bob });
    const r = await call('GET', membersPath(room.roomId));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      joined: {
        [BOT]: { avatar_url: null, display_name: 'bot' },
        [ALICE]: { avatar_url: null, display_name: null },
        [bob]: { avatar_url: 'mxc://example.org/bob', display_name: 'Bob' },
      },
    });
    assert.deepEqual(hs.specErrors, [], 'the nulls are Synapse\'s: the spec check sees the answer without them');
    assert.equal(matchOperation('cs', 'GET', membersPath('!r:hs')).operationId, 'getJoinedMembersByRoom');
  });

  it('takes the profile of the member\'s join event (per room) over the global one', async () => {
    const room = hs.seedRoom({ creator: ALICE, joinRule: 'public', members: [BOT] });
    hs.userSetProfile(CAROL, { displayName: 'Carol' });
    hs.userJoinRoom(CAROL, room.roomId);
    hs.users.get(CAROL)!.displayName = 'Changed behind the room\'s back';
    const r = await call('GET', membersPath(room.roomId));
    assert.deepEqual(r.json.joined[CAROL], { avatar_url: null, display_name: 'Carol' });
  });

  it('the AS may when the user it acts as is joined or any member is in its namespace; else 403 "Appservice not in room"', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: ALICE, members: [CAROL] });
    const out = await call('GET', membersPath(room.roomId));
    assert.deepEqual([out.status, out.json], [403, { errcode: 'M_FORBIDDEN', error: 'Appservice not in room' }]);
    assert.equal((await call('GET', membersPath(room.roomId), undefined, { userId: bob })).status, 403);
    assert.equal((await call('GET', membersPath(`!nope:${SERVER}`))).status, 403);
    room.members.add(bob);
    const asBot = await call('GET', membersPath(room.roomId));
    assert.equal(asBot.status, 200, 'the bot is not there, one of the AS\'s users is');
    assert.deepEqual(Object.keys(asBot.json.joined).sort(), [ALICE, CAROL, bob].sort());
    assert.deepEqual(hs.specErrors, []);
  });

  it('a local user must be joined: 403 "not in room" for a stranger, another 403 for one who left', async () => {
    const room = hs.seedRoom({ creator: ALICE, members: [CAROL, BOT] });
    assert.equal((await call('GET', membersPath(room.roomId), undefined, { token: hs.clientToken(ALICE) })).status, 200);
    const stranger = await call('GET', membersPath(room.roomId), undefined, { token: hs.clientToken(`@dave:${SERVER}`) });
    assert.deepEqual([stranger.status, stranger.json], [403, { errcode: 'M_FORBIDDEN', error: `User @dave:${SERVER} not in room ${room.roomId}, and room previews are disabled` }]);
    hs.leave(room.roomId, CAROL);
    const departed = await call('GET', membersPath(room.roomId), undefined, { token: hs.clientToken(CAROL) });
    assert.deepEqual([departed.status, departed.json], [403, { errcode: 'M_FORBIDDEN', error: 'Getting joined members while not being a current member of the room is forbidden.' }]);
    assert.deepEqual(hs.specErrors, []);
  });
});

describe('fake HS: who may set the room name and topic', () => {
  const statePath = (roomId: string, type: string, key = '') => `${CS}/rooms/${enc(roomId)}/state/${type}/${enc(key)}`;

  it('the creator and moderators; any other member gets 403 M_FORBIDDEN as from Synapse\'s power levels, nothing stored', async () => {
    const bob = await register('irc_bob');
    const carol = await register('irc_carol');
    const room = hs.seedRoom({ creator: `@alice:${SERVER}`, members: [BOT, bob, carol], moderators: [carol], name: 'Old', topic: 'Old topic' });
    for (const [type, content] of [['m.room.name', { name: 'Mine' }], ['m.room.topic', { topic: 'Mine' }]] as const) {
      for (const userId of [bob, BOT]) {
        const r = await call('PUT', statePath(room.roomId, type), content, { userId });
        assert.deepEqual([r.status, r.json], [403, { errcode: 'M_FORBIDDEN', error: "You don't have permission to post that to the room. user_level (0) < send_level (50)" }]);
      }
    }
    assert.deepEqual([room.name, room.topic, room.events.length], ['Old', 'Old topic', 0]);
    assert.equal((await call('PUT', statePath(room.roomId, 'm.room.name'), { name: 'By the moderator' }, { userId: carol })).status, 200);
    assert.equal((await call('PUT', statePath(room.roomId, 'm.room.topic'), { topic: 'New topic' }, { userId: carol })).status, 200);
    assert.deepEqual([room.name, room.topic], ['By the moderator', 'New topic']);
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.topic'), { topic: 'New topic' });
    // other state is not checked: an AS's bridge info from anyone in the room
    assert.equal((await call('PUT', statePath(room.roomId, 'm.bridge', 'irc'), { protocol: { id: 'irc' } }, { userId: bob })).status, 200);
    // the creator (here the bot's own room)
    const own = hs.seedRoom({ creator: BOT });
    assert.equal((await call('PUT', statePath(own.roomId, 'm.room.name'), { name: 'Bot room' })).status, 200);
    assert.equal(own.name, 'Bot room');
    assert.deepEqual(hs.specErrors, []);
  });
});

describe('fake HS: a local user\'s direct chats and profile (userCreateRoom, userJoinRoom, userSetProfile, currentState)', () => {
  const ALICE = `@alice:${SERVER}`;
  const DAVE = `@dave:${SERVER}`;

  it('userCreateRoom: "start a direct chat" as Element does: the join and the invites with is_direct, appended whatever recordMembership says', async () => {
    const bob = await register('irc_bob');
    const { room, events } = hs.userCreateRoom(ALICE, { invite: [bob], isDirect: true });
    assert.equal(hs.options.recordMembership, undefined);
    assert.deepEqual(
      events.map((e) => [e.type, e.sender, e.stateKey, e.content]),
      [
        ['m.room.member', ALICE, ALICE, { membership: 'join' }],
        ['m.room.member', ALICE, bob, { is_direct: true, membership: 'invite', displayname: 'irc_bob' }],
      ],
    );
    assert.deepEqual(room.events, events);
    assert.equal(room.events[1], events[1], 'the stored events themselves');
    assert.deepEqual([room.creator, room.joinRule, [...room.members], [...room.invited], [...room.moderators]], [ALICE, 'invite', [ALICE], [bob], [bob]]);
    assert.equal(hs.rooms.get(room.roomId), room);
    const pushed = hs.clientEvent(room.roomId, events[1]!);
    assert.equal(pushed.content.is_direct, true);
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: events.map((e) => hs.clientEvent(room.roomId, e)) }), []);
    assert.equal(hs.calls.length, 1, 'no HTTP but the registration');
    assert.deepEqual(hs.specErrors, []);
  });

  it('userCreateRoom: other presets, a name, no is_direct; refusals thrown', () => {
    const { room, events } = hs.userCreateRoom(ALICE, { invite: [DAVE], preset: 'public_chat', name: 'Hangout' });
    assert.deepEqual(events.map((e) => e.content), [{ membership: 'join' }, { membership: 'invite' }]);
    assert.deepEqual([room.joinRule, room.name, [...room.moderators]], ['public', 'Hangout', []]);
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.name'), { name: 'Hangout' });
    const plain = hs.userCreateRoom(ALICE);
    assert.deepEqual(plain.events.map((e) => e.content.membership), ['join']);
    assert.equal(plain.room.joinRule, 'invite');
    assert.deepEqual(hs.specErrors, []);
    assert.throws(() => hs.userCreateRoom(ALICE, { invite: ['dave'] }), /400 M_UNKNOWN: Invalid user_id: dave/);
    assert.throws(() => hs.userCreateRoom(ALICE, { preset: 'nope' }), /400 M_BAD_JSON/);
    assert.equal(hs.rooms.size, 2);
  });

  it('userJoinRoom: accepting the invite (prev_content the invite), a public room; refusals thrown; joined already gives the same join', async () => {
    const { room } = hs.userCreateRoom(ALICE, { invite: [DAVE], isDirect: true });
    const join = hs.userJoinRoom(DAVE, room.roomId);
    assert.deepEqual([join.type, join.sender, join.stateKey, join.content], ['m.room.member', DAVE, DAVE, { membership: 'join' }]);
    assert.equal(room.events.at(-1), join);
    assert.ok(room.members.has(DAVE) && !room.invited.has(DAVE));
    assert.deepEqual(hs.clientEvent(room.roomId, join).unsigned.prev_content, { is_direct: true, membership: 'invite' });
    assert.equal(hs.userJoinRoom(DAVE, room.roomId), join);
    assert.equal(room.events.length, 3);
    assert.throws(() => hs.userJoinRoom(`@mallory:${SERVER}`, room.roomId), /403 M_FORBIDDEN: You are not invited to this room\./);
    assert.throws(() => hs.userJoinRoom(DAVE, `!nope:${SERVER}`), /404 M_NOT_FOUND/);
    const pub = hs.seedRoom({ creator: BOT, joinRule: 'public', members: [ALICE] });
    assert.equal(hs.userJoinRoom(`@erin:${SERVER}`, pub.roomId).content.membership, 'join');
    hs.ban(pub.roomId, `@erin:${SERVER}`);
    assert.throws(() => hs.userJoinRoom(`@erin:${SERVER}`, pub.roomId), /403 M_FORBIDDEN: You are banned/);
    // a member whose join the fake never recorded: one is made
    const seeded = hs.userJoinRoom(ALICE, pub.roomId);
    assert.equal(pub.events.at(-1), seeded);
    assert.deepEqual(seeded.content, { membership: 'join' });
  });

  it('userSetProfile: the global profile, and a new join event with prev_content in every room the user is joined to', async () => {
    const dm = hs.userCreateRoom(ALICE, { invite: [DAVE], isDirect: true }).room;
    const seeded = hs.seedRoom({ creator: BOT, members: [ALICE] });
    const left = hs.seedRoom({ creator: BOT, members: [ALICE] });
    hs.leave(left.roomId, ALICE);
    const changed = hs.userSetProfile(ALICE, { displayName: 'Alice' });
    assert.deepEqual(changed.map((c) => c.roomId), [dm.roomId, seeded.roomId]);
    for (const { roomId, event } of changed) {
      assert.deepEqual([event.type, event.sender, event.stateKey, event.content], ['m.room.member', ALICE, ALICE, { membership: 'join', displayname: 'Alice' }]);
      assert.equal(hs.rooms.get(roomId)!.events.at(-1), event);
    }
    assert.deepEqual(changed[0]!.event.prevContent, { membership: 'join' });
    assert.deepEqual(hs.clientEvent(dm.roomId, changed[0]!.event).unsigned.prev_content, { membership: 'join' });
    assert.equal(changed[1]!.event.prevContent, undefined, 'a seeded membership has no event to replace');
    assert.equal(left.events.length, 1);
    assert.equal(hs.users.get(ALICE)?.displayName, 'Alice');
    const profile = await call('GET', `${CS}/profile/${enc(ALICE)}`);
    assert.deepEqual(profile.json, { displayname: 'Alice' });

    assert.deepEqual(hs.userSetProfile(ALICE, { displayName: 'Alice' }), [], 'nothing changes: no new event');
    const avatar = hs.userSetProfile(ALICE, { avatarUrl: 'mxc://example.org/alice' });
    assert.deepEqual(avatar[0]?.event.content, { membership: 'join', displayname: 'Alice', avatar_url: 'mxc://example.org/alice' });
    assert.deepEqual(avatar[0]?.event.prevContent, { membership: 'join', displayname: 'Alice' });
    assert.deepEqual(hs.currentState(dm.roomId, 'm.room.member', ALICE), { membership: 'join', displayname: 'Alice', avatar_url: 'mxc://example.org/alice' });
    assert.deepEqual(checkEvent('m.room.member', hs.clientEvent(dm.roomId, avatar[0]!.event)), []);
    assert.deepEqual(hs.specErrors, []);
  });

  it('currentState: events first, then the initial state; undefined when none; throws for an unknown room', async () => {
    const room = hs.seedRoom({ creator: BOT, alias: `#irc_x:${SERVER}`, name: 'Seeded' });
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.canonical_alias'), { alias: `#irc_x:${SERVER}` });
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.name', ''), { name: 'Seeded' });
    await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`, { name: 'Live' });
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.name'), { name: 'Live' });
    assert.equal(hs.currentState(room.roomId, 'm.room.topic'), undefined);
    assert.equal(hs.currentState(room.roomId, 'm.room.name', 'other'), undefined);
    assert.throws(() => hs.currentState(`!nope:${SERVER}`, 'm.room.name'), /no room/);
  });

  describe('with recordMembership', () => {
    const rec = hsWith({ recordMembership: true });
    it('the AS setting a user\'s profile sends the new join event into the user\'s rooms, as Synapse does', async () => {
      const on = rec();
      const bob = await register('irc_bob', on);
      const room = on.seedRoom({ creator: BOT, joinRule: 'public' });
      await call('POST', `${CS}/rooms/${enc(room.roomId)}/join`, {}, { on, userId: bob });
      await call('PUT', `${CS}/profile/${enc(bob)}/displayname`, { displayname: 'Bob' }, { on, userId: bob });
      assert.deepEqual(room.events.map((e) => [e.sender, e.content]), [
        [bob, { membership: 'join', displayname: 'irc_bob' }],
        [bob, { membership: 'join', displayname: 'Bob' }],
      ]);
      assert.deepEqual(room.events[1]?.prevContent, { membership: 'join', displayname: 'irc_bob' });
      assert.deepEqual(on.specErrors, []);
    });
  });
});

// ------------------------------------------------------------ linking a Matrix user's room

const ALICE_ = `@alice:${SERVER}`;
const userinfoPath = (token?: string): string =>
  `/_matrix/federation/v1/openid/userinfo${token === undefined ? '' : `?access_token=${enc(token)}`}`;
const openIdPath = (userId: string): string => `${CS}/user/${enc(userId)}/openid/request_token`;
const plPath = (roomId: string, slash = true): string => `${CS}/rooms/${enc(roomId)}/state/m.room.power_levels${slash ? '/' : ''}`;

/** What Synapse 1.94's createRoom gives, spelled out (synapsePowerLevels is checked against it). */
const SYNAPSE_PL = (creator: string, invite: number) => ({
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
  invite,
  historical: 100,
});

describe('fake HS: OpenID (request_token, and the federation userinfo Synapse serves without auth)', () => {
  it('a local user asks for a token for themselves; userinfo (no auth header) answers its sub; both recorded in calls', async () => {
    const r = await call('POST', openIdPath(ALICE_), {}, { token: hs.clientToken(ALICE_) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(Object.keys(r.json).sort(), ['access_token', 'expires_in', 'matrix_server_name', 'token_type']);
    assert.match(r.json.access_token, /^[A-Za-z]{24}$/);
    assert.deepEqual([r.json.token_type, r.json.matrix_server_name, r.json.expires_in], ['Bearer', SERVER, 3600]);
    assert.deepEqual(checkCsResponse('POST', openIdPath(ALICE_), 200, r.json), []);

    const info = await call('GET', userinfoPath(r.json.access_token), undefined, { token: null });
    assert.deepEqual([info.status, info.json], [200, { sub: ALICE_ }]);
    const recorded = hs.calls.at(-1)!;
    assert.deepEqual([recorded.method, recorded.path, recorded.query.access_token, recorded.status, recorded.userId], ['GET', '/_matrix/federation/v1/openid/userinfo', r.json.access_token, 200, '']);
    assert.equal(hs.calls.filter((c) => c.path.endsWith('/openid/userinfo')).length, 1);

    // It is no access token for the Client-Server API.
    const asClient = await call('GET', `${CS}/profile/${enc(ALICE_)}`, undefined, { token: r.json.access_token });
    assert.equal(asClient.json.errcode, 'M_UNKNOWN_TOKEN');
    assert.deepEqual(hs.specErrors, []);
  });

  it("another user's ID is 403 M_FORBIDDEN (before the body is looked at); no body 400 M_NOT_JSON; the AS for its bot and its users", async () => {
    const bob = await register('irc_bob');
    const other = await call('POST', openIdPath(`@carol:${SERVER}`), undefined, { token: hs.clientToken(ALICE_) });
    assert.deepEqual([other.status, other.json], [403, { errcode: 'M_FORBIDDEN', error: 'Cannot request tokens for other users.' }]);
    const noBody = await call('POST', openIdPath(ALICE_), undefined, { token: hs.clientToken(ALICE_) });
    assert.deepEqual([noBody.status, noBody.json.errcode], [400, 'M_NOT_JSON']);
    assert.ok(hs.specErrors.some((e) => e.includes('body is required')), 'the spec wants a body ({})');
    hs.specErrors.length = 0;

    const asBot = await call('POST', openIdPath(BOT), {});
    assert.equal(asBot.status, 200);
    assert.deepEqual((await call('GET', userinfoPath(asBot.json.access_token), undefined, { token: null })).json, { sub: BOT });
    const asBob = await call('POST', openIdPath(bob), {}, { userId: bob });
    assert.deepEqual((await call('GET', userinfoPath(asBob.json.access_token), undefined, { token: null })).json, { sub: bob });
    assert.equal((await call('POST', openIdPath(ALICE_), {})).status, 403, 'the bot for a Matrix user');
    assert.deepEqual(hs.specErrors, []);
  });

  it('userinfo: an unknown or expired token is 401 M_UNKNOWN_TOKEN, none 401 M_MISSING_TOKEN, as Synapse; openIdToken, expireOpenIdTokens, reset', async () => {
    const unknown = await call('GET', userinfoPath('nope'), undefined, { token: null });
    assert.deepEqual([unknown.status, unknown.json], [401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Access Token unknown or expired' }]);
    const token = hs.openIdToken(ALICE_);
    assert.deepEqual((await call('GET', userinfoPath(token), undefined, { token: null })).json, { sub: ALICE_ });
    // an AS token or a client token on the request changes nothing
    assert.deepEqual((await call('GET', userinfoPath(token))).json, { sub: ALICE_ });
    hs.expireOpenIdTokens();
    const expired = await call('GET', userinfoPath(token), undefined, { token: null });
    assert.deepEqual([expired.status, expired.json], [401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Access Token unknown or expired' }]);
    assert.deepEqual(hs.specErrors, []);

    const missing = await call('GET', userinfoPath(), undefined, { token: null });
    assert.deepEqual([missing.status, missing.json], [401, { errcode: 'M_MISSING_TOKEN', error: 'Access Token required' }]);
    assert.deepEqual(hs.specErrors, ['GET /_matrix/federation/v1/openid/userinfo: query parameter access_token is required']);

    const later = hs.openIdToken(ALICE_);
    hs.reset();
    assert.equal((await call('GET', userinfoPath(later), undefined, { token: null })).status, 401, 'reset() forgets the tokens');
  });

  it('failure rules apply to it; the spec fixtures know request_token', async () => {
    const token = hs.openIdToken(ALICE_);
    hs.fail({ match: { pathIncludes: '/openid/userinfo' }, kind: 'status', status: 503 });
    assert.equal((await call('GET', userinfoPath(token), undefined, { token: null })).status, 503);
    assert.equal((await call('GET', userinfoPath(token), undefined, { token: null })).status, 200);
    assert.deepEqual(checkCsRequest('POST', `${CS}/user/@a:hs/openid/request_token`, {}), []);
    assert.equal(matchOperation('cs', 'POST', `${CS}/user/@a:hs/openid/request_token`).operationId, 'requestOpenIdToken');
  });
});

describe('fake HS: power levels as Synapse 1.94 keeps them', () => {
  it('createRoom: the content Synapse makes per preset, served with and without the trailing slash', async () => {
    assert.deepEqual(synapsePowerLevels(BOT, 'private_chat'), SYNAPSE_PL(BOT, 0));
    const priv = (await call('POST', `${CS}/createRoom`, { preset: 'private_chat' })).json.room_id as string;
    for (const slash of [true, false]) {
      const r = await call('GET', plPath(priv, slash));
      assert.deepEqual([r.status, r.json], [200, SYNAPSE_PL(BOT, 0)]);
    }
    assert.deepEqual(checkEventContent('m.room.power_levels', SYNAPSE_PL(BOT, 0)), []);
    const pub = (await call('POST', `${CS}/createRoom`, { preset: 'public_chat' })).json.room_id as string;
    assert.deepEqual((await call('GET', plPath(pub))).json, SYNAPSE_PL(BOT, 50), 'public_chat: invite 50');
    const bob = await register('irc_bob');
    const trusted = (await call('POST', `${CS}/createRoom`, { preset: 'trusted_private_chat', invite: [bob] })).json.room_id as string;
    assert.deepEqual((await call('GET', plPath(trusted))).json.users, { [BOT]: 100, [bob]: 100 });
    assert.deepEqual([...hs.rooms.get(trusted)!.moderators], [bob]);
    assert.deepEqual(hs.specErrors, []);
  });

  it('power_level_content_override merged over the top keys (its users must hold the creator); initial_state power levels taken as they are', async () => {
    const carol = `@carol:${SERVER}`;
    const over = await call('POST', `${CS}/createRoom`, { preset: 'private_chat', power_level_content_override: { users: { [BOT]: 100, [carol]: 50 }, events_default: 10 } });
    const room = hs.rooms.get(over.json.room_id)!;
    assert.deepEqual(hs.powerLevels(room.roomId), { ...SYNAPSE_PL(BOT, 0), users: { [BOT]: 100, [carol]: 50 }, events_default: 10 });
    assert.deepEqual([...room.moderators], [carol]);
    const refused = await call('POST', `${CS}/createRoom`, { power_level_content_override: { users: { [carol]: 100 } } });
    assert.deepEqual([refused.status, refused.json], [400, { errcode: 'M_UNKNOWN', error: `Not a valid power_level_content_override: 'users' did not contain ${BOT}` }]);
    const given = { users: { [BOT]: 100 }, state_default: 0 };
    const init = await call('POST', `${CS}/createRoom`, { initial_state: [{ type: 'm.room.power_levels', state_key: '', content: given }], power_level_content_override: { invite: 100 } });
    assert.deepEqual((await call('GET', plPath(init.json.room_id))).json, given);
    assert.equal(hs.rooms.get(init.json.room_id)!.initialState.filter((e) => e.type === 'm.room.power_levels').length, 1);
    assert.deepEqual(hs.specErrors, []);
  });

  it("userCreateRoom(private_chat, name): invite-only, the creator 100, invite 0; seeded rooms too, their moderators at 50; any member reads them", async () => {
    const { room } = hs.userCreateRoom(ALICE_, { preset: 'private_chat', name: 'Alice room' });
    assert.deepEqual([room.joinRule, room.name, hs.powerLevel(room.roomId, ALICE_), hs.powerLevel(room.roomId, BOT)], ['invite', 'Alice room', 100, 0]);
    assert.deepEqual(hs.powerLevels(room.roomId), SYNAPSE_PL(ALICE_, 0));
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.power_levels'), SYNAPSE_PL(ALICE_, 0));
    const bob = await register('irc_bob');
    const over = hs.userCreateRoom(ALICE_, { powerLevelContentOverride: { invite: 50, state_default: 100 } }).room;
    assert.deepEqual([hs.powerLevels(over.roomId).invite, hs.powerLevels(over.roomId).state_default], [50, 100]);
    const seeded = hs.seedRoom({ creator: ALICE_, joinRule: 'public', members: [bob], moderators: [bob] });
    assert.deepEqual(hs.powerLevels(seeded.roomId), { ...SYNAPSE_PL(ALICE_, 50), users: { [ALICE_]: 100, [bob]: 50 } });
    const asBob = await call('GET', plPath(seeded.roomId, false), undefined, { userId: bob });
    assert.deepEqual([asBob.status, asBob.json.users], [200, { [ALICE_]: 100, [bob]: 50 }]);
    assert.deepEqual(hs.specErrors, []);
  });

  it("the bot reads a room's state once joined; before, 403 as Synapse: not in room, and room previews are disabled", async () => {
    const { room } = hs.userCreateRoom(ALICE_, { name: 'Alice room' });
    for (const path of [plPath(room.roomId), plPath(room.roomId, false), `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`]) {
      const r = await call('GET', path);
      assert.deepEqual([r.status, r.json], [403, { errcode: 'M_FORBIDDEN', error: `User ${BOT} not in room ${room.roomId}, and room previews are disabled` }]);
    }
    hs.userInvite(ALICE_, room.roomId, BOT);
    assert.equal((await call('GET', plPath(room.roomId))).status, 403, 'invited is not joined');
    assert.equal((await call('POST', `${CS}/join/${enc(room.roomId)}`, {})).status, 200);
    assert.deepEqual((await call('GET', plPath(room.roomId))).json.users, { [ALICE_]: 100 });
    assert.deepEqual((await call('GET', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name`)).json, { name: 'Alice room' });
    assert.deepEqual(hs.specErrors, []);
  });

  it('setPowerLevel / setPowerLevels: a new power levels event (replaces_state), moderators follow, checks follow', async () => {
    const { room } = hs.userCreateRoom(ALICE_, { invite: [BOT] });
    await call('POST', `${CS}/join/${enc(room.roomId)}`, {});
    const before = room.events.length;
    const up = hs.setPowerLevel(room.roomId, BOT, 50);
    assert.deepEqual([up.type, up.sender, up.stateKey, up.content.users], ['m.room.power_levels', ALICE_, '', { [ALICE_]: 100, [BOT]: 50 }]);
    assert.equal(room.events.length, before + 1);
    assert.equal(room.events.at(-1), up);
    const pushed = hs.clientEvent(room.roomId, up);
    assert.equal(pushed.unsigned.replaces_state, room.initialState.find((e) => e.type === 'm.room.power_levels')?.eventId);
    assert.deepEqual(pushed.unsigned.prev_content, SYNAPSE_PL(ALICE_, 0));
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', { events: [pushed] }), []);
    assert.deepEqual([...room.moderators], [BOT]);
    assert.deepEqual((await call('GET', plPath(room.roomId))).json.users, { [ALICE_]: 100, [BOT]: 50 });
    assert.equal((await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`, { name: 'By the bot' })).status, 200);

    hs.setPowerLevel(room.roomId, BOT, 0, ALICE_);
    assert.deepEqual([...room.moderators], []);
    const refused = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`, { name: 'Again' });
    assert.deepEqual([refused.status, refused.json.error], [403, "You don't have permission to post that to the room. user_level (0) < send_level (50)"]);

    hs.setPowerLevels(room.roomId, { invite: 50, events: { 'm.room.name': 0 } });
    assert.deepEqual([hs.powerLevels(room.roomId).invite, hs.powerLevels(room.roomId).events], [50, { 'm.room.name': 0 }]);
    assert.equal((await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.room.name/`, { name: 'Now anyone' })).status, 200);
    const dave = `@dave:${SERVER}`;
    room.moderators.add(dave); // directly, as older tests do: counts as 50
    assert.equal(hs.powerLevel(room.roomId, dave), 50);
    assert.equal((await call('GET', plPath(room.roomId))).json.users[dave], 50);
    assert.throws(() => hs.setPowerLevel(`!nope:${SERVER}`, BOT, 50), /no room/);
    assert.deepEqual(hs.specErrors, []);
  });

  it('a PUT of m.room.power_levels through the API moves the moderators; `redact` decides who may redact others', async () => {
    const bob = await register('irc_bob');
    const room = hs.seedRoom({ creator: BOT, members: [bob] });
    assert.equal((await call('PUT', plPath(room.roomId), { ...SYNAPSE_PL(BOT, 0), users: { [BOT]: 100, [bob]: 50 } })).status, 200);
    assert.deepEqual([...room.moderators], [bob]);
    const theirs = await call('PUT', sendPath(room.roomId, 't1'), text('by the bot'));
    const redact = (as: string, id: string, txn: string) => call('PUT', `${CS}/rooms/${enc(room.roomId)}/redact/${enc(id)}/${txn}`, {}, { userId: as });
    assert.equal((await redact(bob, theirs.json.event_id, 'r1')).status, 200, 'a moderator redacts the bot\'s event');
    hs.setPowerLevels(room.roomId, { redact: 100 });
    const other = await call('PUT', sendPath(room.roomId, 't2'), text('again'));
    assert.equal((await redact(bob, other.json.event_id, 'r2')).status, 403, 'redact 100: no longer');
  });
});

describe('fake HS: enforcePowerLevels (every state and message event against the power levels)', () => {
  const strict = hsWith({ enforcePowerLevels: true });
  const put = (on: FakeHs, roomId: string, type: string, key: string, content: unknown, userId?: string) =>
    call('PUT', `${CS}/rooms/${enc(roomId)}/state/${type}/${enc(key)}`, content, userId === undefined ? { on } : { on, userId });

  it("the bot at 0 in a Matrix user's room: m.bridge refused (state_default 50) until given 50; another user's state key refused", async () => {
    const on = strict();
    const { room } = on.userCreateRoom(ALICE_, { invite: [BOT] });
    await call('POST', `${CS}/join/${enc(room.roomId)}`, {}, { on });
    const refused = await put(on, room.roomId, 'm.bridge', 'org.example://net/room', { bridgebot: BOT });
    assert.deepEqual([refused.status, refused.json], [403, { errcode: 'M_FORBIDDEN', error: "You don't have permission to post that to the room. user_level (0) < send_level (50)" }]);
    assert.equal(room.events.filter((e) => e.type === 'm.bridge').length, 0, 'nothing stored');
    assert.equal((await call('PUT', sendPath(room.roomId, 't1'), text('messages are fine at 0'), { on })).status, 200);
    on.setPowerLevel(room.roomId, BOT, 50);
    assert.equal((await put(on, room.roomId, 'm.bridge', 'org.example://net/room', { bridgebot: BOT })).status, 200);
    const others = await put(on, room.roomId, 'org.example.user', ALICE_, {});
    assert.deepEqual([others.status, others.json.error], [403, 'You are not allowed to set others state']);
    on.setPowerLevels(room.roomId, { events_default: 60 });
    assert.equal((await call('PUT', sendPath(room.roomId, 't2'), text('now too low'), { on })).status, 403);
    assert.throws(() => on.userSend(BOT, room.roomId, 'm.room.message', text('x')), /user_level \(50\) < send_level \(60\)/);
    assert.equal(on.userSend(ALICE_, room.roomId, 'm.room.message', text('alice is 100')).sender, ALICE_);
    assert.deepEqual(on.specErrors, []);
  });

  it("m.room.power_levels changes as Synapse's event auth takes them", async () => {
    const on = strict();
    const bob = await register('irc_bob', on);
    const carol = await register('irc_carol', on);
    const { room } = on.userCreateRoom(ALICE_, { invite: [BOT, bob, carol] });
    for (const u of [BOT, bob, carol]) on.userJoinRoom(u, room.roomId);
    on.setPowerLevels(room.roomId, { users: { [ALICE_]: 100, [BOT]: 50, [carol]: 50 } });
    const change = (users: Record<string, number>) => put(on, room.roomId, 'm.room.power_levels', '', { ...on.powerLevels(room.roomId), users });
    const current = { [ALICE_]: 100, [BOT]: 50, [carol]: 50 };
    assert.equal((await change({ ...current, [bob]: 10 })).json.error, "You don't have permission to post that to the room. user_level (50) < send_level (100)");
    on.setPowerLevels(room.roomId, { events: { 'm.room.power_levels': 50 } });
    assert.equal((await change({ ...current, [BOT]: 100 })).json.error, "You don't have permission to add ops level greater than your own");
    assert.equal((await change({ ...current, [ALICE_]: 0 })).json.error, "You don't have permission to add ops level greater than your own");
    assert.equal((await change({ ...current, [carol]: 0 })).json.error, "You don't have permission to remove ops level equal to your own");
    const bad = await change({ ...current, 'not-a-user': 0 });
    assert.deepEqual([bad.status, bad.json.errcode], [400, 'M_UNKNOWN']);
    const ok = await change({ ...current, [bob]: 50 });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual([...room.moderators].sort(), [BOT, bob, carol].sort());
    assert.equal((await change({ ...current, [bob]: 50, [BOT]: 10 })).status, 200, 'one may lower oneself');
    assert.deepEqual(on.specErrors, []);
  });

  it('without it (the default) other state is not checked, as before', async () => {
    const { room } = hs.userCreateRoom(ALICE_, { invite: [BOT] });
    await call('POST', `${CS}/join/${enc(room.roomId)}`, {});
    assert.equal(hs.powerLevel(room.roomId, BOT), 0);
    assert.equal((await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.bridge/${enc('org.example://net/room')}`, { bridgebot: BOT })).status, 200);
  });
});

describe("fake HS: a Matrix user's existing room the bot is invited into (userInvite)", () => {
  it('the invite from the user, pushed to the AS; the bot joins as the AS; it invites a virtual user (invite 0), who joins with user_id', async () => {
    const { room } = hs.userCreateRoom(ALICE_, { preset: 'private_chat', name: 'Alice room' });
    const inv = hs.userInvite(ALICE_, room.roomId, BOT);
    assert.deepEqual([inv.type, inv.sender, inv.stateKey, inv.content], ['m.room.member', ALICE_, BOT, { membership: 'invite', displayname: 'bot' }]);
    assert.equal(room.events.at(-1), inv, 'appended whatever recordMembership says');
    assert.ok(room.invited.has(BOT));
    assert.equal(hs.userInvite(ALICE_, room.roomId, BOT), inv, 'invited again: the same event');

    const bodies: any[] = [];
    const send: PushSend = async (_txnId, body) => {
      bodies.push(body);
      return 200;
    };
    const pushed = await hs.push([hs.clientEvent(room.roomId, inv)], send);
    assert.equal(pushed.delivered, true);
    assert.deepEqual(bodies[0].events[0], { event_id: inv.eventId, room_id: room.roomId, sender: ALICE_, type: 'm.room.member', state_key: BOT, origin_server_ts: inv.originServerTs, content: { membership: 'invite', displayname: 'bot' }, unsigned: { age: 0 } });
    assert.deepEqual(checkAsRequest('PUT', '/_matrix/app/v1/transactions/1', bodies[0]), []);

    const bob = await register('irc_bob');
    const early = await call('POST', `${CS}/join/${enc(room.roomId)}`, {}, { userId: bob });
    assert.deepEqual([early.status, early.json], [403, { errcode: 'M_FORBIDDEN', error: 'You are not invited to this room.' }]);
    const joined = await call('POST', `${CS}/join/${enc(room.roomId)}`, {});
    assert.deepEqual([joined.status, joined.json], [200, { room_id: room.roomId }]);
    assert.ok(room.members.has(BOT) && !room.invited.has(BOT));
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: bob })).status, 200);
    assert.equal((await call('POST', `${CS}/join/${enc(room.roomId)}`, {}, { userId: bob })).status, 200);
    assert.ok(room.members.has(bob));
    assert.deepEqual(hs.specErrors, []);
  });

  it('refusals as Synapse: inviter not joined, invitee banned or joined, below the invite level (public_chat: 50) for a user and for the bot', async () => {
    const dave = `@dave:${SERVER}`;
    const carol = `@carol:${SERVER}`;
    const { room } = hs.userCreateRoom(ALICE_, { preset: 'public_chat' });
    assert.throws(() => hs.userInvite(dave, room.roomId, BOT), new RegExp(`403 M_FORBIDDEN: User ${dave} not in room`));
    hs.userJoinRoom(carol, room.roomId);
    assert.throws(() => hs.userInvite(carol, room.roomId, BOT), /403 M_FORBIDDEN: You don't have permission to invite users/);
    assert.throws(() => hs.userInvite(ALICE_, room.roomId, carol), /is already in the room\./);
    hs.ban(room.roomId, dave);
    assert.throws(() => hs.userInvite(ALICE_, room.roomId, dave), /is banned from the room/);
    assert.throws(() => hs.userInvite(ALICE_, `!nope:${SERVER}`, BOT), /403 M_FORBIDDEN/);
    // the bot joins the public room; at 0 it may not invite there
    assert.equal((await call('POST', `${CS}/join/${enc(room.roomId)}`, {})).status, 200);
    const bob = await register('irc_bob');
    const refused = await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: bob });
    assert.deepEqual([refused.status, refused.json], [403, { errcode: 'M_FORBIDDEN', error: "You don't have permission to invite users" }]);
    assert.equal(room.invited.has(bob), false);
    hs.setPowerLevel(room.roomId, BOT, 50);
    assert.equal((await call('POST', `${CS}/rooms/${enc(room.roomId)}/invite`, { user_id: bob })).status, 200);
    const direct = hs.userInvite(ALICE_, room.roomId, `@irc_erin:${SERVER}`, { isDirect: true, reason: 'chat?' });
    assert.deepEqual(direct.content, { is_direct: true, reason: 'chat?', membership: 'invite' });
  });
});

describe('fake HS: DELETE /directory/room/{alias}', () => {
  const aliasPath = (alias: string) => `${CS}/directory/room/${enc(alias)}`;

  it('the AS deletes an alias of its namespace (200 {}, its room keeps its canonical alias event); one it lacks is 200 {} too, as Synapse; outside its namespace 400 M_EXCLUSIVE', async () => {
    const alias = `#irc_chan:${SERVER}`;
    const room = hs.seedRoom({ creator: BOT, alias });
    const r = await call('DELETE', aliasPath(alias));
    assert.deepEqual([r.status, r.json], [200, {}]);
    assert.equal(hs.aliases.has(alias), false);
    assert.equal(room.alias, undefined);
    assert.equal((await call('GET', aliasPath(alias))).status, 404);
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.canonical_alias'), { alias }, 'Synapse leaves it to the AS');
    assert.deepEqual((await call('DELETE', aliasPath(alias))).json, {}, 'gone already: 200 {}');
    const foreign = await call('DELETE', aliasPath(`#alice:${SERVER}`));
    assert.deepEqual([foreign.status, foreign.json], [400, { errcode: 'M_EXCLUSIVE', error: 'This application service has not reserved this kind of alias' }]);
    const bob = await register('irc_bob');
    const other = hs.seedRoom({ creator: bob, alias: `#irc_other:${SERVER}` });
    assert.equal((await call('DELETE', aliasPath(`#irc_other:${SERVER}`), undefined, { userId: bob })).status, 200, 'as one of its users');
    assert.equal(hs.aliases.has(`#irc_other:${SERVER}`), false);
    void other;
    assert.deepEqual(hs.specErrors, []);
  });

  describe('with deleteUnknownAlias404', () => {
    const strict = hsWith({ deleteUnknownAlias404: true });
    it('an alias of its namespace that does not exist is 404 M_NOT_FOUND, as the spec describes', async () => {
      const r = await call('DELETE', aliasPath(`#irc_none:${SERVER}`), undefined, { on: strict() });
      assert.deepEqual([r.status, r.json], [404, { errcode: 'M_NOT_FOUND', error: 'Unknown room alias' }]);
      assert.deepEqual(strict().specErrors, []);
    });
  });

  it("a local user: unknown 404; the alias's maker or a member with the canonical alias level may; the AS's namespace 400; the canonical alias event loses it", async () => {
    const token = hs.clientToken(ALICE_);
    const mallory = hs.clientToken(`@mallory:${SERVER}`);
    const unknown = await call('DELETE', aliasPath(`#nope:${SERVER}`), undefined, { token });
    assert.deepEqual([unknown.status, unknown.json], [404, { errcode: 'M_NOT_FOUND', error: 'Unknown room alias' }]);
    const room = hs.seedRoom({ creator: ALICE_, alias: `#alice:${SERVER}` });
    assert.equal((await call('DELETE', aliasPath(`#alice:${SERVER}`), undefined, { token: mallory })).status, 403);
    assert.deepEqual((await call('DELETE', aliasPath(`#alice:${SERVER}`), undefined, { token })).json, {});
    assert.equal(hs.aliases.has(`#alice:${SERVER}`), false);
    assert.deepEqual(hs.currentState(room.roomId, 'm.room.canonical_alias'), {});
    assert.deepEqual([room.events.at(-1)?.type, room.events.at(-1)?.sender], ['m.room.canonical_alias', ALICE_]);
    hs.aliases.set(`#irc_x:${SERVER}`, room.roomId);
    const exclusive = await call('DELETE', aliasPath(`#irc_x:${SERVER}`), undefined, { token });
    assert.deepEqual([exclusive.status, exclusive.json.errcode], [400, 'M_EXCLUSIVE']);
    // made by mallory, who is not even in the room: the maker may
    assert.equal((await call('PUT', aliasPath(`#mallory:${SERVER}`), { room_id: room.roomId }, { token: mallory })).status, 200);
    assert.equal((await call('DELETE', aliasPath(`#mallory:${SERVER}`), undefined, { token: mallory })).status, 200);
    assert.deepEqual(hs.specErrors, []);
  });
});

describe('fake HS: state events with an empty content, and state keys with :// and /', () => {
  it("m.bridge and uk.half-shot.bridge under a key with ://, and / sent as %2F; a bridge's {} removal is 200 {} on GET, as Synapse", async () => {
    const room = hs.seedRoom({ creator: BOT });
    const key = 'org.example.irc://irc.example.net/#chan';
    for (const type of ['m.bridge', 'uk.half-shot.bridge']) {
      const path = `${CS}/rooms/${enc(room.roomId)}/state/${type}/${enc(key)}`;
      assert.match(path, /%3A%2F%2Firc\.example\.net%2F%23chan$/);
      const content = { bridgebot: BOT, protocol: { id: 'irc' }, channel: { id: '#chan' } };
      assert.equal((await call('PUT', path, content)).status, 200);
      assert.deepEqual((await call('GET', path)).json, content);
      assert.equal(hs.calls.at(-1)?.rawPath.endsWith('%2Firc.example.net%2F%23chan'), true);
      const removed = await call('PUT', path, {});
      assert.equal(removed.status, 200);
      const after = await call('GET', path);
      assert.deepEqual([after.status, after.json], [200, {}]);
      assert.deepEqual(hs.currentState(room.roomId, type, key), {});
      const ev = room.events.at(-1)!;
      assert.deepEqual([ev.stateKey, ev.content, hs.clientEvent(room.roomId, ev).unsigned.prev_content], [key, {}, content]);
    }
    const never = await call('GET', `${CS}/rooms/${enc(room.roomId)}/state/m.bridge/${enc('other://x/y')}`);
    assert.deepEqual([never.status, never.json.errcode], [404, 'M_NOT_FOUND']);
    assert.deepEqual(hs.specErrors, []);
    // A `/` left unencoded makes more path segments: no such endpoint, as Synapse (404 M_UNRECOGNIZED).
    const raw = await call('PUT', `${CS}/rooms/${enc(room.roomId)}/state/m.bridge/org.example.irc:/x/y`, {});
    assert.deepEqual([raw.status, raw.json.errcode], [404, 'M_UNRECOGNIZED']);
    assert.equal(hs.specErrors.length, 1);
  });
});
