/**
 * The subjects under measurement, set up once per run:
 * - ours: the functions imported in this process and invoked the way API Gateway invokes them
 *   (test/support/lambda.ts), against DynamoDB Local and a fake HS of our own;
 * - each peer: a minimal AS on that framework, in its own `node` process, reached over its HTTP
 *   listener, against a fake HS of its own.
 * Every fake HS answers at once (no spec checks, no delays); the network knows every ID.
 */
import { randomUUID } from 'node:crypto';
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { startDynamoLocal } from '../lib/local/dynamodb.js';
import type { LocalDynamo } from '../lib/local/dynamodb.js';
import { createLocalTable } from '../lib/local/table.js';
import { setLogSink } from '../lib/log.js';
import type { Bridge } from '../lib/bridge/runtime.js';
import { tableOf } from '../lib/store/index.js';
import { startFakeHs } from '../test/support/fake-hs.js';
import type { FakeHs } from '../test/support/fake-hs.js';
import { invoke } from '../test/support/lambda.js';
import type { Invoke, Reply } from '../test/support/lambda.js';
import { startPeer } from './lib.js';
import type { PeerKind, PeerProcess } from './lib.js';

export const AS_TOKEN = 'bench-as-token-0123456789abcdef';
export const HS_TOKEN = 'bench-hs-token-fedcba9876543210';
export const DOMAIN = 'example.org';
export const PREFIX = 'irc_';

export async function fakeHs(): Promise<FakeHs> {
  return startFakeHs({ asToken: AS_TOKEN, serverName: DOMAIN, userPrefix: PREFIX, senderLocalpart: 'ircbot', checkSpec: false });
}

// ------------------------------------------------------------------ DynamoDB accounting

export interface DynamoTally {
  calls: Record<string, number>;
  /** Read request units as DynamoDB would bill them (see README: how units are counted). */
  rru: number;
  /** Write request units as DynamoDB would bill them. */
  wru: number;
  /** Units DynamoDB Local reported (ReturnConsumedCapacity), before the corrections. */
  reportedUnits: number;
  conditionalFailures: number;
  /** Time spent inside DynamoDB calls (client side: marshalling, HTTP, DynamoDB Local itself), ms. */
  ms: number;
}

const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand', 'ScanCommand', 'TransactGetItemsCommand']);

/** A strongly consistent read: `ConsistentRead` on the call, or (BatchGetItem) on any of its tables. */
function consistentRead(input: unknown): boolean {
  const i = input as { ConsistentRead?: boolean; RequestItems?: Record<string, { ConsistentRead?: boolean }> };
  return i.ConsistentRead === true || Object.values(i.RequestItems ?? {}).some((t) => t.ConsistentRead === true);
}

export interface DynamoCounter {
  tally: DynamoTally;
  reset(): DynamoTally;
  totalCalls(): number;
}

/**
 * Counts every call the document client makes, from the SDK's own middleware stack (as
 * test/push.test.ts does), and asks DynamoDB for the capacity each one consumed.
 * Corrections to what DynamoDB Local reports, so the units are the ones AWS bills:
 * transactional writes cost 2 units per item (Local reports 1; our code makes none since the
 * alias mapping became two plain PutItems, and the rule applies only to a Transact* call actually
 * sent); a conditional write that fails still consumes its write units (Local reports nothing on
 * the error; we count 1 WRU, our items being under 1 KB); a read that finds nothing is billed at
 * the minimum (Local reports 0 for an empty Query).
 */
export function countDynamo(doc: DynamoDBDocumentClient): DynamoCounter {
  const fresh = (): DynamoTally => ({ calls: {}, rru: 0, wru: 0, reportedUnits: 0, conditionalFailures: 0, ms: 0 });
  const counter: DynamoCounter = {
    tally: fresh(),
    reset() {
      const t = counter.tally;
      counter.tally = fresh();
      return t;
    },
    totalCalls: () => Object.values(counter.tally.calls).reduce((a, b) => a + b, 0),
  };
  doc.middlewareStack.add(
    (next, ctx) => async (args) => {
      const name = String(ctx.commandName);
      const t = counter.tally;
      t.calls[name] = (t.calls[name] ?? 0) + 1;
      const input = args.input as { ReturnConsumedCapacity?: string };
      input.ReturnConsumedCapacity ??= 'TOTAL';
      const started = performance.now();
      try {
        const out = await next(args);
        const cc = (out.output as { ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }> }).ConsumedCapacity;
        const units = (Array.isArray(cc) ? cc : cc ? [cc] : []).reduce((a, c) => a + (c.CapacityUnits ?? 0), 0);
        t.reportedUnits += units;
        let billed = name.startsWith('Transact') ? units * 2 : units;
        // A read that finds nothing is still billed at the minimum (one 4 KB read); DynamoDB
        // Local reports 0 for an empty Query.
        if (READS.has(name) && billed === 0) billed = consistentRead(args.input) ? 1 : 0.5;
        if (READS.has(name)) t.rru += billed;
        else t.wru += billed;
        return out;
      } catch (e) {
        const n = (e as Error).name;
        if (n === 'ConditionalCheckFailedException') {
          t.conditionalFailures++;
          t.wru += 1;
        }
        throw e;
      } finally {
        t.ms += performance.now() - started;
      }
    },
    { step: 'initialize', name: 'benchCountDynamo' },
  );
  return counter;
}

// ------------------------------------------------------------------ DynamoDB Local warm-up

/**
 * DynamoDB Local is a Java program: a fresh one answers a call in 5-10 ms and gets to ~1.5 ms only
 * after some thousands of calls, as its JIT compiles. Without this, whichever benchmark ran first
 * would pay for the warm-up. The calls are the kinds our code makes, on keys of their own.
 */
