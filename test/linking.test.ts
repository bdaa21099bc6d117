/**
 * Linking existing rooms (issue 25): the bridge bot invited into a community's room, `!bridge
 * link`, `unlink`, `status` and `help`, and the provisioning API, through the push and provision
 * functions as API Gateway invokes them, DynamoDB Local, the fake homeserver (power levels
 * enforced as Synapse does, invites, OpenID userinfo) and the fake network (which may refuse a
 * link). Permissions by level, federated senders included.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { bridgedRoom, uniq } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeEvent, FakeRoom } from './support/fake-hs.js';
import type { RoomAlias, RoomId } from '../lib/matrix/ids.js';
import type { LinkedRoom } from '../lib/store/index.js';
import { getBridge } from '../lib/bridge/runtime.js';

const network = await startFakeNetwork();
after(() => network.close());
const SECRET = 'provisioning-secret-for-tests';
const ADMIN = '@admin:example.org';
const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';
const MUTE = '@mute:example.org';
const SPAMMER = '@eve:spam.example';
const FRIEND = '@friend:partner.org';
const STRANGER = '@carol:partner.org';
const as = await startAs(
  {
    NETWORK: 'webhook',
    NETWORK_URL: network.url,
    NETWORK_SECRET: network.secret,
    NETWORK_TIMEOUT_MS: '2000',
    PROVISIONING_SECRET: SECRET,
    PERMISSIONS: JSON.stringify({ '*': 'relay', 'example.org': 'link', [ADMIN]: 'admin', [MUTE]: 'none', 'spam.example': 'none', [FRIEND]: 'link' }),
  },
  // The bot is at 0 in a user's private room, as in Synapse: it may not set state there.
  { enforcePowerLevels: true },
);
after(() => assert.deepEqual(as.networkApiErrors, [], 'every answer to the network as docs/network-api.yaml says'));
after(() => assert.deepEqual(as.hs.specErrors, [], 'every CS request and event content the spec way'));
after(() => assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says'));
const BOT = as.hs.botUserId;

const push = async (roomId: string, ...events: FakeEvent[]) => {
  assert.equal(await as.pushSend(uniq('t'), { events: events.map((e) => as.hs.clientEvent(roomId, e)) }), 200);
};
const say = async (userId: string, room: FakeRoom, body: string) => {
  const e = as.hs.userSend(userId, room.roomId, 'm.room.message', { msgtype: 'm.text', body });
  await push(room.roomId, e);
  return e;
};
const notices = (room: FakeRoom) => room.events.filter((e) => e.sender === BOT && e.content.msgtype === 'm.notice').map((e) => String(e.content.body));
const lastNotice = (room: FakeRoom) => notices(room).at(-1) ?? '';
const deliveredTo = (remote: string) => network.received.filter((r) => r.path === '/messages' && r.status === 200 && r.body.room === remote).map((r) => r.body);
const linkRequests = (remote: string) => network.received.filter((r) => r.path === '/links' && r.body?.room === remote);
const recordOf = async (roomId: string) => (await as.store.getBridgedRooms([roomId as RoomId])).get(roomId as RoomId);

/** The network calls the AS: POST /network/{kind}, signed. */
async function send(kind: string, body: Record<string, unknown>) {
  const raw = JSON.stringify({ ts: Date.now(), ...body });
  return as.call('network-inbound', { method: 'POST', path: `/network/${kind}`, rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
}

/** A community's own room, made by `owner` (private: invite only, the owner at 100), with the bot invited by them. */
async function communityRoom(owner = ALICE, members: string[] = []): Promise<FakeRoom> {
  const { room } = as.hs.userCreateRoom(owner, { preset: 'private_chat', name: 'Lobby' });
  for (const m of members) {
    as.hs.userInvite(owner, room.roomId, m);
    if (m.endsWith(':example.org')) as.hs.userJoinRoom(m, room.roomId);
    else room.members.add(m);
  }
  await push(room.roomId, as.hs.userInvite(owner, room.roomId, BOT));
  return room;
}

/** A network room the fake network knows. */
function networkRoom(): string {
  const remote = uniq('lobby');
  network.rooms.set(remote, { name: `#${remote}` });
  return remote;
}

/** The provisioning API, as an integration manager calls it. */
function provision(method: string, path: string, opts: { token?: string; userId?: string; body?: unknown; query?: Record<string, string> } = {}) {
  return as.call('provision', {
    method,
    path: `/_matrix/provision/v1${path}`,
    query: { ...opts.query, ...(opts.userId ? { user_id: opts.userId } : {}) },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
  });
}
const asOperator = (userId: string) => ({ token: SECRET, userId });

test('the bot, invited by someone who may link rooms, joins and says how; invited by someone who may not, it declines', async () => {
  const room = await communityRoom(ALICE);
  assert.ok(room.members.has(BOT), 'joined');
  assert.match(lastNotice(room), /!bridge link <network room>/);

  // A federated user at relay (the "*" pattern) invites it into their room: declined, with the reason.
  const { room: theirs } = as.hs.userCreateRoom(ALICE, { preset: 'private_chat' });
  theirs.members.add(STRANGER);
  as.hs.setPowerLevel(theirs.roomId, STRANGER, 100);
  const invite: FakeEvent = { eventId: `$${uniq('inv')}`, type: 'm.room.member', sender: STRANGER, stateKey: BOT, content: { membership: 'invite' }, originServerTs: Date.now() };
  theirs.invited.add(BOT);
  theirs.events.push(invite);
  await push(theirs.roomId, invite);
  assert.ok(!theirs.members.has(BOT), 'not joined');
  const declined = theirs.events.find((e) => e.type === 'm.room.member' && e.stateKey === BOT && e.content.membership === 'leave');
  assert.match(String(declined?.content.reason), /may not link rooms.*"relay"/);
});

test('!bridge link by a moderator: the network is asked, the room is linked, and messages go both ways', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE, [BOB]);
  const command = await say(ALICE, room, `!bridge link ${remote}`);
  assert.match(lastNotice(room), new RegExp(`Linked: messages now go both ways between this room and ${remote}`));
  assert.deepEqual(linkRequests(remote).map((r) => r.body), [{ room: remote, matrixRoomId: room.roomId, requestedBy: ALICE }], 'the network was asked, once');
  const record = await recordOf(room.roomId);
  assert.equal(record?.kind, 'linked');
  assert.deepEqual({ ...record, linkedAt: 0 }, { kind: 'linked', roomId: room.roomId, alias: `#irc_${remote}:example.org`, remoteRoom: remote, linkedBy: ALICE, linkedAt: 0 });
  assert.equal((await as.store.getAlias(`#irc_${remote}:example.org` as RoomAlias))?.roomId, room.roomId, "the network room's one record names the room");
  assert.equal(network.received.filter((r) => r.path === '/messages' && r.body.id === command.eventId).length, 0, 'a command is never delivered');

  // Matrix → network.
  const hello = await say(BOB, room, 'hello from matrix');
  assert.deepEqual(deliveredTo(remote).map((m) => [m.id, m.body, m.sender.userId]), [[hello.eventId, 'hello from matrix', BOB]]);
  // Network → Matrix: Dave is invited by the bot (the room is invite-only) and joins, then speaks.
  const answer = await send('messages', { id: uniq('irc-'), room: remote, sender: { id: 'dave' }, body: 'hello from irc' });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const posted = room.events.find((e) => e.eventId === answer.body.event_id);
  assert.equal(posted?.sender, '@irc_dave:example.org');
  assert.equal(posted?.content.body, 'hello from irc');
  assert.ok(room.members.has('@irc_dave:example.org'));
  assert.equal(room.name ?? as.hs.currentState(room.roomId, 'm.room.name')?.name, 'Lobby', "the community's room keeps its name");

  // The room details the network sends are the community's to set, not the network's.
  const details = await send(`rooms/${enc(remote)}`, { name: 'renamed by irc' });
  assert.equal(details.status, 200);
  assert.equal(as.hs.currentState(room.roomId, 'm.room.name')?.name, 'Lobby');

  // !bridge status and help.
  await say(BOB, room, '!bridge status');
  assert.match(lastNotice(room), new RegExp(`bridged to the network room ${remote} \\(linked by ${ALICE}\\)`));
  assert.match(lastNotice(room), /Your permission: link; your power level here: 0 \(linking takes 50\)/);
  await say(BOB, room, '!bridge help');
  assert.match(lastNotice(room), /!bridge unlink/);
});

