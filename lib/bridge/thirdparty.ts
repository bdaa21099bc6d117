/**
 * The Application Service API's third-party lookups (spec: "Third-party networks"), which the
 * homeserver asks on behalf of its clients' `/_matrix/client/v3/thirdparty/…`:
 *
 * - `protocol/{protocol}`: the protocol's metadata, from the configuration (PROTOCOL…);
 * - `location/{protocol}?<field>=…` and `user/{protocol}?<field>=…`: a search of the network's
 *   rooms or users (the network port's searchRooms / searchUsers), answered as Matrix aliases
 *   and user IDs of our namespace;
 * - `location?alias=` and `user?userid=`: the other way, from our own ID mapping alone.
 *
 * Nothing here reads or writes the table, and only the searches call the network. The spec's
 * answers: `200` with at least one result, `404 M_NOT_FOUND` for none and for an unknown
 * protocol. A network that fails is `503`, never a false "none".
 */
import { getConfig } from '../config.js';
import type { Config, ThirdPartyConfig } from '../config.js';
import { THIRD_PARTY } from '../defaults.js';
import { log as rootLog } from '../log.js';
import type { Logger } from '../log.js';
import { invalidParam, missingParam, notFound } from '../matrix/errors.js';
import { isRoomAlias, isUserId } from '../matrix/ids.js';
import { namespaces } from '../matrix/namespaces.js';
import type { Namespaces } from '../matrix/namespaces.js';
import { perColdStart } from '../once.js';
import { networkFor } from './adapters/index.js';
import type { NetworkPort, SearchHit } from './network.js';

/** What the lookups need: no table, no queue, no homeserver (a Bridge has all of these too). */
export interface ThirdPartyDeps {
  config: Config;
  ns: Namespaces;
  network: NetworkPort;
  log: Logger;
}

/** The lookups' dependencies, once per cold start: the configuration and the network only, so the function's bundle carries no AWS client. */
export const getThirdPartyDeps = perColdStart(() =>
  getConfig().then(
    (config): ThirdPartyDeps => ({
      config,
      ns: namespaces(config),
      network: networkFor(config.network, rootLog),
      log: rootLog,
    }),
  ),
);

/** A query string's values by name, each as often as it was given (`access_token` already taken out). */
export type QueryValues = Record<string, string[]>;

export interface ThirdPartyRequest {
  /** Which lookup: the protocol's metadata, or a location (room) or user. */
  kind: 'protocol' | 'location' | 'user';
  /** The protocol the path names; absent for the reverse lookups (`location?alias=`, `user?userid=`). */
  protocol?: string;
  query: QueryValues;
}

/** The spec's Protocol (definitions/protocol.yaml). */
export interface Protocol {
  user_fields: string[];
  location_fields: string[];
  icon: string;
  field_types: Record<string, { regexp: string; placeholder: string }>;
  instances: Array<{ network_id: string; desc: string; fields: Record<string, string>; icon?: string }>;
}

/** The spec's Location and User (definitions/location.yaml, user.yaml). */
export interface Location {
  alias: string;
  protocol: string;
  fields: Record<string, string>;
}
export interface User {
  userid: string;
  protocol: string;
  fields: Record<string, string>;
}

/**
 * The protocol's metadata: one field names a user, one a room (the network's id for it, as the
 * bridge maps it into Matrix IDs), and one instance, the network this bridge bridges. Clients
 * search with the last of each `*_fields` as the user's input (Element does), the instance's
 * `fields` filling the others: there are no others, so the instance presets none.
 */
export function protocolMetadata(t: ThirdPartyConfig): Protocol {
  const fieldType = (placeholder: string) => ({ regexp: THIRD_PARTY.FIELD_REGEXP, placeholder });
  return {
    user_fields: [t.userField],
    location_fields: [t.locationField],
    icon: t.icon,
    field_types: { [t.userField]: fieldType(THIRD_PARTY.USER_PLACEHOLDER), [t.locationField]: fieldType(THIRD_PARTY.LOCATION_PLACEHOLDER) },
    instances: [{ network_id: t.networkId, desc: t.networkName, fields: {} }],
  };
}

/** The one value of a query parameter, undefined when it is not given; 400 when it is given twice. */
function single(query: QueryValues, name: string): string | undefined {
  const values = Object.hasOwn(query, name) ? (query[name] ?? []) : [];
  if (values.length > 1) throw invalidParam(`${name} is given ${values.length} times; give it once`);
  return values[0];
}

