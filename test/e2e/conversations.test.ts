/**
 * Conversations (issue 24) end to end over real HTTP: `npm start`'s server (its front, serverless-
 * offline on serverless.yml, DynamoDB Local, the local delivery queue), the webhook adapter
 * against the fake network, the fake HS (recording membership events, as a real HS has them to
 * push). One npm start for:
 * - a direct chat opened from Matrix: Alice "starts a direct chat" with a virtual user (an
 *   is_direct invite, pushed), which joins; what she says there reaches the network as POST
 *   /messages with `direct: {with}` and no `room`, and the network's private answer (`to`) lands
 *   in the same room, as the virtual user;
 * - a direct chat opened from the network: a private message makes the virtual user create the
 *   room (is_direct, Alice invited); Alice joins and answers privately; she leaves, which ends
 *   the chat, so the next private message makes a new room;
 * - a network user joining and leaving a channel (POST /network/members, kept as 202 before the
 *   room exists and replayed when it is made), neither echoing back to the network when pushed;
 * - a Matrix user joining and leaving that channel: POST /members, keyed by the event ID.
 * Every request and answer both ways is checked against docs/network-api.yaml and the CS spec.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeHs, synapseQueryPath } from '../support/fake-hs.js';
import type { FakeEvent, FakeRoom } from '../support/fake-hs.js';
import { startFakeNetwork } from '../support/fake-network.js';
import { eventually, start, stopAndCheck } from '../support/local-server.js';
import { checkAsAnswer, checkAsRequest } from '../support/network-api.js';

const DIR = mkdtempSync(join(tmpdir(), 'mal-conversations-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const network = await startFakeNetwork();
after(async () => {
  await network.close();
  rmSync(DIR, { recursive: true, force: true });
});

const ALICE = '@alice:localhost';
/** Network users and their virtual users. */
const DAVE = '@irc_dave:localhost';
const ERIN = '@irc_erin:localhost';
const FRANK = '@irc_frank:localhost';
const GINA = '@irc_gina:localhost';