test('refused: too low a power level, no permission (none, relay, a federated server), a network room bridged already, a room bridged already', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE, [BOB, MUTE, STRANGER, SPAMMER]);
  for (const u of [MUTE, STRANGER, SPAMMER]) as.hs.setPowerLevel(room.roomId, u, 100);
  const tries: Array<[string, RegExp]> = [
    [BOB, /takes power level 50 in the room, and they have 0/],
    [MUTE, /takes the "link" permission, and the bridge gives "none"/],
    [STRANGER, /takes the "link" permission, and the bridge gives "relay"/],
    [SPAMMER, /takes the "link" permission, and the bridge gives "none"/],
  ];
  for (const [who, why] of tries) {
    await say(who, room, `!bridge link ${remote}`);
    assert.match(lastNotice(room), why, who);
  }
  assert.equal(linkRequests(remote).length, 0, 'the network was never asked');
  assert.equal(await recordOf(room.roomId), undefined);

  // A network room with a room the bridge made for its alias: refused, naming that room.
  const portal = await bridgedRoom(as, network);
  await say(ALICE, room, `!bridge link ${portal.remote}`);
  assert.match(lastNotice(room), new RegExp(`already bridged to ${portal.room.roomId.replace(/[.$]/g, '\\$&')}, a room the bridge made: a bridge admin must unlink it first`));

  // Linked once; a second link of the room (to another network room) is refused too.
  await say(ALICE, room, `!bridge link ${remote}`);
  assert.equal((await recordOf(room.roomId))?.kind, 'linked');
  const other = networkRoom();
  await say(ALICE, room, `!bridge link ${other}`);
  assert.match(lastNotice(room), /this room is already bridged to the network room/);
  // And another room may not take the linked network room.
  const second = await communityRoom(ALICE);
  await say(ALICE, second, `!bridge link ${remote}`);
  assert.match(lastNotice(second), new RegExp(`already linked to ${room.roomId.replace(/[.$]/g, '\\$&')} by ${ALICE}`));
  assert.equal(await recordOf(second.roomId), undefined);
});

