/**
 * The connectivity check the spec's way (v1.7): the AS asks the homeserver to ping it
 * (`POST /_matrix/client/v1/appservice/{id}/ping`), the homeserver calls the AS's
 * `POST /_matrix/app/v1/ping` with the hs_token and our transaction ID, and answers with the time
 * it took or why it could not. The scheduled function records the result as a metric (the ping
 * alarm); `npm run ping` prints it with what to check.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { HS_TOKEN, AS_TOKEN, startAs } from './support/as.js';
import type { AsUnderTest } from './support/as.js';
import { startGateway } from './support/gateway.js';
import type { Gateway } from './support/gateway.js';
import { lambdaContext } from './support/lambda.js';
import { freePort } from '../lib/local/ports.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const AS_ID = 'matrix-appservice-lambda';

const as: AsUnderTest = await startAs();
const ping = (await import('../functions/ping.js')).handler;
// Only the AS's ping route: a homeserver calling anything else gets the gateway's 404.
const gateway: Gateway = await startGateway((method, path) => (method === 'POST' && path === '/_matrix/app/v1/ping' ? (ping as never) : undefined));
const pingHomeserver = (await import('../functions/ping-homeserver.js')).handler as unknown as (event: unknown, context: unknown) => Promise<any>;

const scheduledEvent = () => ({
  version: '0',
  id: 'e3b0c442-98fc-1c14-9afb-f4c8996fb924',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: new Date().toISOString(),
  region: 'us-east-1',
  resources: ['arn:aws:events:us-east-1:123456789012:rule/matrix-appservice-lambda-dev-pingHomeserver'],
  detail: {},
});

/** The embedded metrics lines the functions wrote since `from`, as parsed objects. */
const metricsSince = (from: number) =>
  as.logs
    .slice(from)
    .map((l) => JSON.parse(l))
    .filter((l) => l._aws);

