/**
 * Linking an existing Matrix room to a network room ("plumbing"), and unlinking it: one use
 * case behind both ways in, the bot's commands (bot-commands.ts) and the provisioning API
 * (provisioning.ts), so both check the same things in the same order:
 *
 * 1. the user's permission (PERMISSIONS: `link`, or `admin` to unlink any room);
 * 2. the bot is in the room (the API makes it join when the room lets it);
 * 3. the user's power level in the room (LINK_POWER_LEVEL, a moderator's by default);
 * 4. the Matrix room is not bridged already, and the network room has no Matrix room: its
 *    alias record is taken as a lock, as the alias query does, so two links of one network room
 *    at once, or a link and a join of its alias, make one Matrix room for it;
 * 5. the network approves (POST /links);
 * 6. both records are written in one transaction, only while the Matrix room is still unbridged.
 *
 * Failures are Matrix errors the caller shows as they are: a notice, or the API's JSON answer.
 */
import { randomUUID } from 'node:crypto';
import { ErrCode, MatrixError, forbidden, invalidParam, isHomeserverError, notFound } from '../matrix/errors.js';
import type { RoomAlias, RoomId, UserId } from '../matrix/ids.js';
import type { AliasRecord, BridgedRoom, LinkedRoom, NetworkRoom } from '../store/index.js';
import type { Bridge } from './runtime.js';
import { botNotice, botPresence } from './bot.js';
import { BRIDGE_STATE_TYPES, bridgeStateKey, setBridgeState } from './bridge-state.js';
import { forgetNotOurs } from './heal.js';
import { forgetVirtualUser } from './provision-user.js';
import { allows, permissionOf } from './permissions.js';
import type { PermissionLevel } from './permissions.js';

export interface LinkAsk {
  roomId: RoomId;
  remoteRoom: string;
  requestedBy: UserId;
}

export interface UnlinkAsk {
  roomId: RoomId;
  requestedBy: UserId;
}

const alreadyLinked = (message: string, extra: Record<string, unknown> = {}) => new MatrixError(409, ErrCode.AlreadyLinked, message, extra);

/** What a bridged room is, in words, for a notice or an error. */
export function describeBridged(room: BridgedRoom): string {
  switch (room.kind) {
    case 'alias':
      return `the network room ${room.remoteRoom} (a room the bridge made, ${room.alias})`;
    case 'linked':
      return `the network room ${room.remoteRoom} (linked by ${room.linkedBy})`;
    case 'direct':
      return `a direct chat between ${room.matrixUser} and ${room.remoteUser}`;
  }
}

function requirePermission(b: Bridge, userId: UserId, needed: PermissionLevel, what: string): PermissionLevel {
  const level = permissionOf(b.config.access, userId);
  if (!allows(level, needed)) throw forbidden(`${userId} may not ${what}: that takes the "${needed}" permission, and the bridge gives "${level}"`);
  return level;
}

/** A room's m.room.power_levels, read as the bot; {} for a room without one. */
async function powerLevels(b: Bridge, roomId: RoomId, deadline: number): Promise<Record<string, unknown>> {
  try {
    return await b.cs.getState(roomId, 'm.room.power_levels', '', { deadline });
  } catch (e) {
    // A room without power levels: everyone is at 0 but its creator, whom we cannot tell apart here.
    if (isHomeserverError(e) && e.hs.status === 404) return {};
    throw e;
  }
}

const numberOr = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

/** A user's level in power levels content (the spec's defaults: users_default, else 0). */
function levelIn(content: Record<string, unknown>, userId: UserId): number {
  const users = typeof content.users === 'object' && content.users !== null ? (content.users as Record<string, unknown>) : {};
  return numberOr(Object.hasOwn(users, userId) ? users[userId] : content.users_default, 0);
}

/** The level a state event of `type` takes (the spec's defaults: events[type], else state_default, else 50). */
function stateLevelIn(content: Record<string, unknown>, type: string): number {
  const events = typeof content.events === 'object' && content.events !== null ? (content.events as Record<string, unknown>) : {};
  return numberOr(Object.hasOwn(events, type) ? events[type] : content.state_default, 50);
}

/** A user's power level in a room, from its m.room.power_levels, read as the bot. */
export const powerLevelOf = async (b: Bridge, roomId: RoomId, userId: UserId, deadline: number): Promise<number> =>
  levelIn(await powerLevels(b, roomId, deadline), userId);

