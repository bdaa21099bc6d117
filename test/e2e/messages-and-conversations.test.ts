/**
 * Rich messages (issue 23) and conversations (issue 24) end to end over real HTTP: `npm start`'s
 * server (its front, serverless-offline on serverless.yml, DynamoDB Local, the local delivery
 * queue), the webhook adapter against the fake network, the fake HS. One npm start for both
 * scenarios, one after the other on the same server, fake HS and fake network (each npm start
 * costs a JVM, esbuild and serverless-offline, so most of this file's time is the start); each
 * scenario counts what the network received from a mark taken when it begins.
 *
 * Rich messages: an image, a reply, an edit and a redaction each way:
 * - Matrix -> network: a Matrix user's events, pushed as the HS pushes them, reach the network as
 *   POST /messages (the image's pre-signed link, fetched from the local server, gives the exact
 *   bytes), /edits and /deletions, naming targets by the network's own ids;
 * - network -> Matrix: the network uploads binary bytes (POST /network/media, signed over the raw
 *   bytes; one byte over 4 MiB is the function's own 413) and posts a message with them, a reply,
 *   an edit, a reaction and a deletion, which the HS holds as m.image, m.in_reply_to, m.replace,
 *   m.annotation and a redaction; pushed back to the AS, none of them echoes to the network.
 *
 * Conversations, with the fake HS recording membership events from then on (as a real HS has
 * them to push):
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
 *
 * Linking (issue 25): Alice invites the bridge bot into her own room, says `!bridge link #lobby`;
 * the network approves (POST /links), and a message goes each way; the provisioning API, with her
 * OpenID token, says the room is linked.
 *
 * Every request and answer both ways is checked against docs/network-api.yaml and the CS spec.
 * The server starts in a `before` hook, so that a start that fails still lets the after hooks end
 * it; the last test ends with the clean stop (Ctrl-C), which runs even when an earlier one fails
 * (node:test goes on to the next test), and the support's after hook kills whatever a failed
 * test leaves running.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeHs, synapseQueryPath } from '../support/fake-hs.js';
import type { FakeEvent, FakeRoom } from '../support/fake-hs.js';
import { startFakeNetwork } from '../support/fake-network.js';
import { eventually, start, stopAndCheck } from '../support/local-server.js';
import type { Running } from '../support/local-server.js';
import { checkAsAnswer, checkAsRequest } from '../support/network-api.js';

const DIR = mkdtempSync(join(tmpdir(), 'mal-messages-conversations-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const network = await startFakeNetwork();
after(async () => {
  await network.close();
  rmSync(DIR, { recursive: true, force: true });
});
const tokens = { as: 'msgconv-as-token-0123456789abcdef', hs: 'msgconv-hs-token-0123456789abcdef' };
const hs = await startFakeHs({ asToken: tokens.as, serverName: 'localhost', userPrefix: 'irc_', senderLocalpart: 'ircbot' });
after(() => hs.close());

let run: Running;
let hsAuth: { authorization: string };
before(async () => {
  run = await start(hs.url, {
    REGISTRATION_FILE,
    AS_TOKEN: tokens.as,
    HS_TOKEN: tokens.hs,
    NETWORK: 'webhook',
    NETWORK_URL: network.url,
    NETWORK_SECRET: network.secret,
  });
  const reg = parse(readFileSync(REGISTRATION_FILE, 'utf8'));
  hsAuth = { authorization: `Bearer ${reg.hs_token}` };
  hs.askAsAboutAlias = (a) => fetch(run.url + synapseQueryPath('rooms', a), { headers: hsAuth, signal: AbortSignal.timeout(20_000) });
});

const ALICE = '@alice:localhost';
/** Rich messages: the network user Bob's virtual user. */
const BOB = '@irc__bob:localhost';
/** A PNG's signature, then every byte value: 0x00, and bytes >= 0x80 that are no valid UTF-8. */
const imageBytes = (seed: number) => Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(Array.from({ length: 256 }, (_, i) => (i + seed) % 256)), Buffer.from([0xff, 0xfe, 0x00, 0xc0, 0xaf])]);
/** Conversations: network users and their virtual users. */
const DAVE = '@irc_dave:localhost';
const ERIN = '@irc_erin:localhost';
const FRANK = '@irc_frank:localhost';
const GINA = '@irc_gina:localhost';

