import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startAs, HS_TOKEN, enc } from './support/as.js';
import type { AsUnderTest } from './support/as.js';
import { checkAsResponse } from './support/spec.js';

const as: AsUnderTest = await startAs();
beforeEach(() => as.hs.reset());

const query = (userId: string, extra: { headers?: Record<string, string>; query?: Record<string, string>; legacy?: boolean } = {}) =>
  as.call('user-query', {
    method: 'GET',
    path: extra.legacy ? `/users/${enc(userId)}` : `/_matrix/app/v1/users/${enc(userId)}`,
    headers: extra.headers ?? { authorization: `Bearer ${HS_TOKEN}` },
    query: extra.query,
  });

const specOk = (status: number, body: unknown) =>
  assert.deepEqual(checkAsResponse('GET', '/_matrix/app/v1/users/@irc_x:example.org', status, body), []);

test('a user the network knows is registered, given a display name and recorded', async () => {
  const res = await query('@irc__bob:example.org');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {});
  specOk(res.status, res.body);
  const register = as.hs.calls.find((c) => c.path.endsWith('/register'));
  assert.equal(register?.body.username, 'irc__bob');
  assert.equal(register?.body.type, 'm.login.application_service');
  assert.equal(register?.body.inhibit_login, true, 'no device or access token per virtual user');
  assert.equal(as.hs.users.get('@irc__bob:example.org')?.displayName, 'Bob', 'display name is the unescaped remote name');
  const displayCall = as.hs.calls.find((c) => c.path.endsWith('/displayname'));
  assert.equal(displayCall?.userId, '@irc__bob:example.org', 'profile set as the user itself (identity assertion)');
  const rec = await as.store.getUser('@irc__bob:example.org');
  assert.equal(rec?.displayName, 'Bob');
  assert.deepEqual(as.hs.specErrors, []);
});

test('a second query for a recorded user only checks it with the HS (M_USER_IN_USE), without the network', async () => {
  assert.equal((await query('@irc_carol:example.org')).status, 200);
  const before = as.hs.calls.length;
  assert.ok(before > 0);
  assert.equal((await query('@irc_carol:example.org')).status, 200);
  // The HS asks only about users it lacks, so a recorded one is checked, not trusted.
  assert.deepEqual(
    as.hs.calls.slice(before).map((c) => [c.path, c.response?.errcode]),
    [['/_matrix/client/v3/register', 'M_USER_IN_USE']],
  );
});

test('M_USER_IN_USE counts as registered', async () => {
  as.hs.users.set('@irc_dave:example.org', {});
  const res = await query('@irc_dave:example.org');
  assert.equal(res.status, 200);
  assert.equal(as.hs.calls.find((c) => c.path.endsWith('/register'))?.response.errcode, 'M_USER_IN_USE');
  assert.equal(as.hs.users.get('@irc_dave:example.org')?.displayName, 'dave');
});

test('the legacy path with ?access_token= works', async () => {
  const res = await query('@irc_erin:example.org', { legacy: true, headers: {}, query: { access_token: HS_TOKEN } });
  assert.equal(res.status, 200);
  assert.ok(as.hs.users.has('@irc_erin:example.org'));
});

test('outside our namespace: 404 M_NOT_FOUND and nothing is created', async () => {
  for (const id of ['@bob:example.org', '@irc_bob:other.org', '@irc_=zz:example.org', '@ircbot:example.org']) {
    const res = await query(id);
    assert.equal(res.status, 404, id);
    assert.equal(res.body.errcode, 'M_NOT_FOUND');
    specOk(res.status, res.body);
  }
  assert.equal(as.hs.calls.length, 0);
});

test('a malformed user ID is 400 M_INVALID_PARAM', async () => {
  for (const id of ['irc_bob', '@irc_bob', '@:example.org', '@irc bob:example.org']) {
    const res = await query(id);
    assert.equal(res.status, 400, id);
    assert.equal(res.body.errcode, 'M_INVALID_PARAM');
  }
  const bad = await as.call('user-query', { method: 'GET', path: '/_matrix/app/v1/users/%E0%A4%A', headers: { authorization: `Bearer ${HS_TOKEN}` } });
  assert.equal(bad.status, 400);
  assert.equal(as.hs.calls.length, 0);
});

test('no token 401, wrong token 403, mismatched header and query 403', async () => {
  const none = await query('@irc_bob:example.org', { headers: {} });
  assert.equal(none.status, 401);
  assert.equal(none.body.errcode, 'M_UNAUTHORIZED');
  specOk(none.status, none.body);
  const wrong = await query('@irc_bob:example.org', { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 403);
  assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
  const mixed = await query('@irc_bob:example.org', { query: { access_token: 'other' } });
  assert.equal(mixed.status, 403);
  assert.equal(as.hs.calls.length, 0);
});

test('HS rate limits are waited out, honouring retry_after_ms', async () => {
  as.hs.fail({ match: { pathIncludes: '/register' }, kind: 'ratelimit', retryAfterMs: 300, times: 2 });
  const res = await query('@irc_frank:example.org');
  assert.equal(res.status, 200);
  const registers = as.hs.calls.filter((c) => c.path.endsWith('/register'));
  assert.equal(registers.length, 3);
  assert.ok(as.hs.users.has('@irc_frank:example.org'));
});

test('an HS that keeps failing gives a clear 5xx, and no user is recorded', async () => {
  as.hs.fail({ match: { pathIncludes: '/displayname' }, kind: 'status', status: 500, times: Infinity });
  const res = await query('@irc_gina:example.org');
  assert.ok(res.status >= 500, String(res.status));
  assert.equal(typeof res.body.errcode, 'string');
  assert.equal(typeof res.body.error, 'string');
  assert.equal(await as.store.getUser('@irc_gina:example.org'), undefined);
  as.hs.reset();
  assert.equal((await query('@irc_gina:example.org')).status, 200, 'a later query succeeds');
});

test('a hanging HS is cut off by the deadline with a 5xx', async () => {
  as.hs.fail({ match: { pathIncludes: '/register' }, kind: 'hang', times: Infinity });
  const res = await as.call('user-query', {
    method: 'GET',
    path: `/_matrix/app/v1/users/${enc('@irc_hank:example.org')}`,
    headers: { authorization: `Bearer ${HS_TOKEN}` },
    timeoutMs: 3000,
  });
  assert.ok(res.status >= 500);
  assert.equal(res.body.errcode, 'M_UNKNOWN');
});

test('20 parallel queries for one user all answer 200 and leave one registered user', async () => {
  const results = await Promise.all(Array.from({ length: 20 }, () => query('@irc_ivy:example.org')));
  assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
  assert.equal(as.hs.users.get('@irc_ivy:example.org')?.displayName, 'ivy');
  const items = (await as.table.items()).filter((i) => i.pk === 'USER#@irc_ivy:example.org');
  assert.equal(items.length, 1);
});

test('tokens never reach a log line', async () => {
  await query('@irc_jo:example.org', { headers: {}, query: { access_token: HS_TOKEN } });
  await query('@irc_jo:example.org', { headers: { authorization: `Bearer wrong-${HS_TOKEN}` } });
  const all = as.logs.join('\n');
  assert.ok(as.logs.length > 0);
  assert.ok(!all.includes(HS_TOKEN));
  assert.ok(!all.includes('as-token-for-tests'));
});
