/**
 * Linking an existing Matrix room to a network room (issue 25) against a REAL Synapse 1.94 (a
 * synapse-lab, `$HS_LAB`), with `npm start`'s real server and the fake network of the unit tests
 * (test/support/fake-network.ts) as a `webhook` network over HTTP: it approves link requests
 * (`POST /links`), takes unlink notices (`POST /unlinks`), and every request the AS makes of it is
 * checked against docs/network-api.yaml. Real Matrix users (alice, bob, carol), registered
 * through Synapse's open registration, act through Synapse's client API. The point is what the
 * fakes may be kinder about than Synapse:
 * - a room the bridge did not make: alice's private room (preset `private_chat`: invite-only,
 *   alice at 100, everyone else, the bot too, at 0), the bot's invite reaching the AS, the bot
 *   joining, its notices and answers to `!bridge …` commands;
 * - the bot's power level there: too low for the bridge event (m.bridge), which the AS leaves out;
 * - a network user posting into an invite-only room: the bot invites the virtual user first;
 * - the provisioning API with a real OpenID token, checked with Synapse's own
 *   `GET /_matrix/federation/v1/openid/userinfo`. The lab's listener serves only the `client`
 *   resource on 127.0.0.1:8008, and that endpoint belongs to the `federation` and `openid`
 *   resources: this file starts Synapse with a second listener on a free port that serves
 *   `openid` only (HS_EXTRA_CONFIG, the lab's own way of adding config) and gives the AS that
 *   listener as HOMESERVER_FEDERATION_URL, as an operator would;
 * - an invite of the bot from a user who may not link (carol: PERMISSIONS `relay`), declined with
 *   a leave that carries the reason.
 *
 * Default names (USER_PREFIX=irc_): the network's Dave is `@irc__dave:localhost`, the network room
 * `#lobby` is behind `#irc_#lobby:localhost`. The steps run in order and each needs the ones before
 * it. Run it with `HS_LAB=/tmp/synapse-lab npm run test:synapse`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeNetwork } from '../support/fake-network.js';
import type { DeliveryKind, FakeNetwork } from '../support/fake-network.js';
import { AS_READY_MS, DIR, HS, LAB, LAB_SCRIPT_MS, REGISTRATION_FILE, SERVER, asLogLines, asTail, call, cs, eventually, freePort, lab, run, sleep, startAs, synapseLog, need, roomPath, toAs as toAsSigned, sayAs, joinedMembersAs, roomStateAs } from './lab.js';
import type { Answer, Registration } from './lab.js';

const LOBBY = '#lobby';
const HALL = '#hall';
const OTHER = '#other';
const ALIAS = `#irc_${LOBBY}:${SERVER}`;
const DAVE = `@irc__dave:${SERVER}`;
const ALICE = `@alice:${SERVER}`;
const BOB = `@bob:${SERVER}`;
const CAROL = `@carol:${SERVER}`;
const PROVISION = '/_matrix/provision/v1';

const state: {
  net?: FakeNetwork;
  reg?: Registration;
  bot?: string;
  alice?: string;
  bob?: string;
  carol?: string;
  /** The port of Synapse's second listener, which serves the `openid` resource only. */
  openIdPort?: number;
  /** alice's private room, the one linked. */
  roomId?: string;
  linked?: boolean;
  /** alice's OpenID token (step 6). */
  openId?: string;
  unlinked?: boolean;
  /** Where npm start's output stood once Synapse was up. */
  logFrom?: number;
} = {};

after(async () => state.net?.close());

// ---------------------------------------------------------------- helpers

const enc = encodeURIComponent;
/** The network calls the AS, signed with the fake network's secret. */
const toAs = (path: string, body: Record<string, unknown>) => toAsSigned((raw) => state.net!.sign(raw), path, body);
/** alice (or `token`) sends a text message; its event id. */
const say = (roomId: string, body: string, token = state.alice) => sayAs(token, roomId, body);
const joinedMembers = (roomId: string, token = state.alice) => joinedMembersAs(token, roomId);
const roomState = (roomId: string, token = state.alice) => roomStateAs(token, roomId);