test('a federated user with the link permission and the power level links; one without the permission is not relayed, and told once', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE, [FRIEND, MUTE]);
  as.hs.setPowerLevel(room.roomId, FRIEND, 50);
  await push(room.roomId, as.hs.userSend(FRIEND, room.roomId, 'm.room.message', { msgtype: 'm.text', body: `!bridge link ${remote}` }));
  assert.equal((await recordOf(room.roomId))?.kind, 'linked', lastNotice(room));
  assert.equal((await recordOf(room.roomId)) && (await recordOf(room.roomId) as any).linkedBy, FRIEND);

  const first = await say(MUTE, room, 'can anyone hear me');
  const again = await say(MUTE, room, 'hello?');
  const heard = await say(ALICE, room, 'I can');
  assert.deepEqual(deliveredTo(remote).map((m) => m.id), [heard.eventId], "none: the muted user's messages are not delivered");
  const told = notices(room).filter((n) => n.includes(`${MUTE}: what you say here is not bridged`));
  assert.equal(told.length, 1, 'told once per room');
  assert.ok(room.events.some((e) => e.sender === BOT && (e.content['m.relates_to'] as any)?.['m.in_reply_to']?.event_id === first.eventId));
  assert.ok(!room.events.some((e) => e.sender === BOT && (e.content['m.relates_to'] as any)?.['m.in_reply_to']?.event_id === again.eventId));
});

