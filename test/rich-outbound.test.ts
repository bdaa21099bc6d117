/**
 * Rich messages, Matrix → network (issue 23): formatting, mentions, replies, edits, redactions,
 * reactions and media, through push, the delivery queue and the deliver function, against the
 * fake homeserver (events checked against the spec's schemas) and the fake network (requests
 * checked against docs/network-api.yaml). References name the Matrix event always and the
 * network's own id when the message mapping has it.
 */
import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, enc } from './support/as.js';
import { bridgedRoom as bridgedRoomOf } from './support/bridged-room.js';
import { startFakeNetwork } from './support/fake-network.js';
import type { Received } from './support/fake-network.js';
import type { FakeRoom } from './support/fake-hs.js';
import { MESSAGES } from '../lib/defaults.js';
import { signLink } from '../lib/signature.js';
import { SEND_STATUS_TYPE } from '../lib/bridge/send-status.js';

const network = await startFakeNetwork();
after(() => network.close());
const AS_URL = 'https://as.example.org';
const as = await startAs({ NETWORK: 'webhook', NETWORK_URL: network.url, NETWORK_SECRET: network.secret, NETWORK_TIMEOUT_MS: '2000', AS_URL });
after(() => assert.deepEqual(as.networkApiErrors, [], 'every answer to the network as docs/network-api.yaml says'));
const ALICE = '@alice:example.org';
const MOD = '@mod:example.org';

let n = 0;
const uniq = (p: string) => `${p}${Date.now().toString(36)}${++n}`;
beforeEach(() => {
  network.onDeliver = undefined;
  network.unsupported?.clear();
  network.answerIds = true;
});
after(() => assert.deepEqual(as.hs.specErrors, [], 'every CS request and event content the spec way'));
after(() => assert.deepEqual(network.specErrors, [], 'every request to the network as docs/network-api.yaml says'));

async function bridgedRoom(): Promise<{ room: FakeRoom; remote: string }> {
  const made = await bridgedRoomOf(as, network, [ALICE, MOD]);
  made.room.moderators.add(MOD);
  return made;
}

/** A Matrix user does something in the room; the homeserver pushes it to the AS. */
async function matrix(room: FakeRoom, type: string, content: Record<string, unknown>, sender = ALICE): Promise<string> {
  const ev = as.hs.userSend(sender, room.roomId, type, content);
  assert.equal(await as.pushSend(uniq('t'), { events: [as.hs.clientEvent(room.roomId, ev)] }), 200);
  return ev.eventId;
}
async function redact(room: FakeRoom, eventId: string, sender = ALICE, reason?: string): Promise<string> {
  const ev = as.hs.userRedact(sender, room.roomId, eventId, reason);
  assert.equal(await as.pushSend(uniq('t'), { events: [as.hs.clientEvent(room.roomId, ev)] }), 200);
  return ev.eventId;
}
const taken = (path: string, remote: string): Received[] => network.received.filter((r) => r.path === path && r.status >= 200 && r.status < 300 && r.body?.room === remote);
const answeredId = (r: Received | undefined) => (r as unknown as { answer?: { id?: string } })?.answer?.id;

/** A network user says something (POST /network/messages): its event ID. */
async function fromNetwork(remote: string, body: string, sender = 'Bob'): Promise<{ id: string; eventId: string }> {
  const m = { id: uniq('irc-'), room: remote, sender: { id: sender }, body, ts: Date.now() };
  const raw = JSON.stringify(m);
  const res = await as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: raw, headers: { 'x-signature': network.sign(raw) } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return { id: m.id, eventId: res.body.event_id };
}

test('formatting: the HTML goes out beside the plain body; mentions carry the network id of network users', async () => {
  const { room, remote } = await bridgedRoom();
  const html = 'hi <a href="https://matrix.to/#/@irc__bob:example.org">Bob</a>, <strong>look</strong>';
  const eventId = await matrix(room, 'm.room.message', {
    msgtype: 'm.text',
    body: 'hi Bob, **look**',
    format: 'org.matrix.custom.html',
    formatted_body: html,
    'm.mentions': { user_ids: ['@irc__bob:example.org', '@carol:example.org'] },
  });
  const [m] = taken('/messages', remote).map((r) => r.body);
  assert.equal(m.id, eventId);
  assert.equal(m.body, 'hi Bob, **look**');
  assert.equal(m.formattedBody, html);
  assert.deepEqual(m.mentions, [{ userId: '@irc__bob:example.org', id: 'Bob' }, { userId: '@carol:example.org' }]);
});

