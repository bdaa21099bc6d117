/**
 * Direct chats, both ways (issue 24): a Matrix user's "start a direct chat" with a network user
 * (an invite with is_direct), and a network user's private message to a Matrix user (`to`),
 * through the push and network-inbound functions as API Gateway invokes them, the deliver
 * function on its queue, DynamoDB Local, the fake homeserver (createRoom, invites and leaves as
 * Synapse 1.94 does them) and the fake network. Also: rooms recorded by the previous version
 * still bridge (their record is moved on the way).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { startAs } from './support/as.js';
import { bridgedRoom, uniq } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeEvent, FakeRoom } from './support/fake-hs.js';
import type { RoomId } from '../lib/matrix/ids.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000' });
after(() => assert.deepEqual(as.networkApiErrors, [], 'every answer to the network as docs/network-api.yaml says'));
after(() => assert.deepEqual(as.hs.specErrors, [], 'every CS request and event content the spec way'));
after(() => assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says'));
const ALICE = '@alice:example.org';

/** A network user the fake network knows, and its virtual user. */
function networkUser(): { remote: string; userId: string } {
  const remote = uniq('dave');
  network.users.set(remote, { displayName: `${remote} (irc)` });
  return { remote, userId: `@irc_${remote}:example.org` };
}

const push = async (roomId: string, ...events: FakeEvent[]) => {
  assert.equal(await as.pushSend(uniq('t'), { events: events.map((e) => as.hs.clientEvent(roomId, e)) }), 200);
};

/** The network calls the AS: POST /network/{kind}, signed. */
async function send(kind: string, body: Record<string, unknown>) {
  const raw = JSON.stringify({ ts: Date.now(), ...body });
  return as.call('network-inbound', { method: 'POST', path: `/network/${kind}`, rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
}

/** Alice starts a direct chat with the virtual user, as Element does, and the homeserver pushes it. */
async function aliceOpensDirectChat(userId: string): Promise<FakeRoom> {
  const { room, events } = as.hs.userCreateRoom(ALICE, { isDirect: true, invite: [userId] });
  await push(room.roomId, ...events);
  return room;
}

const delivered = (kind: string, where: (b: any) => boolean) => network.received.filter((r) => r.path === `/${kind}` && r.status === 200 && where(r.body)).map((r) => r.body);
const createRoomsBy = (userId: string) => as.hs.calls.filter((c) => c.path.endsWith('/createRoom') && c.query.user_id === userId);

test('Matrix opens it: an is_direct invite makes the virtual user join and the room a direct chat; what Alice says there goes to the network privately', async () => {
  const { remote, userId } = networkUser();
  const room = await aliceOpensDirectChat(userId);
  assert.ok(room.members.has(userId), 'the virtual user joined');
  assert.deepEqual((await as.store.getBridgedRooms([room.roomId as RoomId])).get(room.roomId as RoomId), {
    kind: 'direct',
    roomId: room.roomId,
    matrixUser: ALICE,
    remoteUser: remote,
  });
  assert.equal((await as.store.getDirectChat(remote, ALICE))?.roomId, room.roomId, 'the pair names the room: the network\'s answers go there');

  const said = as.hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'hi dave' });
  await push(room.roomId, said);
  const [msg] = delivered('messages', (b) => b.id === said.eventId);
  assert.deepEqual(msg.direct, { with: remote }, 'a private message to the network user');
  assert.equal(msg.room, undefined, 'no network room');
  assert.deepEqual(msg.sender, { userId: ALICE });

  // The network answers privately: the same room, no new one.
  const answer = await send('messages', { id: uniq('pm-'), to: ALICE, sender: { id: remote }, body: 'hi alice' });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const ev = room.events.find((e) => e.eventId === answer.body.event_id);
  assert.equal(ev?.sender, userId);
  assert.equal(ev?.content.body, 'hi alice');
  assert.deepEqual(createRoomsBy(userId), [], 'no room made by the virtual user');
});

test('an invite without is_direct (a group room) only joins: the room is not bridged, nothing said there reaches the network', async () => {
  const { userId } = networkUser();
  const { room, events } = as.hs.userCreateRoom(ALICE, { invite: [userId] });
  await push(room.roomId, ...events);
  assert.ok(room.members.has(userId), 'joined, as before');
  assert.equal((await as.store.getBridgedRooms([room.roomId as RoomId])).size, 0);
  const said = as.hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'group talk' });
  await push(room.roomId, said);
  assert.deepEqual(delivered('messages', (b) => b.id === said.eventId), []);
});