test('the network may refuse a link: the reason is shown, nothing is recorded, and the network room stays free', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE);
  network.refuseLinks(remote, 403, 'the channel operators said no');
  try {
    await say(ALICE, room, `!bridge link ${remote}`);
    assert.match(lastNotice(room), /the network refused to link .*: the channel operators said no/);
    assert.equal(await recordOf(room.roomId), undefined);
    const api = await provision('POST', `/rooms/${enc(room.roomId)}/links`, { ...asOperator(ALICE), body: { remote_room: remote } });
    assert.equal(api.status, 403);
    assert.equal(api.body.errcode, 'ORG.MATRIX_APPSERVICE_LAMBDA.NETWORK_REFUSED');
    assert.equal(api.body.reason, 'the channel operators said no');
  } finally {
    network.clearLinkRefusals();
  }
  // The refusal released the network room: the link goes through now.
  await say(ALICE, room, `!bridge link ${remote}`);
  assert.equal((await recordOf(room.roomId))?.kind, 'linked', lastNotice(room));
});

test('!bridge unlink: bridging stops both ways, the network is told, its users leave; the room and the bot stay', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE, [BOB]);
  await say(ALICE, room, `!bridge link ${remote}`);
  const record = await recordOf(room.roomId);
  const before = await send('messages', { id: uniq('irc-'), room: remote, sender: { id: 'dave' }, body: 'before' });
  assert.equal(before.status, 200);
  assert.ok(room.members.has('@irc_dave:example.org'));

  // Bob is not a moderator: refused.
  await say(BOB, room, '!bridge unlink');
  assert.match(lastNotice(room), /takes power level 50/);
  assert.equal((await recordOf(room.roomId))?.kind, 'linked');

  await say(ALICE, room, '!bridge unlink');
  assert.match(lastNotice(room), new RegExp(`Unlinked from ${remote}`));
  assert.equal(await recordOf(room.roomId), undefined);
  assert.equal(await as.store.getAlias(`#irc_${remote}:example.org` as RoomAlias), undefined);
  assert.deepEqual(network.acceptedUnlinks.filter((u) => u.room === remote), [{ room: remote, matrixRoomId: room.roomId, requestedBy: ALICE }]);
  assert.ok(!room.members.has('@irc_dave:example.org'), "the network's users left");
  assert.ok(room.members.has(BOT) && room.members.has(ALICE), 'the room and the bot stay');

  // A warm Lambda that still remembers the room as linked (say, the push function, while the
  // unlink came through the provisioning API) does not trust its memory of a linked room.
  (await getBridge()).roomCache.set(room.roomId as RoomId, { ...(record as LinkedRoom) });
  const after = await say(ALICE, room, 'anyone still there?');
  assert.deepEqual(deliveredTo(remote).filter((m) => m.id === after.eventId), [], 'nothing goes out any more');
  const late = await send('messages', { id: uniq('irc-'), room: remote, sender: { id: 'dave' }, body: 'after' });
  assert.equal(late.status, 202, 'kept for a room nobody has joined, not posted here');
  assert.ok(!room.events.some((e) => e.content.body === 'after'));
  await say(ALICE, room, '!bridge unlink');
  assert.match(lastNotice(room), /is not bridged/);
});

