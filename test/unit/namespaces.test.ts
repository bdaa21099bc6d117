import { test } from 'node:test';
import assert from 'node:assert/strict';
import { namespaces } from '../../lib/matrix/namespaces.js';

const ns = namespaces({ serverName: 'example.org', userPrefix: 'irc_', aliasPrefix: 'irc_', senderLocalpart: 'ircbot' });

test('user namespace: ours, and the bot, but nobody else', () => {
  assert.ok(ns.isVirtualUser('@irc_bob:example.org'));
  assert.ok(!ns.isVirtualUser('@bob:example.org'));
  assert.ok(!ns.isVirtualUser('@irc_bob:example.org.evil'));
  assert.ok(!ns.isVirtualUser('@irc_bob:exampleXorg'), 'the dot in the server name is literal');
  assert.ok(ns.isOurs('@ircbot:example.org'));
  assert.ok(!ns.isVirtualUser('@ircbot:example.org'));
  assert.equal(ns.botUserId, '@ircbot:example.org');
});

test('3P IDs map into the namespace and back', () => {
  assert.equal(ns.userIdFor('Bob'), '@irc__bob:example.org');
  assert.equal(ns.remoteUserOf('@irc__bob:example.org'), 'Bob');
  assert.equal(ns.aliasFor('matrix'), '#irc_matrix:example.org');
  assert.equal(ns.remoteRoomOf('#irc_matrix:example.org'), 'matrix');
  assert.equal(ns.remoteUserOf('@bob:example.org'), undefined);
  assert.equal(ns.remoteUserOf('@irc_:example.org'), undefined, 'empty remote name');
  assert.equal(ns.remoteUserOf('@irc_=zz:example.org'), undefined, 'not a mapping we make');
  assert.equal(ns.remoteRoomOf('#other:example.org'), undefined);
});

test('a name too long for a Matrix ID is refused clearly', () => {
  assert.throws(() => ns.userIdFor('x'.repeat(300)), RangeError);
  assert.throws(() => ns.aliasFor('☃'.repeat(90)), /at most 255/);
});

test('registration regexes match exactly what the checks accept', () => {
  const re = new RegExp(`^${ns.userRegex}$`);
  assert.ok(re.test('@irc_anything:example.org'));
  assert.ok(!re.test('@ircanything:example.org'));
  assert.equal(ns.aliasRegex, '#irc_.*:example\\.org');
});

test("the seed's names: a prefix with /, nicks with capitals and brackets, a room named with #", () => {
  const seed = namespaces({ serverName: 'localhost', userPrefix: 'irc.freenode.net/', aliasPrefix: 'irc.freenode.net/', senderLocalpart: 'ircbot' });
  assert.equal(seed.userIdFor('Bob'), '@irc.freenode.net/_bob:localhost');
  assert.equal(seed.remoteUserOf('@irc.freenode.net/_bob:localhost'), 'Bob');
  assert.equal(seed.userIdFor('[m]atrix'), '@irc.freenode.net/=5bm=5datrix:localhost');
  assert.equal(seed.remoteUserOf('@irc.freenode.net/=5bm=5datrix:localhost'), '[m]atrix');
  assert.equal(seed.aliasFor('#matrix'), '#irc.freenode.net/#matrix:localhost');
  assert.equal(seed.remoteRoomOf('#irc.freenode.net/#matrix:localhost'), '#matrix');
  assert.ok(seed.isOurAlias('#irc.freenode.net/#matrix:localhost'));
  assert.ok(new RegExp(`^${seed.userRegex}$`).test('@irc.freenode.net/_bob:localhost'));
  assert.ok(!new RegExp(`^${seed.userRegex}$`).test('@ircXfreenode.net/_bob:localhost'), 'the dots are literal');
  assert.equal(seed.remoteUserOf('@irc.freenode.net/Bob:localhost'), undefined, 'upper case is not a localpart we make');
});
