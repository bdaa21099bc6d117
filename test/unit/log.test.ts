import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logger, registerSecrets, setLogSink } from '../../lib/log.js';

test('log lines mask registered secrets, credential fields and legacy access_token query strings', () => {
  const lines: string[] = [];
  setLogSink((l) => lines.push(l));
  registerSecrets('super-secret-token-value');
  const log = logger({ requestId: 'r1' });
  log.info('failed', { error: 'HS said: bad token super-secret-token-value', authorization: 'Bearer x', url: '/users/x?access_token=abc&y=1' });
  const [line] = lines;
  assert.ok(line && !line.includes('super-secret-token-value') && !line.includes('Bearer x') && !line.includes('abc'), line);
  assert.equal(JSON.parse(line).requestId, 'r1');
});

test('deeply nested input never breaks a log line', () => {
  const lines: string[] = [];
  setLogSink((l) => lines.push(l));
  let deep: unknown = 'bottom';
  for (let i = 0; i < 50_000; i++) deep = { d: deep };
  logger().warn('odd input', { input: deep });
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).msg, 'odd input');
});