/** The provisioning API of the AS, with a bearer token. */
const provision = (method: string, path: string, token: string, body?: object) => call(run.asUrl!, method, `${PROVISION}${path}`, { token, ...(body ? { body } : {}) });




/** The room's latest events, newest first, as a member reads them (/messages). */
async function timeline(roomId: string, token = state.alice, limit = 60): Promise<Record<string, any>[]> {
  const res = await cs('GET', `${roomPath(roomId)}/messages?dir=b&limit=${limit}`, { token });
  assert.equal(res.status, 200, `messages of ${roomId}: ${JSON.stringify(res.body)}`);
  return res.body.chunk;
}

const showTimeline = (events: Record<string, any>[]) =>
  events
    .map((e) => `  ${e.type} ${e.sender}${e.state_key !== undefined ? ` [${e.state_key}]` : ''} ${JSON.stringify(e.content).slice(0, 200)}`)
    .join('\n');

/** The bot's first m.notice in the room that `match` picks, once it is there. */
function botNoticeIn(roomId: string, what: string, match: (e: Record<string, any>) => boolean, token = state.alice): Promise<Record<string, any>> {
  let last: Record<string, any>[] = [];
  return eventually(
    () => `no notice from ${state.bot} ${what} in ${roomId}; the room has, newest first:\n${showTimeline(last)}\n${asTail()}`,
    async () => (last = await timeline(roomId, token)).find((e) => e.type === 'm.room.message' && e.sender === state.bot && e.content.msgtype === 'm.notice' && match(e)),
  );
}

/** The bot's answer to a command: a notice in reply to it. */
const answerTo = (roomId: string, commandId: string, token = state.alice) =>
  botNoticeIn(roomId, `in reply to ${commandId}`, (e) => e.content['m.relates_to']?.['m.in_reply_to']?.event_id === commandId, token);

const showReceived = () => state.net!.received.map((r) => `  ${r.method} ${r.path} ${r.status} ${JSON.stringify(r.body)}`).join('\n');

/** The first accepted delivery of `kind` that `match` picks, once it arrives. */
function delivered(kind: DeliveryKind, what: string, match: (b: any) => boolean): Promise<Record<string, any>> {
  return eventually(
    () => `no accepted POST /${kind} ${what}; the network got:\n${showReceived()}\n${asTail()}`,
    () => state.net!.acceptedBy[kind].find(match),
  );
}

/** Every request the network got about a Matrix event (`id`), whatever its kind. */
const aboutEvent = (eventId: string) => state.net!.received.filter((r) => r.body?.id === eventId);

/**
 * alice's OpenID token from Synapse (`POST /user/{userId}/openid/request_token`): what an
 * integration manager gets from her client.
 */
