/**
 * `npm start` end to end: the real script (DynamoDB Local + serverless-offline on serverless.yml)
 * answered over HTTP, as a homeserver would call it, then stopped with Ctrl-C (SIGINT) leaving
 * no process behind. Two runs: the second must keep the first one's tokens.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { start as startLocal, stopAndCheck } from '../support/local-server.js';
import { startFakeHs } from '../support/fake-hs.js';
import type { FakeHs } from '../support/fake-hs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'mal-start-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const SERVER = 'localhost';

let hs: FakeHs | undefined;
const start = (homeserverUrl: string) => startLocal(homeserverUrl, { HOMESERVER_NAME: SERVER, REGISTRATION_FILE });

function registration(): { url: string; as_token: string; hs_token: string; sender_localpart: string; namespaces: any } {
  return parse(readFileSync(REGISTRATION_FILE, 'utf8'));
}

async function call(url: string, init: RequestInit = {}, token?: string) {
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: (await res.json()) as any };
}

after(async () => {
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