test('an is_direct invite into a room bridged already (an alias room) does not make it a direct chat', async () => {
  const { room, remote } = await bridgedRoom(as, network, [ALICE]);
  const { userId } = networkUser();
  room.moderators.add(ALICE);
  const invite: FakeEvent = { eventId: `$${uniq('inv')}`, type: 'm.room.member', sender: ALICE, stateKey: userId, content: { membership: 'invite', is_direct: true }, originServerTs: Date.now() };
  room.invited.add(userId);
  room.events.push(invite);
  await push(room.roomId, invite);
  assert.ok(room.members.has(userId), 'joined');
  assert.deepEqual((await as.store.getBridgedRooms([room.roomId as RoomId])).get(room.roomId as RoomId), { kind: 'alias', roomId: room.roomId, alias: `#irc_${remote}:example.org`, remoteRoom: remote });
});

test('the network opens it: a private message makes the virtual user create the direct chat (is_direct, Alice invited); the next one goes there too', async () => {
  const remote = uniq('Erin');
  const userId = `@irc_${remote.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}:example.org`;
  // The invite event as Synapse has it, for what Alice's client sees.
  as.hs.options.recordMembership = true;
  after(() => void (as.hs.options.recordMembership = false));
  const first = await send('messages', { id: uniq('pm-'), to: ALICE, sender: { id: remote, displayName: 'Erin E' }, body: 'psst' });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const [create] = createRoomsBy(userId);
  assert.ok(create, 'made by the virtual user');
  assert.equal(create.body.is_direct, true);
  assert.equal(create.body.preset, 'trusted_private_chat');
  assert.deepEqual(create.body.invite, [ALICE]);
  const chat = await as.store.getDirectChat(remote, ALICE);
  const room = as.hs.rooms.get(chat!.roomId!)!;
  assert.ok(room.invited.has(ALICE), 'Alice is invited');
  const invite = room.events.find((e) => e.type === 'm.room.member' && e.stateKey === ALICE);
  assert.equal(invite?.content.is_direct, true, 'her client files it as a direct chat');
  assert.equal(as.hs.users.get(userId)?.displayName, 'Erin E');
  assert.equal(room.events.find((e) => e.eventId === first.body.event_id)?.content.body, 'psst');

  const second = await send('messages', { id: uniq('pm-'), to: ALICE, sender: { id: remote }, body: 'still there?' });
  assert.equal(second.status, 200);
  assert.ok(room.events.some((e) => e.eventId === second.body.event_id), 'the same room');
  assert.equal(createRoomsBy(userId).length, 1, 'one room');
  assert.equal(as.hs.users.get(userId)?.displayName, 'Erin E', 'a message without a display name leaves it as it was');

  // Alice accepts and answers: delivered privately to Erin.
  as.hs.userJoinRoom(ALICE, room.roomId);
  const said = as.hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'yes' });
  await push(room.roomId, said);
  assert.deepEqual(delivered('messages', (b) => b.id === said.eventId)[0]?.direct, { with: remote });
});

test('parallel first private messages make one room, and each message is posted once', async () => {
  const { remote, userId } = networkUser();
  const ids = Array.from({ length: 6 }, () => uniq('race-'));
  const answers = await Promise.all(ids.map((id, i) => send('messages', { id, to: ALICE, sender: { id: remote }, body: `race ${i}` })));
  assert.deepEqual(answers.map((a) => a.status), ids.map(() => 200), JSON.stringify(answers.map((a) => a.body)));
  assert.equal(createRoomsBy(userId).length, 1, 'one createRoom');
  const roomId = (await as.store.getDirectChat(remote, ALICE))?.roomId;
  const room = as.hs.rooms.get(roomId!)!;
  const bodies = room.events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body).sort();
  assert.deepEqual(bodies, ids.map((_, i) => `race ${i}`).sort(), 'each once, all in that room');
});

test('Alice leaving ends the chat: the room is no longer bridged, the virtual user leaves it, the next private message makes a new one', async () => {
  const { remote, userId } = networkUser();
  const room = await aliceOpensDirectChat(userId);
  await push(room.roomId, as.hs.leave(room.roomId, ALICE));
  assert.equal((await as.store.getBridgedRooms([room.roomId as RoomId])).size, 0, 'not bridged');
  assert.equal(await as.store.getDirectChat(remote, ALICE), undefined);
  assert.ok(!room.members.has(userId), 'the virtual user left too');
  assert.deepEqual(delivered('members', (b) => b.user?.userId === ALICE), [], 'a direct chat has no network room to leave');

  const next = await send('messages', { id: uniq('pm-'), to: ALICE, sender: { id: remote }, body: 'come back' });
  assert.equal(next.status, 200, JSON.stringify(next.body));
  const chat = await as.store.getDirectChat(remote, ALICE);
  assert.ok(chat?.roomId && chat.roomId !== room.roomId, 'a new room');
  assert.ok(as.hs.rooms.get(chat.roomId)!.invited.has(ALICE));
});

