// A minimal application service on matrix-bot-sdk's `Appservice`, doing what ours does with the
// SDK's own defaults:
// - user query ("query.user"): the network knows every ID; the SDK registers the user and sets
//   the display name we return;
// - alias query ("query.room"): the SDK creates the room with that alias (it keeps no
//   alias <-> room mapping of its own, and we add none);
// - events: "room.message" goes to a no-op counter.
// Storage is the SDK's default MemoryStorageProvider (registered users, done transactions).
// Importing this file starts nothing; the cold-start benchmark bundles and imports it as is.
import { Appservice, LogLevel, LogService, MemoryStorageProvider } from 'matrix-bot-sdk';

export const name = 'matrix-bot-sdk';

/**
 * @param {{homeserverUrl: string, domain: string, asToken: string, hsToken: string, dataDir: string,
 *          prefix: string, onEvent: (event: any) => void}} o
 */
export async function startAs(o) {
  LogService.setLevel(LogLevel.WARN);
  const as = new Appservice({
    port: 0,
    bindAddress: '127.0.0.1',
    homeserverName: o.domain,
    homeserverUrl: o.homeserverUrl,
    storage: new MemoryStorageProvider(),
    registration: {
      id: 'bench-botsdk',
      url: 'http://127.0.0.1',
      as_token: o.asToken,
      hs_token: o.hsToken,
      sender_localpart: 'ircbot',
      rate_limited: false,
      namespaces: {
        users: [{ exclusive: true, regex: `@${o.prefix}.*:${o.domain}` }],
        aliases: [{ exclusive: true, regex: `#${o.prefix}.*:${o.domain}` }],
        rooms: [],
      },
    },
  });
  as.on('query.user', (userId, createUser) => {
    const localpart = userId.slice(1).split(':')[0];
    createUser({ display_name: localpart.slice(o.prefix.length) });
  });
  as.on('query.room', (alias, createRoom) => {
    const localpart = alias.slice(1).split(':')[0];
    createRoom({ name: localpart.slice(o.prefix.length), preset: 'public_chat', visibility: 'private' });
  });
  as.on('room.message', (_roomId, event) => o.onEvent(event));
  await as.begin();
  const port = as.appServer.address().port;
  return { port, close: async () => as.stop() };
}
