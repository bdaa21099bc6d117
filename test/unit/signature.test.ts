import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { MAX_SIGNATURES, sign, verify } from '../../lib/signature.js';

const CURRENT = 'current-network-secret';
const NEXT = 'next-network-secret';
const OTHER = 'someone-elses-secret';
const BODY = '{"id":"irc-1","room":"#matrix","sender":{"id":"Bob"},"body":"hello?","ts":1700000000000}';
const NOW = 1_700_000_000_000;
const T = NOW / 1000;

const v1 = (secret: string, body = BODY, t = T) => createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
const status = (header: string | undefined, secrets: string | string[] = [CURRENT, NEXT], body = BODY, now = NOW) => {
  const check = verify(header, body, secrets, now);
  return check.ok ? 'ok' : check.status;
};

test('sign: t and one v1, the HMAC-SHA256 of "t.body" under the one secret given', () => {
  assert.equal(sign(CURRENT, BODY, NOW + 999), `t=${T},v1=${v1(CURRENT)}`);
  assert.equal(status(sign(CURRENT, BODY, NOW), CURRENT), 'ok', 'round trip, one secret as a string');
  assert.equal(status(sign(CURRENT, '', NOW), [CURRENT], ''), 'ok', 'an empty body (GETs)');
  assert.equal(status(sign(CURRENT, BODY, NOW), [CURRENT], `${BODY} `), 403, 'over the exact bytes');
});

test('while rotating, a signature under either accepted secret is valid, under any other not', () => {
  assert.equal(status(sign(CURRENT, BODY, NOW)), 'ok', 'the current secret');
  assert.equal(status(sign(NEXT, BODY, NOW)), 'ok', 'the next secret');
  assert.equal(status(sign(OTHER, BODY, NOW)), 403, 'an unrelated secret');
  assert.equal(status(sign(NEXT, BODY, NOW), [CURRENT]), 403, 'the next secret once it is no longer accepted');
  assert.equal(status(sign(CURRENT, BODY, NOW), []), 403, 'no accepted secret: nothing matches');
});

test('several v1 values: valid when any of them matches any accepted secret', () => {
  assert.equal(status(`t=${T},v1=${v1(OTHER)},v1=${v1(NEXT)}`), 'ok', 'only the second matches');
  assert.equal(status(`t=${T},v1=${v1(CURRENT)},v1=${v1(NEXT)}`), 'ok', 'both match (a network signing with both)');
  assert.equal(status(`t=${T},v1=${v1(NEXT)},v1=${v1(CURRENT)}`, [CURRENT]), 'ok', 'order does not matter');
  assert.equal(status(`v1=${v1(OTHER)}, t=${T} ,v1=${v1(CURRENT)}`), 'ok', 't anywhere, spaces around parts');
  assert.equal(status(`t=${T},v0=whatever,v1=${v1(CURRENT)}`), 'ok', 'other schemes are skipped');
  assert.equal(status(`t=${T},v1=${v1(OTHER)},v1=${v1('yet-another')}`), 403, 'none matches');
  assert.equal(status(`t=${T},v1=${v1(CURRENT).toUpperCase()}`), 'ok', 'hex in either case');
});

test('freshness: more than 5 minutes away from now is refused (403), whichever secret signed', () => {
  for (const secret of [CURRENT, NEXT]) {
    assert.equal(status(sign(secret, BODY, NOW - 6 * 60_000)), 403, 'stale');
    assert.equal(status(sign(secret, BODY, NOW + 6 * 60_000)), 403, 'from the future');
    assert.equal(status(sign(secret, BODY, NOW - 4 * 60_000)), 'ok', 'four minutes old');
  }
  const stale = verify(`t=${T - 301},v1=${v1(CURRENT, BODY, T - 301)},v1=${v1(NEXT, BODY, T - 301)}`, BODY, [CURRENT, NEXT], NOW);
  assert.deepEqual(stale.ok ? 'ok' : [stale.status, /5 minutes/.test(stale.reason)], [403, true], 'stale with several v1');
});

test('a missing or unparseable header is 401', () => {
  const cases = [
    undefined,
    '',
    'garbage',
    `v1=${v1(CURRENT)}`,
    `t=${T}`,
    `t=abc,v1=${v1(CURRENT)}`,
    `t=-${T},v1=${v1(CURRENT)}`,
    `t=${T}.5,v1=${v1(CURRENT)}`,
    `t=${T},t=${T},v1=${v1(CURRENT)}`,
    `t=${T},v1=`,
    `t=${T},${Array.from({ length: MAX_SIGNATURES + 1 }, () => `v1=${v1(CURRENT)}`).join(',')}`,
  ];
  for (const header of cases) assert.equal(status(header), 401, String(header));
});

test('malformed v1 values are refused without throwing, and never hide a good one', () => {
  const good = v1(CURRENT);
  const malformed = [
    good.slice(1), // odd length
    good.slice(2), // even, but 31 bytes
    `${good.slice(0, 63)}g`, // not hex
    `${good.slice(0, 62)}zz`,
    `${good}00`, // too long
    `${good}${good}`,
    'ab'.repeat(10_000),
    `${good.slice(0, 60)}    `,
    '０'.repeat(64), // full-width digits: 64 characters, not 64 hex digits
    `${good.slice(0, 63)}\u0000`,
  ];
  for (const bad of malformed) {
    let check: ReturnType<typeof verify> | undefined;
    assert.doesNotThrow(() => (check = verify(`t=${T},v1=${bad}`, BODY, [CURRENT, NEXT], NOW)), JSON.stringify(bad.slice(0, 70)));
    assert.equal(check?.ok, false, JSON.stringify(bad.slice(0, 70)));
    assert.doesNotThrow(() => (check = verify(`t=${T},v1=${bad},v1=${good}`, BODY, [CURRENT, NEXT], NOW)));
    assert.equal(check?.ok, true, 'a well-formed v1 beside it still counts');
  }
});
