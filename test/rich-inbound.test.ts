/**
 * Rich messages, network → Matrix (issue 23): formatted text (sanitised), mentions, media
 * uploaded as bytes, replies, edits, deletions and reactions, through the network-inbound and
 * media-upload functions as API Gateway invokes them, DynamoDB Local, and the fake homeserver
 * (every event content checked against the spec's own schemas). Targets are named by the
 * network's own message ids, found in the message mapping.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { bridgedRoom as bridgedRoomOf } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';
import { MESSAGES } from '../lib/defaults.js';

const network = await startFakeNetwork();
after(() => network.close());
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000', AS_URL: 'https://as.example.org' });
after(() => assert.deepEqual(as.networkApiErrors, [], 'every answer to the network as docs/network-api.yaml says'));
const ALICE = '@alice:example.org';
after(() => assert.deepEqual(as.hs.specErrors, [], 'every CS request and event content the spec way'));

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;

const bridgedRoom = () => bridgedRoomOf(as, network, [ALICE]);

/** The network calls the AS: POST /network/{kind}, signed. */
async function send(kind: 'messages' | 'edits' | 'deletions' | 'reactions', body: Record<string, unknown>) {
  const raw = JSON.stringify({ ts: Date.now(), sender: { id: 'Bob' }, ...body });
  return as.call('network-inbound', { method: 'POST', path: `/network/${kind}`, rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
}
async function say(remote: string, over: Record<string, unknown> = {}): Promise<{ id: string; eventId: string }> {
  const id = uniq('irc-');
  const res = await send('messages', { id, room: remote, body: 'hello', ...over });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { id, eventId: res.body.event_id };
}
const event = (room: FakeRoom, eventId: string) => room.events.find((e) => e.eventId === eventId)!;

test('formattedBody is sanitised to what the spec allows: scripts, handlers, styles and remote images go; formatting stays', async () => {
  const { room, remote } = await bridgedRoom();
  const html =
    '<b>bold</b> <i>it</i> <code class="language-js">x()</code> <a href="https://matrix.org" onclick="evil()">link</a>' +
    '<script>alert(1)</script><img src="https://tracker.example/p.png"><img src="mxc://example.org/abc" alt="ok">' +
    '<span style="color:red" data-mx-spoiler="why">hidden</span><a href="javascript:alert(1)">js</a><iframe src="https://x"></iframe>';
  const { eventId } = await say(remote, { body: 'bold it', formattedBody: html });
  const c = event(room, eventId).content;
  assert.equal(c.format, 'org.matrix.custom.html');
  assert.equal(
    c.formatted_body,
    '<b>bold</b> <i>it</i> <code class="language-js">x()</code> <a href="https://matrix.org">link</a>' +
      '<img src="mxc://example.org/abc" alt="ok" /><span data-mx-spoiler="why">hidden</span><a>js</a>',
  );
  assert.equal(c.body, 'bold it');
});

test('mentions: network users by their id and Matrix users by user ID become m.mentions', async () => {
  const { room, remote } = await bridgedRoom();
  const { eventId } = await say(remote, { body: 'Carol, alice: look', mentions: [{ id: 'Carol' }, { userId: ALICE }, { id: 'Carol' }] });
  assert.deepEqual(event(room, eventId).content['m.mentions'], { user_ids: ['@irc__carol:example.org', ALICE] });
});

test('a reply names the network id of what it answers: m.in_reply_to of the mapped event, inbound or outbound', async () => {
  const { room, remote } = await bridgedRoom();
  const first = await say(remote, { body: 'question' });
  const reply = await say(remote, { body: 'answer', replyTo: first.id });
  assert.deepEqual(event(room, reply.eventId).content['m.relates_to'], { 'm.in_reply_to': { event_id: first.eventId } });
  // A Matrix user's message, delivered: the network answered its own id for it.
  const ev = as.hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'from matrix' });
  assert.equal(await as.pushSend(uniq('t'), { events: [as.hs.clientEvent(room.roomId, ev)] }), 200);
  const netId = (network.received.find((r) => r.path === '/messages' && r.body?.id === ev.eventId) as any)?.answer?.id;
  assert.ok(netId);
  const toMatrix = await say(remote, { body: 'back at you', replyTo: netId });
  assert.deepEqual(event(room, toMatrix.eventId).content['m.relates_to'], { 'm.in_reply_to': { event_id: ev.eventId } });
  // A reply to something the bridge never saw is still a message.
  const orphan = await say(remote, { body: 'to nothing', replyTo: 'never-bridged' });
  assert.equal(event(room, orphan.eventId).content['m.relates_to'], undefined);
});

