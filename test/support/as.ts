/**
 * One AS under test per test file: a fake HS over real HTTP, a fresh DynamoDB Local table,
 * the environment the functions read at cold start, and the functions themselves, invoked
 * the way API Gateway invokes them. Call it at the top level of a test file (top-level await),
 * so that its clean-up hooks belong to the file, not to a hook.
 */
import { after } from 'node:test';
import { startFakeHs, synapseQueryPath, synapseQuote } from './fake-hs.js';
import type { FakeHs, FakeHsOptions } from './fake-hs.js';
import { testTable } from './dynamo.js';
import { startTestQueues } from './sqs.js';
import type { TestQueues } from './sqs.js';
import { ChangeMessageVisibilityBatchCommand } from '@aws-sdk/client-sqs';
import type { TestTable } from './dynamo.js';
import { invoke } from './lambda.js';
import { checkAsAnswer } from './network-api.js';
import type { Invoke, Reply } from './lambda.js';
import { setLogSink } from '../../lib/log.js';
import { dynamoStore } from '../../lib/store/index.js';
import type { Store } from '../../lib/store/index.js';

export const AS_TOKEN = 'as-token-for-tests-0123456789';
export const HS_TOKEN = 'hs-token-for-tests-9876543210';
export const SERVER = 'example.org';

export interface AsUnderTest {
  hs: FakeHs;
  table: TestTable;
  /** The functions' state, read through the store port (only the store's own tests look at keys). */
  store: Store;
  /** Every log line the functions wrote. */
  logs: string[];
  /**
   * What the AS answered the network (network-inbound, media upload and download) that
   * docs/network-api.yaml does not allow: tests of those functions assert it stays empty.
   */
  networkApiErrors: string[];
  call(fn: FunctionName, req: Invoke): Promise<Reply>;
  /** An authenticated HS → AS call. */
  hsCall(fn: FunctionName, req: Invoke): Promise<Reply>;
  bridge(): Promise<import('../../lib/bridge/runtime.js').Bridge>;
  /** Sends a transaction as the homeserver does (for hs.push): its HTTP status. */
  pushSend(txnId: string, body: { events: object[] }): Promise<number>;
  /** The delivery queue and the deliver function on its event source. */
  queues: TestQueues;
  /**
   * The deliver function's event source until the queue shows nothing more: what push queued is
   * at the network (or waits out a retry, or is a dead letter). With `retryNow`, messages waiting
   * out a retry are handed out again first, as if their backoff had passed. Push does this by
   * itself unless the AS was started with `{ autoDeliver: false }`.
   */
  deliver(opts?: { retryNow?: boolean }): Promise<number>;
  /** Turns the bridge's clock forward for good (dead-letter age, the homeserver's remembered answers). */
  later(ms: number): Promise<void>;
}

export type FunctionName =
  | 'user-query'
  | 'room-query'
  | 'push'
  | 'ping'
  | 'thirdparty'
  | 'provision'
  | 'unrecognized'
  | 'network-inbound'
  | 'network-media-upload'
  | 'network-media-download'
  | 'deliver'
  | 'ping-homeserver';
/** The functions behind API Gateway (deliver is on the queue's event source). */
export type HttpFunctionName = Exclude<FunctionName, 'deliver' | 'ping-homeserver'>;

/** `hsOptions` turn on the fake homeserver's Synapse-like behaviours (size limit, membership events…). */
export interface AsOptions {
  /** Run the deliver function after every push, as the event source soon would (default true). */
  autoDeliver?: boolean;
}

