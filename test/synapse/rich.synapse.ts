/**
 * Rich messages (issue 23, docs/network-api.yaml) both ways against a REAL Synapse 1.94 (a
 * synapse-lab, `$HS_LAB`), with `npm start`'s real server and the fake network of the unit tests
 * (test/support/fake-network.ts) as a `webhook` network over HTTP: every request the AS makes of
 * it is checked against docs/network-api.yaml. The point is what the fake homeserver may be kinder
 * about than Synapse: binary media through the local API Gateway, Synapse's media repository
 * (no authenticated media in 1.94: the AS must fall back to the legacy download), Synapse's
 * redaction permissions (a network user may not redact someone else's message: the bot must),
 * what Synapse keeps of a redacted event, its aggregation of edits and reactions, and the
 * AS's own events coming back in Synapse's transactions (never echoed to the network).
 *
 * Steps d2 and k2 record (as TAP diagnostics, not failures) an edit by someone other than the
 * original's sender, either way: Synapse stores such an `m.replace` without a word and never
 * applies it, and the AS passes it on (inbound: 200; outbound: POST /edits naming the other
 * user's message). The contract does not say yet what should happen; they make the gap visible.
 *
 * Names with `/` as in the walk-through: USER_PREFIX=irc.freenode.net/, the network room `#rich`
 * behind `#irc.freenode.net/#rich:localhost`. The steps run in order and each needs the ones
 * before it. Run it with `HS_LAB=/tmp/synapse-lab npm run test:synapse`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeNetwork } from '../support/fake-network.js';
import type { DeliveryKind, FakeNetwork } from '../support/fake-network.js';
import { MESSAGES } from '../../lib/defaults.js';
import { AS_READY_MS, LAB, LAB_SCRIPT_MS, REGISTRATION_FILE, SERVER, asLogLines, asTail, call, cs, eventually, fetchLink, lab, png, run, startAs, synapseLog } from './lab.js';
import type { Answer, Registration } from './lab.js';

const PREFIX = 'irc.freenode.net/';
const NETWORK_ROOM = '#rich';
const ALIAS = `#${PREFIX}${NETWORK_ROOM}:${SERVER}`;
const BOB = `@${PREFIX}_bob:${SERVER}`;
const CAROL = `@${PREFIX}_carol:${SERVER}`;
const ALICE = `@alice:${SERVER}`;

const state: {
  net?: FakeNetwork;
  reg?: Registration;
  bot?: string;
  alice?: string;
  roomId?: string;
  /** What the network sent, by its own id: the Matrix event it became. */
  events: Map<string, string>;
  catMxc?: string;
  /** What alice sent, by name: its event id. */
  mine: Map<string, string>;
  /** Where npm start's output stood once Synapse was up (its pings before that fail, as they should). */
  logFrom?: number;
} = { events: new Map(), mine: new Map() };

after(async () => state.net?.close());

// ---------------------------------------------------------------- helpers

/** The network calls the AS: POST /network/{kind}, signed with the fake network's secret. */
function toAs(kind: DeliveryKind, body: Record<string, unknown>): Promise<Answer> {
  const raw = JSON.stringify({ room: NETWORK_ROOM, sender: { id: 'Bob' }, ts: Date.now(), ...body });
  return call(run.asUrl!, 'POST', `/network/${kind}`, { body: raw, headers: { 'x-signature': state.net!.sign(raw) } });
}