async function openIdToken(userId: string, token: string): Promise<Record<string, any>> {
  const res = await cs('POST', `/_matrix/client/v3/user/${enc(userId)}/openid/request_token`, { token, body: {} });
  assert.equal(res.status, 200, `openid/request_token for ${userId}: ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.access_token, 'string');
  return res.body;
}

// ---------------------------------------------------------------- the scenario

let ready = false;
test('setup: the fake network, npm start (webhook network, HOMESERVER_FEDERATION_URL), then a fresh Synapse with a second listener for openid', { timeout: AS_READY_MS + 2 * LAB_SCRIPT_MS }, async () => {
  assert.ok(LAB && existsSync(join(LAB, 'start.sh')), 'HS_LAB must point at a synapse-lab (run.ts checks this)');
  const net = await startFakeNetwork({ secret: randomBytes(24).toString('hex') });
  state.net = net;
  for (const [room, name] of [[LOBBY, 'The Lobby'], [HALL, 'The Hall'], [OTHER, 'Somewhere else']] as const) net.rooms.set(room, { name });
  net.users.set('Dave', { displayName: 'Dave' });
  state.openIdPort = await freePort();
  await startAs({
    NETWORK: 'webhook',
    NETWORK_URL: net.url,
    NETWORK_SECRET: net.secret,
    // The default ({"*": "relay", "localhost": "link"}), with carol kept to relaying: she may not link rooms.
    PERMISSIONS: JSON.stringify({ '*': 'relay', [SERVER]: 'link', [CAROL]: 'relay' }),
    HOMESERVER_FEDERATION_URL: `http://127.0.0.1:${state.openIdPort}`,
  });
  state.reg = parse(readFileSync(REGISTRATION_FILE, 'utf8')) as Registration;
  assert.ok(state.reg.as_token && state.reg.sender_localpart, `registration file: ${readFileSync(REGISTRATION_FILE, 'utf8')}`);
  state.bot = `@${state.reg.sender_localpart}:${SERVER}`;
  // The lab's start.sh writes one listener, `client` only. A later `listeners:` key wins (the lab's
  // README: HS_EXTRA_CONFIG is appended, later keys win), so both listeners are given here: the
  // lab's own, as it is, and one that serves the OpenID userinfo endpoint (the `openid` resource:
  // that endpoint alone of the federation API; no TLS, no federation otherwise).
  const port = new URL(HS).port || '8008';
  const extra = join(DIR, 'openid-listener.yaml');
  writeFileSync(
    extra,
    [
      'listeners:',
      `  - {port: ${port}, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [client], compress: false}]}`,
      `  - {port: ${state.openIdPort}, bind_addresses: ['127.0.0.1'], type: http, tls: false, x_forwarded: false, resources: [{names: [openid], compress: false}]}`,
      '',
    ].join('\n'),
  );
  await lab('reset.sh');
  const before = process.env.HS_EXTRA_CONFIG;
  process.env.HS_EXTRA_CONFIG = extra;
  try {
    await lab('start.sh', REGISTRATION_FILE);
  } finally {
    if (before === undefined) delete process.env.HS_EXTRA_CONFIG;
    else process.env.HS_EXTRA_CONFIG = before;
  }
  state.logFrom = run.asOut.length;
  ready = true;
});

test('0. alice, bob and carol register (open registration, m.login.dummy)', { timeout: 60_000 }, async () => {
  need('setup', ready);
  for (const name of ['alice', 'bob', 'carol'] as const) {
    const reg = await cs('POST', '/_matrix/client/v3/register', {
      body: { username: name, password: randomBytes(12).toString('hex'), auth: { type: 'm.login.dummy' } },
    });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    state[name] = reg.body.access_token;
  }
});

// ---------------------------------------------------------------- 1. the bot invited

test('1a. alice makes a private room (private_chat) and invites the bot: Synapse sends the invite to the AS, the bot joins and says how to link', { timeout: 90_000 }, async (t) => {
  need('step 0', state.alice);
  const made = await cs('POST', '/_matrix/client/v3/createRoom', { token: state.alice, body: { preset: 'private_chat', name: "alice's room" } });
  assert.equal(made.status, 200, `createRoom: ${JSON.stringify(made.body)}`);
  const roomId: string = made.body.room_id;
  const st = await roomState(roomId);
  assert.equal(st.find((e) => e.type === 'm.room.join_rules')?.content.join_rule, 'invite');
  const pl = st.find((e) => e.type === 'm.room.power_levels')?.content;
  t.diagnostic(`Synapse's private_chat power levels: users ${JSON.stringify(pl?.users)}, users_default ${pl?.users_default}, state_default ${pl?.state_default}, invite ${pl?.invite}, events ${JSON.stringify(pl?.events)}`);

  const invite = await cs('POST', `${roomPath(roomId)}/invite`, { token: state.alice, body: { user_id: state.bot } });
  assert.equal(invite.status, 200, `invite the bot: ${JSON.stringify(invite.body)}`);
  let last: unknown;
  await eventually(
    () => `the bot did not join alice's room; joined_members: ${JSON.stringify(last)}\n${asTail()}`,
    async () => ((last = await joinedMembers(roomId))[state.bot!] ? true : undefined),
  );
  // The AS saw the invite (Synapse sends events about the AS's own sender to it) and acted on it.
  // (Logged once Synapse has answered the bot's join, which may be a moment after alice can see it.)
  const joined = await eventually(
    () => `the AS does not log the bot's join\n${asTail()}`,
    () => asLogLines(state.logFrom).find((l) => l.msg === 'the bot joined a room it was invited into' && l.roomId === roomId),
  );
  assert.equal(joined.inviter, ALICE);
  const help = await botNoticeIn(roomId, 'mentioning !bridge link', (e) => String(e.content.body).includes('!bridge link'));
  t.diagnostic(`the bot's notice: ${JSON.stringify(help.content.body)}`);
  // Nothing went to the network: the room is not bridged yet.
  assert.deepEqual(state.net!.received.filter((r) => r.kind || r.link), [], showReceived());
  state.roomId = roomId;
});

