/**
 * The deployed artifact: what `npm run package` zips is what these tests run. One packaging (for a
 * stage of this file's own, into a temporary folder: test/support/artifact.ts), each function's zip
 * unzipped, and each invocation a fresh Node 22 process that loads the handler as Lambda's
 * nodejs22.x runtime does: `import()` of the .mjs from the task root, `handler(event, context)`,
 * with the function's environment from the packaged template. What the runtime provides (the SDK
 * packages kept out of the bundles: @aws-sdk/client-ssm) resolves from a runtime folder outside
 * the zip, as on Lambda; nothing else of the project's node_modules is reachable.
 *
 * Around them, local stand-ins for what the deployed functions talk to: DynamoDB Local with the
 * stage's table, the local SQS server with the stage's two queues, Parameter Store holding the
 * stage's secrets (the functions read them at cold start, as deployed, through the runtime's SSM
 * client), a fake homeserver and a fake webhook network. The SDK clients reach them through the
 * SDK's own endpoint variables (AWS_ENDPOINT_URL_<SERVICE>), so the code runs the path it runs on
 * AWS: no DYNAMODB_ENDPOINT or SQS_ENDPOINT, the role's credentials from the environment.
 *
 * Nothing here is timed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import {
  ROOT,
  assertNoNodeModulesAbove,
  bareImports,
  invokeFunction,
  lambdaEnvironment,
  makeRuntime,
  packageOf,
  packageService,
  readZip,
  scratch,
  startFakeSsm,
} from './support/artifact.js';
import type { Invocation, PackagedFunction } from './support/artifact.js';
import { dynamoEndpoint } from './support/dynamo.js';
import { startFakeHs, synapseQueryPath } from './support/fake-hs.js';
import { startFakeNetwork } from './support/fake-network.js';
import { apiGatewayEvent } from './support/lambda.js';
import type { Invoke } from './support/lambda.js';
import { queueNamesFor, tableNameFor } from '../lib/defaults.js';
import { mediaLink } from '../lib/bridge/media.js';
import { startLocalQueues } from '../lib/local/queue.js';
import { sqsEventSource } from '../lib/local/sqs-event-source.js';
import { createLocalTable, localDynamoClient } from '../lib/local/table.js';
import { createTable } from '../lib/store/client.js';
import { dynamoStore } from '../lib/store/index.js';
import type { RoomAlias, UserId } from '../lib/matrix/ids.js';

const STAGE = `artifact${process.pid}`;
const SERVER = 'example.org';
const AS_TOKEN = 'as-token-of-the-artifact-test-0123';
const HS_TOKEN = 'hs-token-of-the-artifact-test-4567';
const ALICE = '@alice:example.org';
/** What the HTTP API's URL (AS_URL's fallback, `Fn::GetAtt [HttpApi, ApiEndpoint]`) stands for here: the media links' base, never fetched. */
const API_URL = 'https://artifact-api.example';
/** The issue's budget for one bundle. */
const MAX_BUNDLE_BYTES = 350 * 1024;
/**
 * networkInbound alone sanitises the network's HTML (lib/bridge/sanitize.ts: sanitize-html with
 * htmlparser2 and its entity tables, ~105 KB once postcss is left out); no other bundle has it.
 */
const BUDGET: Record<string, number> = { networkInbound: 400 * 1024 };

const work = scratch('artifact-test-');
after(() => work.remove());
// The runtime folder must be the only place outside a zip where a bundle finds packages.
assertNoNodeModulesAbove(work.dir);

// The fake network's and homeserver's addresses go into the package, which takes a while: those
// two first, then the packaging, and the rest meanwhile.
const hs = await startFakeHs({ asToken: AS_TOKEN, serverName: SERVER, userPrefix: 'irc_', senderLocalpart: 'ircbot', requireInhibitLogin: true });
after(() => hs.close());
const network = await startFakeNetwork();
after(() => network.close());
// Packaged as an operator deploys a webhook network: its stage, homeserver and network as parameters.
const packaging = packageService(join(work.dir, 'build'), {
  stage: STAGE,
  params: { homeserverUrl: hs.url, homeserverName: SERVER, network: 'webhook', networkUrl: network.url },
});
packaging.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile

// ------------------------------------------------------------------------------ the rest of what the functions talk to
const ssmPrefix = `/matrix-appservice-lambda/${STAGE}`;
const ssm = await startFakeSsm({ [`${ssmPrefix}/as_token`]: AS_TOKEN, [`${ssmPrefix}/hs_token`]: HS_TOKEN, [`${ssmPrefix}/network_secret`]: network.secret });
after(() => ssm.close());
const queues = await startLocalQueues({ stage: STAGE });
after(() => queues.stop());
const dynamo = await dynamoEndpoint();
const tableName = tableNameFor(STAGE);
await createLocalTable(dynamo, tableName);
const tableClient = localDynamoClient(dynamo);
after(async () => {
  await tableClient.send(new DeleteTableCommand({ TableName: tableName })).catch(() => undefined);
  tableClient.destroy();
});
const store = dynamoStore(createTable({ tableName, endpoint: dynamo, client: tableClient }));

// ------------------------------------------------------------------------------ the artifact and the runtime
const packaged = await packaging;
const runtime = makeRuntime(join(work.dir, 'runtime'));
const fns = packaged.functions;
const fn = (name: string): PackagedFunction => {
  const f = fns[name];
  assert.ok(f, `the package has ${name}: ${Object.keys(fns).join(', ')}`);
  return f;
};

/** The deployed environment: the queues' Refs are the local queues; the SDK's endpoints the local servers. */
const envOf = (f: PackagedFunction) =>
  lambdaEnvironment(
    f,
    runtime,
    {
      [JSON.stringify({ Ref: 'DeliveryQueue' })]: queues.queueUrl,
      [JSON.stringify({ Ref: 'DeadLetterQueue' })]: queues.deadLetterQueueUrl,
      [JSON.stringify({ 'Fn::GetAtt': ['HttpApi', 'ApiEndpoint'] })]: API_URL,
    },
    { AWS_ENDPOINT_URL_DYNAMODB: dynamo, AWS_ENDPOINT_URL_SQS: queues.endpoint, AWS_ENDPOINT_URL_SSM: ssm.url },
  );

const invoke = (name: string, event: unknown) => invokeFunction(runtime, fn(name), envOf(fn(name)), event);
const valueOf = (r: Invocation) => {
  assert.ok(r.ok, `the invocation failed (${r.ok ? '' : `${r.phase}: ${r.errorType}: ${r.errorMessage}`}):\n${r.logs}`);
  return r.value;
};
/** Through API Gateway (HTTP API, payload 2.0) to a function: its status and parsed body. */
async function http(name: string, req: Invoke): Promise<{ status: number; body: any; logs: string }> {
  const r = await invoke(name, apiGatewayEvent(req));
  const v = valueOf(r);
  return { status: v.statusCode, body: v.body ? JSON.parse(v.body) : undefined, logs: r.logs };
}
const asHs = { authorization: `Bearer ${HS_TOKEN}` };