/** toAs, expecting 200 {event_id}; remembers the event under the network's id. */
async function networkSays(kind: DeliveryKind, body: Record<string, unknown> & { id: string }): Promise<string> {
  const res = await toAs(kind, body);
  assert.equal(res.status, 200, `POST /network/${kind} ${body.id}: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.match(res.body.event_id ?? '', /^\$/);
  state.events.set(body.id, res.body.event_id);
  return res.body.event_id;
}

const roomPath = () => `/_matrix/client/v3/rooms/${encodeURIComponent(state.roomId!)}`;

/** An event as alice's client reads it from Synapse. */
async function eventOf(eventId: string): Promise<Record<string, any>> {
  const res = await cs('GET', `${roomPath()}/event/${encodeURIComponent(eventId)}`, { token: state.alice });
  assert.equal(res.status, 200, `GET event ${eventId}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The events relating to `eventId` with `relType`, as Synapse lists them (v1 relations API). */
async function relationsOf(eventId: string, relType: string): Promise<Record<string, any>[]> {
  const res = await cs('GET', `/_matrix/client/v1/rooms/${encodeURIComponent(state.roomId!)}/relations/${encodeURIComponent(eventId)}/${relType}`, { token: state.alice });
  assert.equal(res.status, 200, `GET relations ${eventId}/${relType}: ${JSON.stringify(res.body)}`);
  return res.body.chunk;
}

/** alice sends an event in the room; its event id. */
async function aliceSends(type: string, content: Record<string, unknown>): Promise<string> {
  const res = await cs('PUT', `${roomPath()}/send/${type}/${randomBytes(6).toString('hex')}`, { token: state.alice, body: content });
  assert.equal(res.status, 200, `alice's ${type}: ${JSON.stringify(res.body)}`);
  return res.body.event_id;
}

async function aliceRedacts(eventId: string, reason?: string): Promise<string> {
  const res = await cs('PUT', `${roomPath()}/redact/${encodeURIComponent(eventId)}/${randomBytes(6).toString('hex')}`, { token: state.alice, body: reason ? { reason } : {} });
  assert.equal(res.status, 200, `alice's redaction of ${eventId}: ${JSON.stringify(res.body)}`);
  return res.body.event_id;
}

/** The delivery of `kind` the network accepted for Matrix event `eventId`, once it arrives. */
function delivered(kind: DeliveryKind, eventId: string): Promise<Record<string, any>> {
  return eventually(
    () =>
      `no accepted POST /${kind} for ${eventId}; the network got:\n${state.net!.received.map((r) => `  ${r.method} ${r.path} ${r.status} ${JSON.stringify(r.body)}`).join('\n')}\n${asTail()}`,
    () => state.net!.acceptedBy[kind].find((b) => b.id === eventId),
  );
}

/** The network id the fake network answered for a delivered Matrix event. */
const networkIdOf = (eventId: string) => state.net!.networkIds.get(eventId);

const need = (what: string, ok: unknown) => assert.ok(ok, `needs ${what}`);

// ---------------------------------------------------------------- the scenario

let ready = false;
test('setup: the fake network, npm start (webhook network), then a fresh Synapse with its registration', { timeout: AS_READY_MS + 2 * LAB_SCRIPT_MS }, async () => {
  assert.ok(LAB && existsSync(join(LAB, 'start.sh')), 'HS_LAB must point at a synapse-lab (run.ts checks this)');
  const net = await startFakeNetwork({ secret: randomBytes(24).toString('hex') });
  state.net = net;
  net.rooms.set(NETWORK_ROOM, { name: 'Rich messages' });
  net.users.set('Bob', { displayName: 'Bob' });
  net.users.set('Carol', { displayName: 'Carol' });
  await startAs({ USER_PREFIX: PREFIX, NETWORK: 'webhook', NETWORK_URL: net.url, NETWORK_SECRET: net.secret });
  state.reg = parse(readFileSync(REGISTRATION_FILE, 'utf8')) as Registration;
  assert.ok(state.reg.as_token && state.reg.sender_localpart, `registration file: ${readFileSync(REGISTRATION_FILE, 'utf8')}`);
  state.bot = `@${state.reg.sender_localpart}:${SERVER}`;
  await lab('reset.sh');
  await lab('start.sh', REGISTRATION_FILE);
  state.logFrom = run.asOut.length;
  ready = true;
});

test(`a. alice registers and joins ${ALIAS}: the AS asks the network about ${NETWORK_ROOM} and makes the room`, { timeout: 90_000 }, async () => {
  need('setup', ready);
  const reg = await cs('POST', '/_matrix/client/v3/register', {
    body: { username: 'alice', password: randomBytes(12).toString('hex'), auth: { type: 'm.login.dummy' } },
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  state.alice = reg.body.access_token;
  const res = await cs('POST', `/_matrix/client/v3/join/${encodeURIComponent(ALIAS)}`, { token: state.alice, body: {} });
  assert.equal(res.status, 200, `join: ${JSON.stringify(res.body)}\n${asTail()}`);
  state.roomId = res.body.room_id;
  assert.ok(state.net!.received.some((r) => r.method === 'GET' && r.path === `/rooms/${NETWORK_ROOM}`), 'the AS looked the room up on the network');
});

// ---------------------------------------------------------------- network → Matrix

test('b. Bob uploads cat.png (POST /network/media, raw bytes, signed): an mxc URI on Synapse, which serves the same bytes', { timeout: 60_000 }, async () => {
  need('step a', state.roomId);
  const cat = png(2, 1, [255, 128, 0]);
  const res = await call(run.asUrl!, 'POST', '/network/media?sender=Bob&filename=cat.png', {
    body: cat,
    headers: { 'content-type': 'image/png', 'x-signature': state.net!.signBytes(cat) },
  });
  assert.equal(res.status, 200, `upload: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  const mxc: string = res.body.contentUri;
  assert.match(mxc, /^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/);
  state.catMxc = mxc;
  // Synapse 1.94 has only the legacy (unauthenticated) download.
  const got = await cs('GET', `/_matrix/media/v3/download/${mxc.slice('mxc://'.length)}`);
  assert.equal(got.status, 200, `Synapse's download: ${got.status} ${got.bytes.toString().slice(0, 300)}`);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.deepEqual(got.bytes, cat, 'Synapse has the exact bytes Bob sent');
});

test('b2. uploads at the limit through npm start: 4 MiB (a non-ASCII file name) is stored whole on Synapse; 4 MiB + 1 is 413, Synapse never asked', { timeout: 120_000 }, async () => {
  need('step b', state.catMxc);
  const upload = (bytes: Buffer, filename: string) =>
    call(run.asUrl!, 'POST', `/network/media?sender=Bob&filename=${encodeURIComponent(filename)}`, {
      body: bytes,
      headers: { 'content-type': 'application/octet-stream', 'x-signature': state.net!.signBytes(bytes) },
    });
  const big = randomBytes(MESSAGES.MEDIA_MAX_BYTES);
  const res = await upload(big, 'grand chat é.bin');
  assert.equal(res.status, 200, `4 MiB upload: ${res.status} ${JSON.stringify(res.body)}\n${asTail()}`);
  const got = await cs('GET', `/_matrix/media/v3/download/${String(res.body.contentUri).slice('mxc://'.length)}`);
  assert.equal(got.status, 200);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.equal(got.bytes.length, big.length);
  assert.equal(sha(got.bytes), sha(big), 'Synapse has the exact 4 MiB');
  const disposition = got.headers.get('content-disposition') ?? '';
  assert.match(disposition, /grand%20chat%20%C3%A9\.bin|grand chat é\.bin/, `Synapse's Content-Disposition: ${disposition}`);
  const over = await upload(Buffer.concat([big, Buffer.from([1])]), 'over.bin');
  assert.deepEqual([over.status, over.body?.errcode], [413, 'M_TOO_LARGE'], JSON.stringify(over.body));
});

test('c. Bob sends the image and a question; Carol answers with HTML holding a <script>, mentions and a reply: Synapse keeps them as sent', { timeout: 60_000 }, async () => {
  need('step b', state.catMxc);
  const size = png(2, 1, [255, 128, 0]).length;
  const image = await networkSays('messages', {
    id: 'n-image',
    msgtype: 'm.image',
    body: 'cat.png',
    media: { contentUri: state.catMxc, mimetype: 'image/png', size, width: 2, height: 1 },
  });
  const question = await networkSays('messages', { id: 'n-question', body: 'who wants a cat?' });
  const answer = await networkSays('messages', {
    id: 'n-answer',
    sender: { id: 'Carol' },
    body: 'me! Bob, alice',
    formattedBody: '<b>me!</b> <script>alert("pwned")</script><a href="https://matrix.to/#/@alice:localhost" onclick="evil()">alice</a>',
    mentions: [{ id: 'Bob' }, { userId: ALICE }],
    replyTo: 'n-question',
  });

  const img = await eventOf(image);
  assert.equal(img.sender, BOB);
  assert.deepEqual(img.content, { msgtype: 'm.image', body: 'cat.png', url: state.catMxc, info: { mimetype: 'image/png', size, w: 2, h: 1 } });
  const a = await eventOf(answer);
  assert.equal(a.sender, CAROL);
  assert.equal(a.content.format, 'org.matrix.custom.html');
  assert.doesNotMatch(a.content.formatted_body, /script|pwned|onclick/, `Synapse's stored formatted_body: ${a.content.formatted_body}`);
  assert.equal(a.content.formatted_body, '<b>me!</b> <a href="https://matrix.to/#/@alice:localhost">alice</a>');
  assert.deepEqual(a.content['m.relates_to'], { 'm.in_reply_to': { event_id: question } });
  assert.deepEqual(a.content['m.mentions'], { user_ids: [BOB, ALICE] });
});

test('d. Bob edits his question (POST /network/edits): an m.replace Synapse aggregates as an edit of it', { timeout: 60_000 }, async () => {
  need('step c', state.events.get('n-question'));
  const question = state.events.get('n-question')!;
  const edit = await networkSays('edits', { id: 'n-edit', target: 'n-question', body: 'who wants a kitten?', formattedBody: 'who wants a <i>kitten</i>?<script>x()</script>' });
  const e = await eventOf(edit);
  assert.equal(e.sender, BOB);
  assert.deepEqual(e.content['m.relates_to'], { rel_type: 'm.replace', event_id: question });
  assert.deepEqual(e.content['m.new_content'], { msgtype: 'm.text', body: 'who wants a kitten?', format: 'org.matrix.custom.html', formatted_body: 'who wants a <i>kitten</i>?' });
  assert.equal(e.content.body, '* who wants a kitten?');
  // Synapse takes it as an edit (same sender, same room, m.new_content): bundled with the original.
  const original = await eventOf(question);
  const replace = original.unsigned?.['m.relations']?.['m.replace'];
  assert.ok(replace, `Synapse bundles no edit with the question: unsigned ${JSON.stringify(original.unsigned)}`);
  assert.equal(replace.event_id, edit);
});

test('d2. Carol "edits" Bob\'s question (POST /network/edits as another network user): what the AS answers, and what Synapse makes of it', { timeout: 60_000 }, async (t) => {
  need('step d', state.events.get('n-edit'));
  const question = state.events.get('n-question')!;
  const res = await toAs('edits', { id: 'n-edit-by-carol', sender: { id: 'Carol' }, target: 'n-question', body: 'nobody wants a cat' });
  t.diagnostic(`AS answer to Carol's edit of Bob's message: ${res.status} ${JSON.stringify(res.body)}`);
  if (res.status === 200) {
    const e = await eventOf(res.body.event_id);
    assert.equal(e.sender, CAROL);
    assert.deepEqual(e.content['m.relates_to'], { rel_type: 'm.replace', event_id: question });
    // Synapse stores it (it checks no sender on send) but does not take it as an edit of Bob's message.
    const replace = (await eventOf(question)).unsigned?.['m.relations']?.['m.replace'];
    assert.equal(replace?.event_id, state.events.get('n-edit'), 'Synapse still shows Bob\'s own edit, not Carol\'s');
    t.diagnostic(`Synapse accepted ${res.body.event_id} (Carol's m.replace of Bob's event) and ignores it as an edit: the network was told 200 for a change no Matrix client shows`);
  }
});

test('e. Carol reacts 👍 to the image, then takes it back: an m.annotation Synapse counts, then a redaction by Carol that empties it', { timeout: 60_000 }, async () => {
  need('step c', state.events.get('n-image'));
  const image = state.events.get('n-image')!;
  const reaction = await networkSays('reactions', { id: 'n-react', sender: { id: 'Carol' }, target: 'n-image', key: '👍' });
  const r = await eventOf(reaction);
  assert.equal(r.sender, CAROL);
  assert.deepEqual(r.content, { 'm.relates_to': { rel_type: 'm.annotation', event_id: image, key: '👍' } });
  assert.deepEqual((await relationsOf(image, 'm.annotation')).map((x) => x.event_id), [reaction]);
  const chunk = (await eventOf(image)).unsigned?.['m.relations']?.['m.annotation']?.chunk;
  if (chunk !== undefined) assert.deepEqual(chunk, [{ type: 'm.reaction', key: '👍', count: 1 }]);

  const redaction = await networkSays('deletions', { id: 'n-unreact', sender: { id: 'Carol' }, target: 'n-react' });
  const red = await eventOf(redaction);
  assert.equal(red.type, 'm.room.redaction');
  assert.equal(red.sender, CAROL);
  assert.equal(red.redacts ?? red.content.redacts, reaction);
  const gone = await eventOf(reaction);
  assert.deepEqual(gone.content, {}, 'what Synapse keeps of a redacted reaction');
  assert.equal(gone.unsigned?.redacted_because?.event_id, redaction);
  assert.deepEqual(await relationsOf(image, 'm.annotation'), [], 'no longer counted');
});

test('e2. Carol reacts 👍 again (a new id): fine after the first was taken back; once more with another id: Synapse refuses, the AS answers 409 M_DUPLICATE_ANNOTATION', { timeout: 60_000 }, async () => {
  need('step e', state.events.get('n-unreact'));
  const image = state.events.get('n-image')!;
  const again = await networkSays('reactions', { id: 'n-react-2', sender: { id: 'Carol' }, target: 'n-image', key: '👍' });
  assert.deepEqual((await relationsOf(image, 'm.annotation')).map((x) => x.event_id), [again]);
  const twice = await toAs('reactions', { id: 'n-react-3', sender: { id: 'Carol' }, target: 'n-image', key: '👍' });
  assert.deepEqual([twice.status, twice.body?.errcode], [409, 'M_DUPLICATE_ANNOTATION'], `${JSON.stringify(twice.body)}\n${asTail()}`);
  assert.match(synapseLog(), /SynapseError: 400 - Can't send same reaction twice/);
  // The same id again is the same reaction: answered with its event, nothing sent.
  const resent = await toAs('reactions', { id: 'n-react-2', sender: { id: 'Carol' }, target: 'n-image', key: '👍' });
  assert.deepEqual([resent.status, resent.body?.event_id], [200, again]);
  assert.equal((await relationsOf(image, 'm.annotation')).length, 1);
});

test('f. Bob deletes his own message (POST /network/deletions): redacted by Bob, its content gone', { timeout: 60_000 }, async () => {
  need('step a', state.roomId);
  const oops = await networkSays('messages', { id: 'n-oops', body: 'my password is hunter2' });
  const redaction = await networkSays('deletions', { id: 'n-del-oops', target: 'n-oops', reason: 'typo' });
  const red = await eventOf(redaction);
  assert.equal(red.sender, BOB);
  assert.equal(red.content.reason, 'typo');
  const gone = await eventOf(oops);
  assert.deepEqual(gone.content, {});
  assert.equal(gone.unsigned?.redacted_because?.sender, BOB);
});

test('g. Bob (a network moderator) deletes Carol\'s message: Synapse refuses Bob, the bridge bot redacts it', { timeout: 60_000 }, async () => {
  need('step a', state.roomId);
  const spam = await networkSays('messages', { id: 'n-spam', sender: { id: 'Carol' }, body: 'buy cheap watches' });
  const redaction = await networkSays('deletions', { id: 'n-del-spam', target: 'n-spam', reason: 'spam' });
  const red = await eventOf(redaction);
  assert.equal(red.sender, state.bot, `the redaction's sender (Bob may not redact Carol's message in Matrix)`);
  assert.equal(red.content.reason, 'spam');
  const gone = await eventOf(spam);
  assert.deepEqual(gone.content, {});
  assert.equal(gone.unsigned?.redacted_because?.event_id, redaction);
  // The AS tried Bob first and Synapse said no (its words in its own log), then the bot.
  assert.ok(
    asLogLines().some((l) => l.msg === 'the network user may not redact this event: redacting as the bot'),
    `the AS logs falling back to the bot\n${asTail()}`,
  );
  assert.match(synapseLog(), /SynapseError: 403 - You don't have permission to redact events/);
});

// ---------------------------------------------------------------- Matrix → network

test('h. alice sends HTML with a pill of Bob: POST /messages with formattedBody and Bob\'s network id among the mentions', { timeout: 60_000 }, async () => {
  need('step a', state.roomId);
  const html = `hey <a href="https://matrix.to/#/${BOB}">Bob</a>, <strong>nice cat</strong>`;
  const id = await aliceSends('m.room.message', {
    msgtype: 'm.text',
    body: 'hey Bob, **nice cat**',
    format: 'org.matrix.custom.html',
    formatted_body: html,
    'm.mentions': { user_ids: [BOB] },
  });
  state.mine.set('text', id);
  const m = await delivered('messages', id);
  assert.equal(m.room, NETWORK_ROOM);
  assert.deepEqual(m.sender, { userId: ALICE });
  assert.equal(m.msgtype, 'm.text');
  assert.equal(m.body, 'hey Bob, **nice cat**');
  assert.equal(m.formattedBody, html);
  assert.deepEqual(m.mentions, [{ userId: BOB, id: 'Bob' }]);
});

test('i. alice uploads dog.png to Synapse and sends it: media with a pre-signed link, which serves the bytes from Synapse\'s legacy download', { timeout: 60_000 }, async () => {
  need('step a', state.roomId);
  const dog = png(3, 2, [0, 64, 255]);
  const up = await cs('POST', '/_matrix/media/v3/upload?filename=dog.png', { token: state.alice, body: dog, headers: { 'content-type': 'image/png' } });
  assert.equal(up.status, 200, `alice's upload: ${JSON.stringify(up.body)}`);
  const mxc: string = up.body.content_uri;
  const id = await aliceSends('m.room.message', { msgtype: 'm.image', body: 'dog.png', url: mxc, info: { mimetype: 'image/png', size: dog.length, w: 3, h: 2 } });
  state.mine.set('image', id);
  const m = await delivered('messages', id);
  assert.equal(m.msgtype, 'm.image');
  const { url, ...rest } = m.media ?? {};
  assert.deepEqual(rest, { mxc, filename: 'dog.png', mimetype: 'image/png', size: dog.length, width: 3, height: 2 });
  assert.ok(typeof url === 'string' && url.startsWith(`${run.asUrl}/network/media/localhost/`), `media.url: ${url}`);
  // What makes the AS fall back: Synapse 1.94 does not know the authenticated endpoint.
  const authed = await cs('GET', `/_matrix/client/v1/media/download/${mxc.slice('mxc://'.length)}`, { token: state.alice });
  assert.deepEqual([authed.status, authed.body?.errcode], [404, 'M_UNRECOGNIZED'], `Synapse on /_matrix/client/v1/media/download: ${authed.status} ${authed.bytes.toString().slice(0, 200)}`);
  const got = await fetchLink(url);
  assert.equal(got.status, 200, `GET media.url: ${got.status} ${got.bytes.toString().slice(0, 300)}\n${asTail()}`);
  assert.equal(got.headers.get('content-type'), 'image/png');
  assert.deepEqual(got.bytes, dog, 'the exact bytes alice uploaded');
  assert.match(got.headers.get('content-disposition') ?? '', /dog\.png/, 'Synapse\'s Content-Disposition, passed on');
  // A link for the same medium with a bad signature is refused before Synapse is asked.
  const bad = new URL(url);
  bad.searchParams.set('sig', '0'.repeat(64));
  assert.equal((await fetchLink(bad.href)).status, 403);
});

test('i2. alice sends a file over 4 MiB: without a size, the link answers 413 with Synapse\'s Content-Length; with one, tooLarge and no link', { timeout: 120_000 }, async () => {
  need('step i', state.mine.get('image'));
  const big = randomBytes(MESSAGES.MEDIA_MAX_BYTES + 1);
  const up = await cs('POST', '/_matrix/media/v3/upload?filename=big.bin', { token: state.alice, body: big, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(up.status, 200, `alice's upload: ${JSON.stringify(up.body)}`);
  const mxc: string = up.body.content_uri;
  const unsized = await aliceSends('m.room.message', { msgtype: 'm.file', body: 'big.bin', url: mxc });
  const sized = await aliceSends('m.room.message', { msgtype: 'm.file', body: 'big.bin', url: mxc, info: { size: big.length } });
  const m1 = await delivered('messages', unsized);
  const m2 = await delivered('messages', sized);
  assert.ok(m1.media?.url, 'no size known: a link');
  const res = await fetchLink(m1.media.url);
  assert.deepEqual([res.status, res.body?.errcode, res.body?.size], [413, 'M_TOO_LARGE', big.length], `${res.status} ${res.bytes.toString().slice(0, 300)}`);
  assert.equal(m2.media?.tooLarge, true);
  assert.equal(m2.media?.url, undefined);
});

test('j. alice replies to Bob\'s question (a network message): POST /messages with replyTo {eventId, id: the network\'s id}, fallback gone', { timeout: 60_000 }, async () => {
  need('step c', state.events.get('n-question'));
  const question = state.events.get('n-question')!;
  const id = await aliceSends('m.room.message', {
    msgtype: 'm.text',
    body: `> <${BOB}> who wants a cat?\n\nme, of course`,
    format: 'org.matrix.custom.html',
    formatted_body: `<mx-reply><blockquote><a href="https://matrix.to/#/${state.roomId}/${question}">In reply to</a> <a href="https://matrix.to/#/${BOB}">${BOB}</a><br>who wants a cat?</blockquote></mx-reply>me, <em>of course</em>`,
    'm.relates_to': { 'm.in_reply_to': { event_id: question } },
  });
  state.mine.set('reply', id);
  const m = await delivered('messages', id);
  assert.deepEqual(m.replyTo, { eventId: question, id: 'n-question' });
  assert.equal(m.body, 'me, of course');
  assert.equal(m.formattedBody, 'me, <em>of course</em>');
});

test('k. alice edits her HTML message: POST /edits naming it by the id the network answered, with the new content', { timeout: 60_000 }, async () => {
  const original = state.mine.get('text');
  need('step h', original);
  const id = await aliceSends('m.room.message', {
    msgtype: 'm.text',
    body: '* hey Bob, **very nice cat**',
    'm.new_content': { msgtype: 'm.text', body: 'hey Bob, **very nice cat**', format: 'org.matrix.custom.html', formatted_body: 'hey Bob, <strong>very nice cat</strong>' },
    'm.relates_to': { rel_type: 'm.replace', event_id: original },
  });
  const e = await delivered('edits', id);
  assert.ok(networkIdOf(original!), 'the network answered an id for the original');
  assert.deepEqual(e.target, { eventId: original, id: networkIdOf(original!) });
  assert.equal(e.body, 'hey Bob, **very nice cat**');
  assert.equal(e.formattedBody, 'hey Bob, <strong>very nice cat</strong>');
  assert.equal(e.msgtype, 'm.text');
  assert.equal(state.net!.acceptedBy.messages.filter((b) => b.id === id).length, 0, 'an edit is not a new message');
});

test('k2. alice "edits" Bob\'s question (an m.replace of a network user\'s message, which Synapse accepts): what reaches the network', { timeout: 60_000 }, async (t) => {
  const question = state.events.get('n-question');
  need('step c', question);
  const id = await aliceSends('m.room.message', {
    msgtype: 'm.text',
    body: '* nobody wants a cat',
    'm.new_content': { msgtype: 'm.text', body: 'nobody wants a cat' },
    'm.relates_to': { rel_type: 'm.replace', event_id: question },
  });
  // Synapse took it (no sender check on send) but does not apply it: Bob's own edit stays the one shown.
  const replace = (await eventOf(question!)).unsigned?.['m.relations']?.['m.replace'];
  assert.equal(replace?.event_id, state.events.get('n-edit'));
  // Give the AS the time it took for alice's own edit, then see what the network got.
  const marker = await aliceSends('m.room.message', { msgtype: 'm.text', body: 'k2 marker' });
  await delivered('messages', marker);
  const edit = state.net!.received.find((r) => r.kind === 'edits' && r.body?.id === id);
  t.diagnostic(
    edit
      ? `the AS delivered alice's m.replace of Bob's message as POST /edits ${JSON.stringify(edit.body)} (answered ${edit.status}): the network must check the sender itself`
      : 'the AS did not deliver alice\'s m.replace of Bob\'s message',
  );
  state.mine.set('k2', id);
});

test('l. alice reacts to Bob\'s image, then redacts the reaction and her reply: POST /reactions and /deletions with the right targets', { timeout: 60_000 }, async () => {
  const image = state.events.get('n-image');
  const reply = state.mine.get('reply');
  need('steps c and j', image && reply);
  const reaction = await aliceSends('m.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: image, key: '😻' } });
  const r = await delivered('reactions', reaction);
  assert.deepEqual(r.target, { eventId: image, id: 'n-image' });
  assert.equal(r.key, '😻');

  const unreact = await aliceRedacts(reaction);
  const d1 = await delivered('deletions', unreact);
  assert.ok(networkIdOf(reaction), 'the network answered an id for the reaction');
  assert.deepEqual(d1.target, { eventId: reaction, id: networkIdOf(reaction) });

  const unreply = await aliceRedacts(reply!, 'changed my mind');
  const d2 = await delivered('deletions', unreply);
  assert.deepEqual(d2.target, { eventId: reply, id: networkIdOf(reply!) });
  assert.equal(d2.reason, 'changed my mind');
  assert.deepEqual(d2.sender, { userId: ALICE });
});

test('l2. the network deletes alice\'s image (by the id it answered): Bob may not, the bot redacts it, and the redaction is not echoed back', { timeout: 60_000 }, async () => {
  const image = state.mine.get('image');
  need('step i', image && networkIdOf(image));
  const redaction = await networkSays('deletions', { id: 'n-del-alice', target: networkIdOf(image!)!, reason: 'off topic' });
  const red = await eventOf(redaction);
  assert.equal(red.sender, state.bot);
  assert.deepEqual((await eventOf(image!)).content, {});
  // Something after it, to know Synapse has pushed the redaction to the AS by then.
  const marker = await aliceSends('m.room.message', { msgtype: 'm.text', body: 'l2 marker' });
  await delivered('messages', marker);
  assert.equal(state.net!.received.filter((r) => r.kind === 'deletions' && r.body?.id === redaction).length, 0, 'the bot\'s redaction did not go back to the network');
});

test('m. nothing the network did came back to it; every request to the network as docs/network-api.yaml says', { timeout: 30_000 }, async (t) => {
  need('step l', state.net && state.mine.has('reply'));
  const net = state.net!;
  const deliveries = net.received.filter((r) => r.kind);
  const notAlice = deliveries.filter((r) => r.body?.sender?.userId !== ALICE);
  assert.deepEqual(notAlice.map((r) => `${r.path} ${JSON.stringify(r.body)}`), [], 'only alice\'s events went to the network (not the virtual users\' nor the bot\'s, which Synapse pushes too)');
  assert.ok(deliveries.every((r) => r.status === 200), deliveries.map((r) => `${r.path} ${r.status}`).join(', '));
  assert.deepEqual(net.specErrors, []);
  const problems = asLogLines(state.logFrom).filter((l) => l.level === 'error' || l.level === 'warn');
  for (const p of problems) t.diagnostic(`AS ${p.level}: ${JSON.stringify(p)}`);
  assert.deepEqual(problems.filter((l) => l.level === 'error'), [], 'no error in the AS\'s log once Synapse was up');
});