/**
 * The bridge event (MSC2346) in a linked room: only where the room gives the bot the power to
 * set it (a community's room seldom does, and owes the bridge nothing); clients then show no
 * bridge, and nothing else changes. `content` {} clears it.
 */
async function setLinkedBridgeState(b: Bridge, room: NetworkRoom, deadline: number, clear: boolean, name?: string): Promise<void> {
  const levels = await powerLevels(b, room.roomId, deadline).catch(() => undefined);
  if (levels && BRIDGE_STATE_TYPES.some((type) => levelIn(levels, b.ns.botUserId) < stateLevelIn(levels, type))) {
    b.log.info('the bot may not set the bridge event in this room (its power level is too low): left out', { roomId: room.roomId });
    return;
  }
  if (!clear) return setBridgeState(b, room.roomId, room.remoteRoom, deadline, name);
  const stateKey = bridgeStateKey(b, room.remoteRoom);
  for (const type of BRIDGE_STATE_TYPES) {
    await b.cs.sendState(room.roomId, type, stateKey, {}, { deadline }).catch((err) => b.log.warn('could not clear the bridge state event', { roomId: room.roomId, type, err }));
  }
}

/** Whether the user is joined to the room, asked as the bot (which is in it). */
async function isMember(b: Bridge, roomId: RoomId, userId: UserId, deadline: number): Promise<boolean> {
  try {
    return (await b.cs.getState(roomId, 'm.room.member', userId, { deadline })).membership === 'join';
  } catch (e) {
    if (isHomeserverError(e) && e.hs.status === 404) return false;
    throw e;
  }
}

/** A moderator of the room: in it (a power level kept from before one left does not count), at LINK_POWER_LEVEL or more. */
async function requireModerator(b: Bridge, roomId: RoomId, userId: UserId, what: string, deadline: number): Promise<void> {
  if (!(await isMember(b, roomId, userId, deadline))) throw forbidden(`${userId} may not ${what}: they are not in the room`);
  const needed = b.config.access.linkPowerLevel;
  const has = await powerLevelOf(b, roomId, userId, deadline);
  if (has < needed) throw forbidden(`${userId} may not ${what}: that takes power level ${needed} in the room, and they have ${has}`);
}

/**
 * The bot must be in the room to read its power levels and speak there. Invited, or the room
 * public, it joins (and leaves again when the link does not happen: a user who may not link
 * the room cannot send the bot into it); otherwise whoever asked is told to invite it.
 */
async function ensureBotJoined(b: Bridge, roomId: RoomId, deadline: number): Promise<'was there' | 'joined now'> {
  if ((await botPresence(b, roomId, deadline)) === 'joined') return 'was there';
  try {
    await b.cs.join(roomId, { deadline });
    return 'joined now';
  } catch (e) {
    if (isHomeserverError(e) && (e.hs.status === 403 || e.hs.status === 404)) {
      throw new MatrixError(403, ErrCode.BotNotInRoom, `the bridge bot ${b.ns.botUserId} is not in ${roomId} and may not join it: invite it into the room first`);
    }
    throw e;
  }
}

/** The network room's alias: the key of its one record, whichever kind of room it has. */
function aliasOf(b: Bridge, remoteRoom: string): RoomAlias {
  if (remoteRoom.trim() === '' || remoteRoom.length > 255) throw invalidParam('the network room must be 1 to 255 characters');
  try {
    return b.ns.aliasFor(remoteRoom);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`the network room's name is too long for a Matrix alias: ${e.message}`);
    throw e;
  }
}

function takenError(remoteRoom: string, record: AliasRecord | undefined): MatrixError {
  if (record?.state === 'ready' && record.roomId) {
    const how = record.linked ? `linked to ${record.roomId} by ${record.linked.by}` : `bridged to ${record.roomId}, a room the bridge made`;
    return alreadyLinked(`the network room ${remoteRoom} is already ${how}: a bridge admin must unlink it first`, { room_id: record.roomId });
  }
  return alreadyLinked(`the network room ${remoteRoom} is being bridged to another Matrix room just now`);
}

/** The room's record, read from the table (not the warm cache: a link or unlink may be seconds old). */
async function bridgedRoom(b: Bridge, roomId: RoomId): Promise<BridgedRoom | undefined> {
  return (await b.store.getBridgedRooms([roomId])).get(roomId);
}

