/**
 * The subjects under measurement, set up once per run:
 * - ours: the functions imported in this process and invoked the way API Gateway invokes them
 *   (test/support/lambda.ts), against DynamoDB Local and a fake HS of our own; the delivery queue
 *   is the local SQS server npm start and the tests use (lib/local/queue.ts, in this process), and
 *   the deliver function runs on the same SQS event-source emulation (lib/local/sqs-event-source.ts)
 *   with the deployed batch size and maximum concurrency (lib/defaults.ts DELIVERY);
 * - each peer: a minimal AS on that framework, in its own `node` process, reached over its HTTP
 *   listener, against a fake HS of its own.
 * Every fake HS answers at once (no spec checks, no delays); the network knows every ID.
 */
import { randomUUID } from 'node:crypto';
import { ChangeMessageVisibilityBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { DELIVERY } from '../lib/defaults.js';
import { startDynamoLocal } from '../lib/local/dynamodb.js';
import type { LocalDynamo } from '../lib/local/dynamodb.js';
import { createLocalTable, tableDefinition } from '../lib/local/table.js';
import { startLocalQueues } from '../lib/local/queue.js';
import type { LocalQueues } from '../lib/local/queue.js';
import { sqsEventSource } from '../lib/local/sqs-event-source.js';
import type { SqsEventSource } from '../lib/local/sqs-event-source.js';
import { setLogSink } from '../lib/log.js';
import type { Bridge } from '../lib/bridge/runtime.js';
import { sqsClient, sqsQueue } from '../lib/queue/sqs.js';
import { sign } from '../lib/signature.js';
import { tableOf } from '../lib/store/index.js';
import { startFakeHs } from '../test/support/fake-hs.js';
import type { FakeHs } from '../test/support/fake-hs.js';
import { invoke, lambdaContext } from '../test/support/lambda.js';
import type { Invoke, Reply } from '../test/support/lambda.js';
import { now, startPeer } from './lib.js';
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
  /** Of `wru` and `rru`, the units billed to global secondary indexes (the `byEvent` index): its copy of a written item, its Query reads. */
  indexWru: number;
  indexRru: number;
  /**
   * The message mapping items (`NETMSG#…`) the code wrote, as it wrote them: how many, and their
   * sizes as DynamoDB bills storage (README: 4.), in the table and in the `byEvent` index.
   */
  mapping: MappingWrites;
}

export interface MappingWrites {
  writes: number;
  /** Sum of the items' storage sizes in the table: attribute names and values, plus 100 B per item. */
  tableBytes: number;
  /** Sum of their entries' storage sizes in the keys-only index: the table's key, the index key, plus 100 B per entry. */
  indexBytes: number;
}

const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand', 'ScanCommand', 'TransactGetItemsCommand']);

/** A strongly consistent read: `ConsistentRead` on the call, or (BatchGetItem) on any of its tables. */
function consistentRead(input: unknown): boolean {
  const i = input as { ConsistentRead?: boolean; RequestItems?: Record<string, { ConsistentRead?: boolean }> };
  return i.ConsistentRead === true || Object.values(i.RequestItems ?? {}).some((t) => t.ConsistentRead === true);
}

export const emptyTally = (): DynamoTally => ({
  calls: {},
  rru: 0,
  wru: 0,
  reportedUnits: 0,
  conditionalFailures: 0,
  ms: 0,
  indexWru: 0,
  indexRru: 0,
  mapping: { writes: 0, tableBytes: 0, indexBytes: 0 },
});

// ------------------------------------------------------------------ item sizes, as DynamoDB bills storage

/** The message mapping's key prefix (lib/store/messages.ts). */
const MAPPING_PREFIX = 'NETMSG#';

