/**
 * PERMISSIONS: validated at cold start with an error naming the variable (inline or in SSM), the
 * default (everyone relays, the homeserver's own users link), and the most specific pattern
 * winning: a user ID over its server over `*`, federated users included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { allows, may, permissionOf } from '../../lib/bridge/permissions.js';
import { CONFIG_ENV } from '../support/config-env.js';

const base = { ...CONFIG_ENV, HOMESERVER_URL: 'http://hs.local:8008' };

const noSsm = async () => ({});
const rejectsOn = (env: Record<string, string>, variable: string, says: RegExp) =>
  assert.rejects(loadConfig({ ...base, ...env }, noSsm), (e: unknown) => e instanceof ConfigError && e.variable === variable && says.test(e.message));

test('the default: everyone relays, the homeserver\'s own users may link; LINK_POWER_LEVEL 50; no provisioning secret; OpenID at the homeserver', async () => {
  const c = await loadConfig(base, noSsm);
  assert.deepEqual({ ...c.access.permissions }, { '*': 'relay', 'example.org': 'link' });
  assert.equal(c.access.linkPowerLevel, 50);
  assert.equal(c.access.provisioningSecret, undefined);
  assert.equal(c.access.federationUrl, 'http://hs.local:8008');
  assert.equal(permissionOf(c.access, '@alice:example.org'), 'link');
  assert.equal(permissionOf(c.access, '@bob:elsewhere.net'), 'relay', 'a federated user relays');
});

test('the most specific pattern wins: the user ID, then the server, then *; nothing matching is none', () => {
  const access = { permissions: { '*': 'relay', 'example.org': 'link', '@boss:example.org': 'admin', '@troll:example.org': 'none', 'spam.example': 'none', '@friend:partner.org': 'link' } as const };
  assert.equal(permissionOf(access, '@boss:example.org'), 'admin');
  assert.equal(permissionOf(access, '@troll:example.org'), 'none', 'a user below their server');
  assert.equal(permissionOf(access, '@alice:example.org'), 'link');
  assert.equal(permissionOf(access, '@anyone:spam.example'), 'none', 'a whole federated server');
  assert.equal(permissionOf(access, '@friend:partner.org'), 'link', 'one federated user above *');
  assert.equal(permissionOf(access, '@other:partner.org'), 'relay');
  assert.equal(permissionOf({ permissions: { 'example.org': 'relay' } }, '@x:elsewhere.net'), 'none', 'no * and no match');
  assert.equal(permissionOf(access, 'not a user id'), 'relay', 'no server to match: *');
  // A server name with a port is its own pattern.
  assert.equal(permissionOf({ permissions: { 'hs.local:8448': 'admin' } }, '@a:hs.local:8448'), 'admin');
  assert.ok(allows('admin', 'link') && allows('link', 'relay') && !allows('relay', 'link') && !allows('none', 'relay'));
  assert.ok(may(access, '@boss:example.org', 'admin') && !may(access, '@alice:example.org', 'admin'));
});

test('PERMISSIONS inline or from SSM, checked at cold start with a clear error', async () => {
  const c = await loadConfig({ ...base, PERMISSIONS: '{"*": "none", "example.org": "relay", "@mod:example.org": "admin"}' }, noSsm);
  assert.deepEqual({ ...c.access.permissions }, { '*': 'none', 'example.org': 'relay', '@mod:example.org': 'admin' });
  const fromSsm = await loadConfig({ ...base, PERMISSIONS_PARAM: '/mal/dev/permissions' }, async (names) => {
    assert.deepEqual(names, ['/mal/dev/permissions']);
    return { '/mal/dev/permissions': '{"*": "relay", "@ops:example.org": "admin"}' };
  });
  assert.equal(permissionOf(fromSsm.access, '@ops:example.org'), 'admin');
  await rejectsOn({ PERMISSIONS: '{"*": "relay",' }, 'PERMISSIONS', /not JSON/);
  await rejectsOn({ PERMISSIONS: '["relay"]' }, 'PERMISSIONS', /object/);
  await rejectsOn({ PERMISSIONS: '{"*": "write"}' }, 'PERMISSIONS', /none, relay, link, admin/);
  await rejectsOn({ PERMISSIONS: '{"not a pattern!": "relay"}' }, 'PERMISSIONS', /server name/);
  await rejectsOn({ PERMISSIONS: '{"@alice": "relay"}' }, 'PERMISSIONS', /user ID/);
  await rejectsOn({ PERMISSIONS_PARAM: '/mal/dev/permissions' }, 'PERMISSIONS_PARAM', /does not exist/);
  await assert.rejects(
    loadConfig({ ...base, PERMISSIONS_PARAM: '/p' }, async () => ({ '/p': '{"*": 7}' })),
    (e: unknown) => e instanceof ConfigError && e.variable === 'PERMISSIONS_PARAM' && /level/.test(e.message),
  );
  await rejectsOn({ LINK_POWER_LEVEL: '101' }, 'LINK_POWER_LEVEL', /0 to 100/);
  await rejectsOn({ HOMESERVER_FEDERATION_URL: 'nope' }, 'HOMESERVER_FEDERATION_URL', /URL/);
  const secret = await loadConfig({ ...base, PROVISIONING_SECRET: 'ops-secret', HOMESERVER_FEDERATION_URL: 'https://hs.example.org:8448/' }, noSsm);
  assert.equal(secret.access.provisioningSecret, 'ops-secret');
  assert.equal(secret.access.federationUrl, 'https://hs.example.org:8448');
});