/** Calls warmDynamo makes per round: 4 workers × 7 calls. */
export const WARM_CALLS_PER_ROUND = 4 * 7;

export async function warmDynamo(doc: DynamoDBDocumentClient, tableName: string, rounds: number): Promise<void> {
  const worker = async (w: number) => {
    for (let i = 0; i < rounds; i++) {
      const pk = `WARM#${w}-${i}`;
      await doc.send(new PutCommand({ TableName: tableName, Item: { pk, sk: 'A', v: i }, ConditionExpression: 'attribute_not_exists(pk)' }));
      await doc.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk, sk: 'B' },
          UpdateExpression: 'SET v = :v, n = if_not_exists(n, :z)',
          ConditionExpression: 'attribute_not_exists(pk) OR v <> :v',
          ExpressionAttributeValues: { ':v': i, ':z': 0 },
          ReturnValues: 'ALL_NEW',
        }),
      );
      await doc.send(new GetCommand({ TableName: tableName, Key: { pk, sk: 'A' }, ConsistentRead: true }));
      await doc.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: [{ pk, sk: 'A' }, { pk, sk: 'B' }, { pk, sk: 'C' }] } } }));
      await doc.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': pk } }));
      // The alias mapping (markRoomReady): a plain PutItem, then one conditional on an attribute.
      await doc.send(new PutCommand({ TableName: tableName, Item: { pk, sk: 'C', v: i } }));
      await doc.send(new PutCommand({ TableName: tableName, Item: { pk, sk: 'A', v: i, s: 'ready' }, ConditionExpression: 'v = :v', ExpressionAttributeValues: { ':v': i } }));
    }
  };
  await Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
}

// ------------------------------------------------------------------ ours

export type FunctionName = 'user-query' | 'room-query' | 'push';
type Handler = Parameters<typeof invoke>[0];

export interface Ours {
  hs: FakeHs;
  dynamo: LocalDynamo;
  tableName: string;
  bridge: Bridge;
  dynamoCounter: DynamoCounter;
  /** Bytes our functions logged (JSON lines), for the CloudWatch Logs line of the cost. */
  logBytes: () => number;
  /** Messages handed to the (no-op) network. */
  delivered: () => number;
  call(fn: FunctionName, req: Invoke): Promise<Reply>;
  stop(): Promise<void>;
}

export async function startOurs(warmRounds: number): Promise<Ours> {
  const dynamo = await startDynamoLocal();
  try {
    return await setUpOurs(dynamo, warmRounds);
  } catch (e) {
    await dynamo.stop();
    throw e;
  }
}

async function setUpOurs(dynamo: LocalDynamo, warmRounds: number): Promise<Ours> {
  const tableName = `bench-${randomUUID()}`;
  await createLocalTable(dynamo.endpoint, tableName);
  const hs = await fakeHs();
  try {
    return await wireOurs(dynamo, tableName, hs, warmRounds);
  } catch (e) {
    await hs.close();
    throw e;
  }
}

async function wireOurs(dynamo: LocalDynamo, tableName: string, hs: FakeHs, warmRounds: number): Promise<Ours> {
  Object.assign(process.env, {
    HOMESERVER_URL: hs.url,
    HOMESERVER_NAME: DOMAIN,
    AS_TOKEN,
    HS_TOKEN,
    TABLE_NAME: tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    USER_PREFIX: PREFIX,
    SENDER_LOCALPART: 'ircbot',
    NETWORK: 'open',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
  // Log lines are formatted and masked as in Lambda, then dropped (only their size is kept).
  let logBytes = 0;
  setLogSink((line) => {
    logBytes += Buffer.byteLength(line) + 1;
  });
  const handlers: Record<FunctionName, Handler> = {
    'user-query': (await import('../functions/user-query.js')).handler as unknown as Handler,
    'room-query': (await import('../functions/room-query.js')).handler as unknown as Handler,
    push: (await import('../functions/push.js')).handler as unknown as Handler,
  };
  const { getBridge } = await import('../lib/bridge/runtime.js');
  const bridge = await getBridge();
  // The no-op network: lookups stay the open network's (every ID exists), deliveries go nowhere.
  let delivered = 0;
  bridge.network = {
    ...bridge.network,
    deliver: async () => {
      delivered++;
    },
  };
  const { doc } = tableOf(bridge.store)!;
  await warmDynamo(doc, tableName, warmRounds);
  const dynamoCounter = countDynamo(doc);
  return {
    hs,
    dynamo,
    tableName,
    bridge,
    dynamoCounter,
    logBytes: () => logBytes,
    delivered: () => delivered,
    call: (fn, req) => invoke(handlers[fn], { ...req, headers: { authorization: `Bearer ${HS_TOKEN}`, ...req.headers } }),
    async stop() {
      await hs.close();
      doc.destroy();
      await dynamo.stop();
    },
  };
}

// ------------------------------------------------------------------ peers

export interface Peer {
  kind: PeerKind;
  hs: FakeHs;
  proc: PeerProcess;
  headers: Record<string, string>;
  stop(): Promise<void>;
}

export async function startPeerSubject(kind: PeerKind): Promise<Peer> {
  const hs = await fakeHs();
  const proc = await startPeer(kind, { hsUrl: hs.url, domain: DOMAIN, asToken: AS_TOKEN, hsToken: HS_TOKEN, prefix: PREFIX });
  return {
    kind,
    hs,
    proc,
    headers: { authorization: `Bearer ${HS_TOKEN}` },
    async stop() {
      await proc.stop();
      await hs.close();
    },
  };
}
