/**
 * Matrix identifiers: users (`@localpart:server`) and room aliases (`#localpart:server`).
 * https://spec.matrix.org/v1.11/appendices/#identifier-grammar
 */

export type UserId = `@${string}:${string}`;
export type RoomAlias = `#${string}:${string}`;
export type RoomId = `!${string}`;

export interface ParsedId {
  sigil: '@' | '#' | '!';
  localpart: string;
  serverName: string;
}

const MAX_ID_BYTES = 255;
// Hostname, IPv4 or bracketed IPv6, optional port.
const SERVER_NAME = /^(\[[0-9a-fA-F:.]{2,45}\]|[a-zA-Z0-9.-]{1,255})(:[0-9]{1,5})?$/;
// Historical user IDs allowed any printable ASCII but ':'; new ones are narrower (see mapping.ts).
const HISTORICAL_LOCALPART = /^[\x21-\x39\x3b-\x7e]+$/;

function parse(sigil: ParsedId['sigil'], id: string): ParsedId | undefined {
  if (typeof id !== 'string' || !id.startsWith(sigil)) return undefined;
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) return undefined;
  const colon = id.indexOf(':');
  if (colon < 2) return undefined;
  const localpart = id.slice(1, colon);
  const serverName = id.slice(colon + 1);
  if (!SERVER_NAME.test(serverName)) return undefined;
  return { sigil, localpart, serverName };
}

export function parseUserId(id: string): ParsedId | undefined {
  const p = parse('@', id);
  return p && HISTORICAL_LOCALPART.test(p.localpart) ? p : undefined;
}

export function parseRoomAlias(id: string): ParsedId | undefined {
  const p = parse('#', id);
  // An alias localpart may hold almost anything, but never a NUL or a ':'.
  return p && !/[\x00:]/.test(p.localpart) ? p : undefined;
}

export function isRoomId(id: unknown): id is RoomId {
  return typeof id === 'string' && id.startsWith('!') && id.length > 1 && Buffer.byteLength(id) <= MAX_ID_BYTES;
}

export const userId = (localpart: string, serverName: string) => `@${localpart}:${serverName}` as UserId;
export const roomAlias = (localpart: string, serverName: string) => `#${localpart}:${serverName}` as RoomAlias;

/** Throws when an ID we built would break the spec's 255-byte limit. */
export function checkIdLength(id: string): void {
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) {
    throw new RangeError(`${id.slice(0, 40)}… is ${Buffer.byteLength(id)} bytes; Matrix IDs may be at most ${MAX_ID_BYTES}`);
  }
}

export const isUserId = (id: unknown): id is UserId => typeof id === 'string' && parseUserId(id) !== undefined;
export const isRoomAlias = (id: unknown): id is RoomAlias => typeof id === 'string' && parseRoomAlias(id) !== undefined;
