/**
 * The store port on DynamoDB: one table, the item families in their own modules. Every call
 * is guarded the same way: DynamoDB's passing trouble (throttling, an outage, no connection,
 * past the SDK's own retries) leaves as StoreUnavailableError, which carries its 503.
 */
import { MESSAGES } from '../defaults.js';
import { createTable } from './client.js';
import type { Table } from './client.js';
import { isStoreUnavailable } from './errors.js';
import { StoreUnavailableError } from './port.js';
import type { BridgedMessage, Store } from './port.js';
import * as aliases from './aliases.js';
import * as users from './users.js';
import * as transactions from './transactions.js';
import * as scrollback from './scrollback.js';
import * as messages from './messages.js';
import * as rooms from './rooms.js';
import * as directChats from './direct-chats.js';
import * as links from './links.js';

export type { Table } from './client.js';
export * from './port.js';

const guard =
  <A extends unknown[], R>(fn: (t: Table, ...args: A) => Promise<R>, t: Table) =>
  async (...args: A): Promise<R> => {
    try {
      return await fn(t, ...args);
    } catch (e) {
      throw isStoreUnavailable(e) ? new StoreUnavailableError(e) : e;
    }
  };

const tables = new WeakMap<Store, Table>();

/** The DynamoDB table behind a store made here, for tests and benchmarks that watch its calls. */
export const tableOf = (store: Store): Table | undefined => tables.get(store);

export interface StoreOptions {
  /** How long a message mapping is kept (MESSAGE_MAPPING_DAYS). */
  messageTtlS: number;
}

export function dynamoStore(t: Table, opts: StoreOptions = { messageTtlS: MESSAGES.MAPPING_DAYS * 86_400 }): Store {
  const store: Store = {
    getAlias: guard(aliases.getAlias, t),
    lockAlias: guard(aliases.lockAlias, t),
    markRoomReady: guard(aliases.markRoomReady, t),
    releaseAlias: guard(aliases.releaseAlias, t),
    reclaimAlias: guard(aliases.reclaimAlias, t),
    getAliasLookup: guard(aliases.getAliasLookup, t),
    startAliasLookup: guard(aliases.startAliasLookup, t),
    recordAliasAbsent: guard(aliases.recordAliasAbsent, t),
    endAliasLookup: guard(aliases.endAliasLookup, t),
    countAliasQuery: guard(aliases.countAliasQuery, t),
    setScrollbackPending: guard(aliases.setScrollbackPending, t),
    getBridgedRooms: guard(rooms.getBridgedRooms, t),
    getDirectChat: guard(directChats.getDirectChat, t),
    lockDirectChat: guard(directChats.lockDirectChat, t),
    markDirectChatReady: guard(directChats.markDirectChatReady, t),
    releaseDirectChat: guard(directChats.releaseDirectChat, t),
    recordDirectChat: guard(directChats.recordDirectChat, t),
    endDirectChat: guard(directChats.endDirectChat, t),
    moveRoom: guard(aliases.moveRoom, t),
    forgetRoom: guard(aliases.forgetRoom, t),
    recordLink: guard(links.recordLink, t),
    removeLink: guard(links.removeLink, t),
    listLinks: guard(links.listLinks, t),
    firstNotice: guard(links.firstNotice, t),
    getUser: guard(users.getUser, t),
    putUser: guard(users.putUser, t),
    claimTransaction: guard(transactions.claimTransaction, t),
    getTransaction: guard(transactions.getTransaction, t),
    recordProgress: guard(transactions.recordProgress, t),
    keepScrollback: guard(scrollback.keepScrollback, t),
    listScrollback: guard(scrollback.listScrollback, t),
    dropScrollback: guard(scrollback.dropScrollback, t),
    getBridgedMessage: guard(messages.getBridgedMessage, t),
    recordBridgedMessage: guard((t: Table, m: BridgedMessage) => messages.recordBridgedMessage(t, m, opts.messageTtlS), t),
    mappingOfEvent: guard(messages.mappingOfEvent, t),
    // rooms healed from the homeserver
    adoptRoom: guard(aliases.adoptRoom, t),
  };
  tables.set(store, t);
  return store;
}

/** The store for a configured table (DynamoDB Local when an endpoint is given). */
export const createStore = (opts: { tableName: string; endpoint?: string } & StoreOptions): Store => dynamoStore(createTable(opts), opts);
