/**
 * The AS API's own walk-through against a REAL Synapse 1.94 (a synapse-lab, `$HS_LAB`), with
 * `npm start`'s real server: DynamoDB Local, serverless-offline on serverless.yml, the `open`
 * network, and signed inbound messages (NETWORK_SECRET). Names with `/`, as in the spec's
 * example: USER_PREFIX=irc.freenode.net/, so the nick Bob is `@irc.freenode.net/_bob:localhost`
 * and the network room `#matrix` is behind `#irc.freenode.net/#matrix:localhost`.
 *
 * Run it with `HS_LAB=/tmp/synapse-lab npm run test:synapse` (test/synapse/run.ts); it is not a
 * `*.test.ts` file, so `npm test` never needs Synapse. Every call goes to 127.0.0.1. The steps
 * assert what Synapse and the AS did, never how fast: the waits below only bound how long we look.
 * Synapse's database is wiped first (reset.sh); Synapse and `npm start` are always stopped at the
 * end, also when a step fails or the run is interrupted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { HS, LAB, LAB_SCRIPT_MS, AS_READY_MS, REGISTRATION_FILE, ROOT, SERVER, asLogLines, asTail, call, cs, eventually, lab, run, startAs, synapseLog } from './lab.js';
import type { Registration } from './lab.js';

const PREFIX = 'irc.freenode.net/';
const ALIAS = `#${PREFIX}#matrix:${SERVER}`;
const BOB = `@${PREFIX}_bob:${SERVER}`;
const CAROL = `@${PREFIX}_carol:${SERVER}`;
const ALICE = `@alice:${SERVER}`;
const NETWORK_SECRET = randomBytes(24).toString('hex');

const state: {
  reg?: Registration;
  alice?: string;
  roomId?: string;
  hello?: { ts: number };
} = {};

// ---------------------------------------------------------------- helpers

/** POST {AS}/network/messages, signed the way the contract says. */
function fromNetwork(message: object) {
  const body = JSON.stringify(message);
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac('sha256', NETWORK_SECRET).update(`${t}.${body}`).digest('hex');
  return call(run.asUrl!, 'POST', '/network/messages', { body, headers: { 'x-signature': `t=${t},v1=${v1}` } });
}

interface ClientEvent {
  event_id: string;
  type: string;
  sender: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
}

