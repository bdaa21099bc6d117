/**
 * `npm start` end to end: the real script (DynamoDB Local + serverless-offline on serverless.yml)
 * answered over HTTP, as a homeserver would call it, then stopped with Ctrl-C (SIGINT) leaving
 * no process behind. Two runs: the second must keep the first one's tokens.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { freePort } from '../../lib/local/dynamodb.js';
import { startFakeHs } from '../support/fake-hs.js';
import type { FakeHs } from '../support/fake-hs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'mal-start-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const SERVER = 'localhost';

interface Running {
  child: ChildProcess;
  url: string;
  dynamoPort: string;
  output: () => string;
}

const running = new Set<ChildProcess>();
let hs: FakeHs | undefined;

/** Runs `npm start`'s script and resolves once it prints that it is ready. */
async function start(homeserverUrl: string): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/local/start.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOMESERVER_URL: homeserverUrl, HOMESERVER_NAME: SERVER, REGISTRATION_FILE, NETWORK: 'open' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 45 s:\n${out}`)), 45_000);
    const check = () => {
      if (/is ready on/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}) before ready:\n${out}`));
    });
  });
  const dynamoPort = out.match(/DynamoDB Local \(in memory\): http:\/\/127\.0\.0\.1:(\d+)/)?.[1];
  assert.ok(dynamoPort, `it says where DynamoDB Local runs:\n${out}`);
  return { child, url: `http://127.0.0.1:${port}`, dynamoPort, output: () => out };
}

/** Running, not merely a zombie waiting to be reaped (tsx's esbuild helper can linger as one). */
const alive = (pid: number) => {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat !== '' && !stat.startsWith('Z');
};

/** Ctrl-C: the script must exit 0 and take serverless-offline and its DynamoDB Local with it. */
async function stopAndCheck(run: Running): Promise<void> {
  const pid = run.child.pid!;
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map((p) => ({ pid: Number(p), args: spawnSync('ps', ['-o', 'args=', '-p', p], { encoding: 'utf8' }).stdout.trim() }));
  const ps = children.map((c) => `${c.pid} ${c.args}`).join('\n');
  const offline = children.find((c) => c.args.includes('serverless.js offline start'));
  const java = children.find((c) => c.args.includes('DynamoDBLocal'));
  assert.ok(offline && java, `serverless-offline and DynamoDB Local run under it:\n${ps}`);

  const exited = new Promise<number | null>((r) => run.child.once('exit', (code) => r(code)));
  run.child.kill('SIGINT');
  assert.equal(await exited, 0, run.output());
  for (const c of [offline, java]) assert.ok(!alive(c.pid), `still running after npm start stopped: ${c.pid} ${c.args}`);
  // `npm test` runs a DynamoDB Local of its own: look only for the one on this run's port.
  const left = spawnSync('pgrep', ['-f', `DynamoDBLocal.*-port ${run.dynamoPort}`], { encoding: 'utf8' });
  assert.equal(left.stdout.trim(), '', 'no DynamoDB Local java process of it remains');
}

function registration(): { url: string; as_token: string; hs_token: string; sender_localpart: string; namespaces: any } {
  return parse(readFileSync(REGISTRATION_FILE, 'utf8'));
}

async function call(url: string, init: RequestInit = {}, token?: string) {
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: (await res.json()) as any };
}

after(async () => {
  for (const c of running) c.kill('SIGKILL');
  await hs?.close();
  rmSync(DIR, { recursive: true, force: true });
});

describe('npm start', { concurrency: false }, () => {
  let tokens: { as_token: string; hs_token: string } | undefined;

  test('first run: writes the registration with new tokens; ping, auth, 404 and 405 as the HS expects', { timeout: 60_000 }, async () => {
    // No homeserver is needed for these; an address nothing listens on.
    const run = await start('http://127.0.0.1:9');
    const reg = registration();
    assert.equal(reg.url, run.url);
    assert.equal(reg.sender_localpart, 'ircbot');
    assert.deepEqual(reg.namespaces.users, [{ exclusive: true, regex: '@irc_.*:localhost' }]);
    assert.ok(reg.as_token.length >= 40 && reg.hs_token.length >= 40 && reg.as_token !== reg.hs_token);
    tokens = reg;

    const ping = `${run.url}/_matrix/app/v1/ping`;
    assert.deepEqual(await call(ping, { method: 'POST', body: '{}' }, reg.hs_token), { status: 200, body: {} });
    const noToken = await call(ping, { method: 'POST', body: '{}' });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.body.errcode, 'M_UNAUTHORIZED');
    const wrong = await call(ping, { method: 'POST', body: '{}' }, 'not-the-token');
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.errcode, 'M_FORBIDDEN');

    const unknown = await call(`${run.url}/_matrix/app/v1/nothing-here`, {}, reg.hs_token);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_UNRECOGNIZED');
    const wrongMethod = await call(`${run.url}/_matrix/app/v1/users/%40irc_bob%3Alocalhost`, { method: 'PUT', body: '{}' }, reg.hs_token);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.body.errcode, 'M_UNRECOGNIZED');

    await stopAndCheck(run);
  });

  test('second run: same tokens; a user query registers the user on the homeserver, on both paths', { timeout: 60_000 }, async () => {
    assert.ok(tokens, 'the first run wrote tokens');
    hs = await startFakeHs({ asToken: tokens.as_token, serverName: SERVER, userPrefix: 'irc_', senderLocalpart: 'ircbot' });
    const run = await start(hs.url);
    const reg = registration();
    assert.equal(reg.as_token, tokens.as_token);
    assert.equal(reg.hs_token, tokens.hs_token);

    // Current path, Bearer header, the user ID percent-encoded as Synapse sends it.
    const bob = await call(`${run.url}/_matrix/app/v1/users/%40irc_bob%3Alocalhost`, {}, reg.hs_token);
    assert.deepEqual(bob, { status: 200, body: {} });
    // The fake HS refuses a wrong as_token, so a 200 register means ours was sent.
    const registered = (name: string) =>
      hs!.calls.some((c) => c.method === 'POST' && c.path === '/_matrix/client/v3/register' && c.body?.username === name && c.status === 200);
    assert.ok(registered('irc_bob'), JSON.stringify(hs.calls.map((c) => [c.method, c.path, c.status])));
    assert.ok(hs.users.has('@irc_bob:localhost'));

    // Legacy path with ?access_token=, as older homeservers call it.
    const carol = await call(`${run.url}/users/@irc_carol:localhost?access_token=${encodeURIComponent(reg.hs_token)}`);
    assert.deepEqual(carol, { status: 200, body: {} });
    assert.ok(registered('irc_carol'));
    assert.deepEqual(hs.specErrors, []);

    await stopAndCheck(run);
  });
});
