/**
 * `npm start` end to end: the real script (DynamoDB Local + serverless-offline on serverless.yml)
 * answered over HTTP, as a homeserver would call it, then stopped with Ctrl-C (SIGINT) leaving
 * no process behind. Two runs: the second must keep the first one's tokens.
 *
 * The public port is npm start's front server (lib/local/front.ts) before serverless-offline:
 * what hapi would refuse in its own words (a path that is not validly percent-encoded, a cookie or
 * Content-Type it cannot parse, a body over its limit, a request that is not HTTP) comes back as the
 * Matrix answer the deployed functions give.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { eventually, start as startLocal, stopAndCheck } from '../support/local-server.js';
import { startFakeHs } from '../support/fake-hs.js';
import type { FakeHs } from '../support/fake-hs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'mal-start-'));
const REGISTRATION_FILE = join(DIR, 'registration.yaml');
const SERVER = 'localhost';

let hs: FakeHs | undefined;
const start = (homeserverUrl: string) => startLocal(homeserverUrl, { HOMESERVER_NAME: SERVER, REGISTRATION_FILE });

function registration(): { id: string; url: string; as_token: string; hs_token: string; sender_localpart: string; namespaces: any } {
  return parse(readFileSync(REGISTRATION_FILE, 'utf8'));
}

async function call(url: string, init: RequestInit = {}, token?: string) {
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, body: (await res.json()) as any };
}

/** A request sent exactly as given (path bytes, headers, a body in chunks), the way a homeserver or a stray client might. */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string, chunked = false) {
  const { hostname, port } = new URL(base);
  return new Promise<{ status: number; type: string | undefined; body: any }>((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode!, type: res.headers['content-type'], body: JSON.parse(text) });
        } catch {
          reject(new Error(`${method} ${path}: ${res.statusCode} not JSON: ${text.slice(0, 300)}`));
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)));
    if (body === undefined) return req.end();
    if (!chunked) return req.end(body);
    const bytes = Buffer.from(body);
    for (let i = 0; i < bytes.length; i += 1 << 20) req.write(bytes.subarray(i, i + (1 << 20)));
    req.end();
  });
}

/** Bytes Node's HTTP parser refuses (an unknown method): the answer, read off the socket. */
function notHttp(base: string, text: string) {
  const { hostname, port } = new URL(base);
  return new Promise<{ head: string; body: any }>((resolve, reject) => {
    let got = '';
    const socket = connect(Number(port), hostname, () => socket.write(text));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (got += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = got.split('\r\n\r\n');
      try {
        resolve({ head, body: JSON.parse(body) });
      } catch {
        reject(new Error(`not JSON: ${JSON.stringify(got)}`));
      }
    });
  });
}

after(async () => {
  await hs?.close();
  rmSync(DIR, { recursive: true, force: true });
});

