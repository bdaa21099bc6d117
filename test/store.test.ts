/**
 * The store's own tests: the port on DynamoDB Local, and the one place that pins key layouts
 * and expiry (the use-case tests read state through the port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { testTable } from './support/dynamo.js';
import { dynamoStore, tableOf } from '../lib/store/index.js';
import { SCROLLBACK_TTL_S } from '../lib/store/scrollback.js';
import { TXN_TTL_S } from '../lib/store/transactions.js';

const table = await testTable();
const store = dynamoStore(table);
const item = async (pk: string, sk: string) => (await table.items()).find((i) => i.pk === pk && i.sk === sk);
const inDays = (expiresAt: number, days: number) => Math.abs(expiresAt - (Date.now() / 1000 + days * 86400)) < 120;

test('alias and room record: ALIAS#<alias>/ROOM and ROOM#<roomId>/MAPPING (kind alias)', async () => {
  assert.equal(await store.lockAlias('#irc_k:hs', 'me', 5000), true);
  assert.equal(await store.lockAlias('#irc_k:hs', 'you', 5000), false, 'a live lock holds');
  assert.equal((await item('ALIAS##irc_k:hs', 'ROOM'))?.state, 'creating');
  assert.equal(await store.markRoomReady({ kind: 'alias', alias: '#irc_k:hs', roomId: '!k:hs', remoteRoom: 'k' }, 'me', false), true);
  assert.deepEqual(await item('ALIAS##irc_k:hs', 'ROOM'), { pk: 'ALIAS##irc_k:hs', sk: 'ROOM', state: 'ready', roomId: '!k:hs', remoteRoom: 'k' });
  assert.deepEqual(await item('ROOM#!k:hs', 'MAPPING'), { pk: 'ROOM#!k:hs', sk: 'MAPPING', kind: 'alias', alias: '#irc_k:hs', remoteRoom: 'k' });
  assert.deepEqual([...(await store.getBridgedRooms(['!k:hs', '!none:hs'])).values()], [{ kind: 'alias', roomId: '!k:hs', alias: '#irc_k:hs', remoteRoom: 'k' }]);
});

test('rooms recorded before rooms had kinds (ROOM#<roomId>/ALIAS) are read as alias rooms and moved to the record, once', async () => {
  const t = tableOf(store)!;
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { pk: 'ROOM#!old:hs', sk: 'ALIAS', alias: '#irc_old:hs', remoteRoom: 'old' } }));
  const want = { kind: 'alias', roomId: '!old:hs', alias: '#irc_old:hs', remoteRoom: 'old' };
  // Two readers at once, as two Lambdas: both read it, one record results.
  const [a, b] = await Promise.all([store.getBridgedRooms(['!old:hs']), store.getBridgedRooms(['!old:hs', '!other:hs'])]);
  assert.deepEqual([...a.values(), ...b.values()], [want, want]);
  assert.equal(await item('ROOM#!old:hs', 'ALIAS'), undefined, 'the legacy item is gone');
  assert.deepEqual(await item('ROOM#!old:hs', 'MAPPING'), { pk: 'ROOM#!old:hs', sk: 'MAPPING', kind: 'alias', alias: '#irc_old:hs', remoteRoom: 'old' });
  assert.deepEqual([...(await store.getBridgedRooms(['!old:hs'])).values()], [want], 'read from the record now');
});

test('a record of a kind this version does not know is not carried', async () => {
  const t = tableOf(store)!;
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { pk: 'ROOM#!future:hs', sk: 'MAPPING', kind: 'portal' } }));
  assert.equal((await store.getBridgedRooms(['!future:hs'])).size, 0);
});

test('direct chats: DIRECT#<network user>/WITH#<Matrix user> is the lock, ROOM#<roomId>/MAPPING (kind direct) the record', async () => {
  const chat = { kind: 'direct', roomId: '!dm1:hs', matrixUser: '@alice:hs', remoteUser: 'Dave' } as const;
  assert.equal(await store.lockDirectChat('Dave', '@alice:hs', 'me', 5000), true);
  assert.equal(await store.lockDirectChat('Dave', '@alice:hs', 'you', 5000), false, 'a live lock holds');
  assert.equal(await store.lockDirectChat('Dave', '@bob:hs', 'you', 5000), true, 'another pair is another lock');
  assert.equal(await store.markDirectChatReady(chat, 'you'), false, 'only under our own lock');
  assert.equal(await store.markDirectChatReady(chat, 'me'), true);
  assert.deepEqual(await item('DIRECT#Dave', 'WITH#@alice:hs'), { pk: 'DIRECT#Dave', sk: 'WITH#@alice:hs', state: 'ready', roomId: '!dm1:hs' });
  assert.deepEqual(await item('ROOM#!dm1:hs', 'MAPPING'), { pk: 'ROOM#!dm1:hs', sk: 'MAPPING', kind: 'direct', matrixUser: '@alice:hs', remoteUser: 'Dave' });
  assert.deepEqual((await store.getBridgedRooms(['!dm1:hs'])).get('!dm1:hs'), chat);

  await store.releaseDirectChat('Dave', '@bob:hs', 'me');
  assert.equal((await store.getDirectChat('Dave', '@bob:hs'))?.state, 'creating', 'released by its owner only');
  await store.releaseDirectChat('Dave', '@bob:hs', 'you');
  assert.equal(await store.getDirectChat('Dave', '@bob:hs'), undefined);

  // A Matrix user opens another one: it becomes the pair's; ending the old one leaves the new one.
  const newer = { ...chat, roomId: '!dm2:hs' } as const;
  await store.recordDirectChat(newer);
  assert.equal((await store.getDirectChat('Dave', '@alice:hs'))?.roomId, '!dm2:hs');
  await store.endDirectChat(chat);
  assert.equal((await store.getDirectChat('Dave', '@alice:hs'))?.roomId, '!dm2:hs', 'the pair names the newer room: kept');
  assert.equal(await item('ROOM#!dm1:hs', 'MAPPING'), undefined, 'the old room is no longer bridged');
  await store.endDirectChat(newer);
  assert.equal(await store.getDirectChat('Dave', '@alice:hs'), undefined);
  assert.equal((await store.getBridgedRooms(['!dm2:hs'])).size, 0);

  // While the network opens one under a live lock, a Matrix-side record does not take the pair.
  assert.equal(await store.lockDirectChat('Dave', '@carol:hs', 'net', 5000), true);
  await store.recordDirectChat({ ...chat, matrixUser: '@carol:hs', roomId: '!dm3:hs' });
  assert.equal((await store.getDirectChat('Dave', '@carol:hs'))?.state, 'creating');
  assert.equal((await store.getBridgedRooms(['!dm3:hs'])).get('!dm3:hs')?.kind, 'direct', 'the room itself is recorded');
});

test('alias lookup: ALIAS#<alias>/LOOKUP, one asker, "absent" replacing the mark, queries counted, tidied a day after', async () => {
  const a = '#irc_look:hs' as const;
  const now = 1_000_000;
  assert.equal(await store.startAliasLookup(a, 'me', now, now + 15_000, false), true);
  assert.equal(await store.startAliasLookup(a, 'you', now + 1, now + 15_001, false), false, 'one asker at a time');
  assert.equal(await store.countAliasQuery(a, now + 10), 1);
  assert.equal(await store.countAliasQuery(a, now + 20), 2);
  assert.equal(await store.countAliasQuery(a, now + 15_001), undefined, 'an ask past its lease counts nothing');
  assert.deepEqual(await store.getAliasLookup(a), { state: 'asking', owner: 'me', until: now + 15_000, queries: 2 });
  await store.recordAliasAbsent(a, 'you', now + 3_600_000);
  assert.equal((await store.getAliasLookup(a))?.state, 'asking', 'only the owner answers');
  await store.recordAliasAbsent(a, 'me', now + 3_600_000);
  const raw = await item('ALIAS##irc_look:hs', 'LOOKUP');
  assert.deepEqual({ ...raw, expiresAt: 0 }, { pk: 'ALIAS##irc_look:hs', sk: 'LOOKUP', state: 'absent', until: now + 3_600_000, expiresAt: 0 });
  assert.equal(raw?.expiresAt, Math.ceil((now + 3_600_000) / 1000) + 86_400);
  assert.equal(await store.countAliasQuery(a, now + 30), undefined, 'no ask under way');
  assert.equal(await store.startAliasLookup(a, 'you', now + 60_000, now + 75_000, false), false, '"absent" holds');
  assert.equal(await store.startAliasLookup(a, 'you', now + 60_000, now + 75_000, true), true, 'unless told otherwise');
  await store.endAliasLookup(a, 'me');
  assert.equal((await store.getAliasLookup(a))?.state, 'asking', 'not ended by another');
  await store.endAliasLookup(a, 'you');
  assert.equal(await store.getAliasLookup(a), undefined);
});

test('forgetRoom: both mapping items go, the alias only while it names that room', async () => {
  await store.lockAlias('#irc_f:hs', 'me', 5000);
  await store.markRoomReady({ kind: 'alias', alias: '#irc_f:hs', roomId: '!f2:hs', remoteRoom: 'f' }, 'me', false);
  await store.forgetRoom({ kind: 'alias', alias: '#irc_f:hs', roomId: '!f1:hs', remoteRoom: 'f' });
  assert.equal((await store.getAlias('#irc_f:hs'))?.roomId, '!f2:hs', 'another room: kept');
  await store.forgetRoom({ kind: 'alias', alias: '#irc_f:hs', roomId: '!f2:hs', remoteRoom: 'f' });
  assert.equal(await store.getAlias('#irc_f:hs'), undefined);
  assert.equal(await item('ROOM#!f2:hs', 'MAPPING'), undefined);
});

test('virtual user: USER#<userId>/PROFILE', async () => {
  await store.putUser({ userId: '@irc_u:hs', displayName: 'U', registeredAt: 1 });
  assert.deepEqual(await item('USER#@irc_u:hs', 'PROFILE'), { pk: 'USER#@irc_u:hs', sk: 'PROFILE', displayName: 'U', registeredAt: 1 });
  assert.deepEqual(await store.getUser('@irc_u:hs'), { userId: '@irc_u:hs', displayName: 'U', avatarUrl: undefined, registeredAt: 1 });
});

test('transaction: TXN#<txnId>/TXN with its cursor as nextEvent, kept 7 days', async () => {
  const claim = await store.claimTransaction('t1', 'd1', 'me', Date.now() + 60_000);
  assert.deepEqual({ ...claim, claimedAt: 0 }, { kind: 'claimed', cursor: 0, reused: false, claimedAt: 0 });
  assert.equal(await store.recordProgress('t1', 'me', { cursor: 2, done: true, failed: [{ eventId: '$x', reason: 'HTTP 422' }] }), true);
  const raw = await item('TXN#t1', 'TXN');
  assert.equal(raw?.state, 'done');
  assert.equal(raw?.nextEvent, 2);
  assert.ok(inDays(raw?.expiresAt, TXN_TTL_S / 86400), 'expires after 7 days');
  assert.deepEqual(await store.getTransaction('t1'), { state: 'done', leaseUntil: 0, cursor: 2, failed: [{ eventId: '$x', reason: 'HTTP 422' }], digest: 'd1' });
  assert.deepEqual(await store.claimTransaction('t1', 'd1', 'you', Date.now() + 60_000), { kind: 'done' });
});

test('transaction: the same id with other events replaces the record, from the first event; one copy wins', async () => {
  await store.claimTransaction('t2', 'old', 'me', Date.now() + 60_000);
  await store.recordProgress('t2', 'me', { cursor: 1, done: false, failed: [{ eventId: '$o', reason: 'x' }] });
  // Ten copies of the new transaction at once: exactly one replaces it, the others find it busy.
  const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => store.claimTransaction('t2', 'new', `c${i}`, Date.now() + 60_000)));
  assert.deepEqual(claims.filter((c) => c.kind === 'claimed').map((c) => ({ ...c, claimedAt: 0 })), [{ kind: 'claimed', cursor: 0, reused: true, claimedAt: 0 }]);
  assert.equal(claims.filter((c) => c.kind === 'busy').length, 9);
  const now = await store.getTransaction('t2');
  assert.deepEqual([now?.digest, now?.cursor, now?.failed, now?.state], ['new', 0, [], 'running']);
  // A record made before digests existed counts as another transaction too.
  await table.doc.send(new PutCommand({ TableName: table.tableName, Item: { pk: 'TXN#t3', sk: 'TXN', state: 'done', nextEvent: 4 } }));
  assert.deepEqual({ ...(await store.claimTransaction('t3', 'any', 'me', Date.now() + 60_000)), claimedAt: 0 }, { kind: 'claimed', cursor: 0, reused: true, claimedAt: 0 });
});

test('scrollback: ALIAS#<alias>/SCROLLBACK#<zero-padded ts>#<id>, oldest first, kept 7 days, dropped by message', async () => {
  const m = (id: string, ts: number) => ({ id, room: 'k', sender: { id: 'Bob' }, msgtype: 'm.text', body: id, ts });
  await store.keepScrollback('#irc_s:hs', m('b', 20));
  await store.keepScrollback('#irc_s:hs', m('a', 3));
  const raw = await item('ALIAS##irc_s:hs', `SCROLLBACK#${'3'.padStart(15, '0')}#a`);
  assert.ok(raw, 'the sort key orders by time');
  assert.ok(inDays(raw.expiresAt, SCROLLBACK_TTL_S / 86400));
  assert.deepEqual((await store.listScrollback('#irc_s:hs')).map((x) => x.id), ['a', 'b']);
  await store.dropScrollback('#irc_s:hs', [m('a', 3)]);
  assert.deepEqual((await store.listScrollback('#irc_s:hs')).map((x) => x.id), ['b']);
});

test('scrollback past its expiry is not replayed, even before TTL deletes it', async () => {
  const m = { id: 'gone', room: 'k', sender: { id: 'Bob' }, msgtype: 'm.text', body: 'old', ts: 5 };
  await store.keepScrollback('#irc_x:hs', m);
  const sk = `SCROLLBACK#${'5'.padStart(15, '0')}#gone`;
  await table.doc.send(new PutCommand({ TableName: table.tableName, Item: { ...(await item('ALIAS##irc_x:hs', sk)), expiresAt: Math.floor(Date.now() / 1000) - 1 } }));
  assert.deepEqual(await store.listScrollback('#irc_x:hs'), []);
});

test('message mapping: NETMSG#<id>/EVENT, one item, kept 30 days by default, read both ways', async () => {
  const before = (await table.items()).length;
  await store.recordBridgedMessage({ networkId: 'irc-9', eventId: '$e9', roomId: '!r:hs', sender: '@irc_bob:hs' });
  assert.equal((await table.items()).length, before + 1, 'one write, one item: the other direction is the index');
  const raw = await item('NETMSG#irc-9', 'EVENT');
  assert.deepEqual([raw?.eventId, raw?.roomId], ['$e9', '!r:hs']);
  assert.ok(inDays(raw?.expiresAt, 30));
  assert.deepEqual(await store.getBridgedMessage('irc-9'), { networkId: 'irc-9', eventId: '$e9', roomId: '!r:hs', sender: '@irc_bob:hs' });
  assert.equal(await store.getBridgedMessage('irc-10'), undefined);
  // The index (byEvent) is eventually consistent: DynamoDB Local shows it at once.
  assert.deepEqual(await store.mappingOfEvent('$e9'), { networkId: 'irc-9', sender: '@irc_bob:hs' });
  assert.equal(await store.mappingOfEvent('$nothing'), undefined);
});

test('message mapping: the time it is kept comes from the store options (MESSAGE_MAPPING_DAYS)', async () => {
  const short = dynamoStore(table, { messageTtlS: 2 * 86_400 });
  await short.recordBridgedMessage({ networkId: 'irc-short', eventId: '$short', roomId: '!r:hs' });
  assert.ok(inDays((await item('NETMSG#irc-short', 'EVENT'))?.expiresAt, 2));
});

test('message mapping: an expired record is not used, even before TTL deletes it', async () => {
  await store.recordBridgedMessage({ networkId: 'irc-old', eventId: '$old', roomId: '!r:hs' });
  await table.doc.send(new PutCommand({ TableName: table.tableName, Item: { ...(await item('NETMSG#irc-old', 'EVENT')), expiresAt: Math.floor(Date.now() / 1000) - 1 } }));
  assert.equal(await store.getBridgedMessage('irc-old'), undefined);
});
