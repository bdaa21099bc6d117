import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, parseConfig } from '../../lib/config.js';
import { CONFIG_ENV } from '../support/config-env.js';

const base = { ...CONFIG_ENV };

const failsOn = (env: Record<string, string | undefined>, variable: string) =>
  assert.throws(() => parseConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === variable && e.message.includes(variable));

test('defaults fill what may be left out', () => {
  const c = parseConfig(base);
  assert.equal(c.homeserverUrl, 'http://hs.local:8008', 'trailing slash dropped');
  assert.equal(c.userPrefix, 'irc_');
  assert.equal(c.aliasPrefix, 'irc_');
  assert.equal(c.senderLocalpart, 'ircbot');
  assert.deepEqual(c.network, { kind: 'open' });
});

test('each missing or bad value is named', () => {
  for (const v of ['HOMESERVER_URL', 'HOMESERVER_NAME', 'AS_TOKEN', 'HS_TOKEN', 'TABLE_NAME']) failsOn({ ...base, [v]: undefined }, v);
  failsOn({ ...base, HOMESERVER_URL: 'not a url' }, 'HOMESERVER_URL');
  failsOn({ ...base, HOMESERVER_URL: 'ftp://x' }, 'HOMESERVER_URL');
  failsOn({ ...base, HOMESERVER_NAME: 'bad name' }, 'HOMESERVER_NAME');
  failsOn({ ...base, USER_PREFIX: 'IRC' }, 'USER_PREFIX');
  failsOn({ ...base, SENDER_LOCALPART: 'irc_bot', USER_PREFIX: 'irc_' }, 'SENDER_LOCALPART');
  failsOn({ ...base, NETWORK: 'carrier-pigeon' }, 'NETWORK');
  failsOn({ ...base, NETWORK: 'webhook' }, 'NETWORK_URL');
  failsOn({ ...base, NETWORK: 'webhook', NETWORK_URL: 'http://net' }, 'NETWORK_SECRET');
  failsOn({ ...base, DYNAMODB_ENDPOINT: 'nope' }, 'DYNAMODB_ENDPOINT');
});

test('the default bot is outside the user namespace', () => {
  const c = parseConfig(base);
  assert.ok(!c.senderLocalpart.startsWith(c.userPrefix), c.senderLocalpart);
});

test('two hs_tokens may be configured for rotation', async () => {
  const c = await loadConfig({ ...base, HS_TOKEN_NEXT: 'hs-next' });
  assert.deepEqual(c.hsTokens, ['hs-secret', 'hs-next']);
});

test('secrets come from SSM when given as parameter names, in one call', async () => {
  const asked: string[][] = [];
  const c = await loadConfig(
    { ...base, AS_TOKEN: undefined, HS_TOKEN: undefined, AS_TOKEN_PARAM: '/p/as', HS_TOKEN_PARAM: '/p/hs' },
    async (names) => {
      asked.push(names);
      return { '/p/as': 'from-ssm-as', '/p/hs': 'from-ssm-hs' };
    },
  );
  assert.deepEqual(asked, [['/p/as', '/p/hs']]);
  assert.equal(c.asToken, 'from-ssm-as');
  assert.deepEqual(c.hsTokens, ['from-ssm-hs']);
  await assert.rejects(
    loadConfig({ ...base, AS_TOKEN: undefined, AS_TOKEN_PARAM: '/p/as' }, async () => ({})),
    (e: unknown) => e instanceof ConfigError && e.message.includes('AS_TOKEN_PARAM'),
  );
});

test('open network: a missing network-secret parameter leaves inbound off instead of failing the cold start', async () => {
  const c = await loadConfig({ ...base, NETWORK_SECRET_PARAM: '/p/net' }, async () => ({}));
  assert.deepEqual(c.network, { kind: 'open', secret: undefined, acceptedSecrets: [] });
  const withSecret = await loadConfig({ ...base, NETWORK_SECRET_PARAM: '/p/net' }, async () => ({ '/p/net': 's3cret' }));
  assert.deepEqual(withSecret.network, { kind: 'open', secret: 's3cret', acceptedSecrets: ['s3cret'] });
  await assert.rejects(
    loadConfig({ ...base, NETWORK: 'webhook', NETWORK_URL: 'http://net', NETWORK_SECRET_PARAM: '/p/net' }, async () => ({})),
    (e: unknown) => e instanceof ConfigError && e.variable === 'NETWORK_SECRET_PARAM',
  );
});

