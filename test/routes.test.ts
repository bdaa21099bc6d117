import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startAs, HS_TOKEN, AS_TOKEN } from './support/as.js';
import { eventsDigest } from '../lib/bridge/ledger.js';
import { checkAsResponse, checkRegistration } from './support/spec.js';
import { NETWORK_INBOUND_ROUTES, NETWORK_MEDIA_ROUTES } from './support/network-routes.js';

const as = await startAs();

test('ping: 200 {} for a valid token, from any copy, with no state', async () => {
  const before = await as.table.items();
  const res = await as.hsCall('ping', { method: 'POST', path: '/_matrix/app/v1/ping', body: { transaction_id: 'mautrix-go_1' } });
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, {});
  assert.deepEqual(checkAsResponse('POST', '/_matrix/app/v1/ping', 200, res.body), []);
  assert.deepEqual(await as.table.items(), before);
  assert.equal(as.hs.calls.length, 0);
  assert.equal((await as.call('ping', { method: 'POST', path: '/_matrix/app/v1/ping', body: {} })).status, 401);
  const wrong = await as.call('ping', { method: 'POST', path: '/_matrix/app/v1/ping', body: {}, headers: { authorization: 'Bearer x' } });
  assert.equal(wrong.status, 403);
  assert.equal(wrong.body.errcode, 'M_FORBIDDEN');
});

test('unknown routes are 404 M_UNRECOGNIZED; a known path with the wrong method is 405', async () => {
  for (const [method, path] of [
    ['GET', '/_matrix/app/v1/thirdparty/protocols'],
    ['GET', '/_matrix/app/v1/thirdparty/network/irc'],
    ['GET', '/thirdparty/protocol/irc'],
    ['GET', '/_matrix/app/v1/nothing'],
    ['POST', '/_matrix/app/unstable/whatever'],
    ['GET', '/'],
    ['GET', '/users'],
  ]) {
    const res = await as.call('unrecognized', { method: method!, path: path! });
    assert.equal(res.status, 404, path);
    assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
    assert.equal(typeof res.body.error, 'string');
  }
  for (const [method, path] of [
    ['PUT', '/_matrix/app/v1/users/@irc_bob:example.org'],
    ['POST', '/_matrix/app/v1/rooms/%23irc_x:example.org'],
    ['GET', '/_matrix/app/v1/transactions/1'],
    ['GET', '/_matrix/app/v1/ping'],
    ['POST', '/_matrix/app/v1/thirdparty/protocol/irc'],
    ['PUT', '/_matrix/app/unstable/thirdparty/location'],
    ['DELETE', '/_matrix/app/v1/thirdparty/user/irc'],
    ['DELETE', '/transactions/1'],
    ['GET', '/network/messages'],
  ]) {
    const res = await as.call('unrecognized', { method: method!, path: path! });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
  }
});

test("every route of serverless.yml is a known path: another method on it is 405, not 404", async () => {
  const config = parse(readFileSync(new URL('../serverless.yml', import.meta.url), 'utf8')) as { functions: Record<string, { events?: Array<{ httpApi?: string }> }> };
  const routes = Object.values(config.functions)
    .flatMap((f) => f.events ?? [])
    .map((e) => e.httpApi)
    .filter((r): r is string => typeof r === 'string' && r !== '*');
  // The network's routes among them (test/package.test.ts holds serverless.yml to this list).
  for (const r of [...NETWORK_INBOUND_ROUTES, ...NETWORK_MEDIA_ROUTES]) {
    assert.ok(routes.includes(r), r);
  }
  const wrong: string[] = [];
  for (const route of routes) {
    const [method, template] = route.split(' ') as [string, string];
    // A path the route matches: a greedy variable takes an ID with a slash, the others one segment.
    const path = template.replace(/\{[^}]+\+\}/g, '@irc_a/b:example.org').replace(/\{[^}]+\}/g, 'x1');
    // A method no route of this path takes (the provisioning API's links take GET, POST and DELETE).
    const taken = routes.filter((r) => r.split(' ')[1] === template).map((r) => r.split(' ')[0]);
    const other = ['GET', 'POST', 'PUT', 'DELETE'].find((m) => !taken.includes(m))!;
    const res = await as.call('unrecognized', { method: other, path });
    if (res.status !== 405 || res.body.errcode !== 'M_UNRECOGNIZED') wrong.push(`${other} ${path} (of ${route}): ${res.status}`);
  }
  assert.deepEqual(wrong, [], 'lib/appservice/routes.ts KNOWN names every route');
});

