/**
 * The port to the third-party network. The use cases only see this interface;
 * adapters (open, webhook) plug in behind it.
 */

export interface RemoteUser {
  displayName: string;
  avatarUrl?: string;
}

export interface RemoteRoom {
  name: string;
  topic?: string;
}

/** A Matrix message on its way to the network (the webhook body of POST /messages). */
export interface OutboundMessage {
  /** The Matrix event ID; also sent as Idempotency-Key so the network can drop a resend. */
  id: string;
  room: string;
  sender: { userId: string; displayName?: string };
  msgtype: string;
  body: string;
  ts: number;
}

/** A delivery the network refused for good (4xx): retrying will not help. */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
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

export interface NetworkPort {
  /** undefined when the network does not know the user; throws when it cannot tell. */
  lookupUser(remoteUserId: string): Promise<RemoteUser | undefined>;
  lookupRoom(remoteRoomId: string): Promise<RemoteRoom | undefined>;
  /** Resolves when delivered; PermanentDeliveryError for a refusal; RetryLaterError (or any other error) is transient. */
  deliver(message: OutboundMessage): Promise<void>;
}