test('the package: the stage this file made, every zip holding its bundle alone, within the size budget', () => {
  const p = packaged.template.Resources;
  assert.equal(p.StateTable?.Properties.TableName, tableName);
  assert.equal(p.DeliveryQueue?.Properties.QueueName, queueNamesFor(STAGE).queue);
  assert.equal(p.DeadLetterQueue?.Properties.QueueName, queueNamesFor(STAGE).deadLetters);
  for (const name of ['userQuery', 'roomQuery', 'push', 'ping', 'thirdParty', 'networkInbound', 'networkMediaUpload', 'networkMediaDownload', 'deliver', 'unrecognized']) fn(name);
  // Every bundle over the budget, named at the end (the other checks still run for every function).
  const overBudget: string[] = [];
  for (const f of Object.values(fns)) {
    assert.equal(f.properties.Runtime, 'nodejs22.x', f.name);
    const entries = [...readZip(readFileSync(f.zip)).keys()].sort();
    const file = f.handler.slice(0, f.handler.lastIndexOf('.'));
    assert.deepEqual(entries, [`${file}.mjs`, `${file}.mjs.map`], `${f.name}.zip holds its bundle and source map only`);
    if (f.bytes > (BUDGET[f.name] ?? MAX_BUNDLE_BYTES)) overBudget.push(`${f.name}: ${(f.bytes / 1024).toFixed(1)} KB`);
    // The reader the tests fall back on without `unzip` gives what `unzip` gave.
    assert.deepEqual(readZip(readFileSync(f.zip)).get(`${file}.mjs`), readFileSync(f.bundle), f.name);
    // The SDK's default credential chain is not carried (serverless.yml's esbuild alias,
    // lib/aws-credentials.ts): neither its SSO link nor the STS client it loads.
    const code = readFileSync(f.bundle, 'utf8');
    for (const marker of ['defaultProvider::fromSSO', 'AWSSecurityTokenService']) assert.ok(!code.includes(marker), `${f.name} carries ${marker}`);
  }
  assert.deepEqual(overBudget, [], `bundles over ${MAX_BUNDLE_BYTES / 1024} KB`);
});

test('each bundle imports nothing but Node built-ins and what the runtime provides, and loads there', async () => {
  assert.ok(runtime.packages.has('@aws-sdk/client-ssm'), 'the runtime provides the SSM client');
  for (const f of Object.values(fns)) {
    const imports = bareImports(readFileSync(f.bundle, 'utf8'));
    const foreign = imports.filter((s) => !runtime.packages.has(packageOf(s)));
    assert.deepEqual(foreign, [], `${f.name} imports packages that are neither in its zip nor in the runtime`);
  }
  // Two at a time (two cores): a cold start each, stopping once the handler is loaded.
  const all = Object.values(fns);
  for (let i = 0; i < all.length; i += 2) {
    await Promise.all(
      all.slice(i, i + 2).map(async (f) => {
        const loaded = await invokeFunction(runtime, f, envOf(f), null, { init: true });
        assert.equal(loaded.ok, true, `${f.name} does not load: ${JSON.stringify(loaded)}`);
      }),
    );
  }
});

test('ping: the HS token from Parameter Store, read with the runtime SSM client', async () => {
  const res = await http('ping', { method: 'POST', path: '/_matrix/app/v1/ping', body: { transaction_id: 'artifact-ping-1' }, headers: asHs });
  assert.equal(res.status, 200, res.logs);
  assert.deepEqual(res.body, {});
  // The cold start read this stage's secrets in one signed GetParameters call.
  const reads = ssm.calls.filter((c) => c.target === 'AmazonSSM.GetParameters');
  assert.ok(reads.length >= 1, 'GetParameters was called');
  const last = reads.at(-1)!;
  assert.equal(last.signed, true, 'signed with the role credentials');
  assert.equal(last.body.WithDecryption, true);
  assert.deepEqual([...last.body.Names].sort(), [`${ssmPrefix}/as_token`, `${ssmPrefix}/hs_token`, `${ssmPrefix}/network_secret`].sort());

  const wrong = await http('ping', { method: 'POST', path: '/_matrix/app/v1/ping', body: {}, headers: { authorization: 'Bearer not-the-token' } });
  assert.equal(wrong.status, 403, wrong.logs);
});

test('a user query: the network knows the user, the homeserver has it registered, DynamoDB records it', async () => {
  network.users.set('bob', { displayName: 'Bob B.' });
  const userId = `@irc_bob:${SERVER}`;
  const res = await http('userQuery', { method: 'GET', path: synapseQueryPath('users', userId), headers: asHs });
  assert.equal(res.status, 200, res.logs);
  assert.deepEqual(res.body, {});
  assert.ok(network.received.some((r) => r.method === 'GET' && r.path === '/users/bob' && r.status === 200), 'asked the network about bob');
  const register = hs.calls.find((c) => c.method === 'POST' && c.path === '/_matrix/client/v3/register');
  assert.equal(register?.status, 200);
  assert.equal(register.body.username, 'irc_bob');
  assert.equal(register.body.inhibit_login, true);
  assert.equal(hs.users.get(userId)?.displayName, 'Bob B.');
  assert.equal((await store.getUser(userId as UserId))?.userId, userId);
  assert.deepEqual(hs.specErrors, []);
});

