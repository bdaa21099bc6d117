/**
 * The store port: what the use cases (lib/bridge) need kept, in their own terms. It is written
 * for the bridge and only the bridge uses it; it sits here, with no DynamoDB in it, because the
 * store implements it and arrows point down (lib/store never imports lib/bridge). Key layouts
 * (`ALIAS#…`, `TXN#…`) are known to the DynamoDB implementation beside it alone.
 */
import type { RoomAlias, RoomId, UserId } from '../matrix/ids.js';

/**
 * A Matrix room the bridge carries, by kind, with what it is on the network: every handler finds
 * "which network room or conversation is this Matrix room" through this one record.
 */
export type BridgedRoom = AliasRoom | LinkedRoom | DirectChat;

/**
 * A Matrix room that is one network room's face: made by the alias query (alias), or an existing
 * room a moderator linked (linked). Both are found from the network room the same way, through
 * the network room's alias record, and carry its messages and membership alike.
 */
export type NetworkRoom = AliasRoom | LinkedRoom;

export const isNetworkRoom = (room: BridgedRoom | undefined): room is NetworkRoom => room !== undefined && room.kind !== 'direct';

/** A Matrix room made for a network room through one of our aliases (the alias query). */
export interface AliasRoom {
  kind: 'alias';
  roomId: RoomId;
  alias: RoomAlias;
  /** The network's own name for the room. */
  remoteRoom: string;
}

/**
 * An existing Matrix room linked to a network room ("plumbed"), by a bot command or the
 * provisioning API. `alias` is the network room's alias in our namespace: its record is the lock
 * that gives a network room one Matrix room, whichever kind; the room itself need not carry it.
 */
export interface LinkedRoom {
  kind: 'linked';
  roomId: RoomId;
  alias: RoomAlias;
  remoteRoom: string;
  /** Who linked it, and when (epoch ms). */
  linkedBy: UserId;
  linkedAt: number;
}

/** A direct chat between one Matrix user and one network user. */
export interface DirectChat {
  kind: 'direct';
  roomId: RoomId;
  /** The Matrix user who talks to the network user there. */
  matrixUser: UserId;
  /** The network's id of the user (the room's virtual user is its Matrix face). */
  remoteUser: string;
}

/**
 * The record of a (network user, Matrix user) pair, which doubles as the lock that gives the
 * pair one direct chat when the network opens it, as the alias record does for alias rooms.
 */
export interface DirectChatRecord {
  state: 'creating' | 'ready';
  roomId?: RoomId;
  lockUntil?: number;
  owner?: string;
}

/** The alias → room record, which doubles as the lock that gives one alias one room. */
export interface AliasRecord {
  alias: RoomAlias;
  state: 'creating' | 'ready';
  roomId?: RoomId;
  lockUntil?: number;
  owner?: string;
  /** Scrollback whose replay was cut short; the next inbound message finishes it. */
  scrollbackPending?: boolean;
  /** The network room is linked to an existing Matrix room (not one the alias query made). */
  linked?: { by: UserId; at: number };
}

/** Why a link was not recorded: the network room has a Matrix room already, or the Matrix room is bridged already. */
export type LinkRefusal = { kind: 'network-room-taken'; record: AliasRecord } | { kind: 'room-bridged' };

/** What the bridge learned when it asked the homeserver about one of its aliases. */
export type AliasLookup =
  /** A lookup is under way (its holder's lease lasts until `until`); `queries`: alias queries the homeserver made meanwhile. */
  | { state: 'asking'; owner: string; until: number; queries: number }
  /** The homeserver had no such alias: nobody has joined it; believed until `until`. */
  | { state: 'absent'; until: number };

/** A virtual user we registered on the HS; recorded only once the HS has it. */
export interface VirtualUser {
  userId: UserId;
  displayName?: string;
  avatarUrl?: string;
  registeredAt: number;
}

/** A message from the network, as it came; scrollback keeps it until its room exists. */
export interface InboundMessage {
  id: string;
  /** A network room's messages (kept as scrollback until the room exists) have `room`; private ones `to`. */
  room?: string;
  /** The Matrix user a private message is for (a direct chat). */
  to?: UserId;
  sender: { id: string; displayName?: string; avatarUrl?: string };
  msgtype: string;
  body: string;
  ts: number;
  /** HTML, as the network sent it (sanitised when it is posted). */
  formattedBody?: string;
  /** Network users by their id, Matrix users by their user ID. */
  mentions?: Array<{ id: string } | { userId: string }>;
  /** The network id of the message this one answers. */
  replyTo?: string;
  media?: InboundMedia;
}

/** A network user joining or leaving a network room (POST /network/members), as it came. */
export interface InboundMembership {
  /** The network's id for it, or one the AS gave it: it orders and names it in scrollback. */
  id: string;
  room: string;
  user: { id: string; displayName?: string; avatarUrl?: string };
  membership: 'join' | 'leave';
  reason?: string;
  ts: number;
}