test('rich messages through npm start: an image, a reply, an edit and a redaction, Matrix to network and network to Matrix', { timeout: 300_000 }, async () => {
  network.rooms.set('#rich', { name: '#rich' });
  network.users.set('Bob', { displayName: 'Bob' });
  /** What the network had accepted before this scenario. */
  const messagesBefore = network.acceptedBy.messages.length;

  /** What the AS answered the network that docs/network-api.yaml does not allow (and what the test sent that it does not). */
  const asApiErrors: string[] = [];
  /** The network calls the AS over real HTTP: the request and the answer are checked against the contract. */
  const fromNetwork = async (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}) => {
    const sent = body && headers['content-type'] === 'application/json' ? JSON.parse(body.toString('utf8')) : body;
    for (const e of checkAsRequest(method, path, sent, headers)) asApiErrors.push(`${method} ${path}: ${e}`);
    const res = await fetch(run.url + path, { method, body: body && new Uint8Array(body), headers, signal: AbortSignal.timeout(20_000) });
    const bytes = Buffer.from(await res.arrayBuffer());
    const contentType = res.headers.get('content-type') ?? undefined;
    const json = contentType?.startsWith('application/json') ? JSON.parse(bytes.toString('utf8')) : undefined;
    for (const e of checkAsAnswer(method, path, res.status, json ?? bytes, contentType)) asApiErrors.push(`answer ${res.status} to ${method} ${path}: ${e}`);
    return { status: res.status, body: json, bytes, headers: res.headers };
  };
  const post = (kind: 'messages' | 'edits' | 'deletions' | 'reactions', m: Record<string, unknown>) => {
    const raw = Buffer.from(JSON.stringify({ sender: { id: 'Bob' }, ts: Date.now(), room: '#rich', ...m }));
    return fromNetwork('POST', `/network/${kind}`, raw, { 'content-type': 'application/json', 'x-signature': network.signBytes(raw) });
  };
  let txn = 0;
  /** The HS pushes these events to the AS (as the walkthrough does, over real HTTP). */
  const push = async (events: FakeEvent[]) => {
    const res = await fetch(`${run.url}/_matrix/app/v1/transactions/rich-${++txn}`, {
      method: 'PUT',
      body: JSON.stringify({ events: events.map((e) => hs.clientEvent(roomId, e)) }),
      headers: { 'content-type': 'application/json', ...hsAuth },
      signal: AbortSignal.timeout(20_000),
    });
    assert.deepEqual([res.status, await res.json()], [200, {}]);
  };
  /** A Matrix user does something; the HS pushes it; the network gets it (the n-th accepted delivery of its kind). */
  const matrixSends = async (kind: 'messages' | 'edits' | 'deletions', ev: FakeEvent) => {
    const n = network.acceptedBy[kind].length;
    await push([ev]);
    await eventually(`${ev.eventId} reached the network as POST /${kind}`, () => network.acceptedBy[kind].length > n);
    const got = network.acceptedBy[kind][n];
    assert.equal(got.id, ev.eventId);
    return got;
  };

  // The room: asked for by its alias, as Synapse does when Alice joins it.
  const alias = '#irc_#rich:localhost';
  const q = await fetch(run.url + synapseQueryPath('rooms', alias), { headers: hsAuth, signal: AbortSignal.timeout(20_000) });
  assert.equal(q.status, 200);
  const roomId = hs.aliases.get(alias)!;
  const room = hs.rooms.get(roomId)!;
  room.members.add(ALICE);
  const event = (eventId: string) => room.events.find((e) => e.eventId === eventId)!;

  // Bob asks something: the message Alice will answer.
  const question = await post('messages', { id: 'irc-q', body: 'who has a cat?' });
  assert.equal(question.status, 200, JSON.stringify(question.body));
  const questionEvent = question.body.event_id as string;

  // ---------------------------------------------------------------- Matrix -> network
  // (1) An image: the network gets its info and a pre-signed link to the local server, whose
  // answer is the exact bytes (binary, through serverless-offline and the front).
  const alicePng = imageBytes(0);
  const mxc = hs.addMedia(alicePng, 'image/png', 'alice-cat.png', ALICE);
  const image = hs.userSend(ALICE, roomId, 'm.room.message', { msgtype: 'm.image', body: 'alice-cat.png', url: mxc, info: { mimetype: 'image/png', size: alicePng.length, w: 4, h: 3 } });
  const outImage = await matrixSends('messages', image);
  assert.equal(outImage.msgtype, 'm.image');
  const { url, ...media } = outImage.media;
  assert.deepEqual(media, { mxc, filename: 'alice-cat.png', mimetype: 'image/png', size: alicePng.length, width: 4, height: 3 });
  assert.ok(typeof url === 'string' && url.startsWith(`${run.url}/network/media/localhost/`), `a link to npm start's server (AS_URL): ${url}`);
  const link = new URL(url);
  const got = await fromNetwork('GET', link.pathname + link.search);
  assert.equal(got.status, 200, got.bytes.toString());
  assert.ok(got.bytes.equals(alicePng), `the exact bytes: got ${got.bytes.toString('hex')}`);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.equal(got.headers.get('content-length'), String(alicePng.length));

  // (2) A reply to Bob's message: replyTo names it by the network's own id, the fallback is gone.
  const reply = hs.userSend(ALICE, roomId, 'm.room.message', {
    msgtype: 'm.text',
    body: '> <@irc__bob:localhost> who has a cat?\n\nI do!',
    format: 'org.matrix.custom.html',
    formatted_body: `<mx-reply><blockquote><a href="https://matrix.to/#/${questionEvent}">In reply to</a> who has a cat?</blockquote></mx-reply>I do!`,
    'm.relates_to': { 'm.in_reply_to': { event_id: questionEvent } },
  });
  const outReply = await matrixSends('messages', reply);
  assert.deepEqual(outReply.replyTo, { eventId: questionEvent, id: 'irc-q' });
  assert.equal(outReply.body, 'I do!');
  assert.equal(outReply.formattedBody, 'I do!');
  const replyNetId = network.networkIds.get(reply.eventId);
  assert.ok(replyNetId, 'the network answered an id for the reply');

  // (3) An edit of the reply: POST /edits, the target by the id the network answered for it.
  const edit = hs.userSend(ALICE, roomId, 'm.room.message', {
    msgtype: 'm.text',
    body: '* I do, two!',
    'm.new_content': { msgtype: 'm.text', body: 'I do, two!' },
    'm.relates_to': { rel_type: 'm.replace', event_id: reply.eventId },
  });
  const outEdit = await matrixSends('edits', edit);
  assert.deepEqual(outEdit.target, { eventId: reply.eventId, id: replyNetId });
  assert.deepEqual([outEdit.msgtype, outEdit.body], ['m.text', 'I do, two!']);

  // (4) Alice redacts her image: POST /deletions of it.
  const redaction = hs.userRedact(ALICE, roomId, image.eventId, 'wrong cat');
  const outDeletion = await matrixSends('deletions', redaction);
  assert.deepEqual(outDeletion.target, { eventId: image.eventId, id: network.networkIds.get(image.eventId) });
  assert.equal(outDeletion.reason, 'wrong cat');
  assert.equal(outDeletion.sender.userId, ALICE);
  assert.equal(network.acceptedBy.messages.length - messagesBefore, 2, 'an edit and a redaction are no new messages');

  // ---------------------------------------------------------------- network -> Matrix
  // (5) Bob uploads an image: the raw bytes, signed over exactly those bytes.
  const bobPng = imageBytes(128);
  const up = await fromNetwork('POST', '/network/media?sender=Bob&filename=cat.png', bobPng, { 'content-type': 'image/png', 'x-signature': network.signBytes(bobPng) });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  const contentUri = up.body.contentUri as string;
  assert.match(contentUri, /^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/);
  const stored = hs.media.get(contentUri.split('/').pop()!)!;
  assert.ok(stored.bytes.equals(bobPng), `the homeserver holds the exact bytes: got ${stored.bytes.toString('hex')}`);
  assert.deepEqual([stored.contentType, stored.filename, stored.uploader], ['image/png', 'cat.png', BOB]);

  // One byte over the contract's 4 MiB: the function's own 413, nothing stored.
  const mediaCount = hs.media.size;
  const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0xff);
  const tooBig = await fromNetwork('POST', '/network/media?sender=Bob&filename=big.png', big, { 'content-type': 'image/png', 'x-signature': network.signBytes(big) });
  assert.deepEqual([tooBig.status, tooBig.body?.errcode], [413, 'M_TOO_LARGE'], JSON.stringify(tooBig.body));
  // 5 MiB: base64-encoded in its event it is over Lambda's 6 MB payload limit, so 413 before the function.
  const bigger = Buffer.alloc(5 * 1024 * 1024, 0xff);
  const overLambda = await fromNetwork('POST', '/network/media?sender=Bob&filename=big.png', bigger, { 'content-type': 'image/png', 'x-signature': network.signBytes(bigger) });
  assert.deepEqual([overLambda.status, overLambda.body?.errcode], [413, 'M_TOO_LARGE'], JSON.stringify(overLambda.body));
  assert.equal(hs.media.size, mediaCount);

  // (6) ... and posts it: an m.image as Bob.
  const bobImage = await post('messages', { id: 'irc-img', msgtype: 'm.image', body: 'cat.png', media: { contentUri, mimetype: 'image/png', size: bobPng.length, width: 2, height: 1 } });
  assert.equal(bobImage.status, 200, JSON.stringify(bobImage.body));
  assert.equal(event(bobImage.body.event_id).sender, BOB);
  assert.deepEqual(event(bobImage.body.event_id).content, { msgtype: 'm.image', body: 'cat.png', url: contentUri, info: { mimetype: 'image/png', size: bobPng.length, w: 2, h: 1 } });

  // (7) A reply to Alice's reply, by the id the network gave it: m.in_reply_to her event.
  const bobReply = await post('messages', { id: 'irc-r', body: 'two cats!', replyTo: replyNetId });
  assert.equal(bobReply.status, 200, JSON.stringify(bobReply.body));
  assert.deepEqual(event(bobReply.body.event_id).content['m.relates_to'], { 'm.in_reply_to': { event_id: reply.eventId } });

  // (8) Bob edits his question: an m.replace of its event.
  const bobEdit = await post('edits', { id: 'irc-e', target: 'irc-q', body: 'who has a cat? or two?' });
  assert.equal(bobEdit.status, 200, JSON.stringify(bobEdit.body));
  const editEvent = event(bobEdit.body.event_id);
  assert.equal(editEvent.sender, BOB);
  assert.deepEqual(editEvent.content['m.relates_to'], { rel_type: 'm.replace', event_id: questionEvent });
  assert.deepEqual(editEvent.content['m.new_content'], { msgtype: 'm.text', body: 'who has a cat? or two?' });
  assert.equal(editEvent.content.body, '* who has a cat? or two?');

  // Bob reacts to Alice's reply (the route beside them, through npm start too): an m.annotation.
  const bobReaction = await post('reactions', { id: 'irc-x', target: replyNetId, key: '🐈' });
  assert.equal(bobReaction.status, 200, JSON.stringify(bobReaction.body));
  assert.deepEqual(event(bobReaction.body.event_id).content['m.relates_to'], { rel_type: 'm.annotation', event_id: reply.eventId, key: '🐈' });

  // (9) Bob deletes his image: its event is redacted, by Bob.
  const bobDeletion = await post('deletions', { id: 'irc-d', target: 'irc-img', reason: 'blurry' });
  assert.equal(bobDeletion.status, 200, JSON.stringify(bobDeletion.body));
  const redactionEvent = event(bobDeletion.body.event_id);
  assert.deepEqual([redactionEvent.type, redactionEvent.sender, redactionEvent.redacts], ['m.room.redaction', BOB, bobImage.body.event_id]);
  assert.equal(event(bobImage.body.event_id).redactedBy, redactionEvent.eventId);

  // (10) The HS pushes Bob's events back to the AS, as Synapse does: none goes back to the network.
  const received = network.received.length;
  const bobs = room.events.filter((e) => e.sender === BOB && e.type !== 'm.room.member');
  assert.deepEqual(
    bobs.map((e) => e.eventId),
    [questionEvent, bobImage.body.event_id, bobReply.body.event_id, editEvent.eventId, bobReaction.body.event_id, redactionEvent.eventId],
    'the question, the image, the reply, the edit, the reaction, the redaction',
  );
  await push(bobs);
  const marker = hs.userSend(ALICE, roomId, 'm.room.message', { msgtype: 'm.text', body: 'marker' });
  await matrixSends('messages', marker);
  assert.deepEqual(network.received.slice(received).map((r) => [r.method, r.path, r.body?.id]), [['POST', '/messages', marker.eventId]]);

  assert.deepEqual(hs.specErrors, [], 'every CS request and event content the spec way');
  assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says');
  assert.deepEqual(asApiErrors, [], 'every answer to the network as docs/network-api.yaml says');
});

