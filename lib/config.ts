/**
 * Typed configuration, read from the environment once per cold start.
 *
 * Secrets (as_token, hs_token, network secret, and the next hs_token / network secret while
 * one is rotated) come either as plain env vars (local runs) or as SSM Parameter Store names
 * (`*_PARAM`, in the cloud) so they never sit in the CloudFormation template or the Lambda
 * console in clear text.
 */

import { registerSecrets } from './log.js';
import { perColdStart } from './once.js';
import { ACCESS, DEFAULTS, DELIVERY, MESSAGES } from './defaults.js';

/**
 * `secret` is the one we SIGN with (our requests to the network): NETWORK_SECRET, also while
 * a rotation is under way. `acceptedSecrets` are the ones we VERIFY inbound requests with:
 * NETWORK_SECRET first, then NETWORK_SECRET_NEXT when set (two at once while rotating; the
 * operator then promotes the next one to NETWORK_SECRET, as with the hs_token).
 */
export type NetworkConfig =
  /** Accepted secrets, when there are any, enable signed inbound messages (POST /network/messages) on the open network. */
  | { kind: 'open'; secret?: string; acceptedSecrets: string[] }
  | { kind: 'webhook'; url: string; secret: string; acceptedSecrets: string[]; timeoutMs: number };

export interface Config {
  /** Base URL of the homeserver's Client-Server API, without a trailing slash. */
  homeserverUrl: string;
  /** The homeserver's server name, the part after `:` in Matrix IDs. */
  serverName: string;
  asToken: string;
  /** Accepted hs_tokens; two at once while a token is rotated. */
  hsTokens: string[];
  asId: string;
  senderLocalpart: string;
  userPrefix: string;
  aliasPrefix: string;
  tableName: string;
  dynamoEndpoint?: string;
  network: NetworkConfig;
  /** Public URL the homeserver uses to reach us; only needed for the registration file. */
  asUrl?: string;
  /** ALIAS_QUERY_WAIT_MS: see lib/bridge/heal.ts isOurOwnLookup. */
  aliasQueryWaitMs: number;
  /** The SQS FIFO queue that carries events to the network, and its dead-letter queue. */
  queue: QueueConfig;
  /** Delivery through the queue: when to give up on a message, whether the bot says so. */
  delivery: DeliveryConfig;
  /** Rich messages: how long mappings are kept, how long media links work. */
  messages: MessagesConfig;
  /** The third-party protocol the bridge provides (the AS API's `/thirdparty/…` endpoints, the registration's `protocols`). */
  thirdParty: ThirdPartyConfig;
  /** Who may do what (PERMISSIONS), linking rooms, and the provisioning API. */
  access: AccessConfig;
}

/** What a Matrix user may do with the bridge, from least to most. */
export const PERMISSION_LEVELS = ['none', 'relay', 'link', 'admin'] as const;
export type PermissionLevel = (typeof PERMISSION_LEVELS)[number];

export interface AccessConfig {
  /**
   * PERMISSIONS (or PERMISSIONS_PARAM, an SSM parameter): Matrix user patterns (`*`, a server
   * name, a user ID) → level; the most specific pattern that matches a user wins.
   */
  permissions: Readonly<Record<string, PermissionLevel>>;
  /** LINK_POWER_LEVEL: the power level in a room that linking or unlinking it takes. */
  linkPowerLevel: number;
  /** PROVISIONING_SECRET (or _PARAM): the operator's bearer token for the provisioning API; none when unset. */
  provisioningSecret?: string;
  /** HOMESERVER_FEDERATION_URL: where the homeserver answers OpenID userinfo (its federation API); HOMESERVER_URL unless set. */
  federationUrl: string;
}

export interface ThirdPartyConfig {
  /** PROTOCOL: the protocol's id, e.g. `irc`: `protocols: [protocol]` in the registration, `{protocol}` in the lookups' paths. */
  protocol: string;
  /** PROTOCOL_USER_FIELD: the field that names a network user (its id on the network) in a search. */
  userField: string;
  /** PROTOCOL_LOCATION_FIELD: the field that names a network room. */
  locationField: string;
  /** PROTOCOL_ICON: the protocol's icon, an `mxc://` URI; '' for none. */
  icon: string;
  /** PROTOCOL_NETWORK_NAME: the network's name, for people (the protocol's one instance's `desc`); AS_ID unless set. */
  networkName: string;
  /** The instance's `network_id`: the protocol's id (one bridge, one network). */
  networkId: string;
  /** PUBLISH_ROOMS: bridged rooms are published in the homeserver's room directory under `networkId`. */
  publishRooms: boolean;
}