test('unlinking a room the bridge made takes an admin; the admin may unlink it, and its network room can then be linked elsewhere', async () => {
  const portal = await bridgedRoom(as, network, [ALICE, ADMIN]);
  portal.room.moderators.add(ALICE);
  const byAlice = await provision('DELETE', `/rooms/${enc(portal.room.roomId)}/links`, asOperator(ALICE));
  assert.equal(byAlice.status, 403);
  assert.match(byAlice.body.error, /only a bridge admin may unlink it/);
  const byAdmin = await provision('DELETE', `/rooms/${enc(portal.room.roomId)}/links`, asOperator(ADMIN));
  assert.equal(byAdmin.status, 200, JSON.stringify(byAdmin.body));
  assert.equal(byAdmin.body.unlinked.kind, 'alias');
  assert.equal(as.hs.aliases.get(portal.alias), undefined, 'its alias no longer leads there');
  const room = await communityRoom(ALICE);
  await say(ALICE, room, `!bridge link ${portal.remote}`);
  assert.equal((await recordOf(room.roomId))?.kind, 'linked', lastNotice(room));
  // The alias query for the network room now leads to the linked room.
  const query = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${enc(portal.alias)}` });
  assert.equal(query.status, 200);
  assert.equal(as.hs.aliases.get(portal.alias), room.roomId);
});

test('two links of one network room at once: one wins, the other is told it is linked already; two of one room: the same', async () => {
  const remote = networkRoom();
  const [a, b] = [await communityRoom(ALICE), await communityRoom(ALICE)];
  const answers = await Promise.all([a, b].map((r) => provision('POST', `/rooms/${enc(r.roomId)}/links`, { ...asOperator(ALICE), body: { remote_room: remote } })));
  assert.deepEqual(answers.map((r) => r.status).sort(), [200, 409], JSON.stringify(answers.map((r) => r.body)));
  const lost = answers.find((r) => r.status === 409)!;
  assert.equal(lost.body.errcode, 'ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED');
  const winner = answers.find((r) => r.status === 200)!.body.room_id;
  assert.equal((await as.store.getAlias(`#irc_${remote}:example.org` as RoomAlias))?.roomId, winner);
  const records = await Promise.all([a, b].map((r) => recordOf(r.roomId)));
  assert.deepEqual(records.filter(Boolean).map((r) => r!.roomId), [winner], 'one room linked');

  // One Matrix room, two network rooms at once.
  const room = await communityRoom(ALICE);
  const [x, y] = [networkRoom(), networkRoom()];
  const both = await Promise.all([x, y].map((remote) => provision('POST', `/rooms/${enc(room.roomId)}/links`, { ...asOperator(ALICE), body: { remote_room: remote } })));
  assert.deepEqual(both.map((r) => r.status).sort(), [200, 409], JSON.stringify(both.map((r) => r.body)));
  const linked = both.find((r) => r.status === 200)!.body.remote_room;
  const free = linked === x ? y : x;
  assert.equal((await recordOf(room.roomId))?.kind, 'linked');
  // The loser's network room is free again (its lock released), and the network was told when it had approved.
  const elsewhere = await communityRoom(ALICE);
  const again = await provision('POST', `/rooms/${enc(elsewhere.roomId)}/links`, { ...asOperator(ALICE), body: { remote_room: free } });
  assert.equal(again.status, 200, JSON.stringify(again.body));
});

