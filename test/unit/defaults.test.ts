import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { DEFAULTS, PARKING, SERVICE } from '../../lib/defaults.js';
import { parseConfig } from '../../lib/config.js';

const sls = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'));
/** The fallback at the end of a serverless variable: `${param:x, env:X, 'default'}` → default. */
const fallback = (v: string) => /,\s*'?([^',}]*)'?\s*}$/.exec(v)?.[1];

test('serverless.yml names the service and defaults every setting as lib/defaults.ts does', () => {
  assert.equal(sls.service, SERVICE);
  const env = sls.provider.environment;
  for (const name of ['HOMESERVER_URL', 'HOMESERVER_NAME', 'AS_ID', 'SENDER_LOCALPART', 'USER_PREFIX', 'NETWORK'] as const) {
    assert.equal(fallback(env[name]), DEFAULTS[name], name);
  }
  assert.equal(fallback(env.DEAD_LETTER_AFTER_HOURS), String(PARKING.DEAD_LETTER_AFTER_HOURS));
  assert.equal(fallback(env.MAX_PARKED_EVENTS_PER_ROOM), String(PARKING.MAX_PARKED_EVENTS_PER_ROOM));
  assert.equal(fallback(env.DEAD_LETTER_NOTICES), String(PARKING.DEAD_LETTER_NOTICES));
  assert.equal(fallback(sls.custom['serverless-offline'].host), DEFAULTS.LISTEN_HOST);
  assert.equal(fallback(String(sls.custom['serverless-offline'].httpPort)), DEFAULTS.PORT);
});

test('config.ts falls back on the same defaults', () => {
  const c = parseConfig({ HOMESERVER_URL: 'http://hs', HOMESERVER_NAME: 'hs', AS_TOKEN: 'a', HS_TOKEN: 'h', TABLE_NAME: 't' });
  assert.equal(c.asId, DEFAULTS.AS_ID);
  assert.equal(c.senderLocalpart, DEFAULTS.SENDER_LOCALPART);
  assert.equal(c.userPrefix, DEFAULTS.USER_PREFIX);
  assert.equal(c.network.kind, DEFAULTS.NETWORK);
});