export interface MessagesConfig {
  /** MESSAGE_MAPPING_DAYS: a bridged message can be replied to, edited, reacted to or deleted this long. */
  mappingDays: number;
  /** MEDIA_LINK_HOURS: the pre-signed link to a Matrix medium in an outbound message works this long. */
  mediaLinkHours: number;
}

export interface QueueConfig {
  /** QUEUE_URL: the delivery queue (serverless.yml: Ref DeliveryQueue). */
  url: string;
  /** DEAD_LETTER_QUEUE_URL */
  deadLetterUrl: string;
  /** SQS_ENDPOINT: an SQS-compatible server (npm start, tests); unset on AWS. */
  endpoint?: string;
}

export interface DeliveryConfig {
  /** DEAD_LETTER_AFTER_HOURS: a message still failing after this long goes to the dead-letter queue. */
  deadLetterAfterHours: number;
  /** DEAD_LETTER_NOTICES: the bot replies to a message that was dropped or dead-lettered. */
  deadLetterNotices: boolean;
}

function wholeNumber(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (raw === 'true' || raw === '1' || raw === 'on') return true;
  if (raw === 'false' || raw === '0' || raw === 'off') return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(raw)}`);
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** A secret is given either inline (NAME) or as an SSM parameter name (NAME_PARAM). */
export interface SecretSource {
  variable: string;
  value?: string;
  param?: string;
  /** A missing SSM parameter leaves the secret unset instead of failing the cold start. */
  optional?: boolean;
}

function required(env: Env, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new ConfigError(name, 'is not set');
  return v;
}

function optional(env: Env, name: string, fallback: string): string {
  const v = env[name]?.trim();
  return v ? v : fallback;
}

function url(env: Env, name: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(name, `is not a URL: ${JSON.stringify(value)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ConfigError(name, `must be an http(s) URL, got ${u.protocol}`);
  }
  return value.replace(/\/+$/, '');
}

// A localpart prefix must itself be a valid piece of a user localpart / alias, or the
// namespace regex we register would not match what we create.
const PREFIX = /^[a-z0-9._=\-/+]+$/;
const SERVER_NAME = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)(:\d{1,5})?$/;
const LOCALPART = /^[a-z0-9._=\-/+]+$/;
/** A protocol id: one path segment, as homeservers put it in the URL unescaped. */
const PROTOCOL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A field name: a query parameter the homeserver passes on as the client sent it. */
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MXC = /^mxc:\/\/[A-Za-z0-9.:[\]-]+\/[A-Za-z0-9_-]+$/;

function secret(env: Env, name: string): SecretSource {
  const value = env[name]?.trim();
  const param = env[`${name}_PARAM`]?.trim();
  if (!value && !param) throw new ConfigError(name, `is not set (set ${name} or ${name}_PARAM, an SSM parameter name)`);
  return { variable: name, value: value || undefined, param: param || undefined };
}

export interface UnresolvedConfig extends Omit<Config, 'asToken' | 'hsTokens' | 'network' | 'access'> {
  asToken: SecretSource;
  hsTokens: SecretSource[];
  /** The permissions given inline (PERMISSIONS) or in SSM (PERMISSIONS_PARAM); the default when neither. */
  access: Omit<AccessConfig, 'permissions' | 'provisioningSecret'> & { permissions?: SecretSource; provisioningSecret?: SecretSource };
  /** `next`: NETWORK_SECRET_NEXT, present only when set. */
  network:
    | { kind: 'open'; secret?: SecretSource; next?: SecretSource }
    | { kind: 'webhook'; url: string; secret: SecretSource; next?: SecretSource; timeoutMs: number };
}