export async function startAs(env: Record<string, string> = {}, hsOptions: Partial<FakeHsOptions> = {}, asOptions: AsOptions = {}): Promise<AsUnderTest> {
  const hs = await startFakeHs({
    asToken: AS_TOKEN,
    serverName: SERVER,
    userPrefix: env.USER_PREFIX ?? 'irc_',
    senderLocalpart: 'ircbot',
    requireInhibitLogin: true,
    ...hsOptions,
  });
  after(() => hs.close());
  const table = await testTable();
  const handlers = new Map<FunctionName, any>();
  const load = async (fn: FunctionName) => {
    if (!handlers.has(fn)) handlers.set(fn, (await import(`../../functions/${fn}.ts`)).handler);
    return handlers.get(fn);
  };
  const queues = await startTestQueues(() => load('deliver'));
  Object.assign(process.env, {
    QUEUE_URL: queues.queueUrl,
    DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
    SQS_ENDPOINT: queues.asEndpoint.url,
    HOMESERVER_URL: hs.url,
    HOMESERVER_NAME: SERVER,
    AS_TOKEN,
    HS_TOKEN,
    TABLE_NAME: table.tableName,
    DYNAMODB_ENDPOINT: table.endpoint,
    USER_PREFIX: 'irc_',
    SENDER_LOCALPART: 'ircbot',
    NETWORK: 'open',
    // Shorter than the deployed 2 s: many tests send the first message for a room nobody joined.
    // test/alias-lookup.test.ts, which races joins against lookups, keeps the default.
    ALIAS_QUERY_WAIT_MS: '300',
    ...env,
  });
  const logs: string[] = [];
  setLogSink((line) => logs.push(line));
  const deliver = async (opts: { retryNow?: boolean } = {}) => {
    if (opts.retryNow) {
      const hidden = queues.events.hiddenReceipts();
      for (let i = 0; i < hidden.length; i += 10) {
        await queues.client
          .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: queues.queueUrl, Entries: hidden.slice(i, i + 10).map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle, VisibilityTimeout: 0 })) }))
          .catch(() => undefined);
      }
    }
    return queues.events.pollUntilEmpty();
  };
  const autoDeliver = asOptions.autoDeliver ?? true;
  const networkApiErrors: string[] = [];
  const call = async (fn: FunctionName, req: Invoke) => {
    const reply = await invoke(await load(fn), req);
    if (fn.startsWith('network-')) {
      // Every answer to the network, as the contract document says (requests may be bad on purpose).
      const body = reply.bytes ?? reply.body;
      const type = String(reply.headers['content-type'] ?? '');
      try {
        for (const p of checkAsAnswer(req.method, req.path, reply.status, body, type)) networkApiErrors.push(`${req.method} ${req.path} → ${reply.status}: ${p}`);
      } catch (e) {
        // A path no operation has: the unknown kinds tests send on purpose; their answer is the $default's.
        if (reply.status !== 404) networkApiErrors.push(`${req.method} ${req.path}: ${(e as Error).message}`);
      }
    }
    if (fn === 'push' && autoDeliver && reply.status === 200) await deliver();
    return reply;
  };
  let clockOffset = 0;
  // As Synapse: a lookup or join of an unknown alias in our namespace asks our alias query first.
  hs.askAsAboutAlias = (alias) => call('room-query', { method: 'GET', path: synapseQueryPath('rooms', alias), headers: { authorization: `Bearer ${HS_TOKEN}` } });
  return {
    hs,
    table,
    store: dynamoStore(table),
    logs,
    networkApiErrors,
    call,
    hsCall: (fn, req) => call(fn, { ...req, headers: { authorization: `Bearer ${HS_TOKEN}`, ...req.headers } }),
    bridge: async () => (await import('../../lib/bridge/runtime.js')).getBridge(),
    queues,
    deliver,
    later: async (ms) => {
      const b = await (await import('../../lib/bridge/runtime.js')).getBridge();
      // The bridge's clock only ever goes forward, as a real one does.
      clockOffset += ms;
      b.now = () => Date.now() + clockOffset;
    },
    pushSend: async (txnId, body) =>
      (await call('push', { method: 'PUT', path: `/_matrix/app/v1/transactions/${enc(txnId)}`, body, headers: { authorization: `Bearer ${HS_TOKEN}` } })).status,
  };
}

/**
 * IDs go into HS → AS paths the way Synapse puts them there (`/` left as is), so every test meets
 * the form a real homeserver sends; tests of the `%2F` form use encodeURIComponent themselves.
 */
export const enc = synapseQuote;
