/** Checks that a request comes from our homeserver: its hs_token, in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';
import { forbidden, unauthorized } from '../matrix/errors.js';

export interface TokenCarrier {
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The token the request carries: `Authorization: Bearer` (current spec) or `?access_token=` (legacy). */
export function presentedToken(req: TokenCarrier): string | undefined {
  const auth = req.headers?.authorization ?? req.headers?.Authorization;
  const bearer = auth?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  const query = req.queryStringParameters?.access_token;
  if (auth !== undefined && bearer === undefined) throw unauthorized('Authorization header is not a Bearer token');
  if (bearer !== undefined && query !== undefined && bearer !== query) {
    throw forbidden('the Authorization header and access_token disagree');
  }
  return bearer ?? query;
}

export function checkHsToken(req: TokenCarrier, accepted: readonly string[]): void {
  const token = presentedToken(req);
  if (!token) throw unauthorized('no hs_token: send Authorization: Bearer <hs_token>');
  // Hashing first gives equal lengths for timingSafeEqual; every accepted token is compared
  // so the time taken does not tell which one (if any) matched.
  const presented = digest(token);
  let ok = false;
  for (const t of accepted) ok = timingSafeEqual(presented, digest(t)) || ok;
  if (!ok) throw forbidden('the hs_token is not the one this application service was registered with');
}
