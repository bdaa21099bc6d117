/**
 * The homeserver → AS connectivity check, the spec's way (v1.7): we ask the homeserver
 * (`POST /_matrix/client/v1/appservice/{appserviceId}/ping`, with the as_token), it calls our
 * `POST /_matrix/app/v1/ping` (with the hs_token and our transaction ID) and tells us how that went.
 * One round trip proves the URL in the registration, both tokens and the path between them.
 * Used by the scheduled ping function, `npm run ping` and `npm start`.
 */
import type { CsClient } from './client.js';

export type PingResult =
  | { ok: true; transactionId: string; /** the homeserver's own measure of its call to us */ durationMs: number; /** ours, of the whole exchange */ roundTripMs: number }
  | {
      ok: false;
      transactionId: string;
      /** the homeserver's HTTP status; 0 when it did not answer at all */
      status: number;
      /** its errcode (M_URL_NOT_SET, M_CONNECTION_FAILED, ...), or UNREACHABLE / TIMEOUT when it did not answer */
      errcode: string;
      error: string;
      /** M_BAD_STATUS: what our endpoint answered the homeserver */
      asStatus?: number;
      asBody?: string;
      roundTripMs: number;
    };

export async function pingAppservice(
  cs: Pick<CsClient, 'pingAppservice'>,
  appserviceId: string,
  opts: { deadline: number; now: () => number; transactionId?: string },
): Promise<PingResult> {
  const transactionId = opts.transactionId ?? `ping-${opts.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const started = opts.now();
  const { status, body } = await cs.pingAppservice(appserviceId, transactionId, { deadline: opts.deadline });
  const roundTripMs = opts.now() - started;
  if (status >= 200 && status < 300 && typeof body.duration_ms === 'number') return { ok: true, transactionId, durationMs: body.duration_ms, roundTripMs };
  const errcode = typeof body.errcode === 'string' ? body.errcode : status === 0 ? (/in time/.test(String(body.error)) ? 'TIMEOUT' : 'UNREACHABLE') : `HTTP_${status}`;
  return {
    ok: false,
    transactionId,
    status,
    errcode,
    error: typeof body.error === 'string' ? body.error : status >= 200 && status < 300 ? 'the answer has no duration_ms' : 'no error text',
    ...(typeof body.status === 'number' ? { asStatus: body.status } : {}),
    ...(typeof body.body === 'string' ? { asBody: body.body } : {}),
    roundTripMs,
  };
}

export interface PingSetting {
  homeserverUrl: string;
  appserviceId: string;
  /** where the homeserver should reach us, when known (the registration's `url`) */
  asUrl?: string;
}

/** One line on what happened, then what to check: for a person reading `npm run ping`, `npm start` or a log. */
export function explainPing(r: PingResult, s: PingSetting): string {
  if (r.ok) return `the homeserver reached the AS: its call took ${r.durationMs} ms (${r.roundTripMs} ms round trip from here)`;
  const where = s.asUrl ? ` (${s.asUrl})` : '';
  const head = `the homeserver could not reach the AS: ${r.status ? `HTTP ${r.status} ` : ''}${r.errcode}: ${r.error}`;
  return `${head}\n  what to check: ${advice(r, s, where)}`;
}

function advice(r: Extract<PingResult, { ok: false }>, s: PingSetting, where: string): string {
  switch (r.errcode) {
    case 'UNREACHABLE':
      return `nothing answers at HOMESERVER_URL ${s.homeserverUrl}: is the homeserver running, and is that its client API address as seen from the AS?`;
    case 'TIMEOUT':
      return `the homeserver at ${s.homeserverUrl} did not answer in time: is it overloaded, or is the address a firewall drops?`;
    case 'M_URL_NOT_SET':
      return `the registration file the homeserver loaded has no \`url\`: set it to the AS's address${where} and restart the homeserver`;
    case 'M_UNKNOWN_TOKEN':
    case 'M_MISSING_TOKEN':
      return `the homeserver does not know our as_token: is the registration file in its app_service_config_files (restart after adding it), and is its as_token the AS's AS_TOKEN?`;
    case 'M_FORBIDDEN':
      return `the as_token is not the one of the appservice '${s.appserviceId}': AS_ID must be the registration file's \`id\`, and AS_TOKEN its as_token`;
    case 'M_CONNECTION_FAILED':
      return `the homeserver could not connect to the registration's url${where}: is the AS running there, and can the homeserver's host reach it (in a container, 127.0.0.1 is the container itself; LISTEN_HOST=0.0.0.0 for npm start)?`;
    case 'M_CONNECTION_TIMEOUT':
      return `the AS at the registration's url${where} did not answer the homeserver in time: is something in between holding the connection, or is the AS stuck (its logs)?`;
    case 'M_BAD_STATUS':
      if (r.asStatus === 401 || r.asStatus === 403)
        return `the AS refused the homeserver's hs_token (HTTP ${r.asStatus}): the registration's hs_token must be the AS's HS_TOKEN (or HS_TOKEN_NEXT during a rotation)`;
      if (r.asStatus === 404 || r.asStatus === 405)
        return `the registration's url${where} answers, but not as this AS (HTTP ${r.asStatus}): is it the AS's base URL, without a path?`;
      return `the AS answered the homeserver's call with HTTP ${r.asStatus ?? '?'}${r.asBody ? ` (${r.asBody.slice(0, 200)})` : ''}: see the AS's logs`;
    case 'M_UNRECOGNIZED':
    case 'HTTP_404':
      return `the homeserver does not have the ping endpoint (Matrix v1.7, Synapse 1.84 or later): nothing to check this way, push and queries may still work`;
    default:
      return `an answer the spec does not list for a ping: see the homeserver's logs`;
  }
}
