import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WarmCache } from '../../lib/bridge/warm-cache.js';
import { ROOM_CACHE_MS } from '../../lib/bridge/runtime.js';

test('a warm cache forgets after its time, so a removed mapping is not used forever', () => {
  let now = 1_000;
  const cache = new WarmCache<string, string>(ROOM_CACHE_MS, () => now);
  cache.set('!room:hs', 'bridged');
  assert.equal(cache.get('!room:hs'), 'bridged');
  now += ROOM_CACHE_MS - 1;
  assert.ok(cache.has('!room:hs'));
  now += 1;
  assert.equal(cache.get('!room:hs'), undefined, 'read afresh from the store after that');
  assert.ok(ROOM_CACHE_MS <= 10 * 60_000, 'minutes, not hours');
  cache.set('a', 'x').set('b', 'y');
  cache.delete('a');
  assert.equal(cache.get('a'), undefined);
  cache.clear();
  assert.equal(cache.get('b'), undefined);
});