/** Checks every variable; throws a ConfigError naming the first bad one. No I/O. */
export function parseConfig(env: Env): UnresolvedConfig {
  const serverName = required(env, 'HOMESERVER_NAME');
  if (!SERVER_NAME.test(serverName)) throw new ConfigError('HOMESERVER_NAME', `is not a server name: ${JSON.stringify(serverName)}`);
  const senderLocalpart = optional(env, 'SENDER_LOCALPART', DEFAULTS.SENDER_LOCALPART);
  if (!LOCALPART.test(senderLocalpart)) throw new ConfigError('SENDER_LOCALPART', 'may only hold a-z 0-9 . _ = - / +');
  const userPrefix = optional(env, 'USER_PREFIX', DEFAULTS.USER_PREFIX);
  if (!PREFIX.test(userPrefix)) throw new ConfigError('USER_PREFIX', 'may only hold a-z 0-9 . _ = - / +');
  const aliasPrefix = optional(env, 'ALIAS_PREFIX', userPrefix);
  if (!PREFIX.test(aliasPrefix)) throw new ConfigError('ALIAS_PREFIX', 'may only hold a-z 0-9 . _ = - / +');
  if (senderLocalpart.startsWith(userPrefix)) {
    // The bot would then sit inside the virtual-user namespace and be mistaken for one.
    throw new ConfigError('SENDER_LOCALPART', `must not start with USER_PREFIX (${userPrefix})`);
  }

  const hsTokens = [secret(env, 'HS_TOKEN')];
  if (env.HS_TOKEN_NEXT?.trim() || env.HS_TOKEN_NEXT_PARAM?.trim()) hsTokens.push(secret(env, 'HS_TOKEN_NEXT'));

  const kind = optional(env, 'NETWORK', DEFAULTS.NETWORK);
  const hasNetworkSecret = Boolean(env.NETWORK_SECRET?.trim() || env.NETWORK_SECRET_PARAM?.trim());
  // Network secret rotation, as HS_TOKEN_NEXT: a second secret accepted on inbound requests.
  // An empty value (serverless.yml's default) means none.
  let nextNetworkSecret: SecretSource | undefined;
  if (env.NETWORK_SECRET_NEXT?.trim() || env.NETWORK_SECRET_NEXT_PARAM?.trim()) {
    if (!hasNetworkSecret) throw new ConfigError('NETWORK_SECRET_NEXT', 'is set but NETWORK_SECRET is not: the next secret is only accepted beside a current one');
    nextNetworkSecret = secret(env, 'NETWORK_SECRET_NEXT');
  }
  const next = nextNetworkSecret ? { next: nextNetworkSecret } : {};
  let network: UnresolvedConfig['network'];
  if (kind === 'open') {
    network = hasNetworkSecret ? { kind: 'open', secret: { ...secret(env, 'NETWORK_SECRET'), optional: true }, ...next } : { kind: 'open' };
  }
  else if (kind === 'webhook') {
    const timeout = Number(optional(env, 'NETWORK_TIMEOUT_MS', DEFAULTS.NETWORK_TIMEOUT_MS));
    if (!Number.isInteger(timeout) || timeout < 100 || timeout > 60000) {
      throw new ConfigError('NETWORK_TIMEOUT_MS', 'must be a whole number of milliseconds from 100 to 60000');
    }
    network = {
      kind: 'webhook',
      url: url(env, 'NETWORK_URL', required(env, 'NETWORK_URL')),
      secret: secret(env, 'NETWORK_SECRET'),
      ...next,
      timeoutMs: timeout,
    };
  } else throw new ConfigError('NETWORK', `must be "open" or "webhook", got ${JSON.stringify(kind)}`);

  const asId = optional(env, 'AS_ID', DEFAULTS.AS_ID);
  const dynamoEndpoint = env.DYNAMODB_ENDPOINT?.trim();
  const sqsEndpoint = env.SQS_ENDPOINT?.trim();
  const asUrl = env.AS_URL?.trim();
  return {
    homeserverUrl: url(env, 'HOMESERVER_URL', required(env, 'HOMESERVER_URL')),
    serverName,
    asToken: secret(env, 'AS_TOKEN'),
    hsTokens,
    asId,
    senderLocalpart,
    userPrefix,
    aliasPrefix,
    tableName: required(env, 'TABLE_NAME'),
    dynamoEndpoint: dynamoEndpoint ? url(env, 'DYNAMODB_ENDPOINT', dynamoEndpoint) : undefined,
    network,
    asUrl: asUrl ? url(env, 'AS_URL', asUrl) : undefined,
    aliasQueryWaitMs: wholeNumber(env, 'ALIAS_QUERY_WAIT_MS', Number(DEFAULTS.ALIAS_QUERY_WAIT_MS), 100, 15_000),
    queue: {
      url: url(env, 'QUEUE_URL', required(env, 'QUEUE_URL')),
      deadLetterUrl: url(env, 'DEAD_LETTER_QUEUE_URL', required(env, 'DEAD_LETTER_QUEUE_URL')),
      endpoint: sqsEndpoint ? url(env, 'SQS_ENDPOINT', sqsEndpoint) : undefined,
    },
    delivery: {
      // Below SQS's 14-day retention, so a message is dead-lettered before the queue drops it.
      deadLetterAfterHours: wholeNumber(env, 'DEAD_LETTER_AFTER_HOURS', DELIVERY.DEAD_LETTER_AFTER_HOURS, 1, 13 * 24),
      deadLetterNotices: flag(env, 'DEAD_LETTER_NOTICES', DELIVERY.DEAD_LETTER_NOTICES),
    },
    messages: {
      mappingDays: wholeNumber(env, 'MESSAGE_MAPPING_DAYS', MESSAGES.MAPPING_DAYS, 1, 365),
      mediaLinkHours: wholeNumber(env, 'MEDIA_LINK_HOURS', MESSAGES.MEDIA_LINK_HOURS, 1, 365 * 24),
    },
    thirdParty: thirdParty(env, asId),
    access: {
      ...(env.PERMISSIONS?.trim() || env.PERMISSIONS_PARAM?.trim() ? { permissions: secret(env, 'PERMISSIONS') } : {}),
      ...(env.PROVISIONING_SECRET?.trim() || env.PROVISIONING_SECRET_PARAM?.trim() ? { provisioningSecret: secret(env, 'PROVISIONING_SECRET') } : {}),
      linkPowerLevel: wholeNumber(env, 'LINK_POWER_LEVEL', ACCESS.LINK_POWER_LEVEL, 0, 100),
      federationUrl: url(env, 'HOMESERVER_FEDERATION_URL', env.HOMESERVER_FEDERATION_URL?.trim() || required(env, 'HOMESERVER_URL')),
    },
  };
}