test('the open network logs each delivery as a JSON line', async () => {
  const room = await as.hsCall('room-query', { method: 'GET', path: `/_matrix/app/v1/rooms/${encodeURIComponent('#irc_open:example.org')}` });
  assert.equal(room.status, 200);
  const roomId = as.hs.aliases.get('#irc_open:example.org')!;
  const event = {
    event_id: '$open1',
    room_id: roomId,
    sender: '@alice:example.org',
    type: 'm.room.message',
    origin_server_ts: 1,
    content: { msgtype: 'm.text', body: 'to the open network' },
  };
  assert.equal((await as.hsCall('push', { method: 'PUT', path: '/_matrix/app/v1/transactions/open-1', body: { events: [event] } })).status, 200);
  const lines = as.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'delivered to the open network');
  assert.equal(lines.length, 1);
  assert.deepEqual(lines[0].delivery, {
    id: '$open1',
    room: 'open',
    sender: { userId: '@alice:example.org' },
    msgtype: 'm.text',
    body: 'to the open network',
    ts: 1,
  });
});

test('a transaction left by a copy that died is taken over once its lease ran out, from its cursor', async () => {
  const roomId = as.hs.aliases.get('#irc_open:example.org')!;
  const events = [1, 2, 3].map((i) => ({
    event_id: `$died${i}`,
    room_id: roomId,
    sender: '@alice:example.org',
    type: 'm.room.message',
    origin_server_ts: i,
    content: { msgtype: 'm.text', body: `died ${i}` },
  }));
  // What a copy killed after delivering event 0 leaves: running, its lease over, cursor at 1.
  const digest = eventsDigest(events);
  await as.store.claimTransaction('died-1', digest, 'dead-copy', Date.now() + 60_000);
  await as.store.recordProgress('died-1', 'dead-copy', { cursor: 1, done: false, failed: [] });
  await as.store.claimTransaction('died-1', digest, 'dead-copy', Date.now() - 1);
  const left = await as.store.getTransaction('died-1');
  assert.deepEqual([left?.state, left?.cursor, (left?.leaseUntil ?? Infinity) < Date.now()], ['running', 1, true]);
  as.logs.length = 0;
  assert.equal((await as.hsCall('push', { method: 'PUT', path: '/_matrix/app/v1/transactions/died-1', body: { events } })).status, 200);
  const delivered = as.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'delivered to the open network');
  assert.deepEqual(delivered.map((l) => l.delivery.id), ['$died2', '$died3']);
  // A live lease is respected: the HS gets 503 and nothing is delivered.
  await as.store.claimTransaction('alive-1', digest, 'live-copy', Date.now() + 60_000);
  as.logs.length = 0;
  const busy = await as.hsCall('push', { method: 'PUT', path: '/_matrix/app/v1/transactions/alive-1', body: { events }, timeoutMs: 4000 });
  assert.equal(busy.status, 503);
  assert.equal(as.logs.filter((l) => l.includes('delivered to the open network')).length, 0);
});

test('npm run registration prints a valid registration, and names what is missing', () => {
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/registration.ts', '--stage', 'prod'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, ...env },
    });
  const ok = run({ AS_URL: 'https://as.example.org', HOMESERVER_NAME: 'example.org', AS_TOKEN, HS_TOKEN });
  assert.equal(ok.status, 0, ok.stderr);
  const reg = parse(ok.stdout);
  assert.deepEqual(checkRegistration(reg), []);
  assert.equal(reg.url, 'https://as.example.org');
  assert.equal(reg.as_token, AS_TOKEN);
  assert.equal(reg.hs_token, HS_TOKEN);
  assert.equal(reg.rate_limited, false);
  assert.equal(reg.sender_localpart, 'ircbot');
  assert.deepEqual(reg.namespaces.users, [{ exclusive: true, regex: '@irc_.*:example\\.org' }]);
  assert.deepEqual(reg.namespaces.aliases, [{ exclusive: true, regex: '#irc_.*:example\\.org' }]);
  // The homeserver passes its clients' third-party lookups of this protocol to the AS.
  assert.deepEqual(reg.protocols, ['irc']);
  assert.deepEqual(parse(run({ AS_URL: 'https://as.example.org', HOMESERVER_NAME: 'example.org', AS_TOKEN, HS_TOKEN, PROTOCOL: 'gitter' }).stdout).protocols, ['gitter']);
  const fresh = run({ AS_URL: 'https://as.example.org', HOMESERVER_NAME: 'example.org' });
  const freshReg = parse(fresh.stdout);
  assert.ok(freshReg.as_token.length >= 40 && freshReg.as_token !== freshReg.hs_token, 'new random tokens');
  assert.match(fresh.stderr, /aws ssm put-parameter .*SecureString/);
  // Without AS_URL the stack is asked (test/stage-scripts.test.ts); a bad one is named.
  const bad = run({ AS_URL: 'not a url', HOMESERVER_NAME: 'example.org' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /AS_URL/);
});
