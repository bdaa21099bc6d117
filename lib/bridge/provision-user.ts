/** Virtual users: the user query, invites of them, and making sure one exists before it speaks. */
import { ErrCode, invalidParam, isHomeserverError, notFound } from '../matrix/errors.js';
import { isUserId } from '../matrix/ids.js';
import type { RoomId, UserId } from '../matrix/ids.js';
import type { Bridge } from './runtime.js';
import type { RemoteUser } from './network.js';
import { countOutcome } from './outcome.js';

export type ProvisionResult = 'existing' | 'created';

/** The user query: make a virtual user exist on the HS when the network knows it. */
export const provisionUser = (b: Bridge, userId: string, deadline: number): Promise<ProvisionResult> =>
  countOutcome('UserQuery', () => provisionUserOnce(b, userId, deadline), (r) => r);

async function provisionUserOnce(b: Bridge, userId: string, deadline: number): Promise<ProvisionResult> {
  if (!isUserId(userId)) throw invalidParam(`${JSON.stringify(userId)} is not a Matrix user ID`);
  const remote = b.ns.remoteUserOf(userId);
  if (!remote) throw notFound(`${userId} is not in this bridge's namespace`);
  const recorded = await b.store.getUser(userId);
  if (recorded) {
    // The HS asks only about users it does not know: one we recorded means it lost it (a reset
    // database, an admin's deletion). Make it again from our record, without asking the network.
    forgetVirtualUser(b, userId);
    await reregisterVirtualUser(b, userId, { displayName: recorded.displayName ?? remote, avatarUrl: recorded.avatarUrl }, deadline);
    return 'existing';
  }
  const profile = await b.network.lookupUser(remote);
  if (!profile) throw notFound(`the network has no user ${JSON.stringify(remote)}`);
  await registerVirtualUser(b, userId, profile, deadline);
  return 'created';
}

/**
 * Registers (M_USER_IN_USE counts as done), sets the profile, then records the user.
 * The record comes last so that it only ever exists for a user the HS has.
 */
export async function registerVirtualUser(b: Bridge, userId: UserId, profile: RemoteUser, deadline: number): Promise<void> {
  try {
    await b.cs.register(b.ns.localpartOf(userId), { deadline });
  } catch (e) {
    if (!isHomeserverError(e, ErrCode.UserInUse)) throw e;
  }
  await b.cs.setDisplayName(userId, profile.displayName, { deadline });
  // The HS only takes mxc:// avatars; an http(s) one would first have to be uploaded to its media repo.
  if (profile.avatarUrl?.startsWith('mxc://')) await b.cs.setAvatarUrl(userId, profile.avatarUrl, { deadline });
  else if (profile.avatarUrl) b.log.info('avatar not set: only mxc:// URLs are supported', { userId });
  await b.store.putUser({ userId, displayName: profile.displayName, avatarUrl: profile.avatarUrl, registeredAt: Date.now() });
}

/**
 * Registers a user we recorded before, for a homeserver that may have lost it: M_USER_IN_USE
 * means it still has it (nothing more to do); otherwise the profile is set again.
 */
export async function reregisterVirtualUser(b: Bridge, userId: UserId, profile: RemoteUser, deadline: number): Promise<void> {
  try {
    await b.cs.register(b.ns.localpartOf(userId), { deadline });
  } catch (e) {
    if (isHomeserverError(e, ErrCode.UserInUse)) return;
    throw e;
  }
  b.log.info('registered a recorded user again: the homeserver had lost it', { userId });
  await registerVirtualUser(b, userId, profile, deadline);
}

/** Drops what this warm Lambda remembers of a user: it was kicked, left, or the HS lost it. */
export function forgetVirtualUser(b: Bridge, userId: UserId, roomId?: RoomId): void {
  if (roomId) b.joined.delete(`${roomId}|${userId}`);
  else for (const key of b.joined) if (key.endsWith(`|${userId}`)) b.joined.delete(key);
  if (!roomId) b.knownUsers.delete(userId);
}

/**
 * What a network request says of its user's profile: only what it names. A field it leaves out
 * is unchanged, never removed (a message need not repeat the display name a profile request set).
 */
