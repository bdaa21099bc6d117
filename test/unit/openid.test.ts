/**
 * The OpenID check (lib/matrix/openid.ts) against a homeserver's answers as Synapse 1.94 gives
 * them: a known token names its user; an unknown one is 401 M_UNKNOWN_TOKEN; an endpoint the
 * homeserver does not serve there (Synapse's client-only port: 404 M_UNRECOGNIZED) is the
 * operator's HOMESERVER_FEDERATION_URL to fix, answered 503, never "your token is bad".
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openIdVerifier } from '../../lib/matrix/openid.js';
import { MatrixError } from '../../lib/matrix/errors.js';

/** A homeserver's federation listener over real HTTP: `answer` says what it replies to a token. */
const asked: string[] = [];
let answer: (token: string) => { status: number; body: unknown } = () => ({ status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://hs');
  const token = url.searchParams.get('access_token') ?? '';
  asked.push(`${url.pathname} ${token}`);
  const { status, body } = url.pathname === '/_matrix/federation/v1/openid/userinfo' ? answer(token) : { status: 404, body: { errcode: 'M_UNRECOGNIZED' } };
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
after(() => server.close());
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
let now = 1_000_000;
const verifier = openIdVerifier({ federationUrl: url, serverName: 'example.org', now: () => now });
const deadline = () => Date.now() + 5000;
const failsWith = (status: number, errcode: string, says?: RegExp) => (e: unknown) =>
  e instanceof MatrixError && e.status === status && e.errcode === errcode && (!says || says.test(e.message));

test('a token the homeserver knows names its user, trusted for a minute; an unknown one is 401 M_UNKNOWN_TOKEN', async () => {
  answer = (token) => (token === 'good' ? { status: 200, body: { sub: '@alice:example.org' } } : { status: 401, body: { errcode: 'M_UNKNOWN_TOKEN', error: 'Access Token unknown or expired' } });
  assert.equal(await verifier.userOf('good', deadline()), '@alice:example.org');
  const before = asked.length;
  assert.equal(await verifier.userOf('good', deadline()), '@alice:example.org');
  assert.equal(asked.length, before, 'the second check within the minute asked nobody');
  now += 61_000;
  assert.equal(await verifier.userOf('good', deadline()), '@alice:example.org');
  assert.equal(asked.length, before + 1, 'asked again after a minute');
  await assert.rejects(verifier.userOf('bad', deadline()), failsWith(401, 'M_UNKNOWN_TOKEN'));
});

test("a homeserver vouches for its own users only: another server's user is an unknown token", async () => {
  answer = () => ({ status: 200, body: { sub: '@mallory:elsewhere.net' } });
  await assert.rejects(verifier.userOf('theirs', deadline()), failsWith(401, 'M_UNKNOWN_TOKEN'));
  answer = () => ({ status: 200, body: { nope: true } });
  await assert.rejects(verifier.userOf('odd', deadline()), failsWith(401, 'M_UNKNOWN_TOKEN'));
});

test('no userinfo endpoint there (404 M_UNRECOGNIZED) is 503 naming HOMESERVER_FEDERATION_URL; a failing homeserver is 503', async () => {
  answer = () => ({ status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request' } });
  await assert.rejects(verifier.userOf('valid-elsewhere', deadline()), failsWith(503, 'M_UNKNOWN', /HOMESERVER_FEDERATION_URL/));
  answer = () => ({ status: 502, body: {} });
  await assert.rejects(verifier.userOf('valid-later', deadline()), failsWith(503, 'M_UNKNOWN', /try again/));
  const down = openIdVerifier({ federationUrl: 'http://127.0.0.1:9', serverName: 'example.org' });
  await assert.rejects(down.userOf('any', deadline()), failsWith(503, 'M_UNKNOWN', /could not be asked/));
});