async function roomMessages(roomId: string): Promise<ClientEvent[]> {
  const res = await cs('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`, { token: state.alice });
  assert.equal(res.status, 200, `GET messages: ${JSON.stringify(res.body)}`);
  return (res.body.chunk as ClientEvent[]).filter((e) => e.type === 'm.room.message');
}

const show = (events: ClientEvent[]) =>
  events.map((e) => `  ${e.sender} ${JSON.stringify(e.content.body)} ts=${e.origin_server_ts} ${e.event_id}`).join('\n') || '  (none)';

// ---------------------------------------------------------------- the scenario
// The steps run in order and each needs the ones before it: once one fails, the rest fail at once
// with "needs …" rather than repeat the same error.

let ready = false;
test('setup: npm start (open network, signed inbound), then a fresh Synapse with its registration', { timeout: AS_READY_MS + 2 * LAB_SCRIPT_MS }, async () => {
  assert.ok(LAB && existsSync(join(LAB, 'start.sh')), 'HS_LAB must point at a synapse-lab (run.ts checks this)');
  // 1. npm start, which writes the registration file.
  await startAs({ USER_PREFIX: PREFIX, NETWORK: 'open', NETWORK_SECRET });
  state.reg = parse(readFileSync(REGISTRATION_FILE, 'utf8')) as Registration;
  assert.ok(state.reg.id && state.reg.as_token && state.reg.hs_token, `registration file: ${readFileSync(REGISTRATION_FILE, 'utf8')}`);
  // 2. A fresh Synapse database, then Synapse with this registration.
  await lab('reset.sh');
  await lab('start.sh', REGISTRATION_FILE);
  ready = true;
});

test('a. a normal user, alice, registers (m.login.dummy)', { timeout: 60_000 }, async () => {
  assert.ok(ready, 'needs setup');
  const res = await cs('POST', '/_matrix/client/v3/register', {
    body: { username: 'alice', password: randomBytes(12).toString('hex'), auth: { type: 'm.login.dummy' } },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.user_id, ALICE);
  assert.equal(typeof res.body.access_token, 'string');
  state.alice = res.body.access_token;
});

test('b. Bob says "hello?" in #matrix before the Matrix room exists: 202 kept', { timeout: 60_000 }, async () => {
  assert.ok(ready, 'needs setup');
  const hello = { id: 'irc-1', room: '#matrix', sender: { id: 'Bob' }, body: 'hello?', ts: Date.now() - 60_000 };
  const res = await fromNetwork(hello);
  assert.deepEqual({ status: res.status, body: res.body }, { status: 202, body: { kept: true } }, asTail());
  state.hello = { ts: hello.ts };
});

test(`c. alice joins ${ALIAS}: Synapse asks the AS, which creates the room and replays "hello?" as Bob at Bob's time`, { timeout: 90_000 }, async () => {
  assert.ok(state.alice && state.hello, 'needs steps a and b');
  const res = await cs('POST', `/_matrix/client/v3/join/${encodeURIComponent(ALIAS)}`, { token: state.alice, body: {} });
  assert.equal(res.status, 200, `join: ${JSON.stringify(res.body)}\n${asTail()}`);
  assert.match(res.body.room_id ?? '', /^!.+:localhost$/);
  const roomId: string = res.body.room_id;
  state.roomId = roomId;
  let seen: ClientEvent[] = [];
  const hello = await eventually(
    () => `"hello?" from ${BOB} is not in the room's messages:\n${show(seen)}\n${asTail()}`,
    async () => (seen = await roomMessages(roomId)).find((e) => e.content.body === 'hello?'),
  );
  assert.equal(hello.sender, BOB);
  assert.equal(hello.origin_server_ts, state.hello.ts, 'shown at the time Bob wrote it on the network');
  // It was the alias query that made the room: Synapse asked, `/` unencoded, and got 200. (In
  // step b the AS looked its own alias up, Synapse asked the AS about it, and the AS said 404:
  // nobody had joined yet, so the message was kept rather than a room made for it.)
  const queries = [...synapseLog().matchAll(/GET http:\/\/127\.0\.0\.1:\d+\/_matrix\/app\/v1\/rooms\/(\S+): (\d{3})/g)];
  assert.ok(queries.length > 0, 'Synapse\'s log shows its alias queries to the AS');
  assert.ok(queries.every((q) => q[1]!.includes('/')), 'with `/` unencoded');
  assert.deepEqual(queries.map((q) => q[2]), ['404', '200'], 'the AS\'s own lookup (404, kept), then alice\'s join (200, made)');
});

test('d. alice says "hi!": Synapse pushes it to the AS, which delivers it to the open network', { timeout: 60_000 }, async () => {
  assert.ok(state.alice && state.roomId, 'needs step c');
  const txn = `hi-${Date.now()}`;
  const res = await cs('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(state.roomId)}/send/m.room.message/${txn}`, {
    token: state.alice,
    body: { msgtype: 'm.text', body: 'hi!' },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const delivered = await eventually(
    () => `no "delivered to the open network" log line with body "hi!"\n${asTail()}`,
    () => asLogLines().find((l) => l.msg === 'delivered to the open network' && l.delivery?.body === 'hi!'),
  );
  assert.equal(delivered.delivery.id, res.body.event_id);
  assert.equal(delivered.delivery.room, '#matrix');
  assert.deepEqual(delivered.delivery.sender, { userId: ALICE });
});

test(`e. Bob says "what's up?" now that the room exists: 200 {event_id}, in the room as Bob`, { timeout: 60_000 }, async () => {
  assert.ok(state.alice && state.roomId, 'needs step c');
  const up = { id: 'irc-2', room: '#matrix', sender: { id: 'Bob' }, body: "what's up?", ts: Date.now() - 1_000 };
  const res = await fromNetwork(up);
  assert.equal(res.status, 200, `${JSON.stringify(res.body)}\n${asTail()}`);
  assert.match(res.body.event_id ?? '', /^\$/);
  const roomId = state.roomId;
  let seen: ClientEvent[] = [];
  const ev = await eventually(
    () => `${res.body.event_id} is not in the room's messages:\n${show(seen)}`,
    async () => (seen = await roomMessages(roomId)).find((e) => e.event_id === res.body.event_id),
  );
  assert.equal(ev.sender, BOB);
  assert.equal(ev.content.body, "what's up?");
  assert.equal(ev.origin_server_ts, up.ts);
});

test(`f. alice opens a DM with ${CAROL}: Synapse asks the AS's user query, and Carol joins`, { timeout: 90_000 }, async () => {
  assert.ok(state.alice, 'needs step a');
  const res = await cs('POST', '/_matrix/client/v3/createRoom', {
    token: state.alice,
    body: { preset: 'trusted_private_chat', is_direct: true, invite: [CAROL] },
  });
  assert.equal(res.status, 200, `createRoom with the invite: ${JSON.stringify(res.body)}\n${asTail()}`);
  const dm: string = res.body.room_id;
  const path = `/_matrix/client/v3/rooms/${encodeURIComponent(dm)}`;
  let last: unknown;
  await eventually(
    () => `${CAROL} did not join the DM; joined_members: ${JSON.stringify(last)}\n${asTail()}`,
    async () => {
      const members = await cs('GET', `${path}/joined_members`, { token: state.alice });
      last = members.body;
      return members.status === 200 && members.body.joined?.[CAROL] ? true : undefined;
    },
  );
  const member = await cs('GET', `${path}/state/m.room.member/${encodeURIComponent(CAROL)}`, { token: state.alice });
  assert.equal(member.body.membership, 'join');
  // Synapse asked with the ID's `/` left unencoded (its issue #14511), and the AS said yes.
  const query = /GET http:\/\/127\.0\.0\.1:\d+\/_matrix\/app\/v1\/users\/(\S*_carol\S*): (\d{3})/.exec(synapseLog());
  assert.ok(query, 'Synapse\'s log shows its user query to the AS');
  assert.equal(query[2], '200', `user query ${query[1]}`);
  // Synapse pushes transactions in order, so Bob's "what's up?" (step e) reached the AS before
  // this invite did: as a message of one of its own users, it was not echoed to the network.
  assert.equal(asLogLines().filter((l) => l.msg === 'delivered to the open network' && l.delivery?.body === "what's up?").length, 0);
});

test('g. ping: Synapse pings the AS through /_matrix/client/v1/appservice/{id}/ping', { timeout: 60_000 }, async () => {
  assert.ok(ready && state.reg, 'needs setup');
  const reg = state.reg;
  const res = await cs('POST', `/_matrix/client/v1/appservice/${encodeURIComponent(reg.id)}/ping`, { token: reg.as_token, body: {} });
  assert.equal(res.status, 200, `${JSON.stringify(res.body)}\n${asTail()}`);
  assert.equal(typeof res.body.duration_ms, 'number');
  // npm start asked Synapse to ping it as soon as Synapse answered, and said how that went.
  assert.match(run.asOut, /^ping: the homeserver reached the AS: its call took \d+ ms/m, asTail());
  // npm run ping, with the registration file npm start wrote.
  const cli = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/ping.ts', '--url', HS], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, REGISTRATION_FILE } });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /the homeserver reached the AS/);
  // And with an as_token Synapse does not know: its own errcode, with what to check.
  const wrong = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/ping.ts', '--url', HS], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, REGISTRATION_FILE, AS_TOKEN: 'not-a-token-synapse-knows' } });
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /M_UNKNOWN_TOKEN/);
});

// ---------------------------------------------------------------- issue 20: healing as Synapse answers

const aliasOf = (networkRoom: string) => `#${PREFIX}${networkRoom}:${SERVER}`;
/** Synapse's alias queries to the AS for one alias, with the AS's answers, from Synapse's log. */
const aliasQueries = (networkRoom: string) =>
  [...synapseLog().matchAll(/GET http:\/\/127\.0\.0\.1:\d+\/_matrix\/app\/v1\/rooms\/(\S+): (\d{3})/g)]
    .filter((q) => decodeURIComponent(q[1]!) === aliasOf(networkRoom))
    .map((q) => q[2]);

test('h. 10 network messages at once for a room nobody joined: one lookup (404 from our own query), no room', { timeout: 90_000 }, async () => {
  assert.ok(ready, 'needs setup');
  const sent = await Promise.all(
    Array.from({ length: 10 }, (_, i) => fromNetwork({ id: `quiet-${i}`, room: '#quiet', sender: { id: `Nick${i % 3}` }, body: `q${i}`, ts: Date.now() - 10_000 + i })),
  );
  assert.deepEqual(sent.map((r) => r.status), Array(10).fill(202), JSON.stringify(sent.map((r) => r.body)));
  assert.deepEqual(aliasQueries('#quiet'), ['404'], 'Synapse asked once, for our own lookup, and no room was made');
  // Ten more: no lookup at all (the homeserver's "no such alias" is remembered).
  for (let i = 10; i < 20; i++) assert.equal((await fromNetwork({ id: `quiet-${i}`, room: '#quiet', sender: { id: 'Nick0' }, body: `q${i}`, ts: Date.now() })).status, 202);
  assert.deepEqual(aliasQueries('#quiet'), ['404']);
});

test('i. alice joins a room while network messages for it arrive: the join succeeds, every message arrives once', { timeout: 120_000 }, async () => {
  assert.ok(state.alice, 'needs step a');
  const bodies = ['r1', 'r2', 'r3', 'r4', 'r5'];
  const messages = Promise.all(bodies.map((body, i) => fromNetwork({ id: `race-${i}`, room: '#race', sender: { id: 'Bob' }, body, ts: Date.now() - 5_000 + i })));
  const join = cs('POST', `/_matrix/client/v3/join/${encodeURIComponent(aliasOf('#race'))}`, { token: state.alice, body: {} });
  const [joined, answers] = await Promise.all([join, messages]);
  assert.equal(joined.status, 200, `join: ${JSON.stringify(joined.body)}\n${asTail()}`);
  assert.ok(answers.every((a) => a.status === 200 || a.status === 202), JSON.stringify(answers.map((a) => a.body)));
  // One more message carries any that were kept while the room was being made.
  assert.equal((await fromNetwork({ id: 'race-last', room: '#race', sender: { id: 'Bob' }, body: 'r6', ts: Date.now() })).status, 200);
  let seen: ClientEvent[] = [];
  await eventually(
    () => `not every message is in the room once:\n${show(seen)}\n${asTail()}`,
    async () => {
      seen = await roomMessages(joined.body.room_id);
      const got = seen.map((e) => String(e.content.body)).sort();
      return JSON.stringify(got) === JSON.stringify([...bodies, 'r6']) ? true : undefined;
    },
  );
});

test(`j. Synapse's database is reset: a network message is kept, alice's join of ${ALIAS} makes the room again and replays it; both ways work`, { timeout: 240_000 }, async () => {
  assert.ok(state.alice && state.roomId, 'needs step c');
  const oldRoom = state.roomId;
  await lab('reset.sh');
  await lab('start.sh', REGISTRATION_FILE);
  // alice is gone with the database: she registers again.
  const reg = await cs('POST', '/_matrix/client/v3/register', {
    body: { username: 'alice', password: randomBytes(12).toString('hex'), auth: { type: 'm.login.dummy' } },
  });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  state.alice = reg.body.access_token;

  const kept = await fromNetwork({ id: 'irc-after-reset', room: '#matrix', sender: { id: 'Bob' }, body: 'anyone there?', ts: Date.now() - 2_000 });
  assert.equal(kept.status, 202, `${JSON.stringify(kept.body)}\n${asTail()}`);

  const res = await cs('POST', `/_matrix/client/v3/join/${encodeURIComponent(ALIAS)}`, { token: state.alice, body: {} });
  assert.equal(res.status, 200, `join after the reset: ${JSON.stringify(res.body)}\n${asTail()}`);
  const roomId: string = res.body.room_id;
  assert.notEqual(roomId, oldRoom, 'a new room');
  state.roomId = roomId;
  let seen: ClientEvent[] = [];
  await eventually(
    () => `"anyone there?" was not replayed:\n${show(seen)}\n${asTail()}`,
    async () => (seen = await roomMessages(roomId)).find((e) => e.content.body === 'anyone there?' && e.sender === BOB),
  );
  const back = await fromNetwork({ id: 'irc-after-join', room: '#matrix', sender: { id: 'Bob' }, body: 'welcome back', ts: Date.now() });
  assert.equal(back.status, 200, `${JSON.stringify(back.body)}\n${asTail()}`);
  const txn = `back-${Date.now()}`;
  const sent = await cs('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, {
    token: state.alice,
    body: { msgtype: 'm.text', body: 'glad to be back' },
  });
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  await eventually(
    () => `"glad to be back" was not delivered to the network\n${asTail()}`,
    () => asLogLines().find((l) => l.msg === 'delivered to the open network' && l.delivery?.body === 'glad to be back'),
  );
});