test('1b. carol (PERMISSIONS "relay") invites the bot: it declines (a leave over the invite, with the reason), never joins', { timeout: 60_000 }, async (t) => {
  need('step 0', state.carol);
  const made = await cs('POST', '/_matrix/client/v3/createRoom', { token: state.carol, body: { preset: 'private_chat', invite: [state.bot] } });
  assert.equal(made.status, 200, `createRoom with the bot invited: ${JSON.stringify(made.body)}`);
  const roomId: string = made.body.room_id;
  let last: any;
  const declined = await eventually(
    () => `the bot's invite in carol's room is not declined: ${JSON.stringify(last)}\n${asTail()}`,
    async () => {
      last = (await roomState(roomId, state.carol)).find((e) => e.type === 'm.room.member' && e.state_key === state.bot);
      return last?.content.membership === 'leave' ? last : undefined;
    },
  );
  assert.equal(declined.sender, state.bot, 'the bot itself rejected the invite');
  t.diagnostic(`the decline as Synapse keeps it: ${JSON.stringify(declined.content)}`);
  assert.match(String(declined.content.reason), /may not link rooms/);
  assert.match(String(declined.content.reason), /relay/);
  await eventually(
    () => `the AS does not log the decline\n${asTail()}`,
    () => asLogLines(state.logFrom).find((l) => l.msg === 'declined an invite of the bot from a user who may not link rooms' && l.roomId === roomId && l.inviter === CAROL),
  );
  assert.equal((await joinedMembers(roomId, state.carol))[state.bot!], undefined);
});

// ---------------------------------------------------------------- 2. linked by command

test(`2. alice says "!bridge link ${LOBBY}": the network is asked (POST /links) and approves; the bot answers that it is linked`, { timeout: 60_000 }, async (t) => {
  need('step 1a', state.roomId);
  const roomId = state.roomId!;
  const cmd = await say(roomId, `!bridge link ${LOBBY}`);
  const answer = await answerTo(roomId, cmd);
  t.diagnostic(`the answer: ${JSON.stringify(answer.content.body)}`);
  assert.match(String(answer.content.body), /linked/i);
  assert.ok(String(answer.content.body).includes(LOBBY), 'names the network room');
  assert.doesNotMatch(String(answer.content.body), /^Not done/);
  assert.deepEqual(state.net!.acceptedLinks, [{ room: LOBBY, matrixRoomId: roomId, requestedBy: ALICE }]);
  // The announcement too, apart from the answer.
  await botNoticeIn(roomId, 'announcing the link', (e) => String(e.content.body).startsWith(`This room is now bridged to ${LOBBY}`));
  // A command is never a message for the network.
  assert.deepEqual(aboutEvent(cmd), [], 'the command was not delivered');

  // The bot is at 0 in a private_chat room, and m.bridge takes state_default (50): left out, and logged so.
  const st = await roomState(roomId);
  const bridgeEvents = st.filter((e) => e.type === 'm.bridge' || e.type === 'uk.half-shot.bridge');
  assert.deepEqual(bridgeEvents, [], 'no bridge event: the bot may not set one here');
  await eventually(
    () => `the AS does not say why there is no bridge event\n${asTail()}`,
    () => asLogLines(state.logFrom).find((l) => l.msg === 'the bot may not set the bridge event in this room (its power level is too low): left out' && l.roomId === roomId),
  );
  // Nothing else about the room changed: its name is alice's.
  assert.deepEqual(st.find((e) => e.type === 'm.room.name')?.content, { name: "alice's room" });
  state.linked = true;
});

