/**
 * People coming and going, profiles and room details, both ways (issue 24): POST /network/members,
 * /network/profile and /network/rooms/{id} through the network-inbound function as API Gateway
 * invokes it; Matrix users' joins, leaves, kicks, bans and display-name changes through push and
 * the deliver function to the fake network's POST /members and /profile (with avatars, 2.3). The fake homeserver
 * pushes member events as Synapse 1.94 does (with `unsigned.prev_content`).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { bridgedRoom, uniq } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeEvent } from './support/fake-hs.js';

const network = await startFakeNetwork();
after(() => network.close());
// AS_URL: the public URL media and avatar links are made under.
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000', AS_URL: 'https://as.example.org' });
after(() => assert.deepEqual(as.networkApiErrors, [], 'every answer to the network as docs/network-api.yaml says'));
after(() => assert.deepEqual(as.hs.specErrors, [], 'every CS request and event content the spec way'));
after(() => assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says'));
const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';

async function send(path: string, body: Record<string, unknown>) {
  const raw = JSON.stringify(body);
  return as.call('network-inbound', { method: 'POST', path: `/network/${path}`, rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
}
const push = async (roomId: string, ...events: FakeEvent[]) => {
  assert.equal(await as.pushSend(uniq('t'), { events: events.map((e) => as.hs.clientEvent(roomId, e)) }), 200);
};
const taken = (kind: string, room: string) => network.received.filter((r) => r.path === `/${kind}` && r.status === 200 && r.body?.room === room).map((r) => r.body);
const virtual = (remote: string) => `@irc_${remote}:example.org`;

test('a network user joins and leaves: the virtual user joins (with the profile given) and leaves with the reason; a repeat changes nothing', async () => {
  const { room, remote } = await bridgedRoom(as, network, [ALICE]);
  const frank = uniq('frank');
  const join = await send('members', { room: remote, user: { id: frank, displayName: 'Frank F' }, membership: 'join' });
  assert.equal(join.status, 200, JSON.stringify(join.body));
  assert.deepEqual(join.body, { room_id: room.roomId });
  assert.ok(room.members.has(virtual(frank)));
  assert.equal(as.hs.users.get(virtual(frank))?.displayName, 'Frank F');
  assert.equal((await send('members', { room: remote, user: { id: frank }, membership: 'join' })).status, 200, 'again: still 200');
  assert.equal(as.hs.users.get(virtual(frank))?.displayName, 'Frank F', 'no display name given: unchanged');

  const leave = await send('members', { room: remote, user: { id: frank }, membership: 'leave', reason: 'Quit: bye' });
  assert.equal(leave.status, 200, JSON.stringify(leave.body));
  assert.ok(!room.members.has(virtual(frank)));
  const parted = room.events.filter((e) => e.type === 'm.room.member' && e.stateKey === virtual(frank) && e.content.membership === 'leave');
  assert.deepEqual(parted.map((e) => [e.sender, e.content.reason]), [[virtual(frank), 'Quit: bye']]);
  assert.equal((await send('members', { room: remote, user: { id: frank }, membership: 'leave' })).status, 200, 'leaving again: nothing to do, 200');

  // Nothing of this goes back to the network: they are its own users.
  await push(room.roomId, ...room.events.filter((e) => e.type === 'm.room.member' && e.stateKey === virtual(frank)));
  assert.deepEqual(taken('members', remote), [], 'no echo');
});

test('before the room exists a membership is kept (202) and replayed in order with the messages when someone joins', async () => {
  const remote = uniq('early');
  network.rooms.set(remote, { name: `#${remote}` });
  const gina = uniq('gina');
  assert.equal((await send('members', { room: remote, user: { id: gina }, membership: 'join', ts: Date.now() - 2000 })).status, 202);
  const said = { id: uniq('m-'), room: remote, sender: { id: gina }, body: 'first!', ts: Date.now() - 1000 };
  assert.equal((await send('messages', said)).status, 202);
  const joined = await as.hs.userJoin(ALICE, `#irc_${remote}:example.org`);
  assert.equal(joined.status, 200, joined.error);
  const room = as.hs.rooms.get(joined.roomId!)!;
  assert.ok(room.members.has(virtual(gina)), 'the kept join was replayed');
  assert.equal(room.events.find((e) => e.type === 'm.room.message')?.content.body, 'first!');
  assert.deepEqual(await as.store.listScrollback(`#irc_${remote}:example.org`), [], 'nothing left kept');
});

test('a network user banned from the Matrix room: its join is refused, 403 with reason banned', async () => {
  const { room, remote } = await bridgedRoom(as, network, [ALICE]);
  const hank = uniq('hank');
  as.hs.ban(room.roomId, virtual(hank));
  const res = await send('members', { room: remote, user: { id: hank }, membership: 'join' });
  assert.equal(res.status, 403, JSON.stringify(res.body));
  assert.equal(res.body.reason, 'banned');
});

test('bad membership requests are 400, naming the field; an unknown room path segment is 404', async () => {
  const { remote } = await bridgedRoom(as, network, [ALICE]);
  for (const [body, field] of [
    [{ room: remote, user: { id: 'x' }, membership: 'ban' }, 'membership'],
    [{ room: remote, membership: 'join' }, 'user'],
    [{ user: { id: 'x' }, membership: 'join' }, 'room'],
    [{ room: remote, user: { id: 'x', avatarUrl: 'http://evil/' }, membership: 'join' }, 'avatarUrl'],
  ] as const) {
    const res = await send('members', body);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.error, new RegExp(field));
  }
  const unknown = await send('memberships', { room: remote });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.errcode, 'M_UNRECOGNIZED');
});

test('Matrix users coming and going reach the network: join, leave, kick (sender is the kicker), ban; invites do not', async () => {
  const { room, remote } = await bridgedRoom(as, network, []);
  room.joinRule = 'public';
  const join = as.hs.userJoinRoom(ALICE, room.roomId);
  const invite: FakeEvent = { eventId: `$${uniq('i')}`, type: 'm.room.member', sender: ALICE, stateKey: BOB, content: { membership: 'invite' }, originServerTs: Date.now() };
  room.events.push(invite);
  room.invited.add(BOB);
  const bobJoin = as.hs.userJoinRoom(BOB, room.roomId);
  const bobLeaves = as.hs.leave(room.roomId, BOB);
  const kick = as.hs.kick(room.roomId, ALICE, as.hs.botUserId, 'spam');
  const ban = as.hs.ban(room.roomId, BOB, as.hs.botUserId, 'more spam');
  await push(room.roomId, join, invite, bobJoin, bobLeaves, kick, ban);
  const got = taken('members', remote).map((b) => [b.id, b.sender.userId, b.user.userId, b.membership, b.reason]);
  assert.deepEqual(got, [
    [join.eventId, ALICE, ALICE, 'join', undefined],
    [bobJoin.eventId, BOB, BOB, 'join', undefined],
    [bobLeaves.eventId, BOB, BOB, 'leave', undefined],
    [kick.eventId, as.hs.botUserId, ALICE, 'leave', 'spam'],
    [ban.eventId, as.hs.botUserId, BOB, 'ban', 'more spam'],
  ]);
  const keys = network.received.filter((r) => r.path === '/members' && r.body?.room === remote).map((r) => r.idempotencyKey);
  assert.deepEqual(keys, got.map((g) => g[0]), 'Idempotency-Key: the event ID');
});

test('a Matrix user\'s display-name or avatar change in a bridged room reaches the network (POST /profile), with the avatar\'s bytes behind a signed link', async () => {
  const { room, remote } = await bridgedRoom(as, network, []);
  room.joinRule = 'public';
  const carol = `@${uniq('carol')}:example.org`;
  as.hs.users.set(carol, { displayName: 'Carol' });
  await push(room.roomId, as.hs.userJoinRoom(carol, room.roomId));
  const changes = as.hs.userSetProfile(carol, { displayName: 'Carol C' });
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const mxc = as.hs.addMedia(png, 'image/png', 'carol.png', carol);
  const avatar = as.hs.userSetProfile(carol, { avatarUrl: mxc });
  const same = as.hs.userSetProfile(carol, { avatarUrl: mxc });
  await push(room.roomId, ...changes.map((c) => c.event), ...avatar.map((c) => c.event), ...same.map((c) => c.event));
  const got = taken('profile', remote);
  assert.deepEqual(
    got.map((b) => [b.id, b.sender.userId, b.sender.displayName, b.sender.avatar?.mxc, b.previousDisplayName]),
    [
      [changes[0]!.event.eventId, carol, 'Carol C', undefined, 'Carol'],
      [avatar[0]!.event.eventId, carol, 'Carol C', mxc, 'Carol C'],
    ],
    'a name, then an avatar (the profile as it is now each time); the same profile again is not told',
  );
  assert.equal(taken('members', remote).filter((b) => b.user.userId === carol).length, 1, 'the join only: a change is not a new join');
  // The network fetches the avatar through the link, as any medium: the download function, as API Gateway invokes it.
  const link = new URL(got[1]!.sender.avatar.url);
  const bytes = await as.call('network-media-download', { method: 'GET', path: link.pathname, query: Object.fromEntries(link.searchParams) });
  assert.equal(bytes.status, 200);
  assert.deepEqual(bytes.bytes, png);

  // Someone who joins with an avatar comes with it; leaving carries no profile.
  const dave = `@${uniq('dave')}:example.org`;
  as.hs.users.set(dave, { displayName: 'Dave', avatarUrl: mxc });
  await push(room.roomId, as.hs.userJoinRoom(dave, room.roomId), as.hs.leave(room.roomId, dave));
  const dm = taken('members', remote).filter((b) => b.user.userId === dave);
  assert.deepEqual(dm.map((b) => [b.membership, b.user.displayName, b.user.avatar?.mxc, typeof b.user.avatar?.url]), [
    ['join', 'Dave', mxc, 'string'],
    ['leave', undefined, undefined, 'undefined'],
  ]);
});

test('profiles from the network: POST /network/profile sets the display name and an avatar uploaded as bytes; what is not given stays', async () => {
  const ivy = uniq('ivy');
  const named = await send('profile', { user: { id: ivy, displayName: 'Ivy I' } });
  assert.equal(named.status, 200, JSON.stringify(named.body));
  assert.deepEqual(named.body, { user_id: virtual(ivy) });
  assert.equal(as.hs.users.get(virtual(ivy))?.displayName, 'Ivy I');

  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  const up = await as.call('network-media-upload', { method: 'POST', path: '/network/media', query: { sender: ivy, filename: 'ivy.png' }, rawBody: png, headers: { 'content-type': 'image/png', 'x-signature': network.signBytes(png) } });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  const pictured = await send('profile', { user: { id: ivy, avatarUrl: up.body.contentUri } });
  assert.equal(pictured.status, 200, JSON.stringify(pictured.body));
  assert.equal(as.hs.users.get(virtual(ivy))?.avatarUrl, up.body.contentUri);
  assert.equal(as.hs.users.get(virtual(ivy))?.displayName, 'Ivy I', 'the display name stays');
  assert.deepEqual(await as.store.getUser(virtual(ivy) as any).then((u) => [u?.displayName, u?.avatarUrl]), ['Ivy I', up.body.contentUri], 'recorded');

  // A message whose sender names another display name changes it; one that names none does not.
  const { remote } = await bridgedRoom(as, network, [ALICE]);
  assert.equal((await send('messages', { id: uniq('m-'), room: remote, sender: { id: ivy, displayName: 'Ivy 2' }, body: 'hi', ts: Date.now() })).status, 200);
  assert.equal(as.hs.users.get(virtual(ivy))?.displayName, 'Ivy 2');
  assert.equal(as.hs.users.get(virtual(ivy))?.avatarUrl, up.body.contentUri, 'the avatar stays');

  for (const body of [{ user: { id: ivy } }, { user: { id: ivy, avatarUrl: 'https://example.com/ivy.png' } }, {}]) {
    assert.equal((await send('profile', body)).status, 400, JSON.stringify(body));
  }
});

test('DynamoDB writes per message stay constant: a sender whose profile did not change costs no write', async () => {
  const { remote } = await bridgedRoom(as, network, [ALICE]);
  const jo = uniq('jo');
  const say = (i: number) => send('messages', { id: uniq('m-'), room: remote, sender: { id: jo, displayName: 'Jo' }, body: `m${i}`, ts: Date.now() });
  assert.equal((await say(0)).status, 200);
  const itemsBefore = (await as.table.items()).length;
  for (let i = 1; i <= 4; i++) assert.equal((await say(i)).status, 200);
  assert.equal((await as.table.items()).length, itemsBefore + 4, 'one mapping item per message, nothing else');
});

test('room details from the network: POST /network/rooms/{id} sets the name and topic as the bot; a room nobody joined yet answers {}', async () => {
  const { room, remote } = await bridgedRoom(as, network, [ALICE]);
  const res = await send(`rooms/${enc(remote)}`, { name: '#renamed', topic: 'new topic' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body, { room_id: room.roomId });
  assert.deepEqual(as.hs.currentState(room.roomId, 'm.room.name'), { name: '#renamed' });
  assert.deepEqual(as.hs.currentState(room.roomId, 'm.room.topic'), { topic: 'new topic' });
  const byBot = room.events.filter((e) => e.type === 'm.room.name' || e.type === 'm.room.topic').map((e) => e.sender);
  assert.deepEqual(byBot, [as.hs.botUserId, as.hs.botUserId]);
  assert.equal((await send(`rooms/${enc(remote)}`, { topic: '' })).status, 200);
  assert.deepEqual(as.hs.currentState(room.roomId, 'm.room.topic'), { topic: '' }, '"" removes it');

  const none = await send(`rooms/${uniq('nobody')}`, { name: 'x' });
  assert.equal(none.status, 200);
  assert.deepEqual(none.body, {});
  for (const body of [{}, { name: 5 }, { topic: 'x'.repeat(4001) }]) assert.equal((await send(`rooms/${enc(remote)}`, body)).status, 400, JSON.stringify(body));
  // A network room id with a slash, read from the raw path.
  const slashed = await send(`rooms/${encodeURIComponent('a/b')}`, { name: 'x' });
  assert.equal(slashed.status, 200);
});
