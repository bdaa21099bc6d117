/**
 * The port to the third-party network. The use cases only see this interface;
 * adapters (open, webhook) plug in behind it.
 */
import type { MediaInfo } from '../store/index.js';

export interface RemoteUser {
  displayName: string;
  avatarUrl?: string;
}

export interface RemoteRoom {
  name: string;
  topic?: string;
}

/**
 * A message either side knows: the Matrix event ID always (the network was given it as the
 * message's `id`, or answered it to the AS), and the network's own id when the AS has one.
 */
export interface MessageRef {
  eventId: string;
  id?: string;
}

/** A mentioned user: the Matrix ID, and the network's id when it is one of the network's users. */
export interface Mention {
  userId: string;
  id?: string;
}

/** A Matrix medium, for the network to fetch through the AS (`url`, a pre-signed link). */
export interface OutboundMedia extends MediaInfo {
  mxc: string;
  /** Absent when the AS has no public URL or no network secret to sign with, or when `tooLarge`. */
  url?: string;
  /** Over the AS's media limit (MESSAGES.MEDIA_MAX_BYTES): it cannot pass through the AS. */
  tooLarge?: true;
}

/** A Matrix user's avatar (2.3): the `mxc://` URI, and a pre-signed link to its bytes when the AS can make one. */
export interface OutboundAvatar {
  mxc: string;
  url?: string;
}

/** A Matrix user as the network sees them: on joins and profile changes, with their avatar. */
export interface OutboundUser {
  userId: string;
  displayName?: string;
  avatar?: OutboundAvatar;
}

/**
 * Where on the network a delivery belongs, exactly one of: a network room (`room`, an alias or
 * linked room), or a private conversation with one network user (`direct`, a direct chat).
 */
export interface Where {
  room?: string;
  direct?: { with: string };
}

/** What every delivery carries: the Matrix event it is, where, from whom, when. */
interface DeliveryBase extends Where {
  /** The Matrix event ID; also sent as Idempotency-Key so the network can drop a resend. */
  id: string;
  sender: OutboundUser;
  ts: number;
}

/** What a message says: plain text always, HTML and mentions when the Matrix client sent them. */
export interface MessageText {
  msgtype: string;
  body: string;
  formattedBody?: string;
  mentions?: Mention[];
}

/** A new message (the webhook body of POST /messages). */
export interface OutboundMessage extends DeliveryBase, MessageText {
  replyTo?: MessageRef;
  media?: OutboundMedia;
}

/** An edit of an earlier message (POST /edits): its new text. */
export interface OutboundEdit extends DeliveryBase, MessageText {
  target: MessageRef;
}

/** A Matrix redaction of a bridged message or reaction (POST /deletions). */
export interface OutboundDeletion extends DeliveryBase {
  target: MessageRef;
  reason?: string;
}

/** An `m.annotation` reaction (POST /reactions). */
export interface OutboundReaction extends DeliveryBase {
  target: MessageRef;
  key: string;
}

/**
 * A Matrix user joined, left, was kicked (`leave` sent by someone else) or banned in a bridged
 * room (POST /members): `sender` is who did it, `user` whom it is about.
 */
export interface OutboundMembership extends DeliveryBase {
  user: OutboundUser;
  membership: 'join' | 'leave' | 'ban';
  reason?: string;
}

/** A Matrix user in a bridged room changed their display name or avatar (POST /profile): `sender` is the profile now. */
export interface OutboundProfile extends DeliveryBase {
  previousDisplayName?: string;
}

/** One delivery to the network, by kind; the kind names the webhook path. */
export type Delivery =
  | { kind: 'messages'; body: OutboundMessage }
  | { kind: 'edits'; body: OutboundEdit }
  | { kind: 'deletions'; body: OutboundDeletion }
  | { kind: 'reactions'; body: OutboundReaction }
  | { kind: 'members'; body: OutboundMembership }
  | { kind: 'profile'; body: OutboundProfile };

export type DeliveryKind = Delivery['kind'];

/** The network took it; `id` is its own id for what it took, when it answered one. */
export interface Delivered {
  id?: string;
}

/** A delivery the network refused for good (4xx): retrying will not help. */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}

/**
 * The network does not do this kind at all (it answered 501: reactions on a network without
 * them, say): dropped without retries, and without telling the sender as if it were a refusal.
 */
export class UnsupportedDeliveryError extends PermanentDeliveryError {
  override name = 'UnsupportedDeliveryError';
}

/** An edit, deletion or reaction whose target the network does not know (it answered 404): dropped quietly. */
export class UnknownTargetError extends PermanentDeliveryError {
  override name = 'UnknownTargetError';
}

/** A delivery that failed for now (5xx, 408, 429, timeout, no connection); `retryAfterMs` when the network said when. */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/**
 * A search of the network's rooms or users (the Application Service API's third-party lookups):
 * the protocol's fields a Matrix client filled in, by name, e.g. `{channel: "#matrix"}`.
 */
export type SearchFields = Record<string, string>;

/** One room or user a search found: its id on the network, and the fields that identify it, when the network says. */
export interface SearchHit {
  id: string;
  fields?: Record<string, string>;
}

/** A Matrix room to be linked to one of the network's rooms, or unlinked from it (POST /links, /unlinks). */
export interface LinkRequest {
  /** The network room. */
  room: string;
  matrixRoomId: string;
  /** The Matrix user who asked. */
  requestedBy: string;
}

/** The network's answer to a link request: approved, or refused with a reason for the user. */
export type LinkAnswer = { approved: true } | { approved: false; reason: string };

export interface NetworkPort {
  /** Asks the network whether a Matrix room may be linked to its room; throws (503) when it cannot tell. */
  requestLink(request: LinkRequest): Promise<LinkAnswer>;
  /** Tells the network a link ended; throws when it could not be told. */
  announceUnlink(request: LinkRequest): Promise<void>;
  /** undefined when the network does not know the user; throws when it cannot tell. */
  lookupUser(remoteUserId: string): Promise<RemoteUser | undefined>;
  lookupRoom(remoteRoomId: string): Promise<RemoteRoom | undefined>;
  /**
   * The network's rooms or users matching the fields, best first; [] when none (or when the
   * network does no searches); throws (503) when it cannot tell, never a false "none".
   */
  searchRooms(fields: SearchFields): Promise<SearchHit[]>;
  searchUsers(fields: SearchFields): Promise<SearchHit[]>;
  /**
   * Resolves when delivered, with the network's own id when it answered one;
   * PermanentDeliveryError (UnsupportedDeliveryError, UnknownTargetError) for a refusal;
   * RetryLaterError (or any other error) is transient.
   */
  deliver(delivery: Delivery): Promise<Delivered>;
}
