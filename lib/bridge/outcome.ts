/**
 * Counts how a query or an inbound message ended, by outcome (the `Outcome` dimension of
 * lib/metrics.ts): what it returned when it succeeded, what kind of error when not.
 */
import { MatrixError } from '../matrix/errors.js';
import { recordMetricsBy } from '../metrics.js';

type Counted = 'UserQuery' | 'RoomQuery' | 'InboundMessage';

/** notFound (404: not ours, or unknown to the network), refused (another 4xx: bad input), failed (5xx: the HS retries). */
export function failureOutcome(e: unknown): string {
  const status = e instanceof MatrixError ? e.status : (e as { statusCode?: number })?.statusCode ?? 500;
  if (status === 404) return 'notFound';
  return status >= 400 && status < 500 ? 'refused' : 'failed';
}

export async function countOutcome<T>(metric: Counted, run: () => Promise<T>, outcomeOf: (result: T) => string): Promise<T> {
  let result: T;
  try {
    result = await run();
  } catch (e) {
    recordMetricsBy('Outcome', failureOutcome(e), { [metric]: 1 });
    throw e;
  }
  recordMetricsBy('Outcome', outcomeOf(result), { [metric]: 1 });
  return result;
}