test('the virtual user kicked from the chat: its next private message opens a new one instead of failing', async () => {
  const { remote, userId } = networkUser();
  const room = await aliceOpensDirectChat(userId);
  await push(room.roomId, as.hs.kick(room.roomId, userId, ALICE));
  const next = await send('messages', { id: uniq('pm-'), to: ALICE, sender: { id: remote }, body: 'let me in' });
  assert.equal(next.status, 200, JSON.stringify(next.body));
  const chat = await as.store.getDirectChat(remote, ALICE);
  assert.notEqual(chat?.roomId, room.roomId);
  assert.ok(as.hs.rooms.get(chat!.roomId!)!.events.some((e) => e.eventId === next.body.event_id));
  assert.equal((await as.store.getBridgedRooms([room.roomId as RoomId])).size, 0, 'the old one is no longer bridged');
});

test('edits, reactions and deletions name the chat with to: the target must be in the chat of the sender with that Matrix user', async () => {
  const { remote } = networkUser();
  const id = uniq('pm-');
  assert.equal((await send('messages', { id, to: ALICE, sender: { id: remote }, body: 'typo' })).status, 200);
  const edit = await send('edits', { id: uniq('e-'), to: ALICE, sender: { id: remote }, target: id, body: 'typo fixed' });
  assert.equal(edit.status, 200, JSON.stringify(edit.body));
  const react = await send('reactions', { id: uniq('r-'), to: ALICE, sender: { id: remote }, target: id, key: '👍' });
  assert.equal(react.status, 200, JSON.stringify(react.body));
  const elsewhere = await send('edits', { id: uniq('e-'), room: 'somewhere', sender: { id: remote }, target: id, body: 'x' });
  assert.equal(elsewhere.status, 404, 'not in that room');
  const otherChat = await send('deletions', { id: uniq('d-'), to: '@bob:example.org', sender: { id: remote }, target: id });
  assert.equal(otherChat.status, 404, 'not in the chat with Bob');
});

test('bad private messages: to outside Matrix user IDs, one of the bridge\'s own, or with room too, are 400 and make nothing', async () => {
  const { remote } = networkUser();
  const before = as.hs.calls.length;
  for (const [body, field] of [
    [{ to: 'alice', sender: { id: remote } }, 'to'],
    [{ to: ALICE, room: 'chan', sender: { id: remote } }, 'room'],
    [{ sender: { id: remote } }, 'room'],
    [{ to: '@irc_someone:example.org', sender: { id: remote } }, 'to'],
    [{ to: ALICE, sender: { id: remote, avatarUrl: 'https://example.com/a.png' } }, 'avatarUrl'],
  ] as const) {
    const res = await send('messages', { id: uniq('bad-'), body: 'x', ...body });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.error, new RegExp(field));
  }
  assert.deepEqual(as.hs.calls.slice(before).filter((c) => c.path.endsWith('/createRoom')), [], 'no room made');
});

test('rooms recorded by the previous version (ROOM#<roomId>/ALIAS) still bridge: the record is moved on the way', async () => {
  const { room, remote, alias } = await bridgedRoom(as, network, [ALICE]);
  // As the previous version left it: the legacy item, no record.
  await as.table.doc.send(new PutCommand({ TableName: as.table.tableName, Item: { pk: `ROOM#${room.roomId}`, sk: 'ALIAS', alias, remoteRoom: remote } }));
  await as.table.doc.send(new DeleteCommand({ TableName: as.table.tableName, Key: { pk: `ROOM#${room.roomId}`, sk: 'MAPPING' } }));
  (await as.bridge()).roomCache.clear();
  const said = as.hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'after the upgrade' });
  await push(room.roomId, said);
  assert.equal(delivered('messages', (b) => b.id === said.eventId)[0]?.room, remote);
  const items = (await as.table.items()).filter((i) => i.pk === `ROOM#${room.roomId}`);
  assert.deepEqual(items.map((i) => i.sk), ['MAPPING'], 'moved: the record alone');
});