let roomId = '';
test('a room query bridges a room; a transaction puts its message on the delivery queue', async () => {
  network.rooms.set('chan', { name: '#chan' });
  const alias = `#irc_chan:${SERVER}`;
  const res = await http('roomQuery', { method: 'GET', path: synapseQueryPath('rooms', alias), headers: asHs });
  assert.equal(res.status, 200, res.logs);
  roomId = hs.aliases.get(alias) ?? '';
  assert.ok(roomId, 'the homeserver has the alias');
  assert.equal((await store.getAlias(alias as RoomAlias))?.roomId, roomId);
  hs.rooms.get(roomId)!.members.add(ALICE);

  const event = {
    event_id: '$artifact-event-1',
    room_id: roomId,
    sender: ALICE,
    type: 'm.room.message',
    origin_server_ts: Date.now(),
    content: { msgtype: 'm.text', body: 'hello from the deployed bundle' },
    unsigned: { age: 1 },
  };
  const push = await http('push', { method: 'PUT', path: '/_matrix/app/v1/transactions/1', body: { events: [event] }, headers: asHs });
  assert.equal(push.status, 200, push.logs);
  assert.deepEqual(push.body, {});
  const attrs = (await queues.client.send(new GetQueueAttributesCommand({ QueueUrl: queues.queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes;
  assert.equal(attrs?.ApproximateNumberOfMessages, '1', 'one message on the delivery queue');
  assert.ok(await store.getTransaction('1'), 'the transaction is in the ledger');
  assert.equal(network.accepted.length, 0, 'nothing sent by the push itself');
  assert.deepEqual(hs.specErrors, []);
});

test('a delivery: the deliver bundle, on an SQS event made from the queue, sends the message to the network', async () => {
  assert.ok(roomId, 'the previous test bridged a room');
  const events: SQSEvent[] = [];
  const source = sqsEventSource({
    client: queues.client,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    batchSize: 10,
    concurrency: 1,
    onError: (e) => assert.fail(e as Error),
    invoke: async (event) => {
      events.push(event);
      return valueOf(await invoke('deliver', event)) as SQSBatchResponse;
    },
  });
  assert.equal(await source.pollUntilEmpty(), 1);

  // What the event source handed the function: the queued message, as Lambda's SQS events carry it.
  const [record, ...more] = events.flatMap((e) => e.Records);
  assert.equal(more.length, 0);
  assert.equal(record!.eventSource, 'aws:sqs');
  assert.equal(record!.eventSourceARN, queues.queueArn);
  assert.equal(record!.attributes.MessageGroupId, roomId);
  assert.equal(record!.attributes.MessageDeduplicationId, '$artifact-event-1');
  assert.equal(record!.attributes.ApproximateReceiveCount, '1');
  assert.equal(record!.messageAttributes.eventId?.stringValue, '$artifact-event-1');
  assert.equal(record!.messageAttributes.sender?.stringValue, ALICE);

  const [sent, ...others] = network.accepted;
  assert.equal(others.length, 0);
  assert.equal(sent.room, 'chan');
  assert.equal(sent.body, 'hello from the deployed bundle');
  assert.equal(sent.id, '$artifact-event-1');
  // Queued as push writes a delivery: its kind, and the body the network is sent.
  assert.deepEqual(JSON.parse(record!.body), { kind: 'messages', body: sent }, 'the network got the queued body');
  const post = network.received.find((r) => r.method === 'POST' && r.path === '/messages');
  assert.equal(post?.idempotencyKey, '$artifact-event-1');
  const attrs = (
    await queues.client.send(
      new GetQueueAttributesCommand({ QueueUrl: queues.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    )
  ).Attributes;
  assert.equal(attrs?.ApproximateNumberOfMessages, '0');
  assert.equal(attrs?.ApproximateNumberOfMessagesNotVisible, '0', 'the delivered message is off the queue');
});

test('media: the network uploads through the upload bundle, and fetches it back through a signed link from the download bundle, with no table or queue', async () => {
  // Upload: the bytes as they are, signed, as a network user (registered as its virtual user).
  const bytes = Buffer.from('GIF89a the artifact test medium', 'utf8');
  const up = await invoke('networkMediaUpload', apiGatewayEvent({
    method: 'POST',
    path: '/network/media',
    query: { sender: 'carol', filename: 'carol.gif' },
    rawBody: bytes,
    headers: { 'content-type': 'image/gif', 'x-signature': network.signBytes(bytes) },
  }));
  const upValue = valueOf(up);
  assert.equal(upValue.statusCode, 200, up.logs);
  const { contentUri } = JSON.parse(upValue.body) as { contentUri: string };
  const [, server, mediaId] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(contentUri) ?? [];
  assert.equal(server, SERVER, contentUri);
  const stored = hs.media.get(mediaId!);
  assert.deepEqual(stored?.bytes, bytes, 'the homeserver has the bytes');
  assert.equal(stored?.uploader, `@irc_carol:${SERVER}`, 'uploaded as the network user');

  // Download, through the link the AS gives the network: its URL is the API's (AS_URL's fallback).
  // The function never needs the table or the queues (it has no IAM grant for them): here they are unreachable.
  const download = fn('networkMediaDownload');
  const env: Record<string, string> = { ...envOf(download), AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9' };
  const link = new URL(mediaLink({ asUrl: env.AS_URL, secret: network.secret, linkHours: Number(env.MEDIA_LINK_HOURS) }, server!, mediaId!, Date.now())!);
  assert.equal(link.origin, API_URL);
  const get = (query: Record<string, string>) =>
    invokeFunction(runtime, download, env, apiGatewayEvent({ method: 'GET', path: link.pathname, query }));
  const got = await get(Object.fromEntries(link.searchParams));
  const v = valueOf(got);
  assert.equal(v.statusCode, 200, got.logs);
  assert.equal(v.isBase64Encoded, true);
  assert.deepEqual(Buffer.from(v.body, 'base64'), bytes, 'the bytes the network uploaded');
  assert.match(String(v.headers['content-type']), /^image\/gif/);
  // A link whose signature does not match is refused, before the homeserver is asked.
  const before = hs.calls.length;
  const forged = valueOf(await get({ ...Object.fromEntries(link.searchParams), sig: '0'.repeat(64) }));
  assert.equal(forged.statusCode, 403);
  assert.equal(JSON.parse(forged.body).errcode, 'M_FORBIDDEN');
  assert.equal(hs.calls.length, before, 'no homeserver call for a forged link');
  assert.deepEqual(hs.specErrors, []);
});

test('third-party lookups: the protocol and a search of the webhook network, with no table, queue or homeserver', async () => {
  const f = fn('thirdParty');
  // The function has no IAM grant for the table or the queues, and never calls the homeserver: here all three are unreachable.
  const env: Record<string, string> = { ...envOf(f), AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9', HOMESERVER_URL: 'http://127.0.0.1:9' };
  const lookup = async (path: string, query: Record<string, string> = {}) => {
    const r = await invokeFunction(runtime, f, env, apiGatewayEvent({ method: 'GET', path, query, headers: asHs }));
    const v = valueOf(r);
    return { status: v.statusCode as number, body: JSON.parse(v.body), logs: r.logs };
  };
  const protocol = await lookup('/_matrix/app/v1/thirdparty/protocol/irc');
  assert.equal(protocol.status, 200, protocol.logs);
  assert.deepEqual([protocol.body.location_fields, protocol.body.user_fields, protocol.body.instances[0].desc], [['channel'], ['nickname'], 'matrix-appservice-lambda']);

  network.rooms.set('#artifact', { name: '#artifact' });
  const from = network.received.length;
  const found = await lookup('/_matrix/app/v1/thirdparty/location/irc', { channel: 'artifact' });
  assert.equal(found.status, 200, found.logs);
  assert.deepEqual(found.body, [{ alias: `#irc_#artifact:${SERVER}`, protocol: 'irc', fields: { channel: '#artifact' } }]);
  assert.deepEqual(network.received.slice(from).map((r) => `${r.method} ${r.rawPath} ${r.status}`), ['GET /search/rooms 200'], 'one signed search');
  const back = await lookup('/_matrix/app/unstable/thirdparty/user', { userid: `@irc__bob:${SERVER}`, access_token: HS_TOKEN });
  assert.deepEqual([back.status, back.body], [200, [{ userid: `@irc__bob:${SERVER}`, protocol: 'irc', fields: { nickname: 'Bob' } }]]);
  assert.deepEqual(network.specErrors, []);
  // Its bundle carries neither AWS client: its dependencies are the configuration and the network.
  const code = readFileSync(f.bundle, 'utf8');
  for (const client of ['DynamoDBClient', 'SQSClient']) assert.ok(!code.includes(client), `thirdParty carries ${client}`);
});

test('unrecognized: 404 M_UNRECOGNIZED for a path no function serves', async () => {
  const res = await http('unrecognized', { method: 'GET', path: '/_matrix/app/v1/nothing-here', headers: asHs });
  assert.equal(res.status, 404, res.logs);
  assert.equal(res.body.errcode, 'M_UNRECOGNIZED');
});

test('isolation: a bundle that imports a package outside its zip and the runtime does not load', async () => {
  // Present in the project's node_modules, so a failure is the isolation's doing, not a missing install.
  for (const p of ['@middy/core', 'yaml']) {
    assert.ok(existsSync(join(ROOT, 'node_modules', p, 'package.json')), `${p} is installed`);
    assert.ok(!runtime.packages.has(p), `the runtime does not provide ${p}`);
  }
  const taskRoot = join(work.dir, 'task-synthetic');
  mkdirSync(join(taskRoot, 'functions'), { recursive: true });
  const banner = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";
  const bundles: Record<string, string> = {
    // What a bundle with the SSM client kept external does: found in the runtime, for import and require.
    'runtime-esm': "import { SSMClient } from '@aws-sdk/client-ssm'; export const handler = async () => typeof SSMClient;",
    'runtime-cjs': `${banner} export const handler = async () => typeof require('@aws-sdk/client-ssm').SSMClient;`,
    // A dependency left out of the bundle: on Lambda, ERR_MODULE_NOT_FOUND / MODULE_NOT_FOUND.
    'foreign-esm': "import middy from '@middy/core'; export const handler = async () => typeof middy;",
    'foreign-cjs': `${banner} const YAML = require('yaml'); export const handler = async () => typeof YAML;`,
  };
  for (const [name, code] of Object.entries(bundles)) writeFileSync(join(taskRoot, 'functions', `${name}.mjs`), code);
  const env = envOf(fn('ping'));
  const run = (name: string) => invokeFunction(runtime, { handler: `functions/${name}.handler`, taskRoot }, { ...env, LAMBDA_TASK_ROOT: taskRoot }, {});

  const [runtimeEsm, runtimeCjs] = await Promise.all([run('runtime-esm'), run('runtime-cjs')]);
  assert.equal(valueOf(runtimeEsm!), 'function', 'runtime-esm');
  assert.equal(valueOf(runtimeCjs!), 'function', 'runtime-cjs');
  const [esm, cjs] = await Promise.all([run('foreign-esm'), run('foreign-cjs')]);
  assert.ok(!esm!.ok && esm!.phase === 'init' && esm!.code === 'ERR_MODULE_NOT_FOUND' && /@middy\/core/.test(esm!.errorMessage), JSON.stringify(esm));
  assert.ok(!cjs!.ok && cjs!.phase === 'init' && cjs!.code === 'MODULE_NOT_FOUND' && /'yaml'/.test(cjs!.errorMessage), JSON.stringify(cjs));
  assert.deepEqual(readdirSync(join(taskRoot, 'functions')).sort(), Object.keys(bundles).map((n) => `${n}.mjs`).sort(), 'nothing installed beside them');
});
