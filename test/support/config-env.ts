/** The least environment a configuration loads from (lib/config.ts), for the configuration's unit tests. */
export const CONFIG_ENV = {
  HOMESERVER_URL: 'http://hs.local:8008/',
  HOMESERVER_NAME: 'example.org',
  AS_TOKEN: 'as-secret',
  HS_TOKEN: 'hs-secret',
  TABLE_NAME: 'state',
  QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo',
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/d.fifo',
} as const;