type Av = { S?: string; N?: string; B?: Uint8Array; BOOL?: boolean; NULL?: boolean; M?: Record<string, Av>; L?: Av[]; SS?: string[]; NS?: string[]; BS?: Uint8Array[] };
const AV_KEYS = new Set(['S', 'N', 'B', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS', 'BS']);
const isAv = (v: unknown) => typeof v === 'object' && v !== null && Object.keys(v).length === 1 && AV_KEYS.has(Object.keys(v)[0]!);

/** An item as attribute values: as it is when already marshalled, else marshalled the document client's way. */
function asAttributeValues(item: Record<string, unknown>): Record<string, Av> {
  if (Object.values(item).every(isAv)) return item as Record<string, Av>;
  return marshall(item, { removeUndefinedValues: true }) as Record<string, Av>;
}

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** A number's size: 1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed). */
function numberBytes(n: string): number {
  const digits = n.replace(/^[-+]/, '').replace(/[eE].*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/**
 * A value's size by the rules of the DynamoDB Developer Guide, "DynamoDB item sizes and formats"
 * (docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
 * strings and binaries their bytes, numbers as above, booleans and null 1 byte, lists and maps
 * 3 bytes plus 1 per element plus their elements.
 */
function valueBytes(v: Av): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberBytes(v.N);
  if (v.B !== undefined) return v.B.byteLength;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.M) return 3 + Object.entries(v.M).reduce((a, [k, x]) => a + 1 + utf8(k) + valueBytes(x), 0);
  if (v.L) return 3 + v.L.reduce((a, x) => a + 1 + valueBytes(x), 0);
  if (v.SS) return v.SS.reduce((a, x) => a + utf8(x), 0);
  if (v.NS) return v.NS.reduce((a, x) => a + numberBytes(x), 0);
  if (v.BS) return v.BS.reduce((a, x) => a + x.byteLength, 0);
  return 0;
}

/** Per-item storage overhead DynamoDB bills, in the table and in each index (same page). */
export const ITEM_OVERHEAD_BYTES = 100;

const attributesBytes = (item: Record<string, Av>, names?: readonly string[]) =>
  Object.entries(item)
    .filter(([k]) => !names || names.includes(k))
    .reduce((a, [k, v]) => a + utf8(k) + valueBytes(v), 0);

export const itemStorageBytes = (item: Record<string, Av>) => attributesBytes(item) + ITEM_OVERHEAD_BYTES;

type TableDef = {
  KeySchema: Array<{ AttributeName: string }>;
  GlobalSecondaryIndexes?: Array<{ KeySchema: Array<{ AttributeName: string }>; Projection: { ProjectionType: string; NonKeyAttributes?: string[] } }>;
};
let tableDef: TableDef | undefined;

/**
 * The index's copies, from the table's own definition (infra/table.yml): the table's key and the
 * index's key attributes, and projected ones (`sender`), plus 100 B per entry
 * (DynamoDB Developer Guide, global secondary indexes: "Storage considerations"). 0 for an item the index does not hold
 * (it lacks the index key: a sparse index).
 */
function indexEntryStorageBytes(item: Record<string, Av>): number {
  const def = (tableDef ??= tableDefinition() as TableDef);
  const tableKey = def.KeySchema.map((k) => k.AttributeName);
  let bytes = 0;
  for (const gsi of def.GlobalSecondaryIndexes ?? []) {
    const indexKey = gsi.KeySchema.map((k) => k.AttributeName);
    if (!indexKey.every((a) => item[a] !== undefined)) continue;
    const projected = gsi.Projection.ProjectionType === 'ALL' ? undefined : [...tableKey, ...indexKey, ...(gsi.Projection.NonKeyAttributes ?? [])];
    bytes += attributesBytes(item, projected) + ITEM_OVERHEAD_BYTES;
  }
  return bytes;
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
  const fresh = emptyTally;
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
      const input = args.input as { ReturnConsumedCapacity?: string; IndexName?: string; Item?: Record<string, unknown> };
      // INDEXES: the total as TOTAL gives it, and the part of it each global secondary index consumed.
      input.ReturnConsumedCapacity ??= 'INDEXES';
      // The message mapping, sized from the item the code sends (before or after the document client marshalled it).
      if (name === 'PutItemCommand' || name === 'PutCommand') {
        const item = input.Item ? asAttributeValues(input.Item) : undefined;
        if (item && String(item.pk?.S ?? '').startsWith(MAPPING_PREFIX)) {
          t.mapping.writes++;
          t.mapping.tableBytes += itemStorageBytes(item);
          t.mapping.indexBytes += indexEntryStorageBytes(item);
        }
      }
      const started = performance.now();
      try {
        const out = await next(args);
        type Cc = { CapacityUnits?: number; GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }> };
        const cc = (out.output as { ConsumedCapacity?: Cc | Cc[] }).ConsumedCapacity;
        const list = Array.isArray(cc) ? cc : cc ? [cc] : [];
        const units = list.reduce((a, c) => a + (c.CapacityUnits ?? 0), 0);
        let indexUnits = list.reduce((a, c) => a + Object.values(c.GlobalSecondaryIndexes ?? {}).reduce((b, i) => b + (i.CapacityUnits ?? 0), 0), 0);
        t.reportedUnits += units;
        let billed = name.startsWith('Transact') ? units * 2 : units;
        // A read that finds nothing is still billed at the minimum (one 4 KB read); DynamoDB
        // Local reports 0 for an empty Query. A Query of an index is always eventually consistent.
        if (READS.has(name) && billed === 0) {
          billed = consistentRead(args.input) ? 1 : 0.5;
          if (input.IndexName) indexUnits = billed;
        }
        if (READS.has(name)) {
          t.rru += billed;
          t.indexRru += indexUnits;
        } else {
          t.wru += billed;
          t.indexWru += indexUnits;
        }
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

// ------------------------------------------------------------------ SQS accounting

/** SQS bills each request per started 64 KiB of its payload (a batch of 10 small messages is 1 request). */
export const SQS_CHUNK_BYTES = 64 * 1024;

export interface SqsTally {
  /** Calls by command name (SendMessageBatchCommand, ReceiveMessageCommand, ...). */
  calls: Record<string, number>;
  /** Requests as SQS bills them: per call, one per started 64 KiB of its messages' payload. */
  billed: number;
  /** The same by command (a ReceiveMessage that returned nothing is not in here: see emptyReceives). */
  billedBy: Record<string, number>;
  /** ReceiveMessage calls that returned nothing (an idle poller's; not a per-event cost). */
  emptyReceives: number;
  /** Messages sent (SendMessage/SendMessageBatch entries) and received. */
  sent: number;
  received: number;
  /** Time inside SQS calls, client side (marshalling, HTTP, the local server in this process), ms. */
  ms: number;
  errors: number;
}

export interface SqsCounter {
  tally: SqsTally;
  reset(): SqsTally;
  totalCalls(): number;
}

const bytes = (s: string | undefined) => (s ? Buffer.byteLength(s) : 0);
type Attrs = Record<string, { StringValue?: string; DataType?: string } | undefined> | undefined;
/** A message's payload as SQS sizes it: its body and its message attributes (names, types, values). */
const payloadOf = (body: string | undefined, attrs: Attrs) =>
  bytes(body) + Object.entries(attrs ?? {}).reduce((n, [k, v]) => n + bytes(k) + bytes(v?.DataType) + bytes(v?.StringValue), 0);

/**
 * Counts every call an SQS client makes, from the SDK's own middleware stack (as countDynamo does for
 * DynamoDB), with the requests SQS would bill: one per call and per started 64 KiB of the messages
 * it carries (sent, or received).
 */
export function countSqs(client: SQSClient): SqsCounter {
  const fresh = (): SqsTally => ({ calls: {}, billed: 0, billedBy: {}, emptyReceives: 0, sent: 0, received: 0, ms: 0, errors: 0 });
  const counter: SqsCounter = {
    tally: fresh(),
    reset() {
      const t = counter.tally;
      counter.tally = fresh();
      return t;
    },
    totalCalls: () => Object.values(counter.tally.calls).reduce((a, b) => a + b, 0),
  };
  client.middlewareStack.add(
    (next, ctx) => async (args) => {
      const name = String(ctx.commandName);
      const t = counter.tally;
      t.calls[name] = (t.calls[name] ?? 0) + 1;
      const input = args.input as { Entries?: Array<{ MessageBody?: string; MessageAttributes?: Attrs }>; MessageBody?: string; MessageAttributes?: Attrs };
      let payload = 0;
      if (name === 'SendMessageBatchCommand') {
        for (const e of input.Entries ?? []) payload += payloadOf(e.MessageBody, e.MessageAttributes);
        t.sent += input.Entries?.length ?? 0;
      } else if (name === 'SendMessageCommand') {
        payload += payloadOf(input.MessageBody, input.MessageAttributes);
        t.sent++;
      }
      const started = performance.now();
      let empty = false;
      try {
        const out = await next(args);
        if (name === 'ReceiveMessageCommand') {
          const messages = (out.output as { Messages?: Array<{ Body?: string; MessageAttributes?: Attrs }> }).Messages ?? [];
          empty = !messages.length;
          if (empty) t.emptyReceives++;
          t.received += messages.length;
          for (const m of messages) payload += payloadOf(m.Body, m.MessageAttributes);
        }
        return out;
      } catch (e) {
        t.errors++;
        throw e;
      } finally {
        t.ms += performance.now() - started;
        const billed = Math.max(1, Math.ceil(payload / SQS_CHUNK_BYTES));
        t.billed += billed;
        if (!empty) t.billedBy[name] = (t.billedBy[name] ?? 0) + billed;
      }
    },
    { step: 'initialize', name: 'benchCountSqs' },
  );
  return counter;
}

/**
 * What Lambda's event source mapping would be billed for, of the local event source's calls: the
 * receives that brought messages, and the deletes of what the function delivered. The rest is the
 * emulation's own (GetQueueAttributes before each receive, for local-aws-sqs; a receive that found
 * nothing; hiding a batch whose invocation threw, where Lambda lets the visibility timeout run out):
 * an idle poller's cost, paid by the hour, or nothing on AWS.
 */
export const EVENT_SOURCE_BILLED = ['ReceiveMessageCommand', 'DeleteMessageBatchCommand'] as const;
export const eventSourceBilled = (t: SqsTally) => EVENT_SOURCE_BILLED.reduce((n, c) => n + (t.billedBy[c] ?? 0), 0);
/** Those calls by name (receives that brought messages only). */
export const eventSourceCalls = (t: SqsTally): Record<string, number> => Object.fromEntries(EVENT_SOURCE_BILLED.map((c) => [c, t.billedBy[c] ?? 0]));
/** The emulation's other calls by name, empty receives included. */
export const eventSourceExtras = (t: SqsTally): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t.calls)) {
    const extra = (EVENT_SOURCE_BILLED as readonly string[]).includes(k) ? (k === 'ReceiveMessageCommand' ? t.emptyReceives : 0) : v;
    if (extra) out[k === 'ReceiveMessageCommand' ? 'ReceiveMessage (empty)' : k] = extra;
  }
  return out;
};