test('a reply: the fallback is gone from both bodies, and the network gets what it answers, by the network id', async () => {
  const { room, remote } = await bridgedRoom();
  const bob = await fromNetwork(remote, 'who is there?');
  await matrix(room, 'm.room.message', {
    msgtype: 'm.text',
    body: '> <@irc__bob:example.org> who is there?\n\nme!',
    format: 'org.matrix.custom.html',
    formatted_body: '<mx-reply><blockquote>who is there?</blockquote></mx-reply>me!',
    'm.relates_to': { 'm.in_reply_to': { event_id: bob.eventId } },
  });
  const [m] = taken('/messages', remote).map((r) => r.body);
  assert.equal(m.body, 'me!');
  assert.equal(m.formattedBody, 'me!');
  assert.deepEqual(m.replyTo, { eventId: bob.eventId, id: bob.id });
});

test('an edit, a reaction and a redaction of a delivered message name it by the id the network answered for it', async () => {
  const { room, remote } = await bridgedRoom();
  const original = await matrix(room, 'm.room.message', { msgtype: 'm.text', body: 'helo' });
  const netId = answeredId(taken('/messages', remote)[0]);
  assert.ok(netId, 'the fake network answers an id for what it takes');
  await matrix(room, 'm.room.message', {
    msgtype: 'm.text',
    body: '* hello',
    'm.new_content': { msgtype: 'm.text', body: 'hello' },
    'm.relates_to': { rel_type: 'm.replace', event_id: original },
  });
  const reaction = await matrix(room, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: original, key: '👍' } });
  const reactionNetId = answeredId(taken('/reactions', remote)[0]);
  await redact(room, reaction);
  await redact(room, original, MOD, 'spam');

  const [edit] = taken('/edits', remote).map((r) => r.body);
  assert.deepEqual(edit.target, { eventId: original, id: netId });
  assert.equal(edit.body, 'hello', 'the new content, not the "* " fallback');
  assert.equal(edit.msgtype, 'm.text');
  const [react] = taken('/reactions', remote).map((r) => r.body);
  assert.deepEqual([react.target, react.key], [{ eventId: original, id: netId }, '👍']);
  const deletions = taken('/deletions', remote).map((r) => r.body);
  assert.deepEqual(deletions.map((d) => d.target), [{ eventId: reaction, id: reactionNetId }, { eventId: original, id: netId }]);
  assert.equal(deletions[1].reason, 'spam');
  assert.equal(deletions[1].sender.userId, MOD, 'a moderator deleting is who the network is told');
  assert.equal(taken('/messages', remote).length, 1, 'an edit is not a new message');
});

test('the same, in one transaction: the edit finds the id the network answered moments before, in the same batch', async () => {
  const { room, remote } = await bridgedRoom();
  const a = as.hs.userSend(ALICE, room.roomId, 'm.room.message', { msgtype: 'm.text', body: 'typo' });
  const e = as.hs.userSend(ALICE, room.roomId, 'm.room.message', {
    msgtype: 'm.text',
    body: '* fixed',
    'm.new_content': { msgtype: 'm.text', body: 'fixed' },
    'm.relates_to': { rel_type: 'm.replace', event_id: a.eventId },
  });
  assert.equal(await as.pushSend(uniq('t'), { events: [a, e].map((x) => as.hs.clientEvent(room.roomId, x)) }), 200);
  const netId = answeredId(taken('/messages', remote)[0]);
  assert.deepEqual(taken('/edits', remote)[0]?.body.target, { eventId: a.eventId, id: netId });
});

test('a network that answers no ids (contract v1): references carry the event ID alone, and one mapping is still written per message', async () => {
  network.answerIds = false;
  const { room, remote } = await bridgedRoom();
  const before = (await as.table.items()).filter((i) => String(i.pk).startsWith('NETMSG#')).length;
  const original = await matrix(room, 'm.room.message', { msgtype: 'm.text', body: 'v1' });
  await matrix(room, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: original, key: 'x' } });
  assert.deepEqual(taken('/reactions', remote)[0]?.body.target, { eventId: original });
  const items = (await as.table.items()).filter((i) => String(i.pk).startsWith('NETMSG#'));
  assert.equal(items.length, before + 2, 'the message and the reaction, one item each');
  assert.ok(items.some((i) => i.pk === `NETMSG#${original}` && i.eventId === original), 'kept under the event ID the network was given');
});