test('an edit becomes an m.replace of the mapped event; unknown target or another room: 404, nothing sent', async () => {
  const { room, remote } = await bridgedRoom();
  const other = await bridgedRoom();
  const m = await say(remote, { body: 'helo', formattedBody: '<i>helo</i>' });
  const res = await send('edits', { id: uniq('edit-'), room: remote, target: m.id, body: 'hello', formattedBody: '<i>hello</i><script>x</script>' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const c = event(room, res.body.event_id).content;
  assert.deepEqual(c['m.relates_to'], { rel_type: 'm.replace', event_id: m.eventId });
  assert.deepEqual(c['m.new_content'], { msgtype: 'm.text', body: 'hello', format: 'org.matrix.custom.html', formatted_body: '<i>hello</i>' });
  assert.equal(c.body, '* hello');
  // Matrix shows an edit only from whoever sent the message: Carol may not edit Bob's.
  const notHers = await send('edits', { id: uniq('edit-'), room: remote, target: m.id, body: 'mine now', sender: { id: 'Carol' } });
  assert.deepEqual([notHers.status, notHers.body.errcode], [403, 'M_FORBIDDEN']);
  const sent = room.events.length + other.room.events.length;
  const unknown = await send('edits', { id: uniq('edit-'), room: remote, target: 'nope', body: 'x' });
  assert.deepEqual([unknown.status, unknown.body.errcode], [404, 'M_NOT_FOUND']);
  const elsewhere = await send('edits', { id: uniq('edit-'), room: other.remote, target: m.id, body: 'x' });
  assert.deepEqual([elsewhere.status, elsewhere.body.errcode], [404, 'M_NOT_FOUND']);
  assert.equal(room.events.length + other.room.events.length, sent);
});

test('a deletion redacts the mapped event: as the network user for their own, as the bot for someone else\'s', async () => {
  const { room, remote } = await bridgedRoom();
  const own = await say(remote, { body: 'oops' });
  const res = await send('deletions', { id: uniq('del-'), room: remote, target: own.id, reason: 'typo' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const redaction = event(room, res.body.event_id);
  assert.equal(redaction.type, 'm.room.redaction');
  assert.equal(redaction.sender, '@irc__bob:example.org');
  assert.equal(event(room, own.eventId).redactedBy, redaction.eventId);
  // A network moderator deletes Carol's message: Bob may not redact it in Matrix, the bot (room creator) may.
  const carols = await say(remote, { body: 'spam', sender: { id: 'Carol' } });
  const byMod = await send('deletions', { id: uniq('del-'), room: remote, target: carols.id });
  assert.equal(byMod.status, 200, JSON.stringify(byMod.body));
  assert.equal(event(room, byMod.body.event_id).sender, as.hs.botUserId);
  assert.ok(event(room, carols.eventId).redactedBy);
});

test('a reaction is an m.annotation as the virtual user, posted once for a resend, and taken back by a deletion', async () => {
  const { room, remote } = await bridgedRoom();
  const m = await say(remote, { body: 'nice' });
  const id = uniq('react-');
  const first = await send('reactions', { id, room: remote, target: m.id, key: '👍', sender: { id: 'Carol' } });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const again = await send('reactions', { id, room: remote, target: m.id, key: '👍', sender: { id: 'Carol' } });
  assert.equal(again.body.event_id, first.body.event_id, 'a resend is answered with the same event');
  const reactions = room.events.filter((e) => e.type === 'm.reaction');
  assert.equal(reactions.length, 1);
  assert.deepEqual(reactions[0]!.content['m.relates_to'], { rel_type: 'm.annotation', event_id: m.eventId, key: '👍' });
  assert.equal(reactions[0]!.sender, '@irc__carol:example.org');
  // A reaction is no message: it is not edited or reacted to, only taken back.
  const editReaction = await send('edits', { id: uniq('edit-'), room: remote, target: id, body: 'x', sender: { id: 'Carol' } });
  assert.deepEqual([editReaction.status, editReaction.body.errcode], [404, 'M_NOT_FOUND']);
  const reactToReaction = await send('reactions', { id: uniq('react-'), room: remote, target: id, key: '!' });
  assert.deepEqual([reactToReaction.status, reactToReaction.body.errcode], [404, 'M_NOT_FOUND']);
  // The same reaction again under another id: Matrix takes one per user, target and key.
  const twice = await send('reactions', { id: uniq('react-'), room: remote, target: m.id, key: '👍', sender: { id: 'Carol' } });
  assert.deepEqual([twice.status, twice.body.errcode], [409, 'M_DUPLICATE_ANNOTATION']);
  assert.equal(room.events.filter((e) => e.type === 'm.reaction').length, 1);
  const undo = await send('deletions', { id: uniq('del-'), room: remote, target: id, sender: { id: 'Carol' } });
  assert.equal(undo.status, 200);
  assert.equal(reactions[0]!.redactedBy, undo.body.event_id);
});

test('media: uploaded as bytes by the network (signed), stored as the virtual user; a message then carries it as m.image', async () => {
  const { room, remote } = await bridgedRoom();
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0x00, 0xfe]);
  const up = await upload(png, { sender: 'Dave', filename: 'cat.png' }, 'image/png');
  assert.equal(up.status, 200, JSON.stringify(up.body));
  const mxc = up.body.contentUri as string;
  assert.match(mxc, /^mxc:\/\/example\.org\/.+/);
  const stored = as.hs.media.get(mxc.split('/').pop()!)!;
  assert.deepEqual(stored.bytes, png, 'the exact bytes, binary included');
  assert.equal(stored.contentType, 'image/png');
  assert.equal(stored.uploader, '@irc__dave:example.org');
  const { eventId } = await say(remote, {
    sender: { id: 'Dave' },
    msgtype: 'm.image',
    body: 'cat.png',
    media: { contentUri: mxc, mimetype: 'image/png', size: png.length, width: 2, height: 1 },
  });
  assert.deepEqual(event(room, eventId).content, { msgtype: 'm.image', body: 'cat.png', url: mxc, info: { mimetype: 'image/png', size: png.length, w: 2, h: 1 } });
});

function upload(bytes: Buffer, query: Record<string, string>, contentType: string, signature?: string | null) {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (signature !== null) headers['x-signature'] = signature ?? network.signBytes(bytes);
  return as.call('network-media-upload', { method: 'POST', path: '/network/media', query, rawBody: bytes, headers });
}

test('media upload refusals: no or wrong signature, no sender, empty, over the limit; nothing reaches the homeserver', async () => {
  const before = as.hs.media.size;
  const bytes = Buffer.from('data');
  assert.equal((await upload(bytes, { sender: 'Dave' }, 'text/plain', null)).status, 401);
  assert.equal((await upload(bytes, { sender: 'Dave' }, 'text/plain', network.signBytes(Buffer.from('other')))).status, 403);
  const noSender = await upload(bytes, {}, 'text/plain');
  assert.deepEqual([noSender.status, noSender.body.errcode], [400, 'M_INVALID_PARAM']);
  assert.match(noSender.body.error, /sender/);
  assert.equal((await upload(Buffer.alloc(0), { sender: 'Dave' }, 'text/plain')).status, 400);
  // A type no header may carry would fail at the homeserver every time: refused here, at once.
  for (const type of ['\u0000', 'a\nb', 'Ā/x', 'nonsense']) {
    const bad = await upload(bytes, { sender: 'Dave' }, type);
    assert.deepEqual([bad.status, bad.body.errcode], [400, 'M_INVALID_PARAM'], JSON.stringify(type));
  }
  const big = await upload(Buffer.alloc(MESSAGES.MEDIA_MAX_BYTES + 1), { sender: 'Dave' }, 'application/octet-stream');
  assert.deepEqual([big.status, big.body.errcode], [413, 'M_TOO_LARGE']);
  assert.equal(as.hs.media.size, before);
});

test('bad rich fields are 400 naming the field, and nothing is posted', async () => {
  const { room, remote } = await bridgedRoom();
  const base = { id: uniq('bad-'), room: remote, body: 'x' };
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['messages', { ...base, msgtype: 'm.image' }, 'media'],
    ['messages', { ...base, media: { contentUri: 'mxc://example.org/a' } }, 'msgtype'],
    ['messages', { ...base, msgtype: 'm.image', media: { contentUri: 'https://evil.example/x.png' } }, 'media.contentUri'],
    ['messages', { ...base, msgtype: 'm.image', media: { contentUri: 'mxc://example.org/a', size: -1 } }, 'media.size'],
    ['messages', { ...base, formattedBody: 5 }, 'formattedBody'],
    ['messages', { ...base, mentions: [{ name: 'x' }] }, 'mentions[0]'],
    ['messages', { ...base, replyTo: '' }, 'replyTo'],
    ['edits', { ...base }, 'target'],
    ['edits', { ...base, target: 'x', msgtype: 'm.image' }, 'msgtype'],
    ['reactions', { ...base, target: 'x' }, 'key'],
    ['deletions', { ...base, target: 'x', reason: 7 }, 'reason'],
  ];
  const events = room.events.length;
  for (const [kind, body, name] of cases) {
    const res = await send(kind as 'messages', body);
    assert.equal(res.status, 400, `${kind} ${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.errcode, 'M_BAD_JSON');
    assert.ok(res.body.error.startsWith(`${name} `), `${name}: ${res.body.error}`);
  }
  const unknown = await as.call('network-inbound', { method: 'POST', path: '/network/stickers', rawBody: '{}', headers: { 'x-signature': network.sign('{}') } });
  assert.deepEqual([unknown.status, unknown.body.errcode], [404, 'M_UNRECOGNIZED']);
  assert.equal(room.events.length, events);
});

test('unknown fields are ignored both ways: a message with fields from a later contract is posted', async () => {
  const { room, remote } = await bridgedRoom();
  const { eventId } = await say(remote, { body: 'future', threadId: 't1', sender: { id: 'Bob', avatarHint: 'x' } });
  assert.equal(event(room, eventId).content.body, 'future');
});
