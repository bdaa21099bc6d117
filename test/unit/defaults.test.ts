import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { DEFAULTS, DELIVERY, MESSAGES, SERVICE, queueNamesFor } from '../../lib/defaults.js';
import { parseConfig } from '../../lib/config.js';

const sls = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'));
/** CloudFormation's short forms (!GetAtt, !Sub, ...) read as plain values: only the literal attributes matter here. */
const cfnTags = ['Ref', 'GetAtt', 'Sub', 'If', 'Equals', 'Not', 'Join', 'Select', 'Split', 'FindInMap', 'ImportValue', 'Base64', 'GetAZs', 'Condition'].flatMap((name) => [
  { tag: `!${name}`, resolve: (v: string) => ({ [name]: v }) },
  { tag: `!${name}`, collection: 'seq', resolve: (v: unknown) => v },
  { tag: `!${name}`, collection: 'map', resolve: (v: unknown) => v },
]);
const queueYml = parse(readFileSync(new URL('../../infra/queue.yml', import.meta.url), 'utf8'), { customTags: cfnTags as never });
/** The fallback at the end of a serverless variable: `${param:x, env:X, 'default'}` → default. */
const fallback = (v: string) => /,\s*'?([^',}]*)'?\s*}$/.exec(v)?.[1];

test('serverless.yml names the service and defaults every setting as lib/defaults.ts does', () => {
  assert.equal(sls.service, SERVICE);
  const env = sls.provider.environment;
  for (const name of ['HOMESERVER_URL', 'HOMESERVER_NAME', 'AS_ID', 'SENDER_LOCALPART', 'USER_PREFIX', 'NETWORK', 'ALIAS_QUERY_WAIT_MS', 'PROTOCOL', 'PROTOCOL_USER_FIELD', 'PROTOCOL_LOCATION_FIELD'] as const) {
    assert.equal(fallback(env[name]), DEFAULTS[name], name);
  }
  assert.equal(fallback(env.DEAD_LETTER_AFTER_HOURS), String(DELIVERY.DEAD_LETTER_AFTER_HOURS));
  assert.equal(fallback(env.DEAD_LETTER_NOTICES), String(DELIVERY.DEAD_LETTER_NOTICES));
  assert.equal(fallback(env.MESSAGE_MAPPING_DAYS), String(MESSAGES.MAPPING_DAYS));
  assert.equal(fallback(env.MEDIA_LINK_HOURS), String(MESSAGES.MEDIA_LINK_HOURS));
  assert.equal(fallback(env.PUBLISH_ROOMS), String(DEFAULTS.PUBLISH_ROOMS));
  assert.equal(env.MAX_PARKED_EVENTS_PER_ROOM, undefined);
  // No icon unless given; the network's name is AS_ID's value unless given.
  assert.equal(fallback(env.PROTOCOL_ICON), '');
  assert.match(env.PROTOCOL_NETWORK_NAME, /, self:provider\.environment\.AS_ID\}$/);
  assert.equal(fallback(sls.custom['serverless-offline'].host), DEFAULTS.LISTEN_HOST);
  assert.equal(fallback(String(sls.custom['serverless-offline'].httpPort)), DEFAULTS.PORT);
});

test('config.ts falls back on the same defaults', () => {
  const c = parseConfig({
    HOMESERVER_URL: 'http://hs',
    HOMESERVER_NAME: 'hs',
    AS_TOKEN: 'a',
    HS_TOKEN: 'h',
    TABLE_NAME: 't',
    QUEUE_URL: 'http://sqs/q.fifo',
    DEAD_LETTER_QUEUE_URL: 'http://sqs/d.fifo',
  });
  assert.equal(c.asId, DEFAULTS.AS_ID);
  assert.equal(c.senderLocalpart, DEFAULTS.SENDER_LOCALPART);
  assert.equal(c.userPrefix, DEFAULTS.USER_PREFIX);
  assert.equal(c.network.kind, DEFAULTS.NETWORK);
  assert.equal(c.delivery.deadLetterAfterHours, DELIVERY.DEAD_LETTER_AFTER_HOURS);
  assert.equal(c.delivery.deadLetterNotices, DELIVERY.DEAD_LETTER_NOTICES);
  assert.deepEqual(c.thirdParty, {
    protocol: DEFAULTS.PROTOCOL,
    userField: DEFAULTS.PROTOCOL_USER_FIELD,
    locationField: DEFAULTS.PROTOCOL_LOCATION_FIELD,
    icon: '',
    networkName: DEFAULTS.AS_ID,
    networkId: DEFAULTS.PROTOCOL,
    publishRooms: DEFAULTS.PUBLISH_ROOMS,
  });
});

test("serverless.yml's deliver event source defaults to lib/defaults.ts DELIVERY", () => {
  const events = sls.functions.deliver.events as Array<Record<string, any>>;
  const sqs = events.find((e) => e.sqs)?.sqs;
  assert.ok(sqs, 'the deliver function has an sqs event');
  assert.equal(fallback(String(sqs.batchSize)), String(DELIVERY.BATCH_SIZE));
  assert.equal(fallback(String(sqs.maximumConcurrency)), String(DELIVERY.MAX_CONCURRENCY));
  // Its reserved concurrency (when reserved at all) follows the event source's maximum concurrency.
  const reserved = sls.functions.deliver.reservedConcurrency['Fn::If'][1] as string;
  assert.match(reserved, /^\$\{param:deliverReservedConcurrency, param:deliverMaxConcurrency, /);
  assert.equal(fallback(reserved), String(DELIVERY.MAX_CONCURRENCY));
});

test('infra/queue.yml names the queues as queueNamesFor does', () => {
  const name = (id: string) => {
    const n = queueYml.Resources[id].Properties.QueueName as string;
    assert.equal(typeof n, 'string', `${id} has a literal QueueName`);
    return n.replaceAll('${self:service}', SERVICE).replaceAll('${sls:stage}', 'x');
  };
  assert.deepEqual({ queue: name('DeliveryQueue'), deadLetters: name('DeadLetterQueue') }, queueNamesFor('x'));
});