describe('the scheduled ping', () => {
  test('the homeserver calls the AS back with our transaction ID and its hs_token; the round trip is recorded', async () => {
    as.hs.registration = { id: AS_ID, url: gateway.url, hsToken: HS_TOKEN };
    const from = as.logs.length;
    const before = gateway.requests.length;
    const result = await pingHomeserver(scheduledEvent(), lambdaContext());
    assert.equal(result.ok, true, result.explanation);
    assert.match(result.explanation, /the homeserver reached the AS/);

    // What the AS's ping endpoint got: the homeserver's call, with our transaction ID, answered 200 {}.
    const [call, ...more] = gateway.requests.slice(before);
    assert.equal(more.length, 0);
    assert.equal(call!.headers.authorization, `Bearer ${HS_TOKEN}`);
    assert.equal(JSON.parse(call!.body).transaction_id, result.transactionId);
    assert.deepEqual([call!.status, call!.answer], [200, {}]);
    // Our request to the homeserver is the spec's (the fake checks it against appservice_ping.yaml).
    const asked = as.hs.calls.filter((c) => c.path === `/_matrix/client/v1/appservice/${AS_ID}/ping`);
    assert.equal(asked.length, 1);
    assert.deepEqual(asked[0]!.body, { transaction_id: result.transactionId });
    assert.deepEqual(as.hs.specErrors, []);

    const metrics = metricsSince(from).filter((m) => 'PingFailed' in m);
    assert.equal(metrics.length, 1);
    assert.equal(metrics[0].PingFailed, 0);
    assert.equal(typeof metrics[0].PingRoundTrip, 'number');
    assert.deepEqual(metrics[0]._aws.CloudWatchMetrics[0].Dimensions, [['Stage']]);
    assert.equal(metrics[0].Stage, 'local');
  });

  // Each way the spec says a ping fails, as the homeserver reports it, with what to check.
  const cases: Array<{ name: string; setUp: () => Promise<void> | void; errcode: string; status: number; check: RegExp }> = [
    {
      name: 'the registration has no url',
      setUp: () => void (as.hs.registration = { id: AS_ID, url: null, hsToken: HS_TOKEN }),
      errcode: 'M_URL_NOT_SET',
      status: 400,
      check: /has no `url`/,
    },
    {
      name: 'AS_ID is not the registration id',
      setUp: () => void (as.hs.registration = { id: 'some-other-bridge', url: gateway.url, hsToken: HS_TOKEN }),
      errcode: 'M_FORBIDDEN',
      status: 403,
      check: /AS_ID must be the registration file's `id`/,
    },
    {
      name: "the registration's hs_token is not the AS's",
      setUp: () => void (as.hs.registration = { id: AS_ID, url: gateway.url, hsToken: 'not-the-hs-token' }),
      errcode: 'M_BAD_STATUS',
      status: 502,
      check: /refused the homeserver's hs_token \(HTTP 403\)/,
    },
    {
      name: "the registration's url has a path the AS does not serve",
      setUp: () => void (as.hs.registration = { id: AS_ID, url: `${gateway.url}/bridge`, hsToken: HS_TOKEN }),
      errcode: 'M_BAD_STATUS',
      status: 502,
      check: /answers, but not as this AS \(HTTP 404\)/,
    },
    {
      name: 'nothing listens at the url',
      setUp: async () => void (as.hs.registration = { id: AS_ID, url: `http://127.0.0.1:${await freePort()}`, hsToken: HS_TOKEN }),
      errcode: 'M_CONNECTION_FAILED',
      status: 502,
      check: /could not connect to the registration's url/,
    },
    {
      name: 'the AS does not answer in time',
      setUp: async () => {
        const stuck = createServer(() => undefined);
        await new Promise<void>((r) => stuck.listen(0, '127.0.0.1', r));
        as.hs.registration = { id: AS_ID, url: `http://127.0.0.1:${(stuck.address() as AddressInfo).port}`, hsToken: HS_TOKEN, pingTimeoutMs: 300 };
        stuck.unref();
      },
      errcode: 'M_CONNECTION_TIMEOUT',
      status: 504,
      check: /did not answer the homeserver in time/,
    },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.errcode}, with what to check, and PingFailed 1`, async () => {
      await c.setUp();
      const from = as.logs.length;
      const result = await pingHomeserver(scheduledEvent(), lambdaContext());
      assert.equal(result.ok, false);
      assert.equal(result.errcode, c.errcode);
      assert.equal(result.status, c.status);
      assert.match(result.explanation, c.check);
      const metrics = metricsSince(from).filter((m) => 'PingFailed' in m);
      assert.deepEqual(
        metrics.map((m) => [m.PingFailed, 'PingRoundTrip' in m]),
        [[1, false]],
      );
      const logged = as.logs.slice(from).map((l) => JSON.parse(l)).find((l) => l.msg === 'ping failed');
      assert.equal(logged?.errcode, c.errcode);
      assert.ok(!as.logs.slice(from).some((l) => l.includes(AS_TOKEN) || l.includes(HS_TOKEN)), 'no token in a log line');
    });
  }
});

describe('npm run ping', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/ping.ts', ...args], {
        cwd: ROOT,
        // No registration.yaml of the developer's: only what the test gives.
        env: { PATH: process.env.PATH, REGISTRATION_FILE: '/nonexistent/registration.yaml', ...env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b));
      child.stderr.on('data', (b: Buffer) => (stderr += b));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  test('prints the round trip when the homeserver reaches the AS (exit 0)', async () => {
    as.hs.registration = { id: AS_ID, url: gateway.url, hsToken: HS_TOKEN };
    const before = gateway.requests.length;
    const out = await run(['--url', as.hs.url], { AS_TOKEN, AS_ID });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /the homeserver reached the AS: its call took \d+ ms/);
    assert.equal(gateway.requests.slice(before).filter((r) => r.status === 200).length, 1, 'the AS was called once');
  });

  test("prints the homeserver's error with what to check (exit 1)", async () => {
    as.hs.registration = { id: AS_ID, url: gateway.url, hsToken: 'not-the-hs-token' };
    const out = await run(['--url', as.hs.url], { AS_TOKEN, AS_ID, AS_URL: gateway.url });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /HTTP 502 M_BAD_STATUS/);
    assert.match(out.stderr, /what to check: .*hs_token/);
    assert.ok(!out.stderr.includes(AS_TOKEN) && !out.stdout.includes(AS_TOKEN), 'the token is not printed');
  });

  test('a homeserver that does not answer, a wrong token, and bad usage', async () => {
    const nobody = await run(['--url', `http://127.0.0.1:${await freePort()}`], { AS_TOKEN });
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /UNREACHABLE/);
    assert.match(nobody.stderr, /nothing answers at HOMESERVER_URL/);

    const wrongToken = await run(['--url', as.hs.url], { AS_TOKEN: 'not-our-token' });
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /M_UNKNOWN_TOKEN/);
    assert.match(wrongToken.stderr, /app_service_config_files/);

    const noToken = await run(['--url', as.hs.url]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /AS_TOKEN/);

    const both = await run(['--url', as.hs.url, '--stage', 'prod']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /not both/);
  });
});