/** Calls by name, with the count per unit given (e.g. per transaction, per event). */
export const callsPer = (calls: Record<string, number>, n: number): Record<string, number> =>
  Object.fromEntries(Object.entries(calls).map(([k, v]) => [k.replace(/Command$/, ''), v / n]));

// ------------------------------------------------------------------ DynamoDB Local warm-up

/**
 * DynamoDB Local is a Java program: a fresh one answers a call in 5-10 ms and gets to ~1.5 ms only
 * after some thousands of calls, as its JIT compiles. Without this, whichever benchmark ran first
 * would pay for the warm-up. The calls are the kinds our code makes, on keys of their own.
 */
/** Calls warmDynamo makes per round: 4 workers × 9 calls. */
export const WARM_CALLS_PER_ROUND = 4 * 9;

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
      // The message mapping: a plain PutItem that the byEvent index copies, and a Query of that index.
      await doc.send(new PutCommand({ TableName: tableName, Item: { pk, sk: 'M', eventId: `$warm-${w}-${i}`, v: i } }));
      await doc.send(new QueryCommand({ TableName: tableName, IndexName: 'byEvent', KeyConditionExpression: 'eventId = :e', ExpressionAttributeValues: { ':e': `$warm-${w}-${i}` }, Limit: 2 }));
    }
  };
  await Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
}

