/**
 * Request signing between the AS and the network, both ways:
 * `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
 *
 * We sign with one secret (one `v1`). We accept a header with several `v1` values, checked
 * against several secrets (Stripe's scheme): while a secret is rotated the network may sign with
 * either, or with both at once, and any `v1` that matches any accepted secret will do.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_SIGNATURE_AGE_S = 300;
/** More `v1` values than this is not a rotation but someone guessing: refused unread. */
export const MAX_SIGNATURES = 8;

/** A v1 is the hex of a 32-byte HMAC-SHA256; anything else cannot match and is never decoded. */
const V1 = /^[0-9a-fA-F]{64}$/;

/** The signed bytes are `"<t>."` then the body exactly as sent: text as UTF-8, a binary body (a media upload) as it is. */
const hmac = (secret: string, t: number, body: string | Uint8Array) => createHmac('sha256', secret).update(`${t}.`).update(body).digest();

export function sign(secret: string, body: string | Uint8Array, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `t=${t},v1=${hmac(secret, t, body).toString('hex')}`;
}

export type SignatureCheck = { ok: true } | { ok: false; status: 401 | 403; reason: string };

const UNPARSEABLE: SignatureCheck = { ok: false, status: 401, reason: 'X-Signature is not of the form t=<seconds>,v1=<hex>[,v1=<hex>…]' };

/**
 * Checks `header` over the exact `body` against every accepted secret (the current one first,
 * then the next one while rotating). Valid when the timestamp is within 5 minutes of `now` and
 * any well-formed `v1` is the HMAC under any of the secrets. Every comparison runs, in constant
 * time on equal-length buffers, whether or not an earlier one matched.
 */
export function verify(header: string | undefined, body: string | Uint8Array, secrets: string | readonly string[], now = Date.now()): SignatureCheck {
  if (!header) return { ok: false, status: 401, reason: 'X-Signature header is missing' };
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const key = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (key === 't') {
      // Two timestamps: which one was signed? Refuse rather than guess.
      if (t !== undefined || !/^\d{1,12}$/.test(value)) return UNPARSEABLE;
      t = Number(value);
    } else if (key === 'v1') candidates.push(value);
    // Other schemes (v0, a future v2) are not ours to check: skipped, as Stripe does.
  }
  if (t === undefined || candidates.length > MAX_SIGNATURES) return UNPARSEABLE;
  const signatures = candidates.filter((v) => V1.test(v)).map((v) => Buffer.from(v, 'hex'));
  if (signatures.length === 0) return UNPARSEABLE;
  if (Math.abs(now / 1000 - t) > MAX_SIGNATURE_AGE_S) {
    return { ok: false, status: 403, reason: 'X-Signature timestamp is more than 5 minutes away from now' };
  }
  let matched = false;
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) {
    const expected = hmac(secret, t, body);
    for (const sig of signatures) {
      // Both are 32 bytes (V1 above), so timingSafeEqual cannot throw.
      if (timingSafeEqual(expected, sig)) matched = true;
    }
  }
  return matched ? { ok: true } : { ok: false, status: 403, reason: 'X-Signature does not match' };
}

/**
 * Pre-signed links (the media links in outbound messages): `sig` is the hex HMAC-SHA256 of
 * `"<resource>.<expires>"` under the network secret, `expires` in unix seconds. The network
 * fetches the link as it is; anyone holding it can, until it expires, and only that resource.
 */
export const signLink = (secret: string, resource: string, expires: number): string => createHmac('sha256', secret).update(`${resource}.${expires}`).digest('hex');

export function verifyLink(resource: string, expires: string | undefined, sig: string | undefined, secrets: readonly string[], now = Date.now()): SignatureCheck {
  if (!expires || !sig || !/^\d{1,12}$/.test(expires) || !V1.test(sig)) return { ok: false, status: 403, reason: 'the link is not signed (expires and sig are required)' };
  const given = Buffer.from(sig, 'hex');
  let matched = false;
  for (const secret of secrets) if (timingSafeEqual(Buffer.from(signLink(secret, resource, Number(expires)), 'hex'), given)) matched = true;
  if (!matched) return { ok: false, status: 403, reason: 'the link signature does not match' };
  if (Number(expires) * 1000 < now) return { ok: false, status: 403, reason: 'the link has expired' };
  return { ok: true };
}