test(`2b. ${ALIAS} now leads to alice's room (Synapse asks the alias query; the AS points the alias there)`, { timeout: 60_000 }, async () => {
  need('step 2', state.linked);
  const res = await cs('GET', `/_matrix/client/v3/directory/room/${enc(ALIAS)}`, { token: state.bob });
  assert.equal(res.status, 200, `resolve ${ALIAS}: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.equal(res.body.room_id, state.roomId);
});

// ---------------------------------------------------------------- 3. and 4. both ways

test('3. alice says something in the linked room: POST /messages to the network for #lobby, sender alice', { timeout: 60_000 }, async () => {
  need('step 2', state.linked);
  const id = await say(state.roomId!, 'hello lobby, it is alice');
  const m = await delivered('messages', `for ${id}`, (b) => b.id === id);
  assert.equal(m.room, LOBBY);
  assert.deepEqual(m.sender, { userId: ALICE });
  assert.equal(m.body, 'hello lobby, it is alice');
  assert.equal('direct' in m, false);
});

test(`4. Dave writes in ${LOBBY} on the network: ${DAVE} is invited by the bot, joins the invite-only room and posts there`, { timeout: 60_000 }, async (t) => {
  need('step 2', state.linked);
  const roomId = state.roomId!;
  const res = await toAs('messages', { id: 'lobby-1', room: LOBBY, sender: { id: 'Dave' }, body: 'hi alice, Dave from the lobby', ts: Date.now() });
  assert.equal(res.status, 200, `POST /network/messages: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.match(res.body.event_id ?? '', /^\$/, JSON.stringify(res.body));
  const ev = await cs('GET', `${roomPath(roomId)}/event/${enc(res.body.event_id)}`, { token: state.alice });
  assert.equal(ev.status, 200, `Dave's message is not in alice's room: ${JSON.stringify(ev.body)}\n${asTail()}`);
  assert.equal(ev.body.sender, DAVE);
  assert.equal(ev.body.content.body, 'hi alice, Dave from the lobby');
  assert.equal((await joinedMembers(roomId))[DAVE] !== undefined, true, 'Dave is a joined member');
  // How he got in: the bot's invite, then his join (his join alone was refused: join_rule invite).
  const events = await timeline(roomId);
  const daves = events.filter((e) => e.type === 'm.room.member' && e.state_key === DAVE).reverse();
  t.diagnostic(`Dave's member events, oldest first: ${daves.map((e) => `${e.content.membership} by ${e.sender}`).join(', ')}`);
  assert.deepEqual(
    daves.map((e) => [e.content.membership, e.sender]),
    [
      ['invite', state.bot],
      ['join', DAVE],
    ],
  );
  // Not echoed back to the network.
  const marker = await say(roomId, '4 marker');
  await delivered('messages', '4 marker', (b) => b.id === marker);
  assert.deepEqual(
    state.net!.received.filter((r) => r.kind && (r.body?.sender?.userId === DAVE || r.body?.user?.userId === DAVE)).map((r) => `${r.path} ${JSON.stringify(r.body)}`),
    [],
    'nothing about Dave went back to the network',
  );
});

// ---------------------------------------------------------------- 5. commands and power levels

test('5a. bob (power level 0) joins and says "!bridge unlink": refused with a notice about the power level; the room stays linked', { timeout: 60_000 }, async (t) => {
  need('step 2', state.linked && state.bob);
  const roomId = state.roomId!;
  const invite = await cs('POST', `${roomPath(roomId)}/invite`, { token: state.alice, body: { user_id: BOB } });
  assert.equal(invite.status, 200, JSON.stringify(invite.body));
  const join = await cs('POST', `/_matrix/client/v3/join/${enc(roomId)}`, { token: state.bob, body: {} });
  assert.equal(join.status, 200, `bob joins: ${JSON.stringify(join.body)}`);
  // People joining go to the network, as in the rooms the bridge makes.
  const j = await delivered('members', "for bob's join", (b) => b.user?.userId === BOB && b.membership === 'join');
  assert.equal(j.room, LOBBY);

  const cmd = await say(roomId, '!bridge unlink', state.bob);
  const answer = await answerTo(roomId, cmd, state.bob);
  t.diagnostic(`the answer: ${JSON.stringify(answer.content.body)}`);
  assert.match(String(answer.content.body), /^Not done/);
  assert.match(String(answer.content.body), /power level 50/);
  assert.match(String(answer.content.body), /they have 0/);
  assert.deepEqual(state.net!.acceptedUnlinks, [], 'the network was told of no unlink');
  assert.deepEqual(aboutEvent(cmd), [], 'the command was not delivered');
  assert.equal((await joinedMembers(roomId))[DAVE] !== undefined, true, 'Dave is still there');
});

test('5b. alice says "!bridge status": a notice naming the network room', { timeout: 60_000 }, async (t) => {
  need('step 2', state.linked);
  const cmd = await say(state.roomId!, '!bridge status');
  const answer = await answerTo(state.roomId!, cmd);
  t.diagnostic(`the answer: ${JSON.stringify(answer.content.body)}`);
  assert.ok(String(answer.content.body).includes(`the network room ${LOBBY}`), JSON.stringify(answer.content.body));
  assert.ok(String(answer.content.body).includes(`linked by ${ALICE}`));
  assert.match(String(answer.content.body), /power level here: 100/);
  assert.match(String(answer.content.body), /You may unlink it/);
});

// ---------------------------------------------------------------- 6. and 7. the provisioning API

test("6. the provisioning API with alice's OpenID token from Synapse: GET /rooms/{roomId}: linked to #lobby, can_unlink", { timeout: 60_000 }, async (t) => {
  need('step 2', state.linked);
  const roomId = state.roomId!;
  const token = await openIdToken(ALICE, state.alice!);
  t.diagnostic(`Synapse's OpenID token: token_type ${token.token_type}, matrix_server_name ${token.matrix_server_name}, expires_in ${token.expires_in}`);
  assert.equal(token.matrix_server_name, SERVER);
  // Where Synapse answers the check: not on the lab's client listener; on the openid listener.
  const onClient = await call(HS, 'GET', `/_matrix/federation/v1/openid/userinfo?access_token=${enc(token.access_token)}`);
  t.diagnostic(`userinfo on the client listener (${HS}): ${onClient.status} ${JSON.stringify(onClient.body)}`);
  const onOpenId = await call(`http://127.0.0.1:${state.openIdPort}`, 'GET', `/_matrix/federation/v1/openid/userinfo?access_token=${enc(token.access_token)}`);
  assert.deepEqual([onOpenId.status, onOpenId.body], [200, { sub: ALICE }], 'Synapse vouches for alice on its openid listener');
  state.openId = token.access_token;

  const res = await provision('GET', `/rooms/${enc(roomId)}`, state.openId!);
  assert.equal(res.status, 200, `GET /rooms/{roomId}: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.equal(res.body.room_id, roomId);
  assert.equal(res.body.user_id, ALICE);
  assert.equal(res.body.bridged?.kind, 'linked');
  assert.equal(res.body.bridged?.remote_room, LOBBY);
  assert.equal(res.body.bridged?.alias, ALIAS);
  assert.equal(res.body.bridged?.linked_by, ALICE);
  assert.equal(res.body.permission, 'link');
  assert.equal(res.body.bot_joined, true);
  assert.equal(res.body.power_level, 100);
  assert.equal(res.body.needed_power_level, 50);
  assert.equal(res.body.can_link, false);
  assert.equal(res.body.can_unlink, true);
  const links = await provision('GET', `/rooms/${enc(roomId)}/links`, state.openId!);
  assert.equal(links.status, 200, JSON.stringify(links.body));
  assert.deepEqual(links.body.links, [res.body.bridged]);

  // bob's own token: the same room, but he may not unlink it.
  const bobs = await openIdToken(BOB, state.bob!);
  const asBob = await provision('GET', `/rooms/${enc(roomId)}`, bobs.access_token);
  assert.equal(asBob.status, 200, JSON.stringify(asBob.body));
  assert.deepEqual([asBob.body.user_id, asBob.body.power_level, asBob.body.can_unlink], [BOB, 0, false]);
  const bobDelete = await provision('DELETE', `/rooms/${enc(roomId)}/links`, bobs.access_token);
  assert.equal(bobDelete.status, 403, JSON.stringify(bobDelete.body));
  assert.equal(bobDelete.body.errcode, 'M_FORBIDDEN');
  // A token Synapse never gave: it says so (401 M_UNKNOWN_TOKEN), and so does the AS.
  const bogus = await provision('GET', `/rooms/${enc(roomId)}`, 'not-a-token-synapse-gave');
  assert.deepEqual([bogus.status, bogus.body.errcode], [401, 'M_UNKNOWN_TOKEN'], JSON.stringify(bogus.body));
});

test("7. alice unlinks through the API (DELETE /rooms/{roomId}/links): 200; the network is told; Dave leaves; alice's next message is not delivered", { timeout: 90_000 }, async (t) => {
  need('step 6', state.openId);
  const roomId = state.roomId!;
  const res = await provision('DELETE', `/rooms/${enc(roomId)}/links`, state.openId!);
  assert.equal(res.status, 200, `DELETE /links: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.equal(res.body.unlinked?.room_id, roomId);
  assert.equal(res.body.unlinked?.remote_room, LOBBY);
  assert.equal(res.body.unlinked?.kind, 'linked');
  assert.deepEqual(state.net!.acceptedUnlinks, [{ room: LOBBY, matrixRoomId: roomId, requestedBy: ALICE }]);
  state.unlinked = true;

  let last: unknown;
  await eventually(
    () => `${DAVE} is still in the unlinked room: ${JSON.stringify(last)}\n${asTail()}`,
    async () => ((last = await joinedMembers(roomId))[DAVE] === undefined ? true : undefined),
  );
  const daveNow = (await roomState(roomId)).find((e) => e.type === 'm.room.member' && e.state_key === DAVE);
  assert.deepEqual([daveNow?.content.membership, daveNow?.sender, daveNow?.content.reason], ['leave', DAVE, 'the room is no longer bridged']);
  await botNoticeIn(roomId, 'announcing the unlink', (e) => String(e.content.body).startsWith(`This room is no longer bridged to ${LOBBY}`));
  // The bot stays; alice and bob too.
  assert.deepEqual(Object.keys(await joinedMembers(roomId)).sort(), [ALICE, BOB, state.bot!].sort());

  // alice's next message: not delivered. To know the AS has had it, alice then joins another
  // bridged room (#other, made by the alias query): Synapse sends its transactions one after the
  // other, so once her join there is delivered, the AS has had the message before it.
  const after = await say(roomId, 'is anyone still there?');
  const joined = await cs('POST', `/_matrix/client/v3/join/${enc(`#irc_${OTHER}:${SERVER}`)}`, { token: state.alice, body: {} });
  assert.equal(joined.status, 200, `alice joins #irc_${OTHER}: ${JSON.stringify(joined.body)}\n${asTail()}`);
  await delivered('members', `for alice's join of ${OTHER}`, (b) => b.user?.userId === ALICE && b.membership === 'join' && b.room === OTHER);
  await sleep(2000);
  assert.deepEqual(aboutEvent(after).map((r) => `${r.path} ${JSON.stringify(r.body)}`), [], 'nothing was delivered for the message after the unlink');

  const status = await provision('GET', `/rooms/${enc(roomId)}`, state.openId!);
  assert.equal(status.status, 200, JSON.stringify(status.body));
  assert.deepEqual([status.body.bridged, status.body.can_link, status.body.can_unlink], [null, true, false]);
  const again = await provision('DELETE', `/rooms/${enc(roomId)}/links`, state.openId!);
  assert.deepEqual([again.status, again.body.errcode], [404, 'M_NOT_FOUND'], JSON.stringify(again.body));

  // The alias no longer leads to alice's room: the bot took it off, and a lookup now makes #lobby a room of its own.
  const resolved = await cs('GET', `/_matrix/client/v3/directory/room/${enc(ALIAS)}`, { token: state.bob });
  t.diagnostic(`${ALIAS} after the unlink: ${resolved.status} ${JSON.stringify(resolved.body)}`);
  assert.equal(resolved.status, 200, `${JSON.stringify(resolved.body)}\n${asTail()}`);
  assert.notEqual(resolved.body.room_id, roomId);
});

test(`8. alice links it again through the API: ${LOBBY} has its own room now (409, naming it); ${HALL} is linked (200) and her messages go there`, { timeout: 90_000 }, async () => {
  need('step 7', state.unlinked);
  const roomId = state.roomId!;
  const taken = await provision('POST', `/rooms/${enc(roomId)}/links`, state.openId!, { remote_room: LOBBY });
  assert.equal(taken.status, 409, `${JSON.stringify(taken.body)}\n${asTail()}`);
  assert.equal(taken.body.errcode, 'ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED');
  assert.notEqual(taken.body.room_id, roomId);
  assert.match(taken.body.room_id ?? '', /^!/);

  const res = await provision('POST', `/rooms/${enc(roomId)}/links`, state.openId!, { remote_room: HALL });
  assert.equal(res.status, 200, `POST /links: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.deepEqual([res.body.room_id, res.body.kind, res.body.remote_room, res.body.linked_by], [roomId, 'linked', HALL, ALICE]);
  assert.deepEqual(state.net!.acceptedLinks.at(-1), { room: HALL, matrixRoomId: roomId, requestedBy: ALICE });
  await botNoticeIn(roomId, `announcing the link to ${HALL}`, (e) => String(e.content.body).startsWith(`This room is now bridged to ${HALL}`));
  // The transactions' Lambda had this room as unbridged a moment ago (step 7): the link made by
  // another Lambda counts at once.
  const id = await say(roomId, 'hello hall');
  const m = await delivered('messages', `for ${id}`, (b) => b.id === id);
  assert.deepEqual([m.room, m.sender, m.body], [HALL, { userId: ALICE }, 'hello hall']);
});

test("9. every request to the network as docs/network-api.yaml says; no error in the AS's log; Synapse's user queries", { timeout: 30_000 }, async (t) => {
  need('setup', state.net);
  const net = state.net!;
  assert.deepEqual(net.specErrors, []);
  const deliveries = net.received.filter((r) => r.kind || r.link);
  assert.ok(deliveries.every((r) => r.status === 200), deliveries.map((r) => `${r.path} ${r.status}`).join(', '));
  const queries = [...synapseLog().matchAll(/GET http:\/\/127\.0\.0\.1:\d+\/_matrix\/app\/v1\/(users|rooms)\/(\S+): (\d{3})/g)].map((q) => `${q[1]} ${decodeURIComponent(q[2]!)} ${q[3]}`);
  t.diagnostic(`Synapse's queries to the AS: ${JSON.stringify(queries)}`);
  const problems = asLogLines(state.logFrom).filter((l) => l.level === 'error' || l.level === 'warn');
  for (const p of problems) t.diagnostic(`AS ${p.level}: ${JSON.stringify(p)}`);
  assert.deepEqual(problems.filter((l) => l.level === 'error'), [], "no error in the AS's log once Synapse was up");
});
