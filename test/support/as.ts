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
import type { TestTable } from './dynamo.js';
import { invoke } from './lambda.js';
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
  call(fn: FunctionName, req: Invoke): Promise<Reply>;
  /** An authenticated HS → AS call. */
  hsCall(fn: FunctionName, req: Invoke): Promise<Reply>;
  bridge(): Promise<import('../../lib/bridge/runtime.js').Bridge>;
  /** Sends a transaction as the homeserver does (for hs.push): its HTTP status. */
  pushSend(txnId: string, body: { events: object[] }): Promise<number>;
  /**
   * One pass of the parked-room drainer, with the bridge's clock turned `laterMs` forward for
   * good (so a room's backoff has run out without waiting for it).
   */
  drain(laterMs?: number): Promise<Record<string, number>>;
}

export type FunctionName = 'user-query' | 'room-query' | 'push' | 'ping' | 'unrecognized' | 'network-inbound';

/** `hsOptions` turn on the fake homeserver's Synapse-like behaviours (size limit, membership events…). */
export async function startAs(env: Record<string, string> = {}, hsOptions: Partial<FakeHsOptions> = {}): Promise<AsUnderTest> {
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
  Object.assign(process.env, {
    HOMESERVER_URL: hs.url,
    HOMESERVER_NAME: SERVER,
    AS_TOKEN,
    HS_TOKEN,
    TABLE_NAME: table.tableName,
    DYNAMODB_ENDPOINT: table.endpoint,
    USER_PREFIX: 'irc_',
    SENDER_LOCALPART: 'ircbot',
    NETWORK: 'open',
    ...env,
  });
  const logs: string[] = [];
  setLogSink((line) => logs.push(line));
  const handlers = new Map<FunctionName, any>();
  const load = async (fn: FunctionName) => {
    if (!handlers.has(fn)) handlers.set(fn, (await import(`../../functions/${fn}.ts`)).handler);
    return handlers.get(fn);
  };
  const call = async (fn: FunctionName, req: Invoke) => invoke(await load(fn), req);
  let clockOffset = 0;
  // As Synapse: a lookup or join of an unknown alias in our namespace asks our alias query first.
  hs.askAsAboutAlias = (alias) => call('room-query', { method: 'GET', path: synapseQueryPath('rooms', alias), headers: { authorization: `Bearer ${HS_TOKEN}` } });
  return {
    hs,
    table,
    store: dynamoStore(table),
    logs,
    call,
    hsCall: (fn, req) => call(fn, { ...req, headers: { authorization: `Bearer ${HS_TOKEN}`, ...req.headers } }),
    bridge: async () => (await import('../../lib/bridge/runtime.js')).getBridge(),
    drain: async (laterMs = 61_000) => {
      const b = await (await import('../../lib/bridge/runtime.js')).getBridge();
      const { drainDueRooms } = await import('../../lib/bridge/parking.js');
      // The bridge's clock only ever goes forward, as a real one does.
      clockOffset += laterMs;
      b.now = () => Date.now() + clockOffset;
      return drainDueRooms(b, { deadline: Date.now() + 10_000, hardStop: Date.now() + 15_000 });
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
