// A minimal application service on matrix-appservice-bridge (the framework most matrix-org
// bridges are built on), doing what ours does, with the framework's own defaults:
// - user query: the network knows every ID; the Bridge registers the user, records it in its
//   UserBridgeStore and sets the display name;
// - alias query: the Bridge creates the room with that alias and records the link in its
//   RoomBridgeStore;
// - events: handed to `onEvent` (a no-op counter here).
// Stores are nedb files, the framework's out-of-the-box storage, in `dataDir`.
// Importing this file starts nothing; the cold-start benchmark bundles and imports it as is.
import { join } from 'node:path';
import { AppServiceRegistration, Bridge, Logger, RemoteRoom } from 'matrix-appservice-bridge';

export const name = 'matrix-appservice-bridge';

/**
 * @param {{homeserverUrl: string, domain: string, asToken: string, hsToken: string, dataDir: string,
 *          prefix: string, onEvent: (event: any) => void}} o
 */
export async function startAs(o) {
  Logger.configure({ console: 'warn' });
  const reg = new AppServiceRegistration('http://127.0.0.1');
  reg.setId('bench-bridge');
  reg.setHomeserverToken(o.hsToken);
  reg.setAppServiceToken(o.asToken);
  reg.setSenderLocalpart('ircbot');
  reg.addRegexPattern('users', `@${o.prefix}.*:${o.domain}`, true);
  reg.addRegexPattern('aliases', `#${o.prefix}.*:${o.domain}`, true);
  reg.setRateLimited(false);
  const bridge = new Bridge({
    homeserverUrl: o.homeserverUrl,
    domain: o.domain,
    registration: reg,
    userStore: join(o.dataDir, 'user.db'),
    roomStore: join(o.dataDir, 'room.db'),
    userActivityStore: join(o.dataDir, 'user-activity.db'),
    logRequestOutcome: false,
    controller: {
      onUserQuery: (matrixUser) => ({ name: matrixUser.localpart.slice(o.prefix.length) }),
      onAliasQuery: (alias, aliasLocalpart) => ({
        creationOpts: { room_alias_name: aliasLocalpart, name: aliasLocalpart.slice(o.prefix.length), preset: 'public_chat', visibility: 'private' },
        remote: new RemoteRoom(aliasLocalpart.slice(o.prefix.length)),
      }),
      onEvent: (request) => o.onEvent(request.getData()),
      onLog: () => undefined,
    },
  });
  await bridge.run(0, undefined, '127.0.0.1');
  const port = bridge.appService.server.address().port;
  return { port, close: () => bridge.close() };
}