const SERVER_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)(:\d{1,5})?$/;
const USER_PATTERN = /^@[^:\s]+:(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)(:\d{1,5})?$/;

/**
 * PERMISSIONS' JSON: an object of pattern → level, where a pattern is `*`, a server name or a
 * user ID, and a level one of PERMISSION_LEVELS. `variable`: where it came from, for the error.
 */
export function parsePermissions(variable: string, raw: string): Record<string, PermissionLevel> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(variable, 'is not JSON: give an object such as {"*": "relay", "example.org": "link"}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(variable, 'must be a JSON object of pattern → level');
  const out: Record<string, PermissionLevel> = Object.create(null);
  for (const [pattern, level] of Object.entries(parsed)) {
    if (pattern !== '*' && !SERVER_PATTERN.test(pattern) && !USER_PATTERN.test(pattern)) {
      throw new ConfigError(variable, `has ${JSON.stringify(pattern)}: a pattern is "*", a server name (example.org) or a user ID (@alice:example.org)`);
    }
    if (!PERMISSION_LEVELS.includes(level as PermissionLevel)) {
      throw new ConfigError(variable, `gives ${JSON.stringify(pattern)} the level ${JSON.stringify(level)}: a level is one of ${PERMISSION_LEVELS.join(', ')}`);
    }
    out[pattern] = level as PermissionLevel;
  }
  return out;
}

/** Today's behaviour plus linking for the homeserver's own users. */
export const defaultPermissions = (serverName: string): Record<string, PermissionLevel> => ({ '*': 'relay', [serverName]: 'link' });

/** PROTOCOL and the protocol's metadata (lib/bridge/thirdparty.ts answers it). */
function thirdParty(env: Env, asId: string): ThirdPartyConfig {
  const protocol = optional(env, 'PROTOCOL', DEFAULTS.PROTOCOL);
  if (!PROTOCOL_ID.test(protocol)) throw new ConfigError('PROTOCOL', `must be 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit), got ${JSON.stringify(protocol)}`);
  const field = (name: string, fallback: string) => {
    const f = optional(env, name, fallback);
    // access_token is the homeserver's legacy authentication, taken out of every query.
    if (!FIELD_NAME.test(f) || f === 'access_token') throw new ConfigError(name, `must be a field name (a letter, then letters, digits, _ . -; at most 64), not access_token, got ${JSON.stringify(f)}`);
    return f;
  };
  const userField = field('PROTOCOL_USER_FIELD', DEFAULTS.PROTOCOL_USER_FIELD);
  const locationField = field('PROTOCOL_LOCATION_FIELD', DEFAULTS.PROTOCOL_LOCATION_FIELD);
  if (userField === locationField) throw new ConfigError('PROTOCOL_LOCATION_FIELD', `must differ from PROTOCOL_USER_FIELD (both are ${JSON.stringify(userField)})`);
  const icon = env.PROTOCOL_ICON?.trim() ?? '';
  if (icon && !MXC.test(icon)) throw new ConfigError('PROTOCOL_ICON', `must be an mxc:// URI (upload the image to the homeserver first), got ${JSON.stringify(icon)}`);
  const networkName = optional(env, 'PROTOCOL_NETWORK_NAME', asId);
  if (networkName.length > 255) throw new ConfigError('PROTOCOL_NETWORK_NAME', 'must be at most 255 characters');
  return { protocol, userField, locationField, icon, networkName, networkId: protocol, publishRooms: flag(env, 'PUBLISH_ROOMS', DEFAULTS.PUBLISH_ROOMS) };
}

