/**
 * The provisioning API (`/_matrix/provision/v1/…`), for integration managers and admin tools:
 * the same linking as the bot's commands (link-room.ts), over HTTP.
 *
 *   GET    /rooms/{roomId}          the room's status: what it is bridged to, what the user may do
 *   GET    /rooms/{roomId}/links    the room's links (none or one)
 *   POST   /rooms/{roomId}/links    link it: {"remote_room": "…"}
 *   DELETE /rooms/{roomId}/links    unlink it
 *   GET    /links[?from=]           every linked room (admins), a page at a time
 *
 * Who acts, two ways, as the ecosystem does: the operator's secret (`Authorization: Bearer
 * <PROVISIONING_SECRET>`, acting for the `user_id` it names), or the user's own Matrix OpenID
 * token, verified with the homeserver (lib/matrix/openid.ts). Either way the user's permission
 * and power level are checked as for a command.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ErrCode, MatrixError, forbidden, invalidParam, missingParam, unrecognized } from '../matrix/errors.js';
import { isRoomId, isUserId } from '../matrix/ids.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import { openIdVerifier } from '../matrix/openid.js';
import type { OpenIdVerifier } from '../matrix/openid.js';
import { perColdStart } from '../once.js';
import type { BridgedRoom, LinkedRoom } from '../store/index.js';
import { getBridge } from './runtime.js';
import type { Bridge } from './runtime.js';
import { linkRoom, listAllLinks, roomStatus, unlinkRoom } from './link-room.js';

export const PROVISIONING_PREFIX = '/_matrix/provision/v1';

export interface ProvisioningDeps {
  bridge: Bridge;
  openId: OpenIdVerifier;
}

export const getProvisioningDeps = perColdStart(async (): Promise<ProvisioningDeps> => {
  const bridge = await getBridge();
  return { bridge, openId: openIdVerifier({ federationUrl: bridge.config.access.federationUrl, serverName: bridge.config.serverName }) };
});

export interface ProvisioningRequest {
  method: string;
  /** The raw path, from `/_matrix/provision/v1`. */
  path: string;
  /** The bearer token, when one was sent. */
  token?: string;
  /** `?user_id=`: whom the operator's secret acts for. */
  userId?: string;
  /** `?from=`: the page to go on from. */
  from?: string;
  /** The body as a JSON object (or the Matrix error that says why not), read only by the operation that takes one. */
  json: () => Record<string, unknown>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Who the request acts for: the user the operator's secret names, or the OpenID token's owner. */
async function actorOf(d: ProvisioningDeps, req: ProvisioningRequest, deadline: number): Promise<UserId> {
  if (!req.token) throw new MatrixError(401, ErrCode.MissingToken, 'send Authorization: Bearer <the provisioning secret, or your Matrix OpenID token>');
  const secret = d.bridge.config.access.provisioningSecret;
  if (secret && timingSafeEqual(digest(req.token), digest(secret))) {
    if (req.userId === undefined) throw missingParam('user_id: the operator secret acts for the user it names');
    if (!isUserId(req.userId)) throw invalidParam(`user_id ${JSON.stringify(req.userId)} is not a Matrix user ID`);
    return req.userId;
  }
  const owner = await d.openId.userOf(req.token, deadline);
  if (req.userId !== undefined && req.userId !== owner) throw forbidden(`an OpenID token acts for its own user (${owner}) only, not ${req.userId}`);
  return owner;
}

/** A link as the API shows it. */
function linkView(room: BridgedRoom): Record<string, unknown> {
  const view: Record<string, unknown> = { room_id: room.roomId, kind: room.kind };
  if (room.kind === 'direct') return { ...view, matrix_user: room.matrixUser, remote_user: room.remoteUser };
  view.remote_room = room.remoteRoom;
  view.alias = room.alias;
  if (room.kind === 'linked') Object.assign(view, { linked_by: room.linkedBy, linked_at: room.linkedAt });
  return view;
}

const ROOM_PATH = /^\/rooms\/([^/]+)(\/links)?$/;

function roomIdOf(encoded: string): RoomId {
  let roomId: string;
  try {
    roomId = decodeURIComponent(encoded);
  } catch {
    throw invalidParam('the path is not validly percent-encoded');
  }
  if (!isRoomId(roomId)) throw invalidParam(`${JSON.stringify(roomId)} is not a Matrix room ID`);
  return roomId;
}

/** The API's answer to one request: `{status, body}`, or a Matrix error thrown. */
export async function provision(d: ProvisioningDeps, req: ProvisioningRequest, deadline: number): Promise<{ status: number; body: unknown }> {
  const path = req.path.startsWith(PROVISIONING_PREFIX) ? req.path.slice(PROVISIONING_PREFIX.length) : req.path;
  const b = d.bridge;
  if (path === '/links') {
    if (req.method !== 'GET') throw unrecognized(`${req.method} is not allowed on ${req.path}; use GET`, 405);
    const actor = await actorOf(d, req, deadline);
    const { links, next } = await listAllLinks(b, actor, req.from);
    return { status: 200, body: { links: links.map((l: LinkedRoom) => linkView(l)), ...(next ? { next } : {}) } };
  }
  const m = ROOM_PATH.exec(path);
  if (!m) throw unrecognized('unrecognized request');
  const onLinks = m[2] !== undefined;
  const allowed = onLinks ? ['GET', 'POST', 'DELETE'] : ['GET'];
  if (!allowed.includes(req.method)) throw unrecognized(`${req.method} is not allowed on ${req.path}; use ${allowed.join(', ')}`, 405);
  const roomId = roomIdOf(m[1]!);
  const actor = await actorOf(d, req, deadline);

  if (!onLinks) {
    const s = await roomStatus(b, roomId, actor, deadline);
    return {
      status: 200,
      body: {
        room_id: roomId,
        user_id: actor,
        bridged: s.bridged ? linkView(s.bridged) : null,
        permission: s.permission,
        bot_joined: s.botJoined,
        ...(s.powerLevel !== undefined ? { power_level: s.powerLevel } : {}),
        needed_power_level: s.neededPowerLevel,
        can_link: s.canLink,
        can_unlink: s.canUnlink,
      },
    };
  }
  if (req.method === 'GET') {
    const s = await roomStatus(b, roomId, actor, deadline);
    return { status: 200, body: { links: s.bridged && s.bridged.kind !== 'direct' ? [linkView(s.bridged)] : [] } };
  }
  if (req.method === 'DELETE') {
    const room = await unlinkRoom(b, { roomId, requestedBy: actor }, deadline);
    return { status: 200, body: { unlinked: linkView(room) } };
  }
  const remoteRoom = req.json().remote_room;
  if (remoteRoom === undefined) throw missingParam('remote_room: the network room to link');
  if (typeof remoteRoom !== 'string') throw new MatrixError(400, ErrCode.BadJson, 'remote_room must be a string');
  const room = await linkRoom(b, { roomId, remoteRoom, requestedBy: actor }, deadline);
  return { status: 200, body: linkView(room) };
}