// ------------------------------------------------------------------ ours

export type FunctionName = 'user-query' | 'room-query' | 'push' | 'network-inbound';
/** What the network sends the AS (functions/network-inbound.ts): POST /network/{kind}. */
export type NetworkKind = 'messages' | 'edits' | 'deletions' | 'reactions';
/** The network's secret in the benchmark: it enables the open network's signed inbound routes. */
export const NETWORK_SECRET = 'bench-network-secret-0123456789abcdef';
type Handler = Parameters<typeof invoke>[0];
type DeliverHandler = (event: SQSEvent, context: ReturnType<typeof lambdaContext>) => Promise<SQSBatchResponse | undefined>;

/** One invocation of the deliver function by the event source. */
export interface DeliverInvocation {
  /** performance.now() when it started. */
  at: number;
  records: number;
  /** Handler time, ms. */
  ms: number;
  /** Records it reported failed (partial batch response), or all of them when it threw. */
  failed: number;
}

export interface Ours {
  hs: FakeHs;
  dynamo: LocalDynamo;
  tableName: string;
  bridge: Bridge;
  dynamoCounter: DynamoCounter;
  /** The local SQS server and its two queues (lib/local/queue.ts). */
  queues: LocalQueues;
  /**
   * SQS calls the bridge makes: push's SendMessageBatch, and the deliver function's own calls
   * (ChangeMessageVisibilityBatch for a retry, SendMessage to the dead-letter queue).
   */
  sqsCounter: SqsCounter;
  /** SQS calls of the event source, i.e. what Lambda's event source mapping makes: ReceiveMessage, DeleteMessageBatch. */
  eventSourceSqs: SqsCounter;
  /** The deliver function on the event source, with the deployed batch size and maximum concurrency. */
  events: SqsEventSource;
  /** The deliver function's invocations since the last call (they are then forgotten). */
  takeInvocations(): DeliverInvocation[];
  /** Errors the event source met (a receive or delete that failed, a deliver invocation that threw). */
  eventSourceErrors: () => number;
  /**
   * The event source until the queue shows nothing more (as test/support/as.ts `deliver`); with
   * `retryNow`, messages hidden for a retry are handed out again first, as if their backoff had passed.
   */
  deliver(opts?: { retryNow?: boolean }): Promise<number>;
  /** Bytes our functions logged (JSON lines), for the CloudWatch Logs line of the cost. */
  logBytes: () => number;
  /** Messages handed to the (no-op) network. */
  delivered: () => number;
  call(fn: FunctionName, req: Invoke): Promise<Reply>;
  /** The network calls the AS: `POST /network/{kind}` through the network-inbound function, signed as a network signs. */
  callNetwork(kind: NetworkKind, body: unknown): Promise<Reply>;
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
  let queues: LocalQueues | undefined;
  try {
    queues = await startLocalQueues({ stage: `bench${process.pid}` });
    return await wireOurs(dynamo, tableName, hs, queues, warmRounds);
  } catch (e) {
    await queues?.stop();
    await hs.close();
    throw e;
  }
}

