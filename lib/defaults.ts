/**
 * The one source of the service's name and of every default setting. config.ts falls back on
 * these, `npm start` (lib/local) hands them to serverless-offline, and serverless.yml repeats
 * them in its own syntax, checked against this file by test/unit/defaults.test.ts.
 */

/** serverless.yml's `service`: the stack, the table (`<service>-<stage>`) and the SSM prefix are named after it. */
export const SERVICE = 'matrix-appservice-lambda';

/** Settings with a default, by environment variable. */
export const DEFAULTS = {
  /** Local runs only: deployed stages must name their homeserver. */
  HOMESERVER_URL: 'http://127.0.0.1:8008',
  HOMESERVER_NAME: 'localhost',
  AS_ID: SERVICE,
  SENDER_LOCALPART: 'ircbot',
  USER_PREFIX: 'irc_',
  NETWORK: 'open',
  NETWORK_TIMEOUT_MS: '5000',
  /** How long the alias query, asked while the bridge looks the alias up itself, waits to see whether a user's join asked too. */
  ALIAS_QUERY_WAIT_MS: '2000',
  /** Publish bridged rooms in the homeserver's room directory, under the protocol (PUBLISH_ROOMS). */
  PUBLISH_ROOMS: false,
  /** npm start's port. */
  PORT: '9000',
  LISTEN_HOST: '127.0.0.1',
  /**
   * The third-party protocol the bridge provides (the Application Service API's `/thirdparty/…`
   * endpoints, and the registration's `protocols: [PROTOCOL]`): its id, and the one field that
   * names a network user (PROTOCOL_USER_FIELD) and a network room (PROTOCOL_LOCATION_FIELD) in
   * clients' searches. Its icon (PROTOCOL_ICON, an mxc:// URI) and its network's name
   * (PROTOCOL_NETWORK_NAME, AS_ID's value) have no default of their own here.
   */
  PROTOCOL: 'irc',
  PROTOCOL_USER_FIELD: 'nickname',
  PROTOCOL_LOCATION_FIELD: 'channel',
} as const;

/** The protocol's metadata that is not a setting (GET /_matrix/app/v1/thirdparty/protocol/{protocol}). */
export const THIRD_PARTY = {
  /**
   * Every field's `regexp` (the spec: "relatively coarse"): what the AS takes as a network name,
   * 1 to 255 characters, as the network's own ids (docs/network-api.yaml NetworkId).
   */
  FIELD_REGEXP: '^.{1,255}$',
  /** The fields' `placeholder`s, an example of each for clients to show. */
  USER_PLACEHOLDER: 'Bob',
  LOCATION_PLACEHOLDER: '#matrix',
  /** The network answers more: only this many go to the homeserver. */
  MAX_RESULTS: 100,
} as const;

/**
 * Delivery to the network through the SQS FIFO queue (one message group per Matrix room). The
 * queues' own attributes (retention, visibility, redrive) are in infra/queue.yml, which npm start
 * reads too; serverless.yml repeats BATCH_SIZE and MAX_CONCURRENCY as stage parameters.
 */
export const DELIVERY = {
  /** A message still failing after this long goes to the dead-letter queue (DEAD_LETTER_AFTER_HOURS). */
  DEAD_LETTER_AFTER_HOURS: 24,
  /** The bot replies to a message that was dropped or dead-lettered (DEAD_LETTER_NOTICES). */
  DEAD_LETTER_NOTICES: true,
  /** A failing message is tried again after 2 s, doubling, at most 15 minutes; a network's Retry-After is honoured up to that. */
  FIRST_RETRY_MS: 2_000,
  MAX_RETRY_MS: 15 * 60_000,
  /** The deliver function's event source: messages per invocation, and invocations at once at most (2 to 1000). */
  BATCH_SIZE: 10,
  MAX_CONCURRENCY: 5,
} as const;

/** Rich messages: the message mapping and media. */
export const MESSAGES = {
  /** How long a bridged message's mapping is kept (MESSAGE_MAPPING_DAYS): edits, replies, reactions and deletions can refer to it this long. */
  MAPPING_DAYS: 30,
  /**
   * Media through the AS, both ways, at most this many bytes: Lambda's 6 MB payload limit holds
   * the bytes base64-encoded (4 MiB → 5.6 MB) with room for the headers.
   */
  MEDIA_MAX_BYTES: 4 * 1024 * 1024,
  /** How long the link to a Matrix medium in an outbound message works (MEDIA_LINK_HOURS). */
  MEDIA_LINK_HOURS: 7 * 24,
} as const;

/** Linking existing rooms, and who may use the bridge. */
export const ACCESS = {
  /** The power level in a room that linking or unlinking it takes (LINK_POWER_LEVEL): a moderator's. */
  LINK_POWER_LEVEL: 50,
  /** The bot's commands start with this word. */
  COMMAND_PREFIX: '!bridge',
} as const;

/** The delivery queue and its dead-letter queue, FIFO, per stage (infra/queue.yml names them the same way). */
export const queueNamesFor = (stage: string) => ({
  queue: `${SERVICE}-${stage}-deliver.fifo`,
  deadLetters: `${SERVICE}-${stage}-dead-letters.fifo`,
});

export const tableNameFor = (stage: string) => `${SERVICE}-${stage}`;