const webhook = { ...base, NETWORK: 'webhook', NETWORK_URL: 'http://net', NETWORK_SECRET: 'net-current' };

test('network secret rotation: NETWORK_SECRET_NEXT is accepted beside NETWORK_SECRET, which stays the one we sign with', async () => {
  const none = await loadConfig(webhook);
  assert.deepEqual(none.network, { kind: 'webhook', url: 'http://net', secret: 'net-current', acceptedSecrets: ['net-current'], timeoutMs: 5000 });
  const c = await loadConfig({ ...webhook, NETWORK_SECRET_NEXT: ' net-next ' });
  assert.equal(c.network.secret, 'net-current', 'we sign with the current secret');
  assert.deepEqual(c.network.acceptedSecrets, ['net-current', 'net-next'], 'current first, then next');
  // serverless.yml sets the parameter name empty when no rotation is under way: that is none.
  const empty = await loadConfig({ ...webhook, NETWORK_SECRET_NEXT: '', NETWORK_SECRET_NEXT_PARAM: '  ' }, async () => assert.fail('no SSM call'));
  assert.deepEqual(empty.network.acceptedSecrets, ['net-current']);
  // The same secret twice is one secret.
  assert.deepEqual((await loadConfig({ ...webhook, NETWORK_SECRET_NEXT: 'net-current' })).network.acceptedSecrets, ['net-current']);
  // The open network takes inbound messages under either as well.
  const open = await loadConfig({ ...base, NETWORK_SECRET: 'net-current', NETWORK_SECRET_NEXT: 'net-next' });
  assert.deepEqual(open.network, { kind: 'open', secret: 'net-current', acceptedSecrets: ['net-current', 'net-next'] });
});

test('network secret rotation: NETWORK_SECRET_NEXT_PARAM is read from SSM in the same one call, and a missing parameter is named', async () => {
  const asked: string[][] = [];
  const env = { ...webhook, NETWORK_SECRET: undefined, NETWORK_SECRET_PARAM: '/p/net', NETWORK_SECRET_NEXT_PARAM: '/p/net_next' };
  const c = await loadConfig(env, async (names) => {
    asked.push(names);
    return { '/p/net': 'from-ssm-current', '/p/net_next': 'from-ssm-next' };
  });
  assert.deepEqual(asked, [['/p/net', '/p/net_next']]);
  assert.equal(c.network.secret, 'from-ssm-current');
  assert.deepEqual(c.network.acceptedSecrets, ['from-ssm-current', 'from-ssm-next']);
  // A rotation names the parameter on purpose: its absence fails the cold start, on either network.
  for (const network of [env, { ...base, NETWORK_SECRET_PARAM: '/p/net', NETWORK_SECRET_NEXT_PARAM: '/p/net_next' }]) {
    await assert.rejects(
      loadConfig(network, async () => ({ '/p/net': 'from-ssm-current' })),
      (e: unknown) => e instanceof ConfigError && e.variable === 'NETWORK_SECRET_NEXT_PARAM' && e.message.includes('/p/net_next'),
    );
  }
});

test('network secret rotation: a next secret without a current one is refused', () => {
  failsOn({ ...base, NETWORK_SECRET_NEXT: 'net-next' }, 'NETWORK_SECRET_NEXT');
  failsOn({ ...webhook, NETWORK_SECRET: undefined, NETWORK_SECRET_NEXT_PARAM: '/p/net_next' }, 'NETWORK_SECRET_NEXT');
  assert.deepEqual(parseConfig({ ...base, NETWORK_SECRET_NEXT_PARAM: '' }).network, { kind: 'open' }, 'an empty parameter name is none');
});

