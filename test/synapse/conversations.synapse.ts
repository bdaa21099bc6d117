/**
 * Conversations (issue 24) against a REAL Synapse 1.94 (a synapse-lab, `$HS_LAB`), with `npm
 * start`'s real server and the fake network of the unit tests (test/support/fake-network.ts) as a
 * `webhook` network over HTTP: every request the AS makes of it is checked against
 * docs/network-api.yaml. Real Matrix users (alice, then bob), registered through Synapse's open
 * registration, act through Synapse's client API. The point is what the fake homeserver may be
 * kinder about than Synapse:
 * - direct chats opened from Matrix the way Element does it (createRoom with `is_direct` and an
 *   invite of a user Synapse has never seen: its user query first), and from the network (the
 *   virtual user's createRoom, the invite alice's client sees in /sync with `is_direct`), ended
 *   when alice leaves;
 * - membership both ways: network users joining and leaving a channel with a display name and a
 *   reason, Matrix users joining and leaving it, and alice's display-name change, which Synapse
 *   sends as a join over a join: the AS tells it apart by Synapse's own `unsigned.prev_content`
 *   in its transactions;
 * - network profiles (the virtual user's profile, as Synapse serves it and spreads it to the
 *   rooms the user is in, never echoed back to the network) and room details set by the bot.
 *
 * Names with `/` as in the walk-through: USER_PREFIX=irc.freenode.net/, so the network's Dave is
 * `@irc.freenode.net/_dave:localhost` and the network room `#conv` is behind
 * `#irc.freenode.net/#conv:localhost`. The steps run in order and each needs the ones before it.
 * Run it with `HS_LAB=/tmp/synapse-lab npm run test:synapse`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeNetwork } from '../support/fake-network.js';
import type { DeliveryKind, FakeNetwork } from '../support/fake-network.js';
import { AS_READY_MS, LAB, LAB_SCRIPT_MS, REGISTRATION_FILE, SERVER, asLogLines, asTail, call, cs, eventually, fetchLink, lab, png, run, startAs, synapseLog, need, roomPath, toAs as toAsSigned, sayAs, joinedMembersAs, roomStateAs } from './lab.js';
import type { Answer, Registration } from './lab.js';

const PREFIX = 'irc.freenode.net/';
const NETWORK_ROOM = '#conv';
const ALIAS = `#${PREFIX}${NETWORK_ROOM}:${SERVER}`;
const virtual = (name: string) => `@${PREFIX}_${name.toLowerCase()}:${SERVER}`;
/** Network users: Dave is in alice's direct chat from Matrix, Erin opens one from the network, Frank and Gina come and go in #conv. */
const DAVE = virtual('Dave');
const ERIN = virtual('Erin');
const FRANK = virtual('Frank');
const ALICE = `@alice:${SERVER}`;
const BOB = `@bob:${SERVER}`;

