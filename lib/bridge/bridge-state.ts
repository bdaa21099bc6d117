/**
 * The bridge's state event (MSC2346): every room the bridge makes says what it is bridged to,
 * as `m.bridge` and its older name `uk.half-shot.bridge`, the form bridges and clients already
 * use. Clients show it; the bridge reads it back to recognise its rooms (heal.ts).
 *
 * What the event holds, from what the bridge knows (nothing new to configure):
 * - state key `<AS_ID>://<network room>`, unique per bridge and room (a SHA-256 of the room
 *   name instead when that would pass the homeserver's 255-byte limit on state keys);
 * - `bridgebot`: the bot (SENDER_LOCALPART);
 * - `protocol`: `{id, displayname}`: the protocol the third-party lookups answer for (PROTOCOL)
 *   and the network's name for people (PROTOCOL_NETWORK_NAME, AS_ID unless set), so a client
 *   shows the bridge by the names the room directory and `/thirdparty/protocols` give it;
 * - `channel`: `{id: <network room>, displayname: <the network's name for it>}` (the network
 *   room itself when the name is not at hand, as when a room is recognised again).
 */
import { createHash } from 'node:crypto';
import { isHomeserverError } from '../matrix/errors.js';
import type { RoomId } from '../matrix/ids.js';
import type { Bridge } from './runtime.js';
import { botWriteFailed } from './bot.js';

/** The stable type and the one bridges used before it was specified; both are set, `m.bridge` is read. */
export const BRIDGE_STATE_TYPES = ['m.bridge', 'uk.half-shot.bridge'] as const;

/** Synapse refuses an event whose state key is over 255 bytes. */
const MAX_STATE_KEY_BYTES = 255;

export function bridgeStateKey(b: Bridge, remoteRoom: string): string {
  const plain = `${b.config.asId}://${remoteRoom}`;
  if (Buffer.byteLength(plain, 'utf8') <= MAX_STATE_KEY_BYTES) return plain;
  return `${b.config.asId}://sha256:${createHash('sha256').update(remoteRoom).digest('base64url')}`;
}

export interface BridgeStateContent extends Record<string, unknown> {
  bridgebot: string;
  protocol: { id: string; displayname: string };
  channel: { id: string; displayname: string };
}

export function bridgeStateContent(b: Bridge, remoteRoom: string, roomName?: string): BridgeStateContent {
  return {
    bridgebot: b.ns.botUserId,
    protocol: { id: b.config.thirdParty.protocol, displayname: b.config.thirdParty.networkName },
    channel: { id: remoteRoom, displayname: roomName ?? remoteRoom },
  };
}

/** For createRoom's `initial_state`: the room is born bridged, at no extra call. */
export const bridgeInitialState = (b: Bridge, remoteRoom: string, roomName?: string) => {
  const state_key = bridgeStateKey(b, remoteRoom);
  const content = bridgeStateContent(b, remoteRoom, roomName);
  return BRIDGE_STATE_TYPES.map((type) => ({ type, state_key, content }));
};

/** Whether a bridge event's content is ours, for this network room. */
export function isOurBridgeState(b: Bridge, content: Record<string, unknown>, remoteRoom: string): boolean {
  const channel = content.channel as { id?: unknown } | undefined;
  return content.bridgebot === b.ns.botUserId && typeof channel === 'object' && channel !== null && channel.id === remoteRoom;
}

/**
 * Reads the room's `m.bridge` event for `remoteRoom`, as the bot: true when it is ours, false
 * when the room has none (404), or another's; other failures are thrown to the caller.
 */
export async function hasBridgeState(b: Bridge, roomId: RoomId, remoteRoom: string, deadline: number): Promise<boolean> {
  try {
    const content = await b.cs.getState(roomId, BRIDGE_STATE_TYPES[0], bridgeStateKey(b, remoteRoom), { deadline });
    return isOurBridgeState(b, content, remoteRoom);
  } catch (e) {
    if (isHomeserverError(e) && e.hs.status === 404) return false;
    throw e;
  }
}

/**
 * Sets the bridge event in a room the bridge did not make just now (one it adopted or
 * recognised again), when the room lacks it: one read, and two writes only then. Best effort:
 * a failure is logged and the room stays bridged all the same.
 */
export async function ensureBridgeState(b: Bridge, roomId: RoomId, remoteRoom: string, deadline: number, roomName?: string): Promise<void> {
  try {
    if (await hasBridgeState(b, roomId, remoteRoom, deadline)) return;
  } catch (e) {
    botWriteFailed(b, 'could not read the bridge state event; the room stays bridged', roomId, e, { remoteRoom });
    return;
  }
  await setBridgeState(b, roomId, remoteRoom, deadline, roomName);
}

/** Sets the bridge event (both types), as the bot; best effort, as ensureBridgeState. */
export async function setBridgeState(b: Bridge, roomId: RoomId, remoteRoom: string, deadline: number, roomName?: string): Promise<void> {
  const stateKey = bridgeStateKey(b, remoteRoom);
  const content = bridgeStateContent(b, remoteRoom, roomName);
  try {
    for (const type of BRIDGE_STATE_TYPES) await b.cs.sendState(roomId, type, stateKey, content, { deadline });
    b.log.info('set the bridge state event in a room the bridge adopted', { roomId, remoteRoom, stateKey });
  } catch (e) {
    botWriteFailed(b, 'could not set the bridge state event; the room stays bridged', roomId, e, { remoteRoom });
  }
}