test('delivery settings: defaults, values, and a clear error naming a bad one', () => {
  assert.deepEqual(parseConfig(base).delivery, { deadLetterAfterHours: 24, deadLetterNotices: true });
  assert.deepEqual(parseConfig({ ...base, DEAD_LETTER_AFTER_HOURS: '2', DEAD_LETTER_NOTICES: 'false' }).delivery, { deadLetterAfterHours: 2, deadLetterNotices: false });
  for (const [variable, value] of [
    ['DEAD_LETTER_AFTER_HOURS', '0'],
    ['DEAD_LETTER_AFTER_HOURS', '1.5'],
    ['DEAD_LETTER_AFTER_HOURS', String(14 * 24)],
    ['DEAD_LETTER_NOTICES', 'maybe'],
  ] as const) {
    assert.throws(
      () => parseConfig({ ...base, [variable]: value }),
      (e: unknown) => e instanceof ConfigError && e.variable === variable,
      `${variable}=${value}`,
    );
  }
});

test('the delivery queue: QUEUE_URL and DEAD_LETTER_QUEUE_URL are required, SQS_ENDPOINT only for a local server', () => {
  assert.deepEqual(parseConfig(base).queue, { url: base.QUEUE_URL, deadLetterUrl: base.DEAD_LETTER_QUEUE_URL, endpoint: undefined });
  assert.equal(parseConfig({ ...base, SQS_ENDPOINT: 'http://127.0.0.1:9324' }).queue.endpoint, 'http://127.0.0.1:9324');
  for (const variable of ['QUEUE_URL', 'DEAD_LETTER_QUEUE_URL'] as const) {
    assert.throws(() => parseConfig({ ...base, [variable]: undefined }), (e: unknown) => e instanceof ConfigError && e.variable === variable, variable);
    assert.throws(() => parseConfig({ ...base, [variable]: 'not a url' }), (e: unknown) => e instanceof ConfigError && e.variable === variable, variable);
  }
});

test('the third-party protocol: its settings, and a clear error naming a bad one', () => {
  const c = parseConfig({
    ...base,
    AS_ID: 'my-bridge',
    PROTOCOL: 'libera.chat',
    PROTOCOL_USER_FIELD: 'user',
    PROTOCOL_LOCATION_FIELD: 'room',
    PROTOCOL_ICON: 'mxc://example.org/AbC_12-x',
    PROTOCOL_NETWORK_NAME: 'Libera Chat',
    PUBLISH_ROOMS: 'true',
  });
  assert.deepEqual(c.thirdParty, { protocol: 'libera.chat', userField: 'user', locationField: 'room', icon: 'mxc://example.org/AbC_12-x', networkName: 'Libera Chat', networkId: 'libera.chat', publishRooms: true });
  failsOn({ ...base, PUBLISH_ROOMS: 'maybe' }, 'PUBLISH_ROOMS');
  assert.equal(parseConfig({ ...base, AS_ID: 'my-bridge' }).thirdParty.networkName, 'my-bridge', "the network's name is AS_ID unless given");
  assert.equal(parseConfig({ ...base, PROTOCOL: ' ' }).thirdParty.protocol, 'irc', 'empty: the default');
  for (const bad of ['IRC', 'irc/x', '-irc', 'x'.repeat(65)]) failsOn({ ...base, PROTOCOL: bad }, 'PROTOCOL');
  for (const bad of ['1st', 'a b', 'access_token', 'x'.repeat(65)]) failsOn({ ...base, PROTOCOL_USER_FIELD: bad }, 'PROTOCOL_USER_FIELD');
  failsOn({ ...base, PROTOCOL_LOCATION_FIELD: 'nickname' }, 'PROTOCOL_LOCATION_FIELD');
  for (const bad of ['https://example.org/icon.png', 'mxc://example.org/', 'mxc://example.org/a/b']) failsOn({ ...base, PROTOCOL_ICON: bad }, 'PROTOCOL_ICON');
  failsOn({ ...base, PROTOCOL_NETWORK_NAME: 'n'.repeat(256) }, 'PROTOCOL_NETWORK_NAME');
});
