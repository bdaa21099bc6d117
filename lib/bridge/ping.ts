/**
 * The scheduled ping: ask the homeserver to call us back (lib/matrix/ping.ts) and record whether it
 * could. PingFailed is 0 or 1 every time, so the ping alarm sees a failure and, by the metric
 * going missing, a ping function that stopped running.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { recordMetrics } from '../metrics.js';
import { createCsClient } from '../matrix/client.js';
import { explainPing, pingAppservice } from '../matrix/ping.js';
import type { PingResult } from '../matrix/ping.js';

export async function pingHomeserver(
  config: Pick<Config, 'homeserverUrl' | 'asToken' | 'asId' | 'asUrl'>,
  ctx: { deadline: number; log: Logger; now: () => number },
): Promise<PingResult & { explanation: string }> {
  const cs = createCsClient({ homeserverUrl: config.homeserverUrl, asToken: config.asToken });
  const result = await pingAppservice(cs, config.asId, { deadline: ctx.deadline, now: ctx.now });
  recordMetrics(result.ok ? { PingFailed: 0, PingRoundTrip: result.roundTripMs } : { PingFailed: 1 });
  const explanation = explainPing(result, { homeserverUrl: config.homeserverUrl, appserviceId: config.asId, asUrl: config.asUrl });
  if (result.ok) ctx.log.info('ping', { durationMs: result.durationMs, roundTripMs: result.roundTripMs });
  else ctx.log.error('ping failed', { status: result.status, errcode: result.errcode, explanation });
  // What `npm run ping -- --stage S` (osls invoke) prints.
  return { ...result, explanation };
}