const FIELD_VALUE = new RegExp(THIRD_PARTY.FIELD_REGEXP);

/** GET /_matrix/app/v1/thirdparty/…: the answer's body (200), or a MatrixError (400, 404, 503). */
export async function thirdPartyLookup(d: ThirdPartyDeps, req: ThirdPartyRequest): Promise<Protocol | Location[] | User[]> {
  const t = d.config.thirdParty;
  if (req.kind !== 'protocol' && req.protocol === undefined) return req.kind === 'location' ? locationOf(d, req.query) : userOf(d, req.query);
  if (req.protocol !== t.protocol) {
    throw notFound(`this application service provides the protocol ${JSON.stringify(t.protocol)}, not ${JSON.stringify(req.protocol ?? '')}`);
  }
  if (req.kind === 'protocol') return protocolMetadata(t);
  return search(d, req.kind, req.query);
}

/** location/{protocol} and user/{protocol}: the network's search, as Matrix IDs of our namespace. */
async function search(d: ThirdPartyDeps, kind: 'location' | 'user', query: QueryValues): Promise<Location[] | User[]> {
  const t = d.config.thirdParty;
  const field = kind === 'location' ? t.locationField : t.userField;
  const value = single(query, field);
  if (value === undefined) throw missingParam(`a ${kind} search needs ${field} (the protocol's ${kind}_fields)`);
  if (!FIELD_VALUE.test(value)) throw invalidParam(`${field} must be 1 to 255 characters on one line`);
  const fields = { [field]: value };
  const hits = kind === 'location' ? await d.network.searchRooms(fields) : await d.network.searchUsers(fields);
  const found = new Map<string, Location | User>();
  for (const hit of hits) {
    if (found.size >= THIRD_PARTY.MAX_RESULTS) break;
    const matrixId = toMatrixId(d, kind, hit);
    if (matrixId === undefined || found.has(matrixId)) continue;
    const identified = { [field]: hit.id, ...hit.fields };
    found.set(matrixId, kind === 'location' ? { alias: matrixId, protocol: t.protocol, fields: identified } : { userid: matrixId, protocol: t.protocol, fields: identified });
  }
  if (found.size === 0) throw notFound(`the network has no ${kind === 'location' ? 'room' : 'user'} for ${field} ${JSON.stringify(value)}`);
  return [...found.values()] as Location[] | User[];
}

/** A hit's alias or user ID; undefined (and a log line) for a name too long for a Matrix ID. */
function toMatrixId(d: ThirdPartyDeps, kind: 'location' | 'user', hit: SearchHit): string | undefined {
  try {
    return kind === 'location' ? d.ns.aliasFor(hit.id) : d.ns.userIdFor(hit.id);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    d.log.warn('a search result left out: its name makes a Matrix ID over 255 bytes', { kind, id: hit.id.slice(0, 64) });
    return undefined;
  }
}

/** location?alias=: the network room behind one of our aliases. */
function locationOf(d: ThirdPartyDeps, query: QueryValues): Location[] {
  const t = d.config.thirdParty;
  const alias = single(query, 'alias');
  if (alias === undefined) throw missingParam('alias is required: the room alias to look up');
  if (!isRoomAlias(alias)) throw invalidParam(`${JSON.stringify(alias)} is not a room alias`);
  const remote = d.ns.remoteRoomOf(alias);
  if (remote === undefined) throw notFound(`${alias} is not in this bridge's namespace`);
  return [{ alias, protocol: t.protocol, fields: { [t.locationField]: remote } }];
}

/** user?userid=: the network user behind one of our virtual users. */
function userOf(d: ThirdPartyDeps, query: QueryValues): User[] {
  const t = d.config.thirdParty;
  const userId = single(query, 'userid');
  if (userId === undefined) throw missingParam('userid is required: the Matrix user ID to look up');
  if (!isUserId(userId)) throw invalidParam(`${JSON.stringify(userId)} is not a Matrix user ID`);
  const remote = d.ns.remoteUserOf(userId);
  if (remote === undefined) throw notFound(`${userId} is not in this bridge's namespace`);
  return [{ userid: userId, protocol: t.protocol, fields: { [t.userField]: remote } }];
}
