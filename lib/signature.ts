/**
 * Request signing between the AS and the network, both ways:
 * `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_SIGNATURE_AGE_S = 300;

export function sign(secret: string, body: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

export type SignatureCheck = { ok: true } | { ok: false; status: 401 | 403; reason: string };

export function verify(header: string | undefined, body: string, secret: string, now = Date.now()): SignatureCheck {
  if (!header) return { ok: false, status: 401, reason: 'X-Signature header is missing' };
  const parts = Object.fromEntries(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
    }),
  );
  const t = Number(parts.t);
  const v1 = parts.v1;
  if (!Number.isInteger(t) || typeof v1 !== 'string' || !/^[0-9a-f]{64}$/.test(v1)) {
    return { ok: false, status: 401, reason: 'X-Signature is not of the form t=<seconds>,v1=<hex>' };
  }
  if (Math.abs(now / 1000 - t) > MAX_SIGNATURE_AGE_S) {
    return { ok: false, status: 403, reason: 'X-Signature timestamp is more than 5 minutes away from now' };
  }
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  if (!timingSafeEqual(expected, Buffer.from(v1, 'hex'))) return { ok: false, status: 403, reason: 'X-Signature does not match' };
  return { ok: true };
}
