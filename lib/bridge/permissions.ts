/**
 * Who may do what with the bridge (PERMISSIONS): a Matrix user's level is that of the most
 * specific pattern that names them (their user ID, then their server, then `*`), or `none`
 * when no pattern does. Levels, each allowing what the one before it does:
 * - none: nothing they say is delivered to the network (the bot says so once per room);
 * - relay: their messages are delivered (everyone, by default);
 * - link: they may link and unlink rooms where their power level allows (the homeserver's own users, by default);
 * - admin: they may unlink any room and list every link.
 */
import { PERMISSION_LEVELS } from '../config.js';
import type { AccessConfig, PermissionLevel } from '../config.js';
import { parseUserId } from '../matrix/ids.js';

export type { PermissionLevel } from '../config.js';

export function permissionOf(access: Pick<AccessConfig, 'permissions'>, userId: string): PermissionLevel {
  const { permissions } = access;
  if (Object.hasOwn(permissions, userId)) return permissions[userId]!;
  const server = parseUserId(userId)?.serverName;
  if (server !== undefined && Object.hasOwn(permissions, server)) return permissions[server]!;
  return Object.hasOwn(permissions, '*') ? permissions['*']! : 'none';
}

/** Whether `level` allows what `needed` does. */
export const allows = (level: PermissionLevel, needed: PermissionLevel) => PERMISSION_LEVELS.indexOf(level) >= PERMISSION_LEVELS.indexOf(needed);

/** The user may do what `needed` allows. */
export const may = (access: Pick<AccessConfig, 'permissions'>, userId: string, needed: PermissionLevel) => allows(permissionOf(access, userId), needed);
