/**
 * npm start's front server (lib/local/front.ts) against stand-ins for serverless-offline: its
 * routes (answering as hapi does when it refuses a request) and its Lambda invoke API. Fast;
 * start.test.ts covers the same through the real `npm start`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/local/ports.js';
import { loadRoutes, routeFor, splitTarget, startFront } from '../../lib/local/front.js';
import type { Front } from '../../lib/local/front.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const routes = loadRoutes(`${ROOT}/serverless.yml`, 'local');
const fn = (key: string) => `matrix-appservice-lambda-local-${key}`;
/** Bytes that are no UTF-8: 0x00, and bytes >= 0x80 out of any sequence. */
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe, 0x80, 0xc0, 0xaf]);

test('the routes are serverless.yml\'s, with the names serverless-offline invokes them by', () => {
  const keys = routes.map((r) => `${r.routeKey} -> ${r.functionName}`);
  assert.ok(keys.includes(`GET /_matrix/app/v1/users/{userId+} -> ${fn('userQuery')}`), keys.join('\n'));
  assert.ok(keys.includes(`GET /users/{userId+} -> ${fn('userQuery')}`));
  assert.ok(keys.includes(`PUT /_matrix/app/v1/transactions/{txnId+} -> ${fn('push')}`));
  assert.ok(keys.includes(`POST /_matrix/app/v1/ping -> ${fn('ping')}`));
  assert.ok(keys.includes(`$default -> ${fn('unrecognized')}`));
});

test('a request goes where API Gateway would send it; raw paths, `/` in IDs and bad escapes alike', () => {
  const to = (method: string, path: string) => routeFor(routes, method, path)?.route.functionName;
  assert.equal(to('GET', '/_matrix/app/v1/users/%40irc_bob/x%3Alocalhost'), fn('userQuery'));
  assert.equal(to('GET', '/_matrix/app/v1/users/%40irc_bob%ZZ'), fn('userQuery'));
  assert.equal(to('GET', '/rooms/%23a%C0%AF'), fn('roomQuery'));
  assert.equal(to('PUT', '/transactions/%ZZ'), fn('push'));
  assert.equal(to('POST', '/_matrix/app/v1/ping'), fn('ping'));
  for (const [m, p] of [
    ['PUT', '/_matrix/app/v1/users/x'],
    ['GET', '/_matrix/app/v1/ping'],
    ['GET', '/_matrix/app/v1/users/'],
    ['GET', '/_matrix/app/v1/usersx/a'],
    ['HEAD', '/users/a'],
    ['OPTIONS', '*'],
  ]) {
    assert.equal(to(m!, p!), fn('unrecognized'), `${m} ${p}`);
  }
  assert.deepEqual(routeFor(routes, 'GET', '/users/a%2Fb')?.params, { userId: 'a%2Fb' });
  assert.deepEqual(splitTarget('http://h:1/a%ZZ?q=%ZZ#f'), { path: '/a%ZZ', query: 'q=%ZZ' });
  assert.deepEqual(splitTarget('*'), { path: '*', query: '' });
});

interface Seen {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

const readAll = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });

const listen = (server: Server, port: number) => new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
const close = (server: Server) => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r())));