export async function linkRoom(b: Bridge, ask: LinkAsk, deadline: number): Promise<LinkedRoom> {
  const { roomId, remoteRoom, requestedBy } = ask;
  requirePermission(b, requestedBy, 'link', 'link rooms');
  const alias = aliasOf(b, remoteRoom);
  const bot = await ensureBotJoined(b, roomId, deadline);
  try {
    return await linkJoinedRoom(b, { ...ask, alias }, deadline);
  } catch (e) {
    if (bot === 'joined now') {
      await b.cs.leave(roomId, 'the room was not linked', { deadline }).catch((err) => b.log.warn('the bot could not leave a room it joined for a link that did not happen', { roomId, err }));
    }
    throw e;
  }
}

async function linkJoinedRoom(b: Bridge, ask: LinkAsk & { alias: RoomAlias }, deadline: number): Promise<LinkedRoom> {
  const { roomId, remoteRoom, requestedBy, alias } = ask;
  await requireModerator(b, roomId, requestedBy, 'link this room', deadline);
  const bridged = await bridgedRoom(b, roomId);
  if (bridged) throw alreadyLinked(`this room is already bridged to ${describeBridged(bridged)}`, { room_id: roomId });

  const owner = randomUUID();
  if (!(await b.store.lockAlias(alias, owner, Math.max(deadline - Date.now(), 0) + 1000))) throw takenError(remoteRoom, await b.store.getAlias(alias));
  const release = () => b.store.releaseAlias(alias, owner).catch((err) => b.log.warn('could not release a network room lock; it runs out by itself', { alias, err }));
  const request = { room: remoteRoom, matrixRoomId: roomId, requestedBy };
  let answer;
  try {
    answer = await b.network.requestLink(request);
  } catch (e) {
    await release();
    throw e;
  }
  if (!answer.approved) {
    await release();
    b.log.info('the network refused a link', { roomId, remoteRoom, requestedBy, reason: answer.reason });
    throw new MatrixError(403, ErrCode.NetworkRefused, `the network refused to link ${remoteRoom}: ${answer.reason}`, { reason: answer.reason });
  }

  const room: LinkedRoom = { kind: 'linked', roomId, alias, remoteRoom, linkedBy: requestedBy, linkedAt: b.now() };
  const refusal = await b.store.recordLink(room, owner);
  if (refusal) {
    await release();
    // The network approved a link that did not happen: it is told so.
    await b.network.announceUnlink(request).catch((err) => b.log.warn('could not tell the network that an approved link did not happen', { roomId, remoteRoom, err }));
    if (refusal.kind === 'room-bridged') throw alreadyLinked('this room was bridged by another request just now', { room_id: roomId });
    throw takenError(remoteRoom, refusal.record);
  }
  b.roomCache.set(roomId, room);
  forgetNotOurs(b, roomId);
  b.log.info('linked a Matrix room to a network room', { roomId, remoteRoom, requestedBy });
  // What the network said before there was a room is not replayed into a community's room.
  const kept = await b.store.listScrollback(alias);
  if (kept.length) await b.store.dropScrollback(alias, kept);
  const name = await b.network.lookupRoom(remoteRoom).then((info) => info?.name, () => undefined);
  await setLinkedBridgeState(b, room, deadline, false, name);
  await botNotice(b, roomId, `This room is now bridged to ${remoteRoom} on ${b.config.thirdParty.networkName} (linked by ${requestedBy}).`, deadline, {
    key: `linked|${roomId}|${remoteRoom}|${room.linkedAt}`,
  });
  return room;
}

/**
 * Unlinks a room: a linked room by a user with `link` and the power level, any network room
 * (one the bridge made too) by an admin. Bridging stops both ways at once; the network is told,
 * the bridge event goes, the virtual users leave; the room stays, with the bot in it.
 */
