/**
 * The namespaces the AS owns on the homeserver, and the mapping between 3P names and the
 * Matrix IDs inside them. One place derives both the registration regexes and the checks,
 * so what we register and what we accept can never drift apart.
 */
import { escapeAliasLocalpart, escapeLocalpart, unescapeAliasLocalpart, unescapeLocalpart } from './mapping.js';
import { checkIdLength, parseRoomAlias, parseUserId, roomAlias, userId } from './ids.js';
import type { RoomAlias, UserId } from './ids.js';

export interface NamespaceConfig {
  serverName: string;
  userPrefix: string;
  aliasPrefix: string;
  senderLocalpart: string;
}

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export type Namespaces = ReturnType<typeof namespaces>;

export function namespaces(cfg: NamespaceConfig) {
  const server = reEscape(cfg.serverName);
  const userRegex = `@${reEscape(cfg.userPrefix)}.*:${server}`;
  const aliasRegex = `#${reEscape(cfg.aliasPrefix)}.*:${server}`;
  const userRe = new RegExp(`^${userRegex}$`);
  const aliasRe = new RegExp(`^${aliasRegex}$`);
  const botUserId = userId(cfg.senderLocalpart, cfg.serverName);

  return {
    userRegex,
    aliasRegex,
    botUserId,
    /** A user the HS sends our way: inside the exclusive user namespace. */
    isVirtualUser: (id: string): id is UserId => userRe.test(id),
    /** Ours to speak for: a virtual user or the bot. Events from these are never bridged back. */
    isOurs: (id: string) => id === botUserId || userRe.test(id),
    isOurAlias: (alias: string): alias is RoomAlias => aliasRe.test(alias),

    /** The 3P user behind a virtual user, or undefined when the localpart is not one we could have made. */
    remoteUserOf(id: string): string | undefined {
      const p = parseUserId(id);
      if (!p || !userRe.test(id) || !p.localpart.startsWith(cfg.userPrefix)) return undefined;
      const remote = unescapeLocalpart(p.localpart.slice(cfg.userPrefix.length));
      return remote ? remote : undefined;
    },
    remoteRoomOf(alias: string): string | undefined {
      const p = parseRoomAlias(alias);
      if (!p || !aliasRe.test(alias) || !p.localpart.startsWith(cfg.aliasPrefix)) return undefined;
      const remote = unescapeAliasLocalpart(p.localpart.slice(cfg.aliasPrefix.length));
      return remote ? remote : undefined;
    },
    /** Throws RangeError when the name makes an ID over 255 bytes. */
    userIdFor(remoteUser: string): UserId {
      const id = userId(cfg.userPrefix + escapeLocalpart(remoteUser), cfg.serverName);
      checkIdLength(id);
      return id;
    },
    aliasFor(remoteRoom: string): RoomAlias {
      const alias = roomAlias(cfg.aliasPrefix + escapeAliasLocalpart(remoteRoom), cfg.serverName);
      checkIdLength(alias);
      return alias;
    },
    localpartOf: (id: string) => id.slice(1, id.indexOf(':')),
  };
}