export type ParameterReader = (names: string[]) => Promise<Record<string, string>>;

/** Reads SecureString parameters from SSM; loaded lazily so local runs never pull the SSM client in. */
export const ssmReader: ParameterReader = async (names) => {
  const { SSMClient, GetParametersCommand } = await import('@aws-sdk/client-ssm');
  // Bounded: a cold start that cannot reach SSM should fail with a message, not hang until the Lambda timeout.
  const out = await new SSMClient({ maxAttempts: 3 }).send(new GetParametersCommand({ Names: names, WithDecryption: true }), {
    abortSignal: AbortSignal.timeout(5000),
  });
  // Missing parameters are left out; loadConfig names the variable that needed one.
  return Object.fromEntries((out.Parameters ?? []).map((p) => [p.Name ?? '', p.Value ?? '']));
};

/** The process-wide configuration, loaded at the first request; its secrets are masked in every log line from then on. */
export const getConfig = perColdStart(() =>
  loadConfig().then((c) => {
    registerSecrets(c.asToken, ...c.hsTokens, ...c.network.acceptedSecrets, ...(c.access.provisioningSecret ? [c.access.provisioningSecret] : []));
    return c;
  }),
);

/** Parses the environment and resolves secrets held in SSM (one GetParameters call). */
export async function loadConfig(env: Env = process.env, readParameters: ParameterReader = ssmReader): Promise<Config> {
  const raw = parseConfig(env);
  const sources = [raw.asToken, ...raw.hsTokens, ...[raw.network.secret, raw.network.next, raw.access.permissions, raw.access.provisioningSecret].filter((s) => s !== undefined)];
  const names = sources.filter((s) => !s.value && s.param).map((s) => s.param as string);
  const fetched = names.length ? await readParameters(names) : {};
  const resolve = (s: SecretSource): string => {
    const v = s.value ?? fetched[s.param ?? ''];
    if (!v) throw new ConfigError(`${s.variable}_PARAM`, `names SSM parameter ${s.param}, which does not exist or is empty`);
    return v;
  };
  const resolveOptional = (s: SecretSource | undefined) => (s && (s.value ?? fetched[s.param ?? '']) ? resolve(s) : undefined);
  const asToken = resolve(raw.asToken);
  const hsTokens = raw.hsTokens.map(resolve);
  // The next network secret is never optional: it is only set on purpose, for a rotation.
  const next = raw.network.next ? resolve(raw.network.next) : undefined;
  const accepted = (current: string | undefined) => [...new Set([current, next].filter((s): s is string => Boolean(s)))];
  let network: NetworkConfig;
  if (raw.network.kind === 'webhook') {
    const { url, timeoutMs } = raw.network;
    const current = resolve(raw.network.secret);
    network = { kind: 'webhook', url, secret: current, acceptedSecrets: accepted(current), timeoutMs };
  } else {
    const current = resolveOptional(raw.network.secret);
    network = { kind: 'open', secret: current, acceptedSecrets: accepted(current) };
  }
  const { permissions: permissionsSource, provisioningSecret: provisioningSource, ...access } = raw.access;
  const permissions = permissionsSource
    ? parsePermissions(permissionsSource.value ? permissionsSource.variable : `${permissionsSource.variable}_PARAM`, resolve(permissionsSource))
    : defaultPermissions(raw.serverName);
  const provisioningSecret = provisioningSource ? resolve(provisioningSource) : undefined;
  return { ...raw, asToken, hsTokens, network, access: { ...access, permissions, ...(provisioningSecret ? { provisioningSecret } : {}) } };
}
