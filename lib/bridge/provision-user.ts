/** The user query: make a virtual user exist on the HS when the network knows it. */
import { badRequest, isMatrixError, notFound } from '../matrix/errors.js';
import { parseUserId } from '../matrix/ids.js';
import type { UserId } from '../matrix/ids.js';
import { getUser, putUser } from '../store/users.js';
import type { Bridge } from './runtime.js';
import type { RemoteUser } from './network.js';

export type ProvisionResult = 'existing' | 'created';

export async function provisionUser(b: Bridge, userId: string, deadline: number): Promise<ProvisionResult> {
  if (!parseUserId(userId)) throw badRequest('M_INVALID_PARAM', `${JSON.stringify(userId)} is not a Matrix user ID`);
  const remote = b.ns.remoteUserOf(userId);
  if (!remote) throw notFound(`${userId} is not in this bridge's namespace`);
  if (await getUser(b.table, userId)) return 'existing';
  const profile = await b.network.lookupUser(remote);
  if (!profile) throw notFound(`the network has no user ${JSON.stringify(remote)}`);
  await registerVirtualUser(b, userId as UserId, profile, deadline);
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
    if (!isMatrixError(e, 'M_USER_IN_USE')) throw e;
  }
  await b.cs.setDisplayName(userId, profile.displayName, { deadline });
  // The HS only takes mxc:// avatars; an http(s) one would first have to be uploaded to its media repo.
  if (profile.avatarUrl?.startsWith('mxc://')) await b.cs.setAvatarUrl(userId, profile.avatarUrl, { deadline });
  else if (profile.avatarUrl) b.log.info('avatar not set: only mxc:// URLs are supported', { userId });
  await putUser(b.table, { userId, displayName: profile.displayName, avatarUrl: profile.avatarUrl, registeredAt: Date.now() });
}

/** Makes sure a virtual user exists, without asking the network when we recorded it before. */
export async function ensureVirtualUser(b: Bridge, userId: UserId, profile: RemoteUser, deadline: number): Promise<void> {
  // A warm Lambda remembers whom it has seen, so a busy room costs no read per message.
  if (b.knownUsers.get(userId) === profile.displayName) return;
  const known = await getUser(b.table, userId);
  if (!known || known.displayName !== profile.displayName) await registerVirtualUser(b, userId, profile, deadline);
  b.knownUsers.set(userId, profile.displayName);
}