/** What scrollback keeps for a room that does not exist yet, in the network's order: messages, and people coming and going. */
export type KeptEvent = InboundMessage | InboundMembership;

/** What a message says of its medium, in either direction (the network contract's names). */
export interface MediaInfo {
  filename?: string;
  mimetype?: string;
  size?: number;
  width?: number;
  height?: number;
  /** Milliseconds, for audio and video. */
  duration?: number;
}

/** A medium the network uploaded (POST /network/media) and a message carries. */
export interface InboundMedia extends MediaInfo {
  contentUri: string;
}

/** An event the network refused for good, kept on its transaction's record with the reason. */
export interface FailedEvent {
  eventId: string;
  reason: string;
}

export type TransactionClaim =
  /**
   * Ours until the lease ends; events before `cursor` were done by an earlier attempt. `reused`:
   * the id was last used for other events (a homeserver that restarted or was reset), replaced.
   */
  | {
      kind: 'claimed';
      cursor: number;
      reused: boolean;
      /** When the transaction was first claimed: transactions come one at a time, so this orders them. */
      claimedAt: number;
    }
  | { kind: 'done' }
  /** Another live copy holds the lease. */
  | { kind: 'busy'; leaseUntil: number };

export interface TransactionRecord {
  state: 'running' | 'retry' | 'done';
  leaseUntil: number;
  /** Index of the next event to process. */
  cursor: number;
  /** Events refused for good, with the reason: for an operator to look at. */
  failed: FailedEvent[];
  /** Which events the transaction holds (a digest of their IDs); tells a retry from a reused id. */
  digest?: string;
}

export interface TransactionProgress {
  cursor: number;
  done: boolean;
  failed: FailedEvent[];
}

export interface Store {
  /** Room aliases and the rooms behind them. */
  getAlias(alias: RoomAlias): Promise<AliasRecord | undefined>;
  /** Takes the creation lock when nobody holds it or the holder's lock ran out. */
  lockAlias(alias: RoomAlias, owner: string, lockMs: number): Promise<boolean>;
  /**
   * Records room ↔ alias, ready; false when our lock was taken over meanwhile. With
   * `scrollbackPending`, new messages for the room queue behind the kept ones until a replay
   * has posted them all (and clears the flag).
   */
  markRoomReady(room: AliasRoom, owner: string, scrollbackPending: boolean): Promise<boolean>;
  /**
   * What the bridge learned from the homeserver about an alias it has no room for (a network
   * message for a room nobody has joined): see docs/DESIGN.md, "Asking the homeserver about an alias".
   */
  getAliasLookup(alias: RoomAlias): Promise<AliasLookup | undefined>;
  /**
   * Takes the right to ask the homeserver, until `until`: only when nobody asks and nothing
   * learned holds at `now` (`overAbsent`: a remembered "no such alias" does not count).
   */
  startAliasLookup(alias: RoomAlias, owner: string, now: number, until: number, overAbsent: boolean): Promise<boolean>;
  /** The homeserver had no such alias: remembered until `until`, in place of our asking (one write). */
  recordAliasAbsent(alias: RoomAlias, owner: string, until: number): Promise<void>;
  /** Our asking ended without an answer to remember (the alias exists, or the homeserver failed). */
  endAliasLookup(alias: RoomAlias, owner: string): Promise<void>;
  /**
   * The alias query came while the bridge itself was asking (at `now`): counts it and returns how
   * many came during this asking, or undefined when nobody is asking.
   */
  countAliasQuery(alias: RoomAlias, now: number): Promise<number | undefined>;
  /** Takes the creation lock over a ready alias whose room the homeserver lost (`roomId`, as recorded). */
  reclaimAlias(alias: RoomAlias, roomId: RoomId, owner: string, lockMs: number): Promise<boolean>;
  /** Frees the lock after a failure so the HS's next query can try again at once. */
  releaseAlias(alias: RoomAlias, owner: string): Promise<void>;
  setScrollbackPending(alias: RoomAlias, pending: boolean): Promise<void>;
  /** The alias's room was replaced (upgraded) by `to`; false when the record had moved on already. */
  moveRoom(room: NetworkRoom, to: RoomId): Promise<boolean>;
  /** The homeserver lost the room (a reset): its mapping goes, so the next join makes it again. */
  forgetRoom(room: NetworkRoom): Promise<void>;