describe('the front server', () => {
  let front: Front;
  let url: string;
  let offline: Server;
  let lambda: Server;
  const seen: Seen[] = [];
  const invoked: Array<{ name: string; event: any }> = [];

  before(async () => {
    const [port, offlinePort, lambdaPort] = [await freePort(), await freePort(), await freePort()];
    // serverless-offline's routes, the way hapi answers.
    offline = createServer(async (req, res) => {
      const body = (await readAll(req)).toString('utf8');
      seen.push({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body });
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' });
        res.end(JSON.stringify(v));
      };
      const path = req.url!.split('?')[0]!;
      if (path.includes('%ZZ')) return json(400, { statusCode: 400, error: 'Bad Request', message: 'Bad Request' });
      if (path === '/hapi-500') return json(500, { statusCode: 500, error: 'Internal Server Error', message: 'An internal server error occurred' });
      if (path === '/crash') return json(502, { errorMessage: 'boom', errorType: 'Error', offlineInfo: 'If you believe…', stackTrace: ['at x'] });
      if (path === '/html') return (res.writeHead(503, { 'content-type': 'text/html' }), res.end('<h1>down</h1>'));
      if (path === '/matrix') return json(403, { errcode: 'M_FORBIDDEN', error: 'no' });
      res.writeHead(201, { 'content-type': 'application/json', 'x-extra': 'yes' });
      res.end(JSON.stringify({ echoed: body.length }));
    });
    // serverless-offline's Lambda invoke API: the function answers with the path it was given.
    lambda = createServer(async (req, res) => {
      const name = decodeURIComponent(/\/functions\/([^/]+)\/invocations$/.exec(req.url!)![1]!);
      const event = JSON.parse((await readAll(req)).toString('utf8'));
      invoked.push({ name, event });
      res.writeHead(200, { 'content-type': 'application/json' });
      // The media link's function: bytes, base64-encoded as a function answers them.
      if (event.rawPath.startsWith('/network/media/')) return res.end(JSON.stringify({ statusCode: 200, headers: { 'content-type': 'image/png' }, body: PNG.toString('base64'), isBase64Encoded: true }));
      res.end(JSON.stringify({ statusCode: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errcode: 'M_INVALID_PARAM', error: event.rawPath }) }));
    });
    await Promise.all([listen(offline, offlinePort), listen(lambda, lambdaPort)]);
    front = await startFront({ host: '127.0.0.1', port, offlinePort, lambdaPort, routes });
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await front?.close();
    await Promise.all([offline && close(offline), lambda && close(lambda)]);
  });

  function send(method: string, path: string, headers: Record<string, string> | string[] = {}, body?: string | Buffer) {
    return new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
      const req = httpRequest(`${url}${path}`, { method, headers }, async (res) => {
        resolve({ status: res.statusCode!, headers: res.headers, text: (await readAll(res)).toString('utf8') });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('passes a request on as it came, and the answer back', async () => {
    const host = new URL(url).host;
    const res = await send('POST', '/a/b%2Fc?x=%41&x=2', ['Host', host, 'X-Case', 'kept', 'Connection', 'keep-alive, x-hop', 'X-Hop', 'dropped', 'Cookie', 'a=b'], '{"k":1}');
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-extra'], 'yes');
    assert.deepEqual(JSON.parse(res.text), { echoed: 7 });
    const got = seen.at(-1)!;
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/a/b%2Fc?x=%41&x=2');
    assert.equal(got.body, '{"k":1}');
    assert.ok(got.rawHeaders.includes('X-Case'), 'header names keep their case');
    assert.equal(got.headers['x-case'], 'kept');
    assert.equal(got.headers.cookie, 'a=b');
    assert.equal(got.headers['x-hop'], undefined, 'hop-by-hop headers stay behind');
    assert.equal(got.headers.host, host, 'the Host the client sent');
  });

  test('what hapi refused before any function ran goes to the function the route leads to', async () => {
    const before = invoked.length;
    const res = await send('PUT', '/_matrix/app/v1/transactions/a%ZZ?access_token=t', { authorization: 'Bearer t', cookie: 'c=1' }, '{"events":[]}');
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.text), { errcode: 'M_INVALID_PARAM', error: '/_matrix/app/v1/transactions/a%ZZ' });
    assert.equal(invoked.length, before + 1);
    const { name, event } = invoked.at(-1)!;
    assert.equal(name, fn('push'));
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, 'PUT /_matrix/app/v1/transactions/{txnId+}');
    assert.equal(event.rawPath, '/_matrix/app/v1/transactions/a%ZZ');
    assert.equal(event.rawQueryString, 'access_token=t');
    assert.deepEqual(event.queryStringParameters, { access_token: 't' });
    assert.equal(event.requestContext.http.method, 'PUT');
    assert.equal(event.headers.authorization, 'Bearer t');
    assert.deepEqual(event.cookies, ['c=1']);
    assert.equal(event.body, '{"events":[]}');
    assert.equal(event.isBase64Encoded, false);

    // A body that is not UTF-8 goes base64, as API Gateway sends it.
    await send('PUT', '/transactions/%ZZ', {}, Buffer.from([0xff, 0xfe]));
    assert.equal(invoked.at(-1)!.event.isBase64Encoded, true);
    // An unknown path: the $default route's function.
    await send('GET', '/nothing/%ZZ');
    assert.equal(invoked.at(-1)!.name, fn('unrecognized'));
    assert.equal(invoked.at(-1)!.event.routeKey, '$default');
    // A HEAD: hapi's error has no body to tell it by, so a path it cannot decode goes straight there.
    const head = await send('HEAD', '/users/%C0%AF');
    assert.equal(head.status, 400);
    assert.equal(invoked.at(-1)!.event.requestContext.http.method, 'HEAD');
  });

  test('a binary body goes straight to its function, base64-encoded (serverless-offline would decode it as UTF-8); binary answers come back as bytes', async () => {
    const [seenBefore, before] = [seen.length, invoked.length];
    const res = await send('POST', '/network/media?sender=Bob&filename=cat.png', { 'content-type': 'image/png', 'x-signature': 't=1,v1=ab' }, PNG);
    assert.equal(res.status, 400, 'the function\'s answer');
    assert.equal(seen.length, seenBefore, 'not through serverless-offline');
    assert.equal(invoked.length, before + 1);
    const { name, event } = invoked.at(-1)!;
    assert.equal(name, fn('networkMediaUpload'));
    assert.equal(event.routeKey, 'POST /network/media');
    assert.equal(event.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(event.body, 'base64'), PNG, 'the exact bytes');
    assert.equal(event.headers['content-type'], 'image/png');
    assert.equal(event.headers['x-signature'], 't=1,v1=ab');
    assert.equal(event.rawQueryString, 'sender=Bob&filename=cat.png');
    assert.deepEqual(event.queryStringParameters, { sender: 'Bob', filename: 'cat.png' });
    // Binary by its type even when the bytes happen to be UTF-8, as API Gateway has it.
    await send('POST', '/network/media?sender=Bob', { 'content-type': 'application/octet-stream' }, 'abc');
    assert.deepEqual([invoked.at(-1)!.event.isBase64Encoded, invoked.at(-1)!.event.body], [true, Buffer.from('abc').toString('base64')]);
    // Text (JSON, text/*, a type with parameters) still goes through serverless-offline, as it came.
    for (const type of ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/vnd.api+json']) {
      const n = invoked.length;
      await send('POST', '/network/messages', { 'content-type': type }, '{"k":1}');
      assert.equal(invoked.length, n, type);
      assert.equal(seen.at(-1)!.body, '{"k":1}', type);
    }
    // A function's bytes (isBase64Encoded) reach the client as the exact bytes.
    const got = await fetch(`${url}/network/media/localhost/%ZZ?expires=1&sig=ab`);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), PNG);
    assert.equal(got.headers.get('content-type'), 'image/png');
    assert.equal(got.headers.get('content-length'), String(PNG.length));
  });

  test('any other error body not in Matrix form becomes a Matrix error with the same status', async () => {
    const before = invoked.length;
    for (const [path, status] of [
      ['/hapi-500', 500],
      ['/crash', 502],
      ['/html', 503],
    ] as const) {
      const res = await send('GET', path);
      assert.equal(res.status, status, path);
      const body = JSON.parse(res.text);
      assert.deepEqual(Object.keys(body).sort(), ['errcode', 'error'], path);
      assert.equal(body.errcode, 'M_UNKNOWN', path);
    }
    assert.match(JSON.parse((await send('GET', '/crash')).text).error, /boom/);
    assert.equal(invoked.length, before, 'nothing is run twice: the function may have run');
    const matrix = await send('GET', '/matrix');
    assert.deepEqual([matrix.status, JSON.parse(matrix.text)], [403, { errcode: 'M_FORBIDDEN', error: 'no' }]);
  });

  test('an HTTP/1.0 request without Host goes on with one', async () => {
    const { port } = new URL(url);
    const got = await new Promise<string>((resolve, reject) => {
      let text = '';
      const s = connect(Number(port), '127.0.0.1', () => s.write('GET /ten HTTP/1.0\r\n\r\n'));
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('error', reject);
      s.on('close', () => resolve(text));
    });
    assert.match(got, /^HTTP\/1\.1 201 /, got);
    assert.equal(seen.at(-1)!.url, '/ten');
    assert.equal(seen.at(-1)!.headers.host, `127.0.0.1:${port}`);
  });

  test('over the body limit: 413 M_TOO_LARGE', async () => {
    const res = await send('PUT', '/transactions/t', { 'content-length': String(11 * 1024 * 1024) }, 'x'.repeat(11 * 1024 * 1024));
    assert.deepEqual([res.status, JSON.parse(res.text).errcode], [413, 'M_TOO_LARGE']);
  });

  test('what Node cannot parse as HTTP or would refuse (no Host), and CONNECT, get Matrix errors too', async () => {
    const rawCall = (text: string) =>
      new Promise<string>((resolve, reject) => {
        let got = '';
        const { port } = new URL(url);
        const s = connect(Number(port), '127.0.0.1', () => s.write(text));
        s.setEncoding('utf8');
        s.on('data', (d: string) => (got += d));
        s.on('error', reject);
        s.on('close', () => resolve(got));
      });
    for (const [text, status, errcode] of [
      ['FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'M_UNRECOGNIZED'],
      ['GET /_matrix/app/v1/ping HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'M_UNRECOGNIZED'],
      [`GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'M_TOO_LARGE'],
      ['CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n', 404, 'M_UNRECOGNIZED'],
    ] as const) {
      const got = await rawCall(text);
      assert.match(got, new RegExp(`^HTTP/1\\.1 ${status} `), got);
      assert.equal(JSON.parse(got.split('\r\n\r\n')[1]!).errcode, errcode, got);
    }
  });

  test('serverless-offline not up (yet): 503 M_UNKNOWN; once up on other ports (its first ones were taken), requests go there', async () => {
    const [port, nothing] = [await freePort(), await freePort()];
    const alone = await startFront({ host: '127.0.0.1', port, offlinePort: nothing, lambdaPort: nothing, routes });
    try {
      const res = await fetch(`http://127.0.0.1:${port}/_matrix/app/v1/ping`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as { errcode: string }).errcode, 'M_UNKNOWN');
      alone.pointAt({ offlinePort: (offline.address() as { port: number }).port, lambdaPort: (lambda.address() as { port: number }).port });
      const before = seen.length;
      const up = await fetch(`http://127.0.0.1:${port}/_matrix/app/v1/ping`, { method: 'POST', body: '{"x":1}' });
      assert.equal(up.status, 201);
      assert.deepEqual(await up.json(), { echoed: 7 });
      assert.equal(seen.at(-1)?.url, '/_matrix/app/v1/ping');
      assert.equal(seen.length, before + 1);
    } finally {
      await alone.close();
    }
  });
});
