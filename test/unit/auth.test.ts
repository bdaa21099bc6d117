import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHsToken } from '../../lib/appservice/auth.js';
import { MatrixError } from '../../lib/matrix/errors.js';

const tokens = ['current-token', 'next-token'];
const errcodeOf = (fn: () => void) => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof MatrixError);
    return `${e.status} ${e.errcode}`;
  }
};

test('Bearer header and legacy access_token both authenticate', () => {
  assert.equal(errcodeOf(() => checkHsToken({ headers: { authorization: 'Bearer current-token' } }, tokens)), 'ok');
  assert.equal(errcodeOf(() => checkHsToken({ queryStringParameters: { access_token: 'current-token' } }, tokens)), 'ok');
});

test('either of two configured tokens works, so a token can be rotated', () => {
  assert.equal(errcodeOf(() => checkHsToken({ headers: { authorization: 'Bearer next-token' } }, tokens)), 'ok');
});

test('no token is 401 M_UNAUTHORIZED, a wrong one 403 M_FORBIDDEN', () => {
  assert.equal(errcodeOf(() => checkHsToken({ headers: {} }, tokens)), '401 M_UNAUTHORIZED');
  assert.equal(errcodeOf(() => checkHsToken({ headers: { authorization: 'Basic abc' } }, tokens)), '401 M_UNAUTHORIZED');
  assert.equal(errcodeOf(() => checkHsToken({ headers: { authorization: 'Bearer wrong' } }, tokens)), '403 M_FORBIDDEN');
  assert.equal(errcodeOf(() => checkHsToken({ headers: { authorization: 'Bearer current-tokenX' } }, tokens)), '403 M_FORBIDDEN');
  assert.equal(errcodeOf(() => checkHsToken({ queryStringParameters: { access_token: '' } }, tokens)), '401 M_UNAUTHORIZED');
});

test('header and query token must agree when both are sent', () => {
  const both = (q: string) => ({ headers: { authorization: 'Bearer current-token' }, queryStringParameters: { access_token: q } });
  assert.equal(errcodeOf(() => checkHsToken(both('current-token'), tokens)), 'ok');
  assert.equal(errcodeOf(() => checkHsToken(both('next-token'), tokens)), '403 M_FORBIDDEN');
});
