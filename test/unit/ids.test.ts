import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRoomAlias, parseUserId, isRoomId } from '../../lib/matrix/ids.js';
import { escapeAliasLocalpart, escapeLocalpart, unescapeAliasLocalpart, unescapeLocalpart } from '../../lib/matrix/mapping.js';

test('user IDs: well-formed ones parse, malformed ones do not', () => {
  assert.deepEqual(parseUserId('@irc_bob:example.org'), { sigil: '@', localpart: 'irc_bob', serverName: 'example.org' });
  assert.ok(parseUserId('@a:[::1]:8448'));
  assert.ok(parseUserId('@a:localhost:8008'));
  for (const bad of ['irc_bob:example.org', '@irc_bob', '@:example.org', '@a b:example.org', '@a:exa mple.org', '#a:b', '@a:', `@${'a'.repeat(250)}:example.org`]) {
    assert.equal(parseUserId(bad), undefined, bad);
  }
});

test('room aliases: well-formed ones parse, malformed ones do not', () => {
  assert.deepEqual(parseRoomAlias('#irc_matrix:hs'), { sigil: '#', localpart: 'irc_matrix', serverName: 'hs' });
  for (const bad of ['irc_matrix:hs', '#irc_matrix', '#:hs', '@a:hs', '#a\u0000b:hs', `#${'a'.repeat(255)}:hs`]) {
    assert.equal(parseRoomAlias(bad), undefined, JSON.stringify(bad));
  }
  assert.ok(isRoomId('!abc:hs'));
  assert.ok(!isRoomId('abc'));
  assert.ok(!isRoomId(42));
});

test('3P name mapping follows the spec example and round-trips', () => {
  assert.equal(escapeLocalpart('Bob'), '_bob');
  assert.equal(escapeLocalpart('a_b'), 'a__b');
  assert.equal(escapeLocalpart('#'), '=23');
  assert.equal(escapeLocalpart('á'), '=c3=a1');
  assert.equal(escapeLocalpart('x=y'), 'x=3dy');
  for (const name of ['Bob', 'bob', 'a_b', '_', '__', 'Hello World', 'ünïcödé ☃', 'a/b:c', '=3d', 'UPPER_lower', '😀', 'a+b', 'tab\there']) {
    const local = escapeLocalpart(name);
    assert.match(local, /^[a-z0-9._=\-/]+$/, name);
    assert.equal(unescapeLocalpart(local), name, name);
  }
});

test('3P name mapping refuses what it could not have produced', () => {
  for (const bad of ['_', '_1', '=', '=4', '=zz', 'A', 'a b', '=ff', '=c3']) assert.equal(unescapeLocalpart(bad), undefined, bad);
});

test("alias mapping keeps a network room's own spelling, escaping only what an alias cannot show", () => {
  assert.equal(escapeAliasLocalpart('#matrix'), '#matrix');
  assert.equal(escapeAliasLocalpart('#Matrix_Dev'), '#Matrix_Dev');
  assert.equal(escapeAliasLocalpart('#a/b'), '#a/b');
  assert.equal(escapeAliasLocalpart('100%'), '100%');
  assert.equal(escapeAliasLocalpart('#café'), '#café');
  assert.equal(escapeAliasLocalpart('a:b'), 'a=3ab');
  assert.equal(escapeAliasLocalpart('a=b'), 'a=3db');
  assert.equal(escapeAliasLocalpart('a b'), 'a=20b');
  assert.equal(escapeAliasLocalpart('tab\there'), 'tab=09here');
  assert.equal(escapeAliasLocalpart('nb\u00a0sp'), 'nb=c2=a0sp');
  assert.equal(escapeAliasLocalpart('zw\u200bj'), 'zw=e2=80=8bj');
  for (const name of ['#matrix', '#Matrix', '[m]atrix', 'a:b', '=3a', 'a=b', 'Hello World', 'ünïcödé ☃', '😀', '#a/b%2F', 'x\u0000y']) {
    const local = escapeAliasLocalpart(name);
    assert.doesNotMatch(local, /[:\s\x00]/, name);
    assert.equal(unescapeAliasLocalpart(local), name, name);
  }
});

test('alias mapping refuses what it could not have produced', () => {
  for (const bad of ['=', '=4', '=zz', 'a b', '=3A', '=ff', '=c3', 'a\ud800b', '=61']) assert.equal(unescapeAliasLocalpart(bad), undefined, JSON.stringify(bad));
});