  /**
   * Links a Matrix room to a network room under the network room's creation lock (lockAlias,
   * `owner`): the room's record and the network room's record, ready, in one transaction, only
   * while the Matrix room is not bridged already. Undefined when done.
   */
  recordLink(room: LinkedRoom, owner: string): Promise<LinkRefusal | undefined>;
  /**
   * A network room's Matrix room is no longer bridged (unlinked): both records go at once, the
   * network room's only while it names this room. False when they had gone already.
   */
  removeLink(room: NetworkRoom): Promise<boolean>;
  /** Every linked room, a page at a time (`from`: the last page's `next`). */
  listLinks(from?: string, limit?: number): Promise<{ links: LinkedRoom[]; next?: string }>;
  /** True only the first time for a (room, topic): a notice the bot gives once per room. */
  firstNotice(roomId: RoomId, topic: string): Promise<boolean>;
  /**
   * The bridged rooms among `roomIds`, of every kind, read in batches. Rooms recorded before
   * rooms had kinds (alias rooms only) are read too, and moved to the one record on the way.
   */
  getBridgedRooms(roomIds: RoomId[]): Promise<Map<RoomId, BridgedRoom>>;

  /** Direct chats, by (network user, Matrix user): the network's side of the room record. */
  getDirectChat(remoteUser: string, matrixUser: UserId): Promise<DirectChatRecord | undefined>;
  /** Takes the creation lock of the pair's direct chat when nobody holds it or the holder's lock ran out. */
  lockDirectChat(remoteUser: string, matrixUser: UserId, owner: string, lockMs: number): Promise<boolean>;
  /** Records the room made under our lock (room record, then the pair, ready); false when our lock was taken over. */
  markDirectChatReady(chat: DirectChat, owner: string): Promise<boolean>;
  /** Frees the lock after a failure, so that the next message can try again at once. */
  releaseDirectChat(remoteUser: string, matrixUser: UserId, owner: string): Promise<void>;
  /**
   * A Matrix user opened a direct chat (invited the virtual user with is_direct): the room is
   * recorded, and becomes the pair's direct chat unless the network is opening one just now.
   */
  recordDirectChat(chat: DirectChat): Promise<void>;
  /** The Matrix user left: the room is no longer bridged, and the pair's record goes if it names this room. */
  endDirectChat(chat: DirectChat): Promise<void>;

  getUser(userId: UserId): Promise<VirtualUser | undefined>;
  putUser(user: VirtualUser): Promise<void>;

  /** The transaction ledger: one record per pushed transaction, claim → progress → done. */
  claimTransaction(txnId: string, digest: string, owner: string, leaseUntil: number): Promise<TransactionClaim>;
  getTransaction(txnId: string): Promise<TransactionRecord | undefined>;
  /** False when our lease was taken over meanwhile (the new holder carries on). */
  recordProgress(txnId: string, owner: string, progress: TransactionProgress): Promise<boolean>;

  /** Scrollback: messages (and memberships) kept, newest `keep`, for a room that does not exist yet. */
  keepScrollback(alias: RoomAlias, kept: KeptEvent): Promise<void>;
  /** Oldest first; what has expired is left out even before DynamoDB's TTL deletes it. */
  listScrollback(alias: RoomAlias): Promise<KeptEvent[]>;
  dropScrollback(alias: RoomAlias, kept: KeptEvent[]): Promise<void>;

  /**
   * The message mapping, one record per bridged message: network message id → the event it is
   * (inbound dedup that outlives the homeserver's memory, and the target of the network's
   * edits, replies, reactions and deletions). Read consistently.
   */
  getBridgedMessage(networkId: string): Promise<BridgedMessage | undefined>;
  /** One write, kept MESSAGE_MAPPING_DAYS; it serves both directions. */
  recordBridgedMessage(message: BridgedMessage): Promise<void>;
  /**
   * Matrix event → the network's id for it (and its sender), when recorded. Read from an index:
   * a mapping written within the last second or so may not show yet.
   */
  mappingOfEvent(eventId: string): Promise<Pick<BridgedMessage, 'networkId' | 'sender'> | undefined>;

  /**
   * Rooms healed from the homeserver: records room ↔ alias, ready, for a room the homeserver
   * knows as ours and the table does not (lost, restored from an older backup). Writes only
   * where the alias has no record (or a creation lock that ran out); false when the alias is
   * recorded for another room or is being created.
   */
  adoptRoom(room: AliasRoom, scrollbackPending: boolean): Promise<boolean>;
}

/** A bridged message (or reaction): its id on the network, and the event it is in Matrix. */
export interface BridgedMessage {
  networkId: string;
  eventId: string;
  roomId: RoomId;
  /**
   * Who sent it in Matrix (a virtual user for the network's): only they may edit it. Absent on
   * records written before it was kept.
   */
  sender?: string;
  /** A reaction, not a message: it can be taken back (deleted), not edited or reacted to. */
  reaction?: true;
}

/**
 * The state store could not be reached, throttled us, or failed on its side, past its client's
 * own retries: the request may succeed later. It carries its HTTP status (as middy's
 * http-error-handler expects), so the HTTP shell answers 503 without knowing what a store is.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  readonly statusCode = 503;
  readonly expose = true;
  constructor(cause: unknown) {
    super('the application service cannot reach its state store (DynamoDB) just now; try again', { cause });
  }
}
