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
  /** npm start's port. */
  PORT: '9000',
  LISTEN_HOST: '127.0.0.1',
} as const;

/** Parked rooms (a network delivery failing for now): how long an event may keep failing, how many may wait. */
export const PARKING = {
  DEAD_LETTER_AFTER_HOURS: 24,
  MAX_PARKED_EVENTS_PER_ROOM: 10_000,
  DEAD_LETTER_NOTICES: true,
} as const;

export const tableNameFor = (stage: string) => `${SERVICE}-${stage}`;
