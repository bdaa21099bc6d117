/**
 * Everything a use case needs, built once per cold start from the configuration: the
 * dependencies the HTTP shell hands each function (`endpoint(..., { deps: getBridge })`).
 */
import { getConfig } from '../config.js';
import type { Config } from '../config.js';
import { createCsClient } from '../matrix/client.js';
import type { CsClient } from '../matrix/client.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import { namespaces } from '../matrix/namespaces.js';
import type { Namespaces } from '../matrix/namespaces.js';
import { createStore } from '../store/index.js';
import type { BridgedRoom, Store } from '../store/index.js';
import { sqsQueue } from '../queue/sqs.js';
import type { DeliveryQueue, Outbox } from '../queue/port.js';
import { log as rootLog } from '../log.js';
import { perColdStart } from '../once.js';
import type { Logger } from '../log.js';
import type { NetworkPort, RemoteUser } from './network.js';
import { WarmCache } from './warm-cache.js';
import { networkFor } from './adapters/index.js';

/** How long a warm Lambda trusts a room mapping it read: one DynamoDB read per room per this, at most. */
export const ROOM_CACHE_MS = 5 * 60_000;

/**
 * The room mapping this warm Lambda remembers, if it may be trusted without a read. A linked room
 * is read afresh each time: a moderator may unlink it through another Lambda (the provisioning
 * API) at any moment, and then bridging must stop at once, not within ROOM_CACHE_MS.
 */
export function rememberedRoom(b: Pick<Bridge, 'roomCache'>, roomId: RoomId): BridgedRoom | undefined {
  const room = b.roomCache.get(roomId);
  return room?.kind === 'linked' ? undefined : room;
}

export interface Bridge {
  config: Config;
  ns: Namespaces;
  store: Store;
  cs: CsClient;
  network: NetworkPort;
  log: Logger;
  /**
   * Warm-Lambda cache of room → bridged room. Kept for minutes, not forever: a mapping an
   * operator removed, or a room the homeserver lost, is read afresh from the store after that.
   */
  roomCache: WarmCache<RoomId, BridgedRoom>;
  /** Warm-Lambda memory of (room, virtual user) pairs already joined; joins are idempotent, this saves calls. */
  joined: Set<`${RoomId}|${UserId}`>;
  /** Warm-Lambda memory of virtual users known registered, with the profile they have. */
  knownUsers: Map<UserId, RemoteUser>;
  /** The delivery queue: push fills the outbox, the deliver function works through it. */
  outbox: Outbox;
  deliveryQueue: DeliveryQueue;
  /** When a message still failing goes to the dead-letter queue, and whether the bot says so. */
  delivery: { deadLetterAfterMs: number; notices: boolean };
  /** The bridge's clock (dead-letter age, the homeserver's "no such alias"): tests turn it forward. */
  now: () => number;
}

/** The secrets in `config` are registered with the logger by getConfig, which every path here goes through. */
export function createBridge(config: Config): Bridge {
  const log = rootLog;
  const queue = sqsQueue({ queueUrl: config.queue.url, deadLetterQueueUrl: config.queue.deadLetterUrl, endpoint: config.queue.endpoint });
  return {
    config,
    log,
    ns: namespaces(config),
    store: createStore({ tableName: config.tableName, endpoint: config.dynamoEndpoint, messageTtlS: config.messages.mappingDays * 86_400 }),
    cs: createCsClient({ homeserverUrl: config.homeserverUrl, asToken: config.asToken }),
    network: networkFor(config.network, log),
    roomCache: new WarmCache(ROOM_CACHE_MS),
    joined: new Set(),
    knownUsers: new Map(),
    outbox: queue.outbox,
    deliveryQueue: queue.delivery,
    delivery: { deadLetterAfterMs: config.delivery.deadLetterAfterHours * 3600_000, notices: config.delivery.deadLetterNotices },
    now: Date.now,
  };
}

/** The process-wide bridge. */
export const getBridge = perColdStart(() => getConfig().then(createBridge));