const state: {
  net?: FakeNetwork;
  reg?: Registration;
  bot?: string;
  alice?: string;
  bob?: string;
  /** The direct chat alice opened with Dave. */
  daveDm?: string;
  /** Erin's direct chats with alice: the first (ended by alice leaving) and the one after it. */
  erinDm?: string;
  erinDm2?: string;
  roomId?: string;
  /** alice's display name before step 3d, as Synapse gave it her at registration. */
  aliceName?: string;
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

let nth = 0;
/** A private message from a network user to alice (`to` in place of `room`); its event id. */
async function privately(from: string, body: string): Promise<string> {
  const res = await toAs('messages', { id: `pm-${++nth}`, to: ALICE, sender: { id: from }, body, ts: Date.now() });
  assert.equal(res.status, 200, `POST /network/messages to alice from ${from}: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.match(res.body.event_id ?? '', /^\$/);
  return res.body.event_id;
}

/** An event as `token`'s client reads it from Synapse (404 when it is not in that room). */
const eventIn = (roomId: string, eventId: string, token = state.alice) => cs('GET', `${roomPath(roomId)}/event/${enc(eventId)}`, { token });




const memberEvent = async (roomId: string, userId: string, token = state.alice) =>
  (await roomState(roomId, token)).find((e) => e.type === 'm.room.member' && e.state_key === userId);

let syncs = 0;
/**
 * alice's /sync, from nothing (small: a few rooms). Synapse keeps each /sync answer for 2 minutes
 * (`caches.sync_response_cache_duration`) and gives it again to the same request (same user,
 * device, since, filter, timeout): a full sync repeated within that time would not show a new
 * invite. A different `timeout` each time makes each one a new request (a full sync never waits).
 */
async function sync(token = state.alice): Promise<Record<string, any>> {
  const res = await cs('GET', `/_matrix/client/v3/sync?timeout=${++syncs}`, { token });
  assert.equal(res.status, 200, `sync: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** alice's pending invites: room id → her stripped m.room.member invite event. */
async function invites(): Promise<Map<string, Record<string, any>>> {
  const out = new Map<string, Record<string, any>>();
  for (const [roomId, r] of Object.entries<any>((await sync()).rooms?.invite ?? {})) {
    const ev = (r.invite_state?.events ?? []).find((e: any) => e.type === 'm.room.member' && e.state_key === ALICE);
    if (ev) out.set(roomId, ev);
  }
  return out;
}

const showReceived = () => state.net!.received.map((r) => `  ${r.method} ${r.path} ${r.status} ${JSON.stringify(r.body)}`).join('\n');

/** The first accepted delivery of `kind` that `match` picks, once it arrives. */
function delivered(kind: DeliveryKind, what: string, match: (b: any) => boolean): Promise<Record<string, any>> {
  return eventually(
    () => `no accepted POST /${kind} ${what}; the network got:\n${showReceived()}\n${asTail()}`,
    () => state.net!.acceptedBy[kind].find(match),
  );
}

/** Synapse's user queries to the AS for `userId`, with the AS's answers, from Synapse's log. */
const userQueries = (userId: string) =>
  [...synapseLog().matchAll(/GET http:\/\/127\.0\.0\.1:\d+\/_matrix\/app\/v1\/users\/(\S+): (\d{3})/g)]
    .filter((q) => decodeURIComponent(q[1]!) === userId)
    .map((q) => q[2]);

/**
 * A member event's membership as the virtual user `userId` itself sees it (the as_token with
 * `user_id`): the way to see a room after everyone else real has left it.
 */
async function membershipAsSeenBy(roomId: string, userId: string): Promise<Record<string, any>> {
  const res = await cs('GET', `${roomPath(roomId)}/state/m.room.member/${enc(userId)}?user_id=${enc(userId)}`, { token: state.reg!.as_token });
  assert.equal(res.status, 200, `${userId}'s own m.room.member in ${roomId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

// ---------------------------------------------------------------- the scenario

let ready = false;
test('setup: the fake network, npm start (webhook network), then a fresh Synapse with its registration', { timeout: AS_READY_MS + 2 * LAB_SCRIPT_MS }, async () => {
  assert.ok(LAB && existsSync(join(LAB, 'start.sh')), 'HS_LAB must point at a synapse-lab (run.ts checks this)');
  const net = await startFakeNetwork({ secret: randomBytes(24).toString('hex') });
  state.net = net;
  net.rooms.set(NETWORK_ROOM, { name: 'Conversations' });
  for (const name of ['Dave', 'Erin', 'Frank']) net.users.set(name, { displayName: name });
  await startAs({ USER_PREFIX: PREFIX, NETWORK: 'webhook', NETWORK_URL: net.url, NETWORK_SECRET: net.secret });
  state.reg = parse(readFileSync(REGISTRATION_FILE, 'utf8')) as Registration;
  assert.ok(state.reg.as_token && state.reg.sender_localpart, `registration file: ${readFileSync(REGISTRATION_FILE, 'utf8')}`);
  state.bot = `@${state.reg.sender_localpart}:${SERVER}`;
  await lab('reset.sh');
  await lab('start.sh', REGISTRATION_FILE);
  state.logFrom = run.asOut.length;
  ready = true;
});

test('0. alice and bob register (open registration, m.login.dummy)', { timeout: 60_000 }, async () => {
  need('setup', ready);
  for (const name of ['alice', 'bob'] as const) {
    const reg = await cs('POST', '/_matrix/client/v3/register', {
      body: { username: name, password: randomBytes(12).toString('hex'), auth: { type: 'm.login.dummy' } },
    });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    state[name] = reg.body.access_token;
  }
});

// ---------------------------------------------------------------- 1. a direct chat from Matrix

test(`1a. alice "starts a direct chat" with ${DAVE} as Element does: Synapse asks the AS's user query, the virtual user joins`, { timeout: 90_000 }, async () => {
  need('step 0', state.alice);
  const res = await cs('POST', '/_matrix/client/v3/createRoom', {
    token: state.alice,
    body: { preset: 'trusted_private_chat', is_direct: true, invite: [DAVE] },
  });
  assert.equal(res.status, 200, `createRoom with the invite: ${JSON.stringify(res.body)}\n${asTail()}`);
  const dm: string = res.body.room_id;
  let last: unknown;
  await eventually(
    () => `${DAVE} did not join the direct chat; joined_members: ${JSON.stringify(last)}\n${asTail()}`,
    async () => ((last = await joinedMembers(dm))[DAVE] ? true : undefined),
  );
  // Synapse did not know Dave: it asked the AS first (with `/` as it is), and the AS said yes.
  assert.deepEqual(userQueries(DAVE), ['200'], 'Synapse asked the AS about Dave once, before the invite');
  const invite = (await roomState(dm)).find((e) => e.type === 'm.room.member' && e.state_key === DAVE);
  assert.equal(invite?.content.membership, 'join');
  // The AS recorded the room as the pair's direct chat once Dave had joined.
  await eventually(
    () => `the AS did not record the direct chat\n${asTail()}`,
    () => asLogLines().find((l) => l.msg === 'a Matrix user opened a direct chat with a network user' && l.roomId === dm),
  );
  state.daveDm = dm;
});

test('1b. alice writes there: POST /messages with direct {with: Dave} and no room; Dave answers privately (to alice): same room, as Dave', { timeout: 60_000 }, async () => {
  need('step 1a', state.daveDm);
  const dm = state.daveDm!;
  const id = await say(dm, 'hi Dave, it is alice');
  const m = await delivered('messages', `for ${id}`, (b) => b.id === id);
  assert.deepEqual(m.direct, { with: 'Dave' });
  assert.equal('room' in m, false, `no room: ${JSON.stringify(m)}`);
  assert.deepEqual(m.sender, { userId: ALICE });
  assert.equal(m.body, 'hi Dave, it is alice');

  const answer = await privately('Dave', 'hi alice!');
  const ev = await eventIn(dm, answer);
  assert.equal(ev.status, 200, `Dave's answer is not in alice's direct chat with him: ${JSON.stringify(ev.body)}\n${asTail()}`);
  assert.equal(ev.body.sender, DAVE);
  assert.equal(ev.body.content.body, 'hi alice!');
  // And alice's /messages has both, in order.
  const res = await cs('GET', `${roomPath(dm)}/messages?dir=b&limit=10`, { token: state.alice });
  const bodies = (res.body.chunk as any[]).filter((e) => e.type === 'm.room.message').map((e) => `${e.sender}: ${e.content.body}`);
  assert.deepEqual(bodies, [`${DAVE}: hi alice!`, `${ALICE}: hi Dave, it is alice`]);
});

// ---------------------------------------------------------------- 2. a direct chat from the network

test(`2a. Erin writes to alice first: ${ERIN} makes a room and invites her; alice's /sync shows the invite with is_direct`, { timeout: 90_000 }, async () => {
  need('step 0', state.alice);
  const first = await privately('Erin', 'hello alice, Erin here');
  const invite = await eventually(
    () => `no invite from ${ERIN} in alice's /sync\n${asTail()}`,
    async () => [...(await invites())].find(([, ev]) => ev.sender === ERIN),
  );
  const [dm, ev] = invite;
  assert.equal(ev.content.membership, 'invite');
  assert.equal(ev.content.is_direct, true, `the invite event as alice's client sees it: ${JSON.stringify(ev)}`);
  const join = await cs('POST', `/_matrix/client/v3/join/${enc(dm)}`, { token: state.alice, body: {} });
  assert.equal(join.status, 200, `alice joins: ${JSON.stringify(join.body)}`);
  const msg = await eventIn(dm, first);
  assert.equal(msg.status, 200, `Erin's message in the room she invited alice to: ${JSON.stringify(msg.body)}`);
  assert.equal(msg.body.sender, ERIN);
  assert.equal(msg.body.content.body, 'hello alice, Erin here');
  // Who is in it, and how it was made: the preset Element uses, Erin its creator.
  const st = await roomState(dm);
  assert.equal(st.find((e) => e.type === 'm.room.create')?.sender, ERIN);
  assert.equal(st.find((e) => e.type === 'm.room.join_rules')?.content.join_rule, 'invite');
  assert.deepEqual(Object.keys(await joinedMembers(dm)).sort(), [ALICE, ERIN].sort());
  state.erinDm = dm;
});

test('2b. alice answers Erin: POST /messages with direct {with: Erin}, no room', { timeout: 60_000 }, async () => {
  need('step 2a', state.erinDm);
  const id = await say(state.erinDm!, 'hi Erin');
  const m = await delivered('messages', `for ${id}`, (b) => b.id === id);
  assert.deepEqual(m.direct, { with: 'Erin' });
  assert.equal('room' in m, false, `no room: ${JSON.stringify(m)}`);
  // A later private message from Erin goes to the same room.
  const again = await privately('Erin', 'how are you?');
  assert.equal((await eventIn(state.erinDm!, again)).status, 200, 'in the same direct chat');
});

test('2c. alice leaves: the chat ends (Erin leaves too); Erin\'s next private message makes a new room and a new invite', { timeout: 90_000 }, async () => {
  need('step 2b', state.erinDm);
  const dm = state.erinDm!;
  const leave = await cs('POST', `${roomPath(dm)}/leave`, { token: state.alice, body: {} });
  assert.equal(leave.status, 200, JSON.stringify(leave.body));
  let last: unknown;
  const gone = await eventually(
    () => `${ERIN} is still in the ended direct chat: ${JSON.stringify(last)}\n${asTail()}`,
    async () => {
      const m = (last = await membershipAsSeenBy(dm, ERIN));
      return m.membership === 'leave' ? m : undefined;
    },
  );
  assert.equal(gone.reason, 'the direct chat ended');
  // Logged once Synapse has answered the leave, which may be a moment after alice can see it.
  await eventually(
    () => `the AS does not log the end of the direct chat\n${asTail()}`,
    () => asLogLines().find((l) => l.msg === 'a direct chat ended' && l.roomId === dm),
  );
  // Nothing about a direct chat's membership goes to the network.
  assert.equal(state.net!.received.filter((r) => r.kind === 'members').length, 0, showReceived());

  const next = await privately('Erin', 'are you still there?');
  const invite = await eventually(
    () => `no new invite from ${ERIN} in alice's /sync\n${asTail()}`,
    async () => [...(await invites())].find(([roomId, ev]) => ev.sender === ERIN && roomId !== dm),
  );
  const [dm2, ev] = invite;
  assert.equal(ev.content.is_direct, true);
  assert.equal((await cs('POST', `/_matrix/client/v3/join/${enc(dm2)}`, { token: state.alice, body: {} })).status, 200);
  const msg = await eventIn(dm2, next);
  assert.equal(msg.status, 200, `the message is in the new room: ${JSON.stringify(msg.body)}`);
  assert.equal(msg.body.sender, ERIN);
  state.erinDm2 = dm2;
});

// ---------------------------------------------------------------- 3. membership in a channel

test(`3a. alice joins ${ALIAS} (made by the alias query): POST /members, a join with her display name`, { timeout: 90_000 }, async () => {
  need('step 0', state.alice);
  const res = await cs('POST', `/_matrix/client/v3/join/${enc(ALIAS)}`, { token: state.alice, body: {} });
  assert.equal(res.status, 200, `join: ${JSON.stringify(res.body)}\n${asTail()}`);
  state.roomId = res.body.room_id;
  const own = await memberEvent(state.roomId!, ALICE);
  state.aliceName = own?.content.displayname;
  assert.equal(state.aliceName, 'alice', 'Synapse gives a new user its localpart as display name');
  const m = await delivered('members', 'for alice\'s join', (b) => b.user?.userId === ALICE && b.membership === 'join');
  assert.equal(m.id, own!.event_id);
  assert.equal(m.room, NETWORK_ROOM);
  assert.equal('direct' in m, false);
  assert.deepEqual(m.sender, { userId: ALICE });
  assert.deepEqual(m.user, { userId: ALICE, displayName: 'alice' });
  assert.equal('reason' in m, false);
});

test('3b. Frank joins #conv on the network (POST /network/members, display name): 200 {room_id}, a joined member with that name; then leaves with a reason', { timeout: 60_000 }, async () => {
  need('step 3a', state.roomId);
  const roomId = state.roomId!;
  const join = await toAs('members', { room: NETWORK_ROOM, user: { id: 'Frank', displayName: 'Frank the Tank' }, membership: 'join', id: 'irc-join-1', ts: Date.now() });
  assert.equal(join.status, 200, `${JSON.stringify(join.body)}\n${asTail()}`);
  assert.deepEqual(join.body, { room_id: roomId });
  const members = await joinedMembers(roomId);
  assert.equal(members[FRANK]?.display_name, 'Frank the Tank', `joined_members: ${JSON.stringify(members)}`);
  const joined = await memberEvent(roomId, FRANK);
  assert.equal(joined?.content.membership, 'join');
  assert.equal(joined?.content.displayname, 'Frank the Tank');
  assert.equal(joined?.sender, FRANK);
  // A resend changes nothing: the same member event.
  const again = await toAs('members', { room: NETWORK_ROOM, user: { id: 'Frank', displayName: 'Frank the Tank' }, membership: 'join', id: 'irc-join-1', ts: Date.now() });
  assert.deepEqual([again.status, again.body], [200, { room_id: roomId }]);
  assert.equal((await memberEvent(roomId, FRANK))?.event_id, joined?.event_id, 'no new member event for a resent join');

  const leave = await toAs('members', { room: NETWORK_ROOM, user: { id: 'Frank' }, membership: 'leave', reason: 'gone home', id: 'irc-part-1', ts: Date.now() });
  assert.equal(leave.status, 200, `${JSON.stringify(leave.body)}\n${asTail()}`);
  assert.deepEqual(leave.body, { room_id: roomId });
  assert.equal((await joinedMembers(roomId))[FRANK], undefined, 'Frank is no longer a joined member');
  const left = await memberEvent(roomId, FRANK);
  assert.equal(left?.content.membership, 'leave');
  assert.equal(left?.content.reason, 'gone home');
  assert.equal(left?.sender, FRANK);
  // Leaving again: not in the room, nothing to do, 200 all the same.
  const twice = await toAs('members', { room: NETWORK_ROOM, user: { id: 'Frank' }, membership: 'leave', id: 'irc-part-2', ts: Date.now() });
  assert.deepEqual([twice.status, twice.body], [200, { room_id: roomId }], `${JSON.stringify(twice.body)}\n${asTail()}`);
});

test('3c. bob joins #conv and leaves with a reason: POST /members join, then leave with the reason, sender bob', { timeout: 60_000 }, async () => {
  need('step 3a', state.roomId && state.bob);
  const roomId = state.roomId!;
  const join = await cs('POST', `/_matrix/client/v3/join/${enc(ALIAS)}`, { token: state.bob, body: {} });
  assert.equal(join.status, 200, `bob's join: ${JSON.stringify(join.body)}`);
  assert.equal(join.body.room_id, roomId);
  const j = await delivered('members', 'for bob\'s join', (b) => b.user?.userId === BOB && b.membership === 'join');
  assert.deepEqual([j.room, j.sender, j.user], [NETWORK_ROOM, { userId: BOB }, { userId: BOB, displayName: 'bob' }]);
  const leave = await cs('POST', `${roomPath(roomId)}/leave`, { token: state.bob, body: { reason: 'see you' } });
  assert.equal(leave.status, 200, JSON.stringify(leave.body));
  const l = await delivered('members', 'for bob\'s leave', (b) => b.user?.userId === BOB && b.membership === 'leave');
  assert.deepEqual([l.room, l.sender, l.user, l.reason], [NETWORK_ROOM, { userId: BOB }, { userId: BOB }, 'see you']);
  // Frank's join and leave (step 3b) came from the network: never told back to it.
  assert.deepEqual(state.net!.acceptedBy.members.filter((b) => b.user?.userId === FRANK), []);
});

test('3d. alice changes her display name (PUT /profile): POST /profile for #conv only, with the new and the previous name', { timeout: 60_000 }, async (t) => {
  need('step 3a', state.roomId && state.aliceName);
  const res = await cs('PUT', `/_matrix/client/v3/profile/${enc(ALICE)}/displayname`, { token: state.alice, body: { displayname: 'Alice Liddell' } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  // Synapse rewrites her member event in every room she is in: a join over her join.
  const ev = await eventually(
    () => `alice's member event in #conv does not have her new name`,
    async () => {
      const e = await memberEvent(state.roomId!, ALICE);
      return e?.content.displayname === 'Alice Liddell' ? e : undefined;
    },
  );
  // What alice's client gets of that event (the AS gets Synapse's own serialisation of it too).
  const fromSync = (await sync()).rooms?.join?.[state.roomId!]?.timeline?.events?.find((e: any) => e.event_id === ev.event_id);
  t.diagnostic(`Synapse's member event for the rename: unsigned ${JSON.stringify(fromSync?.unsigned ?? ev.unsigned)} (as ${fromSync ? '/sync' : 'GET /state'} serves it)`);
  const p = await eventually(
    () =>
      `no POST /profile for alice's rename (event ${ev.event_id}, unsigned as /sync has it: ${JSON.stringify(fromSync?.unsigned)}); ` +
      `the AS sent instead: ${JSON.stringify(state.net!.received.filter((r) => r.body?.id === ev.event_id).map((r) => `${r.path} ${JSON.stringify(r.body)}`))}\n${asTail()}`,
    () => state.net!.acceptedBy.profile.find((b) => b.id === ev.event_id),
  );
  assert.equal(p.room, NETWORK_ROOM);
  assert.deepEqual(p.sender, { userId: ALICE, displayName: 'Alice Liddell' });
  assert.equal(p.previousDisplayName, state.aliceName);
  // Not a join: the rename is no new member.
  assert.equal(state.net!.acceptedBy.members.filter((b) => b.id === ev.event_id).length, 0, 'a rename is not delivered as a join');
  // Her direct chats got the same rewrite from Synapse: those have no network room, nothing is delivered for them.
  const marker = await say(state.roomId!, '3d marker');
  await delivered('messages', '3d marker', (b) => b.id === marker);
  assert.deepEqual(
    state.net!.received.filter((r) => r.kind === 'profile').map((r) => r.body.room),
    [NETWORK_ROOM],
    'one POST /profile, for #conv',
  );
});

test('3e. alice sets an avatar (upload, PUT avatar_url): POST /profile with her avatar, whose link serves the bytes from Synapse', { timeout: 60_000 }, async () => {
  need('step 3d', state.roomId);
  const face = png(2, 2, [200, 120, 40]);
  const up = await cs('POST', '/_matrix/media/v3/upload?filename=alice.png', { token: state.alice, body: face, headers: { 'content-type': 'image/png' } });
  assert.equal(up.status, 200, `alice's upload: ${JSON.stringify(up.body)}`);
  const mxc: string = up.body.content_uri;
  const res = await cs('PUT', `/_matrix/client/v3/profile/${enc(ALICE)}/avatar_url`, { token: state.alice, body: { avatar_url: mxc } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const ev = await eventually(
    () => `alice's member event in #conv does not have her avatar`,
    async () => {
      const e = await memberEvent(state.roomId!, ALICE);
      return e?.content.avatar_url === mxc ? e : undefined;
    },
  );
  const p = await eventually(
    () => `no POST /profile for alice's avatar (event ${ev.event_id})\n${asTail()}`,
    () => state.net!.acceptedBy.profile.find((b) => b.id === ev.event_id),
  );
  assert.equal(p.room, NETWORK_ROOM);
  assert.equal(p.sender.displayName, 'Alice Liddell', 'the profile as it is now: her name too');
  assert.equal(p.sender.avatar?.mxc, mxc);
  assert.equal(p.previousDisplayName, 'Alice Liddell');
  const got = await fetchLink(p.sender.avatar.url);
  assert.equal(got.status, 200, `GET avatar.url: ${got.status} ${got.bytes.toString().slice(0, 300)}\n${asTail()}`);
  assert.deepEqual(got.bytes, face, 'the bytes alice uploaded, from Synapse');
});

// ---------------------------------------------------------------- 4. profiles and room details

test('4a. Dave is "David" now (POST /network/profile): 200 {user_id}, Synapse serves the profile and spreads it to his rooms; not echoed', { timeout: 60_000 }, async () => {
  need('steps 1a and 3a', state.daveDm && state.roomId);
  // Dave joins #conv first, so Synapse's rewrite of his member event there reaches the AS as a rename in a bridged room.
  const join = await toAs('members', { room: NETWORK_ROOM, user: { id: 'Dave' }, membership: 'join' });
  assert.deepEqual([join.status, join.body], [200, { room_id: state.roomId }], `${JSON.stringify(join.body)}\n${asTail()}`);
  const res = await toAs('profile', { user: { id: 'Dave', displayName: 'David' } });
  assert.deepEqual([res.status, res.body], [200, { user_id: DAVE }], `${JSON.stringify(res.body)}\n${asTail()}`);
  const profile = await cs('GET', `/_matrix/client/v3/profile/${enc(DAVE)}`, { token: state.alice });
  assert.equal(profile.status, 200, JSON.stringify(profile.body));
  assert.equal(profile.body.displayname, 'David');
  for (const roomId of [state.daveDm!, state.roomId!]) {
    await eventually(
      () => `Dave's member event in ${roomId} does not say David`,
      async () => ((await memberEvent(roomId, DAVE))?.content.displayname === 'David' ? true : undefined),
    );
  }
  assert.equal((await joinedMembers(state.roomId!))[DAVE]?.display_name, 'David');
  // The same profile again changes nothing.
  const again = await toAs('profile', { user: { id: 'Dave', displayName: 'David' } });
  assert.deepEqual([again.status, again.body], [200, { user_id: DAVE }]);
  const marker = await say(state.roomId!, '4a marker');
  await delivered('messages', '4a marker', (b) => b.id === marker);
  assert.deepEqual(
    state.net!.received.filter((r) => (r.kind === 'profile' || r.kind === 'members') && (r.body?.sender?.userId === DAVE || r.body?.user?.userId === DAVE)),
    [],
    'nothing about Dave went back to the network',
  );
});

test('4b. #conv has a new name and topic (POST /network/rooms/%23conv): the bot sets m.room.name and m.room.topic; a room nobody joined: 200 {}', { timeout: 60_000 }, async () => {
  need('step 3a', state.roomId);
  const res = await toAs(`rooms/${enc(NETWORK_ROOM)}`, { name: 'Conversations (issue 24)', topic: 'direct chats, membership, profiles' });
  assert.deepEqual([res.status, res.body], [200, { room_id: state.roomId }], `${JSON.stringify(res.body)}\n${asTail()}`);
  const st = await roomState(state.roomId!);
  const name = st.find((e) => e.type === 'm.room.name' && e.state_key === '');
  const topic = st.find((e) => e.type === 'm.room.topic' && e.state_key === '');
  assert.deepEqual([name?.content, name?.sender], [{ name: 'Conversations (issue 24)' }, state.bot]);
  assert.deepEqual([topic?.content, topic?.sender], [{ topic: 'direct chats, membership, profiles' }, state.bot]);
  const got = await cs('GET', `${roomPath(state.roomId!)}/state/m.room.name/`, { token: state.alice });
  assert.deepEqual(got.body, { name: 'Conversations (issue 24)' });
  // The topic alone, then "" to remove it: Synapse keeps an m.room.topic with "", as clients read "no topic".
  const cleared = await toAs(`rooms/${enc(NETWORK_ROOM)}`, { topic: '' });
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  const after = await roomState(state.roomId!);
  assert.deepEqual(after.find((e) => e.type === 'm.room.topic')?.content, { topic: '' });
  assert.deepEqual(after.find((e) => e.type === 'm.room.name')?.content, { name: 'Conversations (issue 24)' }, 'the name left as it was');
  const nowhere = await toAs(`rooms/${enc('#nowhere')}`, { name: 'Nobody here' });
  assert.deepEqual([nowhere.status, nowhere.body], [200, {}], `${JSON.stringify(nowhere.body)}\n${asTail()}`);
});

test('4c. alice leaves #conv: POST /members leave, sender alice', { timeout: 60_000 }, async () => {
  need('step 3a', state.roomId);
  const res = await cs('POST', `${roomPath(state.roomId!)}/leave`, { token: state.alice, body: {} });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const l = await delivered('members', 'for alice\'s leave', (b) => b.user?.userId === ALICE && b.membership === 'leave');
  assert.deepEqual([l.room, l.sender, l.user, 'reason' in l], [NETWORK_ROOM, { userId: ALICE }, { userId: ALICE }, false]);
});

test('5. nothing the network did came back to it; every request to the network as docs/network-api.yaml says; no error in the AS\'s log', { timeout: 30_000 }, async (t) => {
  need('step 4c', state.net && state.roomId);
  const net = state.net!;
  const deliveries = net.received.filter((r) => r.kind);
  const notReal = deliveries.filter((r) => r.body?.sender?.userId !== ALICE && r.body?.sender?.userId !== BOB);
  assert.deepEqual(notReal.map((r) => `${r.path} ${JSON.stringify(r.body)}`), [], 'only alice\'s and bob\'s events went to the network');
  assert.ok(deliveries.every((r) => r.status === 200), deliveries.map((r) => `${r.path} ${r.status}`).join(', '));
  assert.deepEqual(net.specErrors, []);
  const problems = asLogLines(state.logFrom).filter((l) => l.level === 'error' || l.level === 'warn');
  for (const p of problems) t.diagnostic(`AS ${p.level}: ${JSON.stringify(p)}`);
  assert.deepEqual(problems.filter((l) => l.level === 'error'), [], 'no error in the AS\'s log once Synapse was up');
});
