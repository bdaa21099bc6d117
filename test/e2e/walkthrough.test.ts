/**
 * The seed's walk-through, end to end over real HTTP: `npm start`'s server (serverless-offline
 * on serverless.yml, DynamoDB Local), the webhook adapter against a fake network, a fake HS that
 * asks its queries the way Synapse does. Twice: with the default names, and with the seed's own
 * (`USER_PREFIX=irc.freenode.net/`, the room `#irc.freenode.net/#matrix`, the nick `Bob`), whose
 * IDs hold `/`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { startFakeHs, synapseQueryPath } from '../support/fake-hs.js';
import { startFakeNetwork } from '../support/fake-network.js';
import { eventually, start, stopAndCheck } from '../support/local-server.js';
import { checkRegistration } from '../support/spec.js';

const DIR = mkdtempSync(join(tmpdir(), 'mal-walk-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const network = await startFakeNetwork();
after(async () => {
  await network.close();
  rmSync(DIR, { recursive: true, force: true });
});

const NAMES = [
  { title: 'default names', prefix: 'irc_', alias: '#irc_#matrix:localhost', bob: '@irc__bob:localhost' },
  { title: "the seed's names, with / in IDs", prefix: 'irc.freenode.net/', alias: '#irc.freenode.net/#matrix:localhost', bob: '@irc.freenode.net/_bob:localhost' },
];

for (const names of NAMES) test(`the walk-through with ${names.title}: scrollback before the room, replay on join, both directions after`, { timeout: 300_000 }, async () => {
  network.rooms.set('#matrix', { name: '#matrix', topic: 'Matrix on IRC' });
  network.users.set('Bob', { displayName: 'Bob' });
  network.accepted.length = 0;
  // (1) Register the AS: the HS reads the registration the start script writes.
  const hsTokens = { as: 'walk-as-token-0123456789abcdef', hs: 'walk-hs-token-0123456789abcdef' };
  const hs = await startFakeHs({ asToken: hsTokens.as, serverName: 'localhost', userPrefix: names.prefix, senderLocalpart: 'ircbot' });
  after(() => hs.close());
  const run = await start(hs.url, {
    USER_PREFIX: names.prefix,
    REGISTRATION_FILE,
    AS_TOKEN: hsTokens.as,
    HS_TOKEN: hsTokens.hs,
    NETWORK: 'webhook',
    NETWORK_URL: network.url,
    NETWORK_SECRET: network.secret,
  });
  const reg = parse(readFileSync(REGISTRATION_FILE, 'utf8'));
  // As Synapse: a lookup or join of an unknown alias in our namespace asks the AS first.
  hs.askAsAboutAlias = (a) => fetch(run.url + synapseQueryPath('rooms', a), { headers: { authorization: `Bearer ${reg.hs_token}` }, signal: AbortSignal.timeout(20_000) });
  assert.deepEqual(checkRegistration(reg), []);
  assert.equal(reg.hs_token, hsTokens.hs);
  const asCall = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(run.url + path, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...headers },
      signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const fromNetwork = (m: unknown) => {
    const raw = JSON.stringify(m);
    return asCall('POST', '/network/messages', m, { 'x-signature': network.sign(raw) });
  };
  const hsAuth = { authorization: `Bearer ${reg.hs_token}` };

  // (2) Bob says "hello?" in #matrix before anyone is there: kept.
  const hello = { id: 'irc-1', room: '#matrix', sender: { id: 'Bob' }, body: 'hello?', ts: 1_700_000_000_000 };
  assert.deepEqual(await fromNetwork(hello), { status: 202, body: { kept: true } });

  // (3) A Matrix user joins the alias: the HS asks the AS (as Synapse does, `/` left as is),
  // which creates the room named #matrix and replays "hello?" as Bob at its original time.
  const alias = names.alias;
  const q = await asCall('GET', synapseQueryPath('rooms', alias), undefined, hsAuth);
  assert.deepEqual(q, { status: 200, body: {} });
  // The same query fully encoded (`%2F`), and on the legacy path, is the same room.
  assert.deepEqual(await asCall('GET', `/_matrix/app/v1/rooms/${encodeURIComponent(alias)}`, undefined, hsAuth), { status: 200, body: {} });
  assert.deepEqual(await asCall('GET', synapseQueryPath('rooms', alias, true), undefined, hsAuth), { status: 200, body: {} });
  assert.equal([...hs.rooms.values()].filter((r) => r.alias === alias).length, 1);
  const roomId = hs.aliases.get(alias)!;
  const room = hs.rooms.get(roomId)!;
  assert.equal(room.name, '#matrix');
  assert.equal(room.topic, 'Matrix on IRC');
  const messages = () => room.events.filter((e) => e.type === 'm.room.message').map((e) => [e.sender, e.content.body, e.ts]);
  assert.deepEqual(messages(), [[names.bob, 'hello?', hello.ts]]);
  room.members.add('@alice:localhost');

  // (4) The Matrix user says "hi!": pushed to the AS, delivered to the network once,
  // even though the HS sends the transaction twice.
  const hi = {
    event_id: '$hi',
    room_id: roomId,
    sender: '@alice:localhost',
    type: 'm.room.message',
    origin_server_ts: 1_700_000_100_000,
    content: { msgtype: 'm.text', body: 'hi!' },
  };
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await asCall('PUT', '/_matrix/app/v1/transactions/walk-1', { events: [hi] }, hsAuth), { status: 200, body: {} });
  }
  // Push queued it; npm start's deliver function (on its local SQS) sends it a moment later.
  await eventually('"hi!" reached the network', () => network.accepted.length > 0);
  assert.deepEqual(network.accepted, [
    { id: '$hi', room: '#matrix', sender: { userId: '@alice:localhost' }, msgtype: 'm.text', body: 'hi!', ts: hi.origin_server_ts },
  ]);

  // (5) Bob says "what's up?": it appears in the room as Bob, at Bob's time.
  const up = { id: 'irc-2', room: '#matrix', sender: { id: 'Bob' }, body: "what's up?", ts: 1_700_000_200_000 };
  const sent = await fromNetwork(up);
  assert.equal(sent.status, 200);
  assert.match(sent.body.event_id, /^\$/);
  assert.deepEqual(messages(), [
    [names.bob, 'hello?', hello.ts],
    [names.bob, "what's up?", up.ts],
  ]);
  // Bob's own message came back to the AS in a transaction: it must not be echoed to the network.
  const echo = { ...hi, event_id: '$echo', sender: names.bob, content: { msgtype: 'm.text', body: "what's up?" } };
  assert.equal((await asCall('PUT', '/_matrix/app/v1/transactions/walk-2', { events: [echo] }, hsAuth)).status, 200);
  // Not even queued: a marker pushed after it is the next thing the network sees.
  const marker = { ...hi, event_id: '$marker', content: { msgtype: 'm.text', body: 'marker' } };
  assert.equal((await asCall('PUT', '/_matrix/app/v1/transactions/walk-2b', { events: [marker] }, hsAuth)).status, 200);
  await eventually('the marker reached the network', () => network.accepted.length >= 2);
  assert.deepEqual(network.accepted.map((m) => m.body), ['hi!', 'marker']);

  // (6) The HS asks about a user it has not seen (an invite of Carol): both forms of the path
  // register the same user; what is not in the namespace is 404.
  network.users.set('Carol', { displayName: 'Carol' });
  const carol = names.bob.replace('_bob', '_carol');
  assert.deepEqual(await asCall('GET', synapseQueryPath('users', carol), undefined, hsAuth), { status: 200, body: {} });
  assert.equal(hs.users.get(carol)?.displayName, 'Carol');
  assert.deepEqual(await asCall('GET', `/_matrix/app/v1/users/${encodeURIComponent(carol)}`, undefined, hsAuth), { status: 200, body: {} });
  assert.deepEqual(await asCall('GET', synapseQueryPath('users', carol, true), undefined, hsAuth), { status: 200, body: {} });
  assert.equal((await asCall('GET', synapseQueryPath('users', '@someone/else:localhost'), undefined, hsAuth)).status, 404);
  assert.deepEqual(hs.specErrors, []);

  // (7) One room's network fails: the healthy room flows meanwhile, and the failing room's
  // messages go by themselves (npm start's deliver function, on their backoff) once the network
  // recovers, in order.
  network.rooms.set('#other', { name: '#other' });
  const otherAlias = names.alias.replace('#matrix', '#other');
  assert.deepEqual(await asCall('GET', synapseQueryPath('rooms', otherAlias), undefined, hsAuth), { status: 200, body: {} });
  const otherRoom = hs.aliases.get(otherAlias)!;
  hs.rooms.get(otherRoom)!.members.add('@alice:localhost');
  let down = true;
  network.onDeliver = (m) => (down && m.room === '#other' ? { status: 503 } : undefined);
  const msg = (room: string, id: string, body: string) => ({ ...hi, event_id: id, room_id: room, content: { msgtype: 'm.text', body } });
  const mixed = [msg(otherRoom, '$o1', 'other 1'), msg(roomId, '$m1', 'matrix 1'), msg(otherRoom, '$o2', 'other 2'), msg(roomId, '$m2', 'matrix 2')];
  assert.deepEqual(await asCall('PUT', '/_matrix/app/v1/transactions/walk-3', { events: mixed }, hsAuth), { status: 200, body: {} });
  const bodies = (room: string) => network.accepted.filter((m) => m.room === room).map((m) => m.body);
  await eventually('the healthy room flowed', () => bodies('#matrix').slice(-2).join() === 'matrix 1,matrix 2');
  assert.deepEqual(bodies('#other'), []);
  down = false;
  await eventually('the failing room went after recovery', () => bodies('#other').length >= 2);
  assert.deepEqual(bodies('#other'), ['other 1', 'other 2'], 'in order, once');
  network.onDeliver = undefined;

  await stopAndCheck(run);
});
