/**
 * Rich messages (issue 23) end to end over real HTTP: `npm start`'s server (its front, serverless-
 * offline on serverless.yml, DynamoDB Local, the local delivery queue), the webhook adapter
 * against the fake network, the fake HS. An image, a reply, an edit and a redaction each way:
 * - Matrix -> network: a Matrix user's events, pushed as the HS pushes them, reach the network as
 *   POST /messages (the image's pre-signed link, fetched from the local server, gives the exact
 *   bytes), /edits and /deletions, naming targets by the network's own ids;
 * - network -> Matrix: the network uploads binary bytes (POST /network/media, signed over the raw
 *   bytes; one byte over 4 MiB is the function's own 413) and posts a message with them, a reply,
 *   an edit, a reaction and a deletion, which the HS holds as m.image, m.in_reply_to, m.replace,
 *   m.annotation and a redaction; pushed back to the AS, none of them echoes to the network.
 * Every request and answer both ways is checked against docs/network-api.yaml and the CS spec.
 * One npm start (the walkthrough runs two), so most of its time is the start.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeHs, synapseQueryPath } from '../support/fake-hs.js';
import type { FakeEvent } from '../support/fake-hs.js';
import { startFakeNetwork } from '../support/fake-network.js';
import { eventually, start, stopAndCheck } from '../support/local-server.js';
import { checkAsAnswer, checkAsRequest } from '../support/network-api.js';

const DIR = mkdtempSync(join(tmpdir(), 'mal-rich-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const network = await startFakeNetwork();
after(async () => {
  await network.close();
  rmSync(DIR, { recursive: true, force: true });
});

const ALICE = '@alice:localhost';
const BOB = '@irc__bob:localhost';
/** A PNG's signature, then every byte value: 0x00, and bytes >= 0x80 that are no valid UTF-8. */
const imageBytes = (seed: number) => Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(Array.from({ length: 256 }, (_, i) => (i + seed) % 256)), Buffer.from([0xff, 0xfe, 0x00, 0xc0, 0xaf])]);

test('rich messages through npm start: an image, a reply, an edit and a redaction, Matrix to network and network to Matrix', { timeout: 300_000 }, async () => {
  network.rooms.set('#rich', { name: '#rich' });
  network.users.set('Bob', { displayName: 'Bob' });
  const tokens = { as: 'rich-as-token-0123456789abcdef', hs: 'rich-hs-token-0123456789abcdef' };
  const hs = await startFakeHs({ asToken: tokens.as, serverName: 'localhost', userPrefix: 'irc_', senderLocalpart: 'ircbot' });
  after(() => hs.close());
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
  assert.equal(network.acceptedBy.messages.length, 2, 'an edit and a redaction are no new messages');

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
  await stopAndCheck(run);
});
