/**
 * Everything a use case needs, built once per cold start from the configuration.
 * Tests build their own with `createBridge`, pointing it at DynamoDB Local and a fake HS.
 */
import { getConfig } from '../config.js';
import type { Config } from '../config.js';
import { createCsClient } from '../matrix/client.js';
import type { CsClient } from '../matrix/client.js';
import { namespaces } from '../appservice/namespaces.js';
import type { Namespaces } from '../appservice/namespaces.js';
import { createTable } from '../store/client.js';
import type { Table } from '../store/client.js';
import { log as rootLog, registerSecrets } from '../log.js';
import type { Logger } from '../log.js';
import type { NetworkPort } from './network.js';
import { openNetwork } from './adapters/open.js';
import { webhookNetwork } from './adapters/webhook.js';

export interface Bridge {
  config: Config;
  ns: Namespaces;
  table: Table;
  cs: CsClient;
  network: NetworkPort;
  log: Logger;
  /** Warm-Lambda cache of room → alias mappings (they never change once made). */
  roomCache: Map<string, { alias: string; remoteRoom: string }>;
  /** Warm-Lambda memory of (room, virtual user) pairs already joined; joins are idempotent, this saves calls. */
  joined: Set<string>;
  /** Warm-Lambda memory of virtual users known registered, with the display name they have. */
  knownUsers: Map<string, string>;
}

export function createBridge(config: Config, overrides: Partial<Omit<Bridge, 'config'>> = {}): Bridge {
  registerSecrets(config.asToken, ...config.hsTokens, ...(config.network.secret ? [config.network.secret] : []));
  const log = overrides.log ?? rootLog;
  return {
    config,
    log,
    ns: overrides.ns ?? namespaces(config),
    table: overrides.table ?? createTable({ tableName: config.tableName, endpoint: config.dynamoEndpoint }),
    cs: overrides.cs ?? createCsClient({ homeserverUrl: config.homeserverUrl, asToken: config.asToken }),
    network:
      overrides.network ??
      (config.network.kind === 'webhook' ? webhookNetwork(config.network) : openNetwork(log)),
    roomCache: overrides.roomCache ?? new Map(),
    joined: overrides.joined ?? new Set(),
    knownUsers: overrides.knownUsers ?? new Map(),
  };
}

let cold: Promise<Bridge> | undefined;

/** The process-wide bridge; a failed cold start is not cached, so the next request tries again. */
export function getBridge(): Promise<Bridge> {
  cold ??= getConfig().then((c) => createBridge(c));
  cold.catch(() => (cold = undefined));
  return cold;
}
