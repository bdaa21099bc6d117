/**
 * Matrix OpenID: a user proves who they are to a third party (an integration manager, our
 * provisioning API) with a token their homeserver gave them (`POST /user/{userId}/openid/request_token`),
 * which the third party hands back to that homeserver's federation API
 * (`GET /_matrix/federation/v1/openid/userinfo?access_token=…`) to learn the user ID.
 *
 * Only the bridge's own homeserver is asked, so only its own users can prove themselves this way;
 * a user of another server is answered "unknown token" (they use the bot's commands instead).
 */
import { createHash } from 'node:crypto';
import { ErrCode, MatrixError, unavailable } from './errors.js';
import { parseUserId } from './ids.js';
import type { UserId } from './ids.js';

/** How long a warm Lambda trusts a token it verified: a homeserver gives them for an hour. */
export const OPENID_CACHE_MS = 60_000;

export interface OpenIdVerifier {
  /** The user the token belongs to; 401 M_UNKNOWN_TOKEN when the homeserver does not know it, 503 when it cannot tell. */
  userOf(token: string, deadline: number): Promise<UserId>;
}

export function openIdVerifier(opts: { federationUrl: string; serverName: string; fetch?: typeof fetch; now?: () => number }): OpenIdVerifier {
  const doFetch = opts.fetch ?? fetch;
  // Keyed by the token's hash: the token itself is a credential and is kept nowhere.
  const verified = new Map<string, { userId: UserId; until: number }>();
  const now = opts.now ?? Date.now;
  const unknown = () => new MatrixError(401, ErrCode.UnknownToken, 'the OpenID token is unknown to the homeserver, or expired: request a new one');
  return {
    async userOf(token, deadline) {
      const key = createHash('sha256').update(token).digest('base64url');
      const cached = verified.get(key);
      if (cached && cached.until > now()) return cached.userId;
      verified.delete(key);
      const url = `${opts.federationUrl}/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token)}`;
      let res: Response;
      try {
        res = await doFetch(url, { signal: AbortSignal.timeout(Math.max(1, Math.min(10_000, deadline - Date.now()))) });
      } catch {
        throw unavailable('the homeserver could not be asked about the OpenID token just now; try again');
      }
      // Synapse answers a token it does not know 401 M_UNKNOWN_TOKEN.
      if (res.status === 401 || res.status === 403) throw unknown();
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        // 404 M_UNRECOGNIZED: no openid (or federation) listener there, as on Synapse's usual client-only port.
        // Every user's token would fail the same way: the operator's to fix, so not "your token".
        throw unavailable(
          `the homeserver does not answer OpenID userinfo at ${opts.federationUrl} (HTTP ${res.status}): HOMESERVER_FEDERATION_URL must be where it serves /_matrix/federation/v1/openid/userinfo (Synapse: a listener with the "openid" or "federation" resource)`,
        );
      }
      if (!res.ok) throw unavailable(`the homeserver answered the OpenID check with HTTP ${res.status}; try again`);
      const sub = ((await res.json().catch(() => undefined)) as { sub?: unknown } | undefined)?.sub;
      // A homeserver vouches for its own users only.
      if (typeof sub !== 'string' || parseUserId(sub)?.serverName !== opts.serverName) throw unknown();
      // Bounded: a warm Lambda keeps at most this many (the oldest go first).
      if (verified.size >= 1000) verified.delete(verified.keys().next().value as string);
      verified.set(key, { userId: sub as UserId, until: now() + OPENID_CACHE_MS });
      return sub as UserId;
    },
  };
}