test('the provisioning API: the operator secret or a Matrix OpenID token; status, links, link, unlink, every link for admins; clear errors', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE);
  const path = `/rooms/${enc(room.roomId)}`;

  assert.equal((await provision('GET', path)).body.errcode, 'M_MISSING_TOKEN');
  const wrong = await provision('GET', path, { token: 'not-a-token' });
  assert.deepEqual([wrong.status, wrong.body.errcode], [401, 'M_UNKNOWN_TOKEN']);
  const noUser = await provision('GET', path, { token: SECRET });
  assert.deepEqual([noUser.status, noUser.body.errcode], [400, 'M_MISSING_PARAM']);
  const badRoom = await provision('GET', '/rooms/not-a-room', asOperator(ALICE));
  assert.deepEqual([badRoom.status, badRoom.body.errcode], [400, 'M_INVALID_PARAM']);
  const wrongMethod = await provision('PUT', `${path}/links`, asOperator(ALICE));
  assert.deepEqual([wrongMethod.status, wrongMethod.body.errcode], [405, 'M_UNRECOGNIZED']);
  const noBody = await provision('POST', `${path}/links`, { ...asOperator(ALICE), body: {} });
  assert.deepEqual([noBody.status, noBody.body.errcode], [400, 'M_MISSING_PARAM']);
  const badBody = await provision('POST', `${path}/links`, { ...asOperator(ALICE), body: { remote_room: 7 } });
  assert.deepEqual([badBody.status, badBody.body.errcode], [400, 'M_BAD_JSON']);

  // Alice's own OpenID token, verified with the homeserver.
  const token = as.hs.openIdToken(ALICE);
  const status = await provision('GET', path, { token });
  assert.equal(status.status, 200, JSON.stringify(status.body));
  assert.deepEqual(status.body, { room_id: room.roomId, user_id: ALICE, bridged: null, permission: 'link', bot_joined: true, power_level: 100, needed_power_level: 50, can_link: true, can_unlink: false });
  assert.ok(as.hs.calls.some((c) => c.path === '/_matrix/federation/v1/openid/userinfo'), 'asked the homeserver');
  const notHers = await provision('GET', path, { token, userId: BOB });
  assert.deepEqual([notHers.status, notHers.body.errcode], [403, 'M_FORBIDDEN']);

  const linked = await provision('POST', `${path}/links`, { token, body: { remote_room: remote } });
  assert.equal(linked.status, 200, JSON.stringify(linked.body));
  assert.deepEqual({ ...linked.body, linked_at: 0 }, { room_id: room.roomId, kind: 'linked', remote_room: remote, alias: `#irc_${remote}:example.org`, linked_by: ALICE, linked_at: 0 });
  assert.match(lastNotice(room), new RegExp(`now bridged to ${remote}.*linked by ${ALICE}`), 'the room is told');
  const links = await provision('GET', `${path}/links`, { token });
  assert.deepEqual(links.body.links.map((l: any) => l.remote_room), [remote]);

  // Every link: admins only, paged.
  const notAdmin = await provision('GET', '/links', asOperator(ALICE));
  assert.deepEqual([notAdmin.status, notAdmin.body.errcode], [403, 'M_FORBIDDEN']);
  const all = await provision('GET', '/links', asOperator(ADMIN));
  assert.equal(all.status, 200);
  assert.ok(all.body.links.some((l: any) => l.room_id === room.roomId && l.remote_room === remote));
  const badPage = await provision('GET', '/links', { ...asOperator(ADMIN), query: { from: 'garbage' } });
  assert.equal(badPage.status, 400);

  // The bot out of a room it may not join: invite it first.
  const { room: closed } = as.hs.userCreateRoom(ALICE, { preset: 'private_chat' });
  const shut = await provision('POST', `/rooms/${enc(closed.roomId)}/links`, { ...asOperator(ALICE), body: { remote_room: networkRoom() } });
  assert.deepEqual([shut.status, shut.body.errcode], [403, 'ORG.MATRIX_APPSERVICE_LAMBDA.BOT_NOT_IN_ROOM']);
  // A public room the user may not link: the bot joined to read it, and leaves again.
  const { room: theirs } = as.hs.userCreateRoom(ALICE, { preset: 'public_chat' });
  as.hs.userJoinRoom(BOB, theirs.roomId);
  const byBob = await provision('POST', `/rooms/${enc(theirs.roomId)}/links`, { ...asOperator(BOB), body: { remote_room: networkRoom() } });
  assert.deepEqual([byBob.status, byBob.body.errcode], [403, 'M_FORBIDDEN']);
  assert.ok(!theirs.members.has(BOT), 'the bot left again: a user who may not link cannot send it into a room');
  // Someone not in a room may not see what it is bridged to, nor link it, whatever power level the room once gave them.
  as.hs.setPowerLevel(room.roomId, BOB, 100);
  const outsider = await provision('GET', path, asOperator(BOB));
  assert.deepEqual([outsider.status, outsider.body.errcode], [403, 'M_FORBIDDEN']);
  const outsiderLinks = await provision('POST', `/rooms/${enc(room.roomId)}/links`, { ...asOperator(BOB), body: { remote_room: networkRoom() } });
  assert.match(outsiderLinks.body.error, /not in the room/);
  // A public room: the bot joins by itself.
  const { room: open } = as.hs.userCreateRoom(ALICE, { preset: 'public_chat' });
  const joined = await provision('POST', `/rooms/${enc(open.roomId)}/links`, { ...asOperator(ALICE), body: { remote_room: networkRoom() } });
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  assert.ok(open.members.has(BOT));

  const unlinked = await provision('DELETE', `${path}/links`, { token });
  assert.equal(unlinked.status, 200);
  const gone = await provision('DELETE', `${path}/links`, { token });
  assert.deepEqual([gone.status, gone.body.errcode], [404, 'M_NOT_FOUND']);

  // Neither the secret nor the OpenID token reaches a log line.
  for (const line of as.logs) {
    assert.ok(!line.includes(SECRET), 'the provisioning secret is not logged');
    assert.ok(!line.includes(token), 'the OpenID token is not logged');
  }
});