test('DynamoDB writes per message stay constant: one mapping item per message or reaction, none for edits and deletions', async () => {
  const { room } = await bridgedRoom();
  const count = async () => (await as.table.items()).filter((i) => String(i.pk).startsWith('NETMSG#')).length;
  const start = await count();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await matrix(room, 'm.room.message', { msgtype: 'm.text', body: `m${i}` }));
  assert.equal(await count(), start + 5);
  await matrix(room, 'm.room.message', { msgtype: 'm.text', body: '* e', 'm.new_content': { msgtype: 'm.text', body: 'e' }, 'm.relates_to': { rel_type: 'm.replace', event_id: ids[0] } });
  await redact(room, ids[1]!);
  assert.equal(await count(), start + 5);
});

test('a network without reactions (501) or that does not know the target (404): dropped quietly, not retried, the sender not told of a failure', async () => {
  const { room, remote } = await bridgedRoom();
  const original = await matrix(room, 'm.room.message', { msgtype: 'm.text', body: 'react to me' });
  network.unsupported.add('reactions');
  const reaction = await matrix(room, 'm.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: original, key: '🎉' } });
  network.onDeliver = (body, _attempt, kind) => (kind === 'edits' ? { status: 404 } : undefined);
  const edit = await matrix(room, 'm.room.message', { msgtype: 'm.text', body: '* x', 'm.new_content': { msgtype: 'm.text', body: 'x' }, 'm.relates_to': { rel_type: 'm.replace', event_id: original } });
  await as.deliver({ retryNow: true });
  assert.equal(network.received.filter((r) => r.path === '/reactions' && r.body?.id === reaction).length, 1, 'tried once');
  assert.equal(network.received.filter((r) => r.path === '/edits' && r.body?.id === edit).length, 1, 'tried once');
  const told = room.events.filter((e) => e.type === SEND_STATUS_TYPE || (e.type === 'm.room.message' && e.content.msgtype === 'm.notice'));
  assert.deepEqual(told.filter((e) => [reaction, edit].includes((e.content['m.relates_to'] as any)?.event_id ?? (e.content['m.relates_to'] as any)?.['m.in_reply_to']?.event_id)), []);
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
  assert.equal(taken('/messages', remote).length, 1);
});

test('an edit of someone else\'s message is not delivered: Matrix shows an edit only from the message\'s sender', async () => {
  const { room, remote } = await bridgedRoom();
  const bob = await fromNetwork(remote, 'Bob says');
  const mine = await matrix(room, 'm.room.message', { msgtype: 'm.text', body: 'mine' });
  for (const [target, sender] of [[bob.eventId, ALICE], [mine, MOD]] as const) {
    await matrix(room, 'm.room.message', { msgtype: 'm.text', body: '* x', 'm.new_content': { msgtype: 'm.text', body: 'x' }, 'm.relates_to': { rel_type: 'm.replace', event_id: target } }, sender);
  }
  await matrix(room, 'm.room.message', { msgtype: 'm.text', body: '* mine!', 'm.new_content': { msgtype: 'm.text', body: 'mine!' }, 'm.relates_to': { rel_type: 'm.replace', event_id: mine } });
  assert.deepEqual(taken('/edits', remote).map((r) => r.body.body), ['mine!'], 'only Alice\'s edit of her own message');
  // Synapse takes such an edit (and no client shows it); the fake takes it too, and notes it.
  const noted = as.hs.specErrors.filter((e) => e.includes('a replacement must have the sender of the original'));
  assert.equal(noted.length, 2);
  as.hs.specErrors.splice(0, as.hs.specErrors.length, ...as.hs.specErrors.filter((e) => !noted.includes(e)));
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
});

test('echoes: what virtual users and the bot do (a network edit, reaction or deletion coming back) is never sent to the network', async () => {
  const { room, remote } = await bridgedRoom();
  const bob = await fromNetwork(remote, 'mine');
  const before = network.received.length;
  for (const [type, content] of [
    ['m.reaction', { 'm.relates_to': { rel_type: 'm.annotation', event_id: bob.eventId, key: '1' } }],
    ['m.room.message', { msgtype: 'm.text', body: '* x', 'm.new_content': { msgtype: 'm.text', body: 'x' }, 'm.relates_to': { rel_type: 'm.replace', event_id: bob.eventId } }],
  ] as const) {
    await matrix(room, type, content as Record<string, unknown>, '@irc__bob:example.org');
  }
  await redact(room, bob.eventId, '@irc__bob:example.org');
  assert.equal(network.received.length, before);
});

test('media: an image goes out with its info and a pre-signed link through the AS, which serves the bytes from the homeserver (authenticated media)', async () => {
  const { room, remote } = await bridgedRoom();
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
  const mxc = as.hs.addMedia(png, 'image/png', 'cat.png', ALICE);
  await matrix(room, 'm.room.message', { msgtype: 'm.image', body: 'cat.png', url: mxc, info: { mimetype: 'image/png', size: png.length, w: 4, h: 3 } });
  await matrix(room, 'm.sticker', { body: 'wave', url: mxc, info: { mimetype: 'image/png', size: png.length, w: 4, h: 3 } });
  const [image, sticker] = taken('/messages', remote).map((r) => r.body);
  assert.equal(image.msgtype, 'm.image');
  assert.equal(sticker.msgtype, 'm.sticker');
  const { url, ...rest } = image.media;
  assert.deepEqual(rest, { mxc, filename: 'cat.png', mimetype: 'image/png', size: png.length, width: 4, height: 3 });
  assert.ok(url.startsWith(`${AS_URL}/network/media/example.org/`), url);
  const got = await fetchLink(url);
  assert.equal(got.status, 200);
  assert.deepEqual(got.bytes, png);
  assert.equal(got.headers['content-type'], 'image/png');
  const download = as.hs.calls.filter((c) => c.path.includes('/media/download/')).at(-1)!;
  assert.match(download.path, /^\/_matrix\/client\/v1\/media\/download\//, 'the authenticated endpoint, with the as_token');
});

/** The network GETs a media link: the download function, invoked as API Gateway would for that URL. */
async function fetchLink(link: string) {
  const u = new URL(link);
  return as.call('network-media-download', { method: 'GET', path: u.pathname, query: Object.fromEntries(u.searchParams) });
}

test('media links: tampered, for another medium, or expired: 403; unknown medium 404; over the limit 413 with the size', async () => {
  const { room, remote } = await bridgedRoom();
  const mxc = as.hs.addMedia(Buffer.from('hello'), 'text/plain', 'a.txt', ALICE);
  await matrix(room, 'm.room.message', { msgtype: 'm.file', body: 'a.txt', url: mxc, info: { size: 5 } });
  const url = taken('/messages', remote)[0]!.body.media.url as string;
  const u = new URL(url);
  const sig = u.searchParams.get('sig')!;
  const tampered = new URL(url);
  tampered.searchParams.set('sig', sig.replace(/^./, sig[0] === '0' ? '1' : '0'));
  assert.equal((await fetchLink(tampered.href)).status, 403);
  const other = new URL(url.replace(/\/network\/media\/example\.org\/[^?]+/, '/network/media/example.org/other'));
  assert.equal((await fetchLink(other.href)).status, 403, 'a signature holds for its own medium only');
  const noSig = new URL(url);
  noSig.search = '';
  const unsigned = await fetchLink(noSig.href);
  assert.deepEqual([unsigned.status, unsigned.body.errcode], [403, 'M_FORBIDDEN']);
  // Signed (only a holder of the secret could), yet no medium's name: never a path on the homeserver.
  const expires = Math.floor(Date.now() / 1000) + 600;
  const calls = as.hs.calls.length;
  for (const [server, mediaId] of [['..', 'x'], ['.', 'x'], ['example.org', 'a.b']] as const) {
    const walk = await as.call('network-media-download', {
      method: 'GET',
      path: `/network/media/${encodeURIComponent(server)}/${encodeURIComponent(mediaId)}`,
      query: { expires: String(expires), sig: signLink(network.secret, `${server}/${mediaId}`, expires) },
    });
    assert.equal(walk.status, 404, `${server}/${mediaId}`);
  }
  assert.equal(as.hs.calls.length, calls, 'the homeserver was not asked');
  await as.later(MESSAGES.MEDIA_LINK_HOURS * 3600_000 + 60_000);
  const expired = await fetchLink(url);
  assert.equal(expired.status, 403);
  assert.match(expired.body.error, /expired/);

  // A fresh link, from the bridge's (moved) clock: an unknown medium and a big one.
  const { room: r2, remote: remote2 } = await bridgedRoom();
  const big = as.hs.addMedia(Buffer.alloc(MESSAGES.MEDIA_MAX_BYTES + 1, 1), 'video/mp4', 'big.mp4', ALICE);
  await matrix(r2, 'm.room.message', { msgtype: 'm.video', body: 'big.mp4', url: big, info: { mimetype: 'video/mp4' } });
  await matrix(r2, 'm.room.message', { msgtype: 'm.video', body: 'big2.mp4', url: big, info: { mimetype: 'video/mp4', size: MESSAGES.MEDIA_MAX_BYTES + 1 } });
  await matrix(r2, 'm.room.message', { msgtype: 'm.image', body: 'gone.png', url: 'mxc://example.org/nosuchmedia', info: {} });
  const [unsized, sized, gone] = taken('/messages', remote2).map((r) => r.body.media);
  const tooBig = await fetchLink(unsized.url);
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.body.errcode, 'M_TOO_LARGE');
  assert.equal(tooBig.body.size, MESSAGES.MEDIA_MAX_BYTES + 1);
  assert.equal(sized.tooLarge, true, 'a size known over the limit: the message says so');
  assert.equal(sized.url, undefined, 'and gives no link that could only fail');
  assert.equal((await fetchLink(gone.url)).status, 404);
});

test('media: a homeserver without authenticated media (Synapse 1.94) is read on the legacy path', async () => {
  const { room, remote } = await bridgedRoom();
  const mxc = as.hs.addMedia(Buffer.from('old server'), 'text/plain', 'x.txt', ALICE);
  await matrix(room, 'm.room.message', { msgtype: 'm.file', body: 'x.txt', url: mxc });
  as.hs.options.authenticatedMedia = false;
  try {
    const got = await fetchLink(taken('/messages', remote)[0]!.body.media.url);
    assert.equal(got.status, 200);
    assert.equal(got.bytes?.toString(), 'old server');
    assert.match(as.hs.calls.filter((c) => c.path.includes('/download/')).at(-1)!.path, /^\/_matrix\/media\/v3\/download\//);
  } finally {
    as.hs.options.authenticatedMedia = true;
  }
});

test('media: the homeserver failing is 502 with a Matrix error, never the homeserver\'s body', async () => {
  const { room, remote } = await bridgedRoom();
  const mxc = as.hs.addMedia(Buffer.from('x'), 'text/plain', 'x.txt', ALICE);
  await matrix(room, 'm.room.message', { msgtype: 'm.file', body: 'x.txt', url: mxc });
  as.hs.fail({ match: { pathIncludes: '/media/download/' }, kind: 'status', status: 500, times: 2 });
  const res = await fetchLink(taken('/messages', remote)[0]!.body.media.url);
  assert.equal(res.status, 502);
  assert.equal(res.body.errcode, 'M_UNKNOWN');
});

test('other msgtypes go out with their plain body; malformed relations and contents are not delivered', async () => {
  const { room, remote } = await bridgedRoom();
  await matrix(room, 'm.room.message', { msgtype: 'm.location', body: 'Big Ben', geo_uri: 'geo:51.5008,0.1247' });
  const [loc] = taken('/messages', remote).map((r) => r.body);
  assert.deepEqual([loc.msgtype, loc.body], ['m.location', 'Big Ben']);
  // Pushed as a homeserver could (no fake-HS checks on these): an edit without new content, a
  // reaction without a key, a redaction without a target.
  const bad = [
    { type: 'm.room.message', content: { msgtype: 'm.text', body: '* x', 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' } } },
    { type: 'm.reaction', content: { 'm.relates_to': { rel_type: 'm.annotation', event_id: '$x' } } },
    { type: 'm.room.redaction', content: {} },
  ].map((e, i) => ({ ...e, event_id: `$bad${i}${uniq('')}`, room_id: room.roomId, sender: ALICE, origin_server_ts: Date.now() }));
  const before = network.received.length;
  assert.equal(await as.pushSend(uniq('t'), { events: bad }), 200);
  assert.equal(network.received.length, before);
  assert.deepEqual(await as.queues.counts(), { visible: 0, hidden: 0, deadLetters: 0 });
});