test('conversations through npm start: direct chats both ways, network users and Matrix users joining and leaving a channel', { timeout: 300_000 }, async () => {
  network.users.set('dave', { displayName: 'Dave' });
  network.rooms.set('#chan', { name: '#chan' });
  const tokens = { as: 'conv-as-token-0123456789abcdef', hs: 'conv-hs-token-0123456789abcdef' };
  const hs = await startFakeHs({ asToken: tokens.as, serverName: 'localhost', userPrefix: 'irc_', senderLocalpart: 'ircbot', recordMembership: true });
  after(() => hs.close());
  hs.users.set(ALICE, { displayName: 'Alice' });
  const run = await start(hs.url, {
    REGISTRATION_FILE,
    AS_TOKEN: tokens.as,
    HS_TOKEN: tokens.hs,
    NETWORK: 'webhook',
    NETWORK_URL: network.url,
    NETWORK_SECRET: network.secret,
  });
  const reg = parse(readFileSync(REGISTRATION_FILE, 'utf8'));
  const hsAuth = { authorization: `Bearer ${reg.hs_token}` };
  hs.askAsAboutAlias = (a) => fetch(run.url + synapseQueryPath('rooms', a), { headers: hsAuth, signal: AbortSignal.timeout(20_000) });

  /** What the AS answered the network that docs/network-api.yaml does not allow (and what the test sent that it does not). */
  const asApiErrors: string[] = [];
  /** The network calls the AS over real HTTP (signed JSON): the request and the answer are checked against the contract. */
  const fromNetwork = async (kind: 'messages' | 'members', m: Record<string, unknown>) => {
    const path = `/network/${kind}`;
    const raw = Buffer.from(JSON.stringify(m));
    const headers = { 'content-type': 'application/json', 'x-signature': network.signBytes(raw) };
    for (const e of checkAsRequest('POST', path, m, headers)) asApiErrors.push(`POST ${path}: ${e}`);
    const res = await fetch(run.url + path, { method: 'POST', body: new Uint8Array(raw), headers, signal: AbortSignal.timeout(20_000) });
    const text = await res.text();
    const contentType = res.headers.get('content-type') ?? undefined;
    const json = contentType?.startsWith('application/json') ? JSON.parse(text) : undefined;
    for (const e of checkAsAnswer('POST', path, res.status, json ?? text, contentType)) asApiErrors.push(`answer ${res.status} to POST ${path}: ${e}`);
    return { status: res.status, body: json };
  };
  let nth = 0;
  /** A private message from a network user to Alice (`to` in place of `room`). */
  const privately = (sender: Record<string, unknown>, body: string) => fromNetwork('messages', { id: `pm-${++nth}`, to: ALICE, sender, ts: Date.now(), body });

  let txn = 0;
  /** The HS pushes these events of the room to the AS (over real HTTP, as Synapse does). */
  const push = async (roomId: string, events: FakeEvent[]) => {
    const res = await fetch(`${run.url}/_matrix/app/v1/transactions/conv-${++txn}`, {
      method: 'PUT',
      body: JSON.stringify({ events: events.map((e) => hs.clientEvent(roomId, e)) }),
      headers: { 'content-type': 'application/json', ...hsAuth },
      signal: AbortSignal.timeout(20_000),
    });
    assert.deepEqual([res.status, await res.json()], [200, {}]);
  };
  /** A Matrix event, pushed, reaches the network as POST /<kind> (keyed by its event ID): what the network got. */
  const reaches = async (kind: 'messages' | 'members', roomId: string, ev: FakeEvent) => {
    await push(roomId, [ev]);
    await eventually(`${ev.eventId} reached the network as POST /${kind}`, () => network.acceptedBy[kind].some((b) => b.id === ev.eventId));
    const got = network.received.filter((r) => r.path === `/${kind}` && r.status === 200 && r.body?.id === ev.eventId);
    assert.equal(got.length, 1, `delivered once: ${ev.eventId}`);
    assert.equal(got[0]!.idempotencyKey, ev.eventId, 'Idempotency-Key: the event ID');
    return got[0]!.body;
  };
  const roomOf = (eventId: string): FakeRoom => [...hs.rooms.values()].find((r) => r.events.some((e) => e.eventId === eventId))!;
  const createRoomsBy = (userId: string) => hs.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/createRoom') && c.userId === userId);

  // ---------------------------------------------------------------- (1) a direct chat opened from Matrix
  // Alice starts a direct chat with Dave, as Element does: the invite carries is_direct.
  const { room: daveRoom, events: opening } = hs.userCreateRoom(ALICE, { isDirect: true, invite: [DAVE] });
  assert.ok(opening.some((e) => e.stateKey === DAVE && e.content.membership === 'invite' && e.content.is_direct === true), 'an is_direct invite');
  await push(daveRoom.roomId, opening);
  assert.ok(daveRoom.members.has(DAVE), 'the virtual user accepted the invite');
  assert.equal(hs.users.get(DAVE)?.displayName, 'Dave', 'registered with the profile the network gave');

  const hiDave = hs.userSend(ALICE, daveRoom.roomId, 'm.room.message', { msgtype: 'm.text', body: 'hi dave' });
  const toDave = await reaches('messages', daveRoom.roomId, hiDave);
  assert.deepEqual(toDave.direct, { with: 'dave' }, 'a private message to the network user');
  assert.ok(!('room' in toDave), `no network room: ${JSON.stringify(toDave)}`);
  assert.equal(toDave.sender.userId, ALICE);
  assert.deepEqual([toDave.msgtype, toDave.body, toDave.ts], ['m.text', 'hi dave', hiDave.originServerTs]);

  // Dave answers privately: the same room, as Dave, and no room made for it.
  const daveAnswers = await privately({ id: 'dave' }, 'hi alice');
  assert.equal(daveAnswers.status, 200, JSON.stringify(daveAnswers.body));
  const daveAnswer = daveRoom.events.find((e) => e.eventId === daveAnswers.body.event_id);
  assert.ok(daveAnswer, 'in the direct chat Alice opened');
  assert.deepEqual([daveAnswer.sender, daveAnswer.type, daveAnswer.content.msgtype, daveAnswer.content.body], [DAVE, 'm.room.message', 'm.text', 'hi alice']);
  assert.deepEqual(createRoomsBy(DAVE), [], 'no room made by the virtual user');

  // ---------------------------------------------------------------- (2) a direct chat opened from the network
  const erinSays = await privately({ id: 'erin', displayName: 'Erin E' }, 'psst, alice');
  assert.equal(erinSays.status, 200, JSON.stringify(erinSays.body));
  const [create] = createRoomsBy(ERIN);
  assert.ok(create, 'the virtual user made the room');
  assert.equal(create.status, 200);
  assert.deepEqual([create.body.is_direct, create.body.preset, create.body.invite], [true, 'trusted_private_chat', [ALICE]]);
  const erinRoom = hs.rooms.get(create.response.room_id)!;
  assert.equal(roomOf(erinSays.body.event_id), erinRoom, 'the message is in it');
  assert.equal(erinRoom.events.find((e) => e.eventId === erinSays.body.event_id)?.sender, ERIN);
  assert.ok(erinRoom.members.has(ERIN) && erinRoom.invited.has(ALICE), 'Erin in it, Alice invited');
  const invite = erinRoom.events.find((e) => e.type === 'm.room.member' && e.stateKey === ALICE);
  assert.deepEqual([invite?.sender, invite?.content.membership, invite?.content.is_direct], [ERIN, 'invite', true], 'her client files it as a direct chat');
  assert.equal(hs.users.get(ERIN)?.displayName, 'Erin E');

  // Alice accepts (pushed: a direct chat has no network room to join) and answers privately.
  const members = network.acceptedBy.members.length;
  await push(erinRoom.roomId, [hs.userJoinRoom(ALICE, erinRoom.roomId)]);
  const yes = hs.userSend(ALICE, erinRoom.roomId, 'm.room.message', { msgtype: 'm.text', body: 'yes?' });
  const toErin = await reaches('messages', erinRoom.roomId, yes);
  assert.deepEqual(toErin.direct, { with: 'erin' });
  assert.ok(!('room' in toErin), `no network room: ${JSON.stringify(toErin)}`);

  // Alice leaves: the chat is over (the virtual user leaves too), the next private message makes a new room.
  await push(erinRoom.roomId, [hs.leave(erinRoom.roomId, ALICE)]);
  assert.ok(!erinRoom.members.has(ERIN), 'the virtual user left the ended chat');
  const again = await privately({ id: 'erin' }, 'come back');
  assert.equal(again.status, 200, JSON.stringify(again.body));
  const creates = createRoomsBy(ERIN);
  assert.equal(creates.length, 2, 'a second room');
  const newRoom = hs.rooms.get(creates[1]!.response.room_id)!;
  assert.notEqual(newRoom.roomId, erinRoom.roomId);
  assert.equal(roomOf(again.body.event_id), newRoom, 'the message is in the new room');
  assert.ok(newRoom.invited.has(ALICE), 'Alice invited again');
  assert.deepEqual(creates[1]!.body.invite, [ALICE]);
  assert.equal(creates[1]!.body.is_direct, true);

  // ---------------------------------------------------------------- (3) a network user joining and leaving a channel
  // Gina joins before anyone asked for the room: kept, and replayed when the room is made.
  const early = await fromNetwork('members', { room: '#chan', user: { id: 'gina', displayName: 'Gina G' }, membership: 'join', id: 'irc-join-gina', ts: Date.now() - 1000 });
  assert.deepEqual([early.status, early.body], [202, { kept: true }]);

  // The room: asked for by its alias, as Synapse does when Alice joins it.
  const alias = '#irc_#chan:localhost';
  const q = await fetch(run.url + synapseQueryPath('rooms', alias), { headers: hsAuth, signal: AbortSignal.timeout(20_000) });
  assert.equal(q.status, 200);
  const roomId = hs.aliases.get(alias)!;
  const room = hs.rooms.get(roomId)!;
  await eventually('the kept join was replayed', () => room.members.has(GINA));
  assert.equal(hs.users.get(GINA)?.displayName, 'Gina G');

  // (4) Alice joins it: POST /members, keyed by the event ID.
  const aliceJoins = hs.userJoinRoom(ALICE, roomId);
  assert.deepEqual(await reaches('members', roomId, aliceJoins), {
    id: aliceJoins.eventId,
    room: '#chan',
    sender: { userId: ALICE },
    ts: aliceJoins.originServerTs,
    user: { userId: ALICE, displayName: 'Alice' },
    membership: 'join',
  });

  // Frank joins (with his display name) and leaves (with a reason).
  const frankJoins = await fromNetwork('members', { room: '#chan', user: { id: 'frank', displayName: 'Frank F' }, membership: 'join' });
  assert.deepEqual([frankJoins.status, frankJoins.body], [200, { room_id: roomId }]);
  assert.ok(room.members.has(FRANK), 'the virtual user joined');
  assert.equal(hs.users.get(FRANK)?.displayName, 'Frank F');
  const frankMember = () => room.events.filter((e) => e.type === 'm.room.member' && e.stateKey === FRANK);
  assert.deepEqual(frankMember().map((e) => [e.sender, e.content.membership, e.content.displayname]), [[FRANK, 'join', 'Frank F']], 'joined under that display name');
  const joined = await fetch(`${hs.url}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/joined_members`, { headers: { authorization: `Bearer ${tokens.as}` } });
  assert.equal(joined.status, 200);
  assert.equal((await joined.json()).joined[FRANK]?.display_name, 'Frank F', 'the room\'s members list him by it');

  const frankLeaves = await fromNetwork('members', { room: '#chan', user: { id: 'frank' }, membership: 'leave', reason: 'Quit: bye', id: 'irc-part-frank', ts: Date.now() });
  assert.deepEqual([frankLeaves.status, frankLeaves.body], [200, { room_id: roomId }]);
  assert.ok(!room.members.has(FRANK), 'gone from the members');
  const parted = frankMember().filter((e) => e.content.membership === 'leave');
  assert.deepEqual(parted.map((e) => [e.sender, e.content.reason]), [[FRANK, 'Quit: bye']], 'the leave event carries the reason');

  // The HS pushes Frank's and Gina's member events back: the network hears nothing of its own users.
  const virtualMembers = room.events.filter((e) => e.type === 'm.room.member' && (e.stateKey === FRANK || e.stateKey === GINA));
  assert.equal(virtualMembers.length, 3, 'Gina\'s join, Frank\'s join and leave');
  await push(roomId, virtualMembers);

  // Alice leaves: POST /members leave; and it comes after whatever the pushes above queued in this room.
  const aliceLeaves = hs.leave(roomId, ALICE);
  assert.deepEqual(await reaches('members', roomId, aliceLeaves), {
    id: aliceLeaves.eventId,
    room: '#chan',
    sender: { userId: ALICE },
    ts: aliceLeaves.originServerTs,
    user: { userId: ALICE },
    membership: 'leave',
  });
  assert.deepEqual(
    network.acceptedBy.members.slice(members).map((b) => [b.id, b.user.userId, b.membership]),
    [
      [aliceJoins.eventId, ALICE, 'join'],
      [aliceLeaves.eventId, ALICE, 'leave'],
    ],
    'only Alice\'s join and leave of the channel: nothing of the direct chat, no echo of a virtual user',
  );
  assert.deepEqual(
    network.received.filter((r) => r.path === '/members').map((r) => r.body?.user?.userId),
    [ALICE, ALICE],
    'no POST /members about a virtual user, not even refused',
  );
  assert.deepEqual(network.acceptedBy.messages.map((b) => b.id), [hiDave.eventId, yes.eventId], 'the network heard only Alice\'s two private messages');

  assert.deepEqual(hs.specErrors, [], 'every CS request and event content the spec way');
  assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says');
  assert.deepEqual(asApiErrors, [], 'every answer to the network as docs/network-api.yaml says');
  await stopAndCheck(run);
});