test('conversations through npm start: direct chats both ways, network users and Matrix users joining and leaving a channel', { timeout: 300_000 }, async () => {
  hs.options.recordMembership = true;
  network.users.set('dave', { displayName: 'Dave' });
  network.rooms.set('#chan', { name: '#chan' });
  hs.users.set(ALICE, { displayName: 'Alice' });
  /** What the network had received and accepted before this scenario (the rich messages'). */
  const receivedBefore = network.received.length;
  const messagesBefore = network.acceptedBy.messages.length;

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
    network.received.slice(receivedBefore).filter((r) => r.path === '/members').map((r) => r.body?.user?.userId),
    [ALICE, ALICE],
    'no POST /members about a virtual user, not even refused',
  );
  assert.deepEqual(network.acceptedBy.messages.slice(messagesBefore).map((b) => b.id), [hiDave.eventId, yes.eventId], 'the network heard only Alice\'s two private messages');

  assert.deepEqual(hs.specErrors, [], 'every CS request and event content the spec way');
  assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says');
  assert.deepEqual(asApiErrors, [], 'every answer to the network as docs/network-api.yaml says');
});

test('linking an existing room through npm start: the bot invited, !bridge link, a message each way', { timeout: 120_000 }, async () => {
  const LOBBY = '#lobby';
  network.rooms.set(LOBBY, { name: LOBBY });
  const linksBefore = network.acceptedLinks.length;
  const { room } = hs.userCreateRoom(ALICE, { preset: 'private_chat', name: 'Our own lobby' });
  let txn = 0;
  const push = async (events: FakeEvent[]) => {
    const res = await fetch(`${run.url}/_matrix/app/v1/transactions/link-${++txn}`, {
      method: 'PUT',
      body: JSON.stringify({ events: events.map((e) => hs.clientEvent(room.roomId, e)) }),
      headers: { 'content-type': 'application/json', ...hsAuth },
      signal: AbortSignal.timeout(20_000),
    });
    assert.deepEqual([res.status, await res.json()], [200, {}]);
  };
  const notices = () => room.events.filter((e) => e.sender === hs.botUserId && e.content.msgtype === 'm.notice').map((e) => String(e.content.body));

  // Alice invites the bot into her room; it joins and says how to link.
  await push([hs.userInvite(ALICE, room.roomId, hs.botUserId)]);
  assert.ok(room.members.has(hs.botUserId), 'the bot joined');
  assert.match(notices().at(-1) ?? '', /!bridge link <network room>/);

  await push([hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: `!bridge link ${LOBBY}` })]);
  assert.match(notices().at(-1) ?? '', /Linked: messages now go both ways between this room and #lobby/);
  assert.deepEqual(network.acceptedLinks.slice(linksBefore), [{ room: LOBBY, matrixRoomId: room.roomId, requestedBy: ALICE }], 'the network approved it');

  // Matrix -> network.
  const hello = hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'hello lobby' });
  await push([hello]);
  await eventually('Alice\'s message reached the network', () => network.acceptedBy.messages.some((b) => b.id === hello.eventId));
  const [got] = network.acceptedBy.messages.filter((b) => b.id === hello.eventId);
  assert.deepEqual([got.room, got.body, got.sender.userId], [LOBBY, 'hello lobby', ALICE]);

  // Network -> Matrix: into the linked room, as the network user (invited by the bot: the room is invite-only).
  const raw = Buffer.from(JSON.stringify({ id: 'lobby-1', room: LOBBY, sender: { id: 'dave' }, ts: Date.now(), body: 'hi from the lobby' }));
  const res = await fetch(run.url + '/network/messages', {
    method: 'POST',
    body: new Uint8Array(raw),
    headers: { 'content-type': 'application/json', 'x-signature': network.signBytes(raw) },
    signal: AbortSignal.timeout(20_000),
  });
  const answer = await res.json();
  assert.equal(res.status, 200, JSON.stringify(answer));
  const posted = room.events.find((e) => e.eventId === answer.event_id);
  assert.deepEqual([posted?.sender, posted?.content.body], ['@irc_dave:localhost', 'hi from the lobby']);

  // The provisioning API through npm start's front, with Alice's OpenID token (checked with the homeserver).
  const status = await fetch(`${run.url}/_matrix/provision/v1/rooms/${encodeURIComponent(room.roomId)}`, {
    headers: { authorization: `Bearer ${hs.openIdToken(ALICE)}` },
    signal: AbortSignal.timeout(20_000),
  });
  const seen = await status.json();
  assert.equal(status.status, 200, JSON.stringify(seen));
  assert.deepEqual([seen.user_id, seen.bridged?.kind, seen.bridged?.remote_room, seen.can_unlink], [ALICE, 'linked', LOBBY, true]);

  assert.deepEqual(hs.specErrors, [], 'every CS request and event content the spec way');
  assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says');
  await stopAndCheck(run);
});