describe('npm start', { concurrency: false }, () => {
  let tokens: { as_token: string; hs_token: string } | undefined;

  test('first run: writes the registration with new tokens; ping, auth, 404 and 405 as the HS expects', { timeout: 240_000 }, async () => {
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

    // A bad percent-escape (`%ZZ`; `%C0%AF`, not UTF-8): hapi used to answer
    // {"statusCode":400,"error":"Bad Request",…}. Now the function the route leads to answers, as
    // deployed: the hs_token is checked first (401 without it), then pathId's 400 M_INVALID_PARAM;
    // on a path we do not serve, 404 / 405 M_UNRECOGNIZED whatever the token.
    const bearer = { authorization: `Bearer ${reg.hs_token}` };
    const txn = JSON.stringify({ events: [] });
    const badEscapes: Array<[method: string, path: string, withToken: number, without: number]> = [
      ['GET', '/_matrix/app/v1/users/%40irc_bob%ZZ', 400, 401],
      ['GET', '/_matrix/app/v1/users/%40irc_bob/x%ZZ%3Alocalhost', 400, 401],
      ['GET', '/_matrix/app/v1/rooms/%23a%C0%AF', 400, 401],
      ['PUT', '/_matrix/app/v1/transactions/%ZZ', 400, 401],
      ['GET', '/rooms/%23irc_a%ZZ%3Alocalhost', 400, 401],
      ['GET', '/nothing/%ZZ', 404, 404],
      ['GET', '/_matrix/app/v1/nothing%C0%AF', 404, 404],
      ['PUT', '/_matrix/app/v1/users/%40irc_bob%ZZ', 405, 405],
      ['POST', '/transactions/%ZZ', 405, 405],
    ];
    const errcodeOf: Record<number, string> = { 400: 'M_INVALID_PARAM', 401: 'M_UNAUTHORIZED', 404: 'M_UNRECOGNIZED', 405: 'M_UNRECOGNIZED' };
    for (const [method, path, withToken, without] of badEscapes) {
      const body = method === 'GET' ? undefined : txn;
      for (const [headers, status] of [[bearer, withToken], [{}, without]] as const) {
        const res = await raw(run.url, method, path, { 'content-type': 'application/json', ...headers }, body);
        const what = `${method} ${path} ${'authorization' in headers ? 'with' : 'without'} hs_token: ${JSON.stringify(res.body)}`;
        assert.equal(res.status, status, what);
        assert.match(res.type ?? '', /^application\/json/, what);
        assert.deepEqual(Object.keys(res.body).sort(), ['errcode', 'error'], what);
        assert.equal(res.body.errcode, errcodeOf[status], what);
        if (status === 400) assert.equal(res.body.error, 'the path is not validly percent-encoded', what);
      }
    }
    // The legacy ?access_token= counts as the token there too.
    const legacy = await raw(run.url, 'GET', `/users/%40irc_bob%ZZ?access_token=${encodeURIComponent(reg.hs_token)}`);
    assert.deepEqual([legacy.status, legacy.body.errcode], [400, 'M_INVALID_PARAM']);

    // Other things hapi refused before any function ran; the function now answers them as it
    // would deployed, where a cookie or Content-Type header means nothing to it.
    const cookie = await raw(run.url, 'POST', '/_matrix/app/v1/ping', { ...bearer, cookie: 'a="b' }, '{}');
    assert.deepEqual([cookie.status, cookie.body], [200, {}]);
    const noBoundary = await raw(run.url, 'PUT', '/_matrix/app/v1/transactions/multipart-1', { ...bearer, 'content-type': 'multipart/form-data' }, txn);
    assert.deepEqual([noBoundary.status, noBoundary.body], [200, {}]);
    const oddType = await raw(run.url, 'PUT', '/_matrix/app/v1/transactions/odd-1', { ...bearer, 'content-type': 'not a type' }, '{');
    assert.deepEqual([oddType.status, oddType.body.errcode], [400, 'M_NOT_JSON']);
    // Over hapi's 10 MB limit, declared or streamed in chunks: 413 M_TOO_LARGE, as the function says over 6 MB.
    const big = Buffer.alloc(11 * 1024 * 1024, 'x');
    for (const chunked of [false, true]) {
      const res = await raw(run.url, 'PUT', '/_matrix/app/v1/transactions/big-1', { ...bearer, 'content-type': 'application/json' }, big, chunked);
      assert.deepEqual([res.status, res.body.errcode], [413, 'M_TOO_LARGE'], `chunked: ${chunked}`);
    }
    // Not HTTP that Node parses (an unknown method): a Matrix error, not an empty 400.
    const foo = await notHttp(run.url, 'FOO /_matrix/app/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(foo.head, /^HTTP\/1\.1 400 /);
    assert.equal(foo.body.errcode, 'M_UNRECOGNIZED');
    // And the front keeps serving after all that.
    assert.deepEqual(await call(ping, { method: 'POST', body: '{}' }, reg.hs_token), { status: 200, body: {} });

    await stopAndCheck(run);
  });

  test('second run: same tokens; a user query registers the user on the homeserver, on both paths', { timeout: 240_000 }, async () => {
    assert.ok(tokens, 'the first run wrote tokens');
    hs = await startFakeHs({ asToken: tokens.as_token, serverName: SERVER, userPrefix: 'irc_', senderLocalpart: 'ircbot' });
    // The homeserver loads the registration file npm start writes (with its port in the url).
    Object.defineProperty(hs, 'registration', { get: () => ({ id: registration().id, url: registration().url, hsToken: registration().hs_token }) });
    const run = await start(hs.url);
    const reg = registration();
    // Once the homeserver answers, npm start asks it to ping the AS, and says how that went.
    await eventually('npm start prints the ping result', () => /^ping: /m.test(run.output()));
    assert.match(run.output(), /^ping: the homeserver reached the AS: its call took \d+ ms/m);
    assert.ok(hs.calls.some((c) => c.path === '/_matrix/client/v1/appservice/matrix-appservice-lambda/ping' && c.status === 200));
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

    // An ID holding `/`, in Synapse's form (the `/` left as is), on both paths, through the front server.
    const dave = await raw(run.url, 'GET', '/_matrix/app/v1/users/%40irc_dave/x%3Alocalhost', { authorization: `Bearer ${reg.hs_token}` });
    assert.deepEqual([dave.status, dave.body], [200, {}]);
    assert.ok(registered('irc_dave/x'), JSON.stringify(hs.calls.map((c) => [c.method, c.path, c.status])));
    const erin = await raw(run.url, 'GET', `/users/%40irc_erin/y%3Alocalhost?access_token=${encodeURIComponent(reg.hs_token)}`);
    assert.deepEqual([erin.status, erin.body], [200, {}]);
    assert.ok(registered('irc_erin/y'));
    assert.deepEqual(await call(`${run.url}/_matrix/app/v1/ping`, { method: 'POST', body: '{}' }, reg.hs_token), { status: 200, body: {} });
    assert.deepEqual(hs.specErrors, []);

    await stopAndCheck(run);
  });
});
