/**
 * The cost ceiling's first line: a request without valid credentials is refused before it costs
 * anything but the Lambda invocation. Every AWS call and homeserver call the functions make is
 * counted here (DynamoDB and the queue through counting proxies, SSM at a fake SSM endpoint,
 * the fake homeserver's own record) while a flood of unsigned and wrongly signed requests
 * comes in: the secrets are read from SSM once, at the cold start, and nothing else is called.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HS_TOKEN, startAs } from './support/as.js';
import { startCountingProxy } from './support/counting-proxy.js';
import { sign } from '../lib/signature.js';

const NETWORK_SECRET = 'network-secret-of-the-flood-test';
const PARAMS = { '/flood/as_token': 'as-token-for-tests-0123456789', '/flood/hs_token': HS_TOKEN, '/flood/network_secret': NETWORK_SECRET };

// A fake SSM endpoint (the SDK's AWS_ENDPOINT_URL_SSM): GetParameters, counted.
const ssmCalls: string[][] = [];
const ssm = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const names: string[] = JSON.parse(body || '{}').Names ?? [];
    ssmCalls.push(names);
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(
      JSON.stringify({
        Parameters: names.filter((n) => n in PARAMS).map((Name) => ({ Name, Type: 'SecureString', Value: PARAMS[Name as keyof typeof PARAMS], Version: 1 })),
        InvalidParameters: names.filter((n) => !(n in PARAMS)),
      }),
    );
  });
});
await new Promise<void>((r) => ssm.listen(0, '127.0.0.1', r));
ssm.unref();

const dynamo = await startCountingProxy(process.env.TEST_DYNAMODB_ENDPOINT);
const sqs = await startCountingProxy();
const as = await startAs({
  // The secrets from SSM, as deployed: the plain values are unset.
  AS_TOKEN: '',
  HS_TOKEN: '',
  AS_TOKEN_PARAM: '/flood/as_token',
  HS_TOKEN_PARAM: '/flood/hs_token',
  NETWORK_SECRET_PARAM: '/flood/network_secret',
  AWS_ENDPOINT_URL_SSM: `http://127.0.0.1:${(ssm.address() as AddressInfo).port}`,
  AWS_REGION: 'us-east-1',
  // What the table was made with: DynamoDB Local keeps a table per access key.
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  DYNAMODB_ENDPOINT: dynamo.url,
  SQS_ENDPOINT: sqs.url,
});
sqs.target = as.queues.asEndpoint.url;

test('a flood of requests without valid credentials calls nothing but the cold start read of the secrets', async () => {
  const txn = { events: [{ type: 'm.room.message', room_id: '!r:example.org', sender: '@alice:example.org', event_id: '$e1', origin_server_ts: 1, content: { msgtype: 'm.text', body: 'hi' } }] };
  const inbound = JSON.stringify({ id: 'n1', room: 'lobby', sender: { id: 'bob' }, body: 'hi', ts: 1 });
  const badHs: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token' }, { authorization: 'Basic abc' }, { authorization: `Bearer ${HS_TOKEN}x` }];
  const png = Buffer.from('89504e470d0a1a0a', 'hex');
  const badSignatures: Array<Record<string, string>> = [{}, { 'x-signature': 'sha256=00' }, { 'x-signature': `sha256=${sign(inbound, 'another-secret')}` }, { 'x-signature': 'garbage' }];

  const statuses: number[] = [];
  for (let round = 0; round < 5; round++) {
    const calls = [
      ...badHs.flatMap((headers) => [
        as.call('user-query', { method: 'GET', path: '/_matrix/app/v1/users/@irc_bob:example.org', headers }),
        as.call('room-query', { method: 'GET', path: '/_matrix/app/v1/rooms/%23irc_lobby:example.org', headers }),
        as.call('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/flood-${round}`, body: txn, headers }),
        as.call('ping', { method: 'POST', path: '/_matrix/app/v1/ping', body: {}, headers }),
      ]),
      ...badHs.map((headers) => as.call('thirdparty', { method: 'GET', path: '/_matrix/app/v1/thirdparty/location/irc', rawQuery: 'name=lobby', headers })),
      ...badSignatures.flatMap((headers) => [
        as.call('network-inbound', { method: 'POST', path: '/network/messages', rawBody: inbound, headers }),
        as.call('network-media-upload', { method: 'POST', path: '/network/media', query: { sender: 'bob' }, rawBody: png, headers: { ...headers, 'content-type': 'image/png' } }),
      ]),
      // A media link with no signature, a forged one, an expired one.
      ...([{}, { expires: String(Math.floor(Date.now() / 1000) + 600), sig: '00'.repeat(32) }, { expires: '1', sig: 'garbage' }] as Array<Record<string, string>>).map((query) =>
        as.call('network-media-download', { method: 'GET', path: '/network/media/example.org/abc', query }),
      ),
      // The provisioning API without a token. (A token that is not the operator's secret is an
      // OpenID token to the API, and only the homeserver can say whose: that costs one homeserver call.)
      as.call('provision', { method: 'GET', path: '/_matrix/provision/v1/rooms/!r:example.org', query: { user_id: '@alice:example.org' } }),
    ];
    statuses.push(...(await Promise.all(calls)).map((r) => r.status));
  }
  assert.ok(
    statuses.every((s) => s === 401 || s === 403),
    `every one refused: ${JSON.stringify(statuses)}`,
  );
  assert.equal(statuses.length, 5 * (badHs.length * 5 + badSignatures.length * 2 + 3 + 1));

  assert.deepEqual(ssmCalls, [['/flood/as_token', '/flood/hs_token', '/flood/network_secret']], 'one GetParameters, at the cold start');
  assert.deepEqual(dynamo.requests, [], 'no DynamoDB call');
  assert.deepEqual(sqs.requests, [], 'no queue call');
  assert.equal(as.hs.calls.length, 0, 'no homeserver call');

  // And the same functions, signed, do call through the same counters: the counting is real.
  const ok = await as.call('user-query', { method: 'GET', path: '/_matrix/app/v1/users/@irc_bob:example.org', headers: { authorization: `Bearer ${HS_TOKEN}` } });
  assert.equal(ok.status, 200, as.logs.slice(-5).join('\n'));
  assert.ok(dynamo.requests.length > 0, 'the signed query read and wrote DynamoDB');
  assert.ok(as.hs.calls.some((c) => c.path === '/_matrix/client/v3/register'), 'and registered the user');
  assert.equal(ssmCalls.length, 1, 'the secrets are not read again while warm');
});