async function wireOurs(dynamo: LocalDynamo, tableName: string, hs: FakeHs, queues: LocalQueues, warmRounds: number): Promise<Ours> {
  Object.assign(process.env, {
    HOMESERVER_URL: hs.url,
    HOMESERVER_NAME: DOMAIN,
    AS_TOKEN,
    HS_TOKEN,
    TABLE_NAME: tableName,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    QUEUE_URL: queues.queueUrl,
    DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
    SQS_ENDPOINT: queues.endpoint,
    USER_PREFIX: PREFIX,
    SENDER_LOCALPART: 'ircbot',
    NETWORK: 'open',
    // With a secret the open network takes the network's signed requests too (POST /network/…).
    NETWORK_SECRET,
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
    'network-inbound': (await import('../functions/network-inbound.js')).handler as unknown as Handler,
  };
  const deliverHandler = (await import('../functions/deliver.js')).handler as unknown as DeliverHandler;
  const { getBridge } = await import('../lib/bridge/runtime.js');
  const bridge = await getBridge();
  // The no-op network: lookups stay the open network's (every ID exists), deliveries go nowhere.
  // It answers an id of its own for each, as a real network does (a UUID: 36 characters), which
  // the deliver function records in the message mapping.
  let delivered = 0;
  bridge.network = {
    ...bridge.network,
    deliver: async () => {
      delivered++;
      return { id: randomUUID() };
    },
  };
  // The bridge's SQS calls, counted: its outbox and delivery queue are the project's own sqsQueue()
  // over a client from its own sqsClient() (what runtime.ts makes), with a counting middleware; the
  // client runtime.ts made is left unused.
  const bridgeSqs = sqsClient(bridge.config.queue.endpoint);
  const sqsCounter = countSqs(bridgeSqs);
  const counted = sqsQueue({ queueUrl: bridge.config.queue.url, deadLetterQueueUrl: bridge.config.queue.deadLetterUrl, client: bridgeSqs });
  bridge.outbox = counted.outbox;
  bridge.deliveryQueue = counted.delivery;
  const eventSourceSqs = countSqs(queues.client);

  let invocations: DeliverInvocation[] = [];
  let eventSourceErrors = 0;
  const events = sqsEventSource({
    client: queues.client,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    batchSize: DELIVERY.BATCH_SIZE,
    concurrency: DELIVERY.MAX_CONCURRENCY,
    invoke: async (event) => {
      const at = now();
      try {
        const r = await deliverHandler(event, lambdaContext(60_000));
        invocations.push({ at, records: event.Records.length, ms: now() - at, failed: r?.batchItemFailures?.length ?? 0 });
        return r;
      } catch (e) {
        invocations.push({ at, records: event.Records.length, ms: now() - at, failed: event.Records.length });
        throw e;
      }
    },
    onError: () => {
      eventSourceErrors++;
    },
  });
  const deliver = async (opts: { retryNow?: boolean } = {}) => {
    if (opts.retryNow) {
      const hidden = events.hiddenReceipts();
      for (let i = 0; i < hidden.length; i += 10) {
        await queues.client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queues.queueUrl,
            Entries: hidden.slice(i, i + 10).map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle, VisibilityTimeout: 0 })),
          }),
        );
      }
    }
    return events.pollUntilEmpty();
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
    queues,
    sqsCounter,
    eventSourceSqs,
    events,
    takeInvocations: () => {
      const out = invocations;
      invocations = [];
      return out;
    },
    eventSourceErrors: () => eventSourceErrors,
    deliver,
    logBytes: () => logBytes,
    delivered: () => delivered,
    call: (fn, req) => invoke(handlers[fn], { ...req, headers: { authorization: `Bearer ${HS_TOKEN}`, ...req.headers } }),
    callNetwork: (kind, body) => {
      const raw = JSON.stringify(body);
      return invoke(handlers['network-inbound'], { method: 'POST', path: `/network/${kind}`, rawBody: raw, headers: { 'x-signature': sign(NETWORK_SECRET, raw) } });
    },
    async stop() {
      await events.stop();
      bridgeSqs.destroy();
      await queues.stop();
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