export type SaidProfile = Partial<RemoteUser>;

/**
 * Makes sure a virtual user exists with the profile the network gives, without asking the
 * network when we recorded it before: registered (display name: the network's id unless it
 * names one), and its profile set again when the network says it changed. The profile it has.
 */
export async function ensureVirtualUser(b: Bridge, userId: UserId, said: SaidProfile, deadline: number): Promise<RemoteUser> {
  // A warm Lambda remembers whom it has seen, so a busy room costs no read per message.
  const remembered = b.knownUsers.get(userId);
  if (remembered && saysNothingNew(remembered, said)) return remembered;
  const known = await b.store.getUser(userId);
  const wanted: RemoteUser = {
    displayName: said.displayName ?? known?.displayName ?? b.ns.remoteUserOf(userId) ?? userId,
    ...((said.avatarUrl ?? known?.avatarUrl) !== undefined ? { avatarUrl: said.avatarUrl ?? known?.avatarUrl } : {}),
  };
  if (!known || !saysNothingNew({ displayName: known.displayName ?? '', avatarUrl: known.avatarUrl }, wanted)) {
    await registerVirtualUser(b, userId, wanted, deadline);
    if (known) b.log.info("a network user's profile changed: the virtual user's is set", { userId, displayName: known.displayName !== wanted.displayName, avatar: known.avatarUrl !== wanted.avatarUrl });
  }
  b.knownUsers.set(userId, wanted);
  return wanted;
}

const saysNothingNew = (known: RemoteUser, said: SaidProfile) =>
  (said.displayName === undefined || said.displayName === known.displayName) && (said.avatarUrl === undefined || said.avatarUrl === known.avatarUrl);

/** POST /network/profile: a network user's new display name or avatar, set on its virtual user. */
export async function updateVirtualUserProfile(b: Bridge, remoteUser: string, said: SaidProfile, deadline: number): Promise<UserId> {
  let userId: UserId;
  try {
    userId = b.ns.userIdFor(remoteUser);
  } catch (e) {
    if (e instanceof RangeError) throw invalidParam(`user.id makes a Matrix ID over 255 bytes: ${e.message}`);
    throw e;
  }
  // Read afresh: another copy may have set it since this warm Lambda did.
  b.knownUsers.delete(userId);
  await ensureVirtualUser(b, userId, said, deadline);
  return userId;
}

/** Joins a virtual user to a room, once per warm Lambda: joins are idempotent, this saves calls. */
export async function joinVirtualUser(b: Bridge, userId: UserId, roomId: RoomId, deadline: number): Promise<void> {
  const key = `${roomId}|${userId}` as const;
  if (b.joined.has(key)) return;
  try {
    await b.cs.join(roomId, { deadline, asUser: userId });
  } catch (e) {
    // An invite-only room (a linked room, most often): the bot, which is in every bridged room,
    // invites the user, then it joins, as matrix-appservice-bridge's Intent.ensureJoined does.
    // A ban stays a refusal: the invite is refused too.
    if (!isHomeserverError(e) || e.hs.status !== 403) throw e;
    try {
      await b.cs.invite(roomId, userId, { deadline });
    } catch {
      throw e;
    }
    await b.cs.join(roomId, { deadline, asUser: userId });
  }
  b.joined.add(key);
}

/**
 * A Matrix user invited one of our virtual users (a DM, or into a room): register it if need be
 * and join. False when the network does not know the user (the invite is left alone).
 */
export async function acceptInvite(b: Bridge, userId: UserId, roomId: RoomId, deadline: number): Promise<boolean> {
  if (!(await b.store.getUser(userId))) {
    const remote = b.ns.remoteUserOf(userId);
    const profile = remote === undefined ? undefined : await b.network.lookupUser(remote);
    if (!profile) {
      b.log.info('invite for a user the network does not know; ignored', { userId, roomId });
      return false;
    }
    await registerVirtualUser(b, userId, profile, deadline);
  }
  await b.cs.join(roomId, { deadline, asUser: userId });
  b.joined.add(`${roomId}|${userId}`);
  return true;
}