test('a linked room is a full portal: people coming and going, an edit from the network, a reply and a reaction from Matrix, as in a room the bridge made', async () => {
  const remote = networkRoom();
  const room = await communityRoom(ALICE);
  as.hs.options.recordMembership = true;
  after(() => void (as.hs.options.recordMembership = false));
  await say(ALICE, room, `!bridge link ${remote}`);
  assert.equal((await recordOf(room.roomId))?.kind, 'linked', lastNotice(room));

  // A network user joins (invited by the bot, the room being invite-only), then speaks; a Matrix user joins.
  const joined = await send('members', { room: remote, user: { id: 'erin', displayName: 'Erin' }, membership: 'join' });
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  assert.ok(room.members.has('@irc_erin:example.org'));
  as.hs.userInvite(ALICE, room.roomId, BOB);
  const bobJoins = as.hs.userJoinRoom(BOB, room.roomId);
  await push(room.roomId, bobJoins);
  assert.deepEqual(
    network.received.filter((r) => r.path === '/members' && r.body?.id === bobJoins.eventId).map((r) => [r.body.room, r.body.user.userId, r.body.membership]),
    [[remote, BOB, 'join']],
  );

  // Network → Matrix: a message, its edit, a reply to Bob's message, a reaction.
  const said = await send('messages', { id: uniq('irc-'), room: remote, sender: { id: 'erin' }, body: 'helo' });
  assert.equal(said.status, 200, JSON.stringify(said.body));
  const first = room.events.find((e) => e.eventId === said.body.event_id)!;
  assert.equal(first.sender, '@irc_erin:example.org');
  const originalId = String((await as.store.mappingOfEvent(first.eventId))?.networkId ?? '');
  assert.ok(originalId, 'the message mapping names the network id');
  const edit = await send('edits', { id: uniq('irc-edit-'), room: remote, sender: { id: 'erin' }, target: originalId, body: 'hello' });
  assert.equal(edit.status, 200, JSON.stringify(edit.body));
  const replacement = room.events.find((e) => e.eventId === edit.body.event_id);
  assert.equal((replacement?.content['m.relates_to'] as any)?.rel_type, 'm.replace');

  // Matrix → network: Bob replies to Erin's message and reacts to it.
  const reply = as.hs.userSend(BOB, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'hi erin', 'm.relates_to': { 'm.in_reply_to': { event_id: first.eventId } } });
  const reaction = as.hs.userSend(BOB, room.roomId, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: first.eventId, key: '👋' } });
  await push(room.roomId, reply, reaction);
  const [out] = deliveredTo(remote).filter((m) => m.id === reply.eventId);
  assert.deepEqual(out.replyTo, { eventId: first.eventId, id: originalId });
  const [react] = network.received.filter((r) => r.path === '/reactions' && r.body?.id === reaction.eventId).map((r) => r.body);
  assert.deepEqual([react.room, react.key, react.target.id], [remote, '👋', originalId]);
});
