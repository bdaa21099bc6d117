import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeHs } from './support/fake-hs.js';
import { createCsClient } from '../lib/matrix/client.js';
import { MatrixError } from '../lib/matrix/errors.js';
import type { RoomId } from '../lib/matrix/ids.js';

const hs = await startFakeHs({ asToken: 'client-as-token-000000', serverName: 'hs.test', userPrefix: 'irc_', senderLocalpart: 'bot', requireInhibitLogin: true });
after(() => hs.close());
beforeEach(() => hs.reset());
const cs = createCsClient({ homeserverUrl: hs.url, asToken: 'client-as-token-000000', backoffMs: 20 });
const soon = () => ({ deadline: Date.now() + 5000 });

test('every typed call reaches the HS as the spec says, with identity assertion and ts', async () => {
  await cs.register('irc_bob', soon());
  await cs.setDisplayName('@irc_bob:hs.test', 'Bob', soon());
  await cs.setAvatarUrl('@irc_bob:hs.test', 'mxc://hs.test/bob', soon());
  const { room_id } = await cs.createRoom({ room_alias_name: 'irc_room', name: 'Room', topic: 'T', preset: 'public_chat' }, soon());
  assert.equal((await cs.resolveAlias('#irc_room:hs.test', soon())).room_id, room_id);
  await cs.join(room_id, { ...soon(), asUser: '@irc_bob:hs.test' });
  await cs.register('irc_carol', soon());
  await cs.invite(room_id, '@irc_carol:hs.test', soon());
  const sent = await cs.sendEvent(room_id, 'm.room.message', 'txn-1', { msgtype: 'm.text', body: 'hi' }, { ...soon(), asUser: '@irc_bob:hs.test', ts: 1234 });
  assert.match(sent.event_id, /^\$/);
  await cs.sendState(room_id as RoomId, 'm.room.topic', '', { topic: 'new topic' }, soon());

  const room = hs.rooms.get(room_id)!;
  assert.equal(room.topic, 'new topic');
  assert.ok(room.members.has('@irc_bob:hs.test'));
  assert.ok(room.invited.has('@irc_carol:hs.test'));
  const msg = room.events.find((e) => e.type === 'm.room.message')!;
  assert.deepEqual([msg.sender, msg.ts, msg.content.body], ['@irc_bob:hs.test', 1234, 'hi']);
  assert.equal(hs.users.get('@irc_bob:hs.test')?.avatarUrl, 'mxc://hs.test/bob');
  assert.ok(hs.calls.every((c) => c.status === 200), JSON.stringify(hs.calls.filter((c) => c.status !== 200)));
  assert.deepEqual(hs.specErrors, []);
});

test('HS errors surface as typed Matrix errors, not retried when permanent', async () => {
  await cs.register('irc_dup', soon());
  await assert.rejects(cs.register('irc_dup', soon()), (e: unknown) => e instanceof MatrixError && e.status === 400 && e.errcode === 'M_USER_IN_USE');
  await assert.rejects(cs.join('!nope:hs.test', soon()), (e: unknown) => e instanceof MatrixError && e.errcode === 'M_NOT_FOUND');
  assert.equal(hs.calls.filter((c) => c.path.includes('/join/')).length, 1, 'a 404 is not retried');
  const wrongToken = createCsClient({ homeserverUrl: hs.url, asToken: 'wrong' });
  await assert.rejects(wrongToken.register('irc_x', soon()), (e: unknown) => e instanceof MatrixError && e.status === 401);
});

test('429 waits retry_after_ms, 5xx backs off, and both then succeed', async () => {
  hs.fail({ match: { pathIncludes: '/register' }, kind: 'ratelimit', retryAfterMs: 100, times: 2 });
  hs.fail({ match: { pathIncludes: '/displayname' }, kind: 'status', status: 502, times: 3 });
  await cs.register('irc_slow', soon());
  await cs.setDisplayName('@irc_slow:hs.test', 'Slow', soon());
  assert.deepEqual(hs.calls.map((c) => c.status), [429, 429, 200, 502, 502, 502, 200]);
});

test('a wait that would outlive the deadline is not begun: the call fails at once with 503', async () => {
  hs.fail({ match: { pathIncludes: '/register' }, kind: 'ratelimit', retryAfterMs: 60_000, times: Infinity });
  await assert.rejects(cs.register('irc_later', { deadline: Date.now() + 3000 }), (e: unknown) => e instanceof MatrixError && e.status === 503);
  assert.equal(hs.calls.length, 1, 'no second attempt');
});

test('a hanging HS is cut off by the deadline and reported as a timeout', async () => {
  hs.fail({ match: { pathIncludes: '/createRoom' }, kind: 'hang', times: Infinity });
  await assert.rejects(
    cs.createRoom({ name: 'x' }, { deadline: Date.now() + 800 }),
    (e: unknown) => e instanceof MatrixError && e.status >= 500 && /timed out/.test(e.message),
  );
});
