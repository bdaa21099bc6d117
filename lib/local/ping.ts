/**
 * npm start's connectivity check: once the homeserver answers at all, ask it to ping the AS (the
 * spec's way, lib/matrix/ping.ts) and print what came of it, with what to check when it failed.
 * The homeserver may start after the AS, or not run yet at all: until it answers, this waits quietly.
 */
import { createCsClient } from '../matrix/client.js';
import { explainPing, pingAppservice } from '../matrix/ping.js';
import type { PingResult } from '../matrix/ping.js';
import { sleep } from '../time.js';

const LOOK_EVERY_MS = 2_000;
const PING_TIMEOUT_MS = 30_000;

export interface PingWhenUp {
  homeserverUrl: string;
  asToken: string;
  asId: string;
  asUrl: string;
  /** Stops the waiting (npm start stopping). */
  signal: AbortSignal;
  print: (line: string) => void;
}

async function answers(homeserverUrl: string, signal: AbortSignal): Promise<boolean> {
  try {
    await fetch(`${homeserverUrl.replace(/\/+$/, '')}/_matrix/client/versions`, { signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) });
    return true;
  } catch {
    return false;
  }
}

export async function pingWhenHomeserverAnswers(o: PingWhenUp): Promise<PingResult | undefined> {
  while (!(await answers(o.homeserverUrl, o.signal))) {
    if (o.signal.aborted) return undefined;
    await sleep(LOOK_EVERY_MS);
    if (o.signal.aborted) return undefined;
  }
  const cs = createCsClient({ homeserverUrl: o.homeserverUrl, asToken: o.asToken });
  const result = await pingAppservice(cs, o.asId, { deadline: Date.now() + PING_TIMEOUT_MS, now: Date.now });
  if (o.signal.aborted) return undefined;
  o.print(`ping: ${explainPing(result, { homeserverUrl: o.homeserverUrl, appserviceId: o.asId, asUrl: o.asUrl })}${result.ok ? '' : '\n  (npm run ping asks again)'}`);
  return result;
}
