import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeHs } from './support/fake-hs.js';
import { createCsClient } from '../lib/matrix/client.js';
import { HomeserverError, MatrixError, isHomeserverError } from '../lib/matrix/errors.js';
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

test('HS errors surface as typed errors that keep what the HS said, not retried when permanent', async () => {
  await cs.register('irc_dup', soon());
  await assert.rejects(cs.register('irc_dup', soon()), (e: unknown) => isHomeserverError(e, 'M_USER_IN_USE') && e.hs.status === 400);
  await assert.rejects(cs.join('!nope:hs.test', soon()), (e: unknown) => isHomeserverError(e, 'M_NOT_FOUND') && e.errcode === 'M_NOT_FOUND');
  assert.equal(hs.calls.filter((c) => c.path.includes('/join/')).length, 1, 'a 404 is not retried');
  const wrongToken = createCsClient({ homeserverUrl: hs.url, asToken: 'wrong' });
  await assert.rejects(wrongToken.register('irc_x', soon()), (e: unknown) => isHomeserverError(e, 'M_UNKNOWN_TOKEN') && e.hs.status === 401);
});

test('every class of HS error maps to our own answer, in one place: auth, forbidden, not found, too large, rate limited, 5xx, unreachable', async () => {
  const expect = async (arrange: () => void, call: () => Promise<unknown>, ours: { status: number; errcode: string; transient: boolean }) => {
    hs.reset();
    arrange();
    const e = await call().then(
      () => assert.fail('the call should fail'),
      (err: unknown) => err,
    );
    assert.ok(e instanceof HomeserverError, String(e));
    assert.deepEqual({ status: e.status, errcode: e.errcode, transient: e.transient }, ours, e.message);
    assert.equal(typeof e.body.error, 'string');
    return e;
  };
  const register = () => cs.register('irc_classes', { deadline: Date.now() + 1500 });
  const failWith = (status: number, body: unknown) => () => hs.fail({ match: { pathIncludes: '/register' }, kind: 'status', status, body, times: Infinity });

  // Auth: our as_token is wrong. Not "unauthorised" to our caller: a 5xx it retries, and the setting named.
  const auth = await expect(failWith(401, { errcode: 'M_UNKNOWN_TOKEN', error: 'Invalid access token passed.' }), register, { status: 500, errcode: 'M_UNKNOWN', transient: true });
  assert.equal(auth.misconfigured, 'AS_TOKEN');
  assert.match(auth.message, /AS_TOKEN/);
  assert.equal(hs.calls.length, 1, 'a 401 is not retried within the call');
  await expect(failWith(403, { errcode: 'M_FORBIDDEN', error: 'no' }), register, { status: 403, errcode: 'M_FORBIDDEN', transient: false });
  await expect(failWith(404, { errcode: 'M_NOT_FOUND', error: 'no' }), register, { status: 404, errcode: 'M_NOT_FOUND', transient: false });
  await expect(failWith(413, { errcode: 'M_TOO_LARGE', error: 'event too large' }), register, { status: 413, errcode: 'M_TOO_LARGE', transient: false });
  await expect(failWith(400, { errcode: 'M_BAD_JSON', error: 'odd' }), register, { status: 400, errcode: 'M_UNKNOWN', transient: false });
  await expect(() => hs.fail({ match: { pathIncludes: '/register' }, kind: 'ratelimit', retryAfterMs: 60_000, times: Infinity }), register, { status: 503, errcode: 'M_UNKNOWN', transient: true });
  const fiveHundred = await expect(failWith(502, '<html>502 Bad Gateway</html>'), register, { status: 503, errcode: 'M_UNKNOWN', transient: true });
  assert.ok(hs.calls.length > 1, 'a 5xx is retried within the deadline');
  assert.equal(fiveHundred.hs.status, 502);
  const nowhere = createCsClient({ homeserverUrl: 'http://127.0.0.1:9', asToken: 'x', backoffMs: 20 });
  await expect(() => undefined, () => nowhere.register('irc_x', { deadline: Date.now() + 500 }), { status: 503, errcode: 'M_UNKNOWN', transient: true });
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