export async function unlinkRoom(b: Bridge, ask: UnlinkAsk, deadline: number): Promise<NetworkRoom> {
  const { roomId, requestedBy } = ask;
  const level = requirePermission(b, requestedBy, 'link', 'unlink rooms');
  const room = await bridgedRoom(b, roomId);
  if (!room) throw notFound(`${roomId} is not bridged`);
  if (room.kind === 'direct') throw forbidden(`${roomId} is a direct chat: it ends when ${room.matrixUser} leaves it`);
  if (level !== 'admin') {
    if (room.kind === 'alias') throw forbidden(`${roomId} is the room the bridge made for ${room.remoteRoom}: only a bridge admin may unlink it`);
    await requireModerator(b, roomId, requestedBy, 'unlink this room', deadline);
  }
  await b.store.removeLink(room);
  b.roomCache.delete(roomId);
  b.log.info('unlinked a Matrix room from its network room', { roomId, remoteRoom: room.remoteRoom, kind: room.kind, requestedBy });
  const request = { room: room.remoteRoom, matrixRoomId: roomId, requestedBy };
  await b.network.announceUnlink(request).catch((err) => b.log.warn('could not tell the network about an unlink; it stands all the same', { roomId, remoteRoom: room.remoteRoom, err }));
  await leaveAsBridge(b, room, requestedBy, deadline);
  return room;
}

/** The Matrix side of an unlink, best effort: the alias and bridge event go, a notice, the virtual users leave. */
async function leaveAsBridge(b: Bridge, room: NetworkRoom, requestedBy: UserId, deadline: number): Promise<void> {
  const { roomId } = room;
  // Our alias no longer leads here (the alias query had pointed it here, or the bridge made the room with it).
  await b.cs.deleteAlias(room.alias, { deadline }).catch((err) => {
    if (!(isHomeserverError(err) && err.hs.status === 404)) b.log.warn('could not take our alias off an unlinked room', { roomId, alias: room.alias, err });
  });
  await setLinkedBridgeState(b, room, deadline, true);
  await botNotice(b, roomId, `This room is no longer bridged to ${room.remoteRoom} (unlinked by ${requestedBy}).`, deadline, { key: `unlinked|${roomId}|${Date.now()}` });
  let members: UserId[] = [];
  try {
    members = (await b.cs.joinedMembers(roomId, { deadline })).filter((u) => b.ns.isVirtualUser(u));
  } catch (err) {
    b.log.warn("could not list an unlinked room's members: its virtual users stay", { roomId, err });
  }
  for (let i = 0; i < members.length && Date.now() < deadline; i += 8) {
    await Promise.all(
      members.slice(i, i + 8).map(async (userId) => {
        forgetVirtualUser(b, userId, roomId);
        await b.cs.leave(roomId, 'the room is no longer bridged', { deadline, asUser: userId }).catch((err) => b.log.warn('a virtual user could not leave an unlinked room', { roomId, userId, err }));
      }),
    );
  }
}

/** A room as the provisioning API and `!bridge status` tell it. */
export interface RoomStatus {
  roomId: RoomId;
  bridged?: BridgedRoom;
  permission: PermissionLevel;
  /** Undefined when the bot cannot read the room. */
  powerLevel?: number;
  neededPowerLevel: number;
  botJoined: boolean;
  canLink: boolean;
  canUnlink: boolean;
}

export async function roomStatus(b: Bridge, roomId: RoomId, userId: UserId, deadline: number): Promise<RoomStatus> {
  const permission = permissionOf(b.config.access, userId);
  const neededPowerLevel = b.config.access.linkPowerLevel;
  const bridged = await bridgedRoom(b, roomId);
  const botJoined = (await botPresence(b, roomId, deadline)) === 'joined';
  // What a room is bridged to is for its members (and the bridge's admins) to see.
  if (botJoined && permission !== 'admin' && !(await isMember(b, roomId, userId, deadline))) throw forbidden(`${userId} is not in ${roomId}`);
  const powerLevel = botJoined ? await powerLevelOf(b, roomId, userId, deadline) : undefined;
  const moderates = powerLevel !== undefined && powerLevel >= neededPowerLevel;
  const canLink = !bridged && allows(permission, 'link') && moderates;
  const canUnlink = bridged !== undefined && bridged.kind !== 'direct' && (permission === 'admin' || (allows(permission, 'link') && bridged.kind === 'linked' && moderates));
  return { roomId, ...(bridged ? { bridged } : {}), permission, ...(powerLevel !== undefined ? { powerLevel } : {}), neededPowerLevel, botJoined, canLink, canUnlink };
}

/** Every linked room, for an admin, a page at a time. */
export async function listAllLinks(b: Bridge, requestedBy: UserId, from: string | undefined): Promise<{ links: LinkedRoom[]; next?: string }> {
  requirePermission(b, requestedBy, 'admin', 'list every link');
  try {
    return await b.store.listLinks(from);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`from: ${e.message}`);
    throw e;
  }
}
