import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathId } from '../../lib/appservice/http.js';
import { MatrixError } from '../../lib/matrix/errors.js';

test('an ID is the rest of the path after its collection, decoded exactly once', () => {
  const cases: Array<[string, 'users' | 'rooms' | 'transactions', string]> = [
    // Synapse: `/` left as is, the rest quoted.
    ['/_matrix/app/v1/users/%40irc.freenode.net/carol%3Alocalhost', 'users', '@irc.freenode.net/carol:localhost'],
    ['/_matrix/app/v1/rooms/%23irc.freenode.net/%23matrix%3Alocalhost', 'rooms', '#irc.freenode.net/#matrix:localhost'],
    // Fully encoded: `%2F` is the same ID.
    ['/_matrix/app/v1/users/%40irc.freenode.net%2Fcarol%3Alocalhost', 'users', '@irc.freenode.net/carol:localhost'],
    ['/_matrix/app/v1/rooms/%23irc.freenode.net%2F%23matrix%3Alocalhost', 'rooms', '#irc.freenode.net/#matrix:localhost'],
    // `%` is legal in aliases: `%25` decodes once to `%`, and `%2525` to `%25`, never further.
    ['/_matrix/app/v1/rooms/%23irc_100%25%3Ahs', 'rooms', '#irc_100%:hs'],
    ['/_matrix/app/v1/rooms/%23irc_a%252Fb%3Ahs', 'rooms', '#irc_a%2Fb:hs'],
    ['/_matrix/app/v1/rooms/%23irc_%23%23x%3Ahs', 'rooms', '#irc_##x:hs'],
    // Non-ASCII, as UTF-8 percent-escapes and raw.
    ['/_matrix/app/v1/rooms/%23irc_caf%C3%A9%3Ahs', 'rooms', '#irc_café:hs'],
    ['/_matrix/app/v1/rooms/#irc_☃:hs', 'rooms', '#irc_☃:hs'],
    // Unescaped, as an older server or a hand-made request sends it.
    ['/_matrix/app/v1/users/@irc_bob:hs', 'users', '@irc_bob:hs'],
    // Legacy unprefixed paths.
    ['/users/%40irc.freenode.net/bob%3Ahs', 'users', '@irc.freenode.net/bob:hs'],
    ['/rooms/%23a/b/c%3Ahs', 'rooms', '#a/b/c:hs'],
    ['/_matrix/app/v1/transactions/42', 'transactions', '42'],
    ['/transactions/a%2Fb', 'transactions', 'a/b'],
  ];
  for (const [raw, kind, id] of cases) assert.equal(pathId(raw, kind), id, raw);
});

test('a path that is not validly percent-encoded, or carries no ID, is a 400 M_INVALID_PARAM', () => {
  for (const [raw, kind] of [
    ['/_matrix/app/v1/users/%40irc_bob%ZZ', 'users'],
    ['/_matrix/app/v1/users/%C0%AF', 'users'],
    ['/_matrix/app/v1/rooms/%23a%', 'rooms'],
    ['/_matrix/app/v1/users/', 'users'],
    ['/_matrix/app/v1/rooms/x', 'users'],
  ] as const) {
    assert.throws(
      () => pathId(raw, kind),
      (e: unknown) => e instanceof MatrixError && e.status === 400 && e.errcode === 'M_INVALID_PARAM',
      raw,
    );
  }
});
