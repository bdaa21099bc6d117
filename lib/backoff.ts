/**
 * How long to wait before trying again, the one way every layer does it: the CS API client
 * between retries of a request, the store between rounds of a batch call, the deliver function
 * between attempts of a message on the queue.
 */
export interface Backoff {
  /** The wait before the first retry. */
  firstMs: number;
  /** Waits double from firstMs up to this. */
  maxMs: number;
  /** Up to this fraction added at random, so that many callers failing together do not come back together. */
  jitter?: number;
}

/**
 * The wait before retry number `retry` (1 = the first retry). When the other side said how long
 * to wait (`retryAfterMs`: Retry-After, `retry_after_ms`), that wins, but never beyond `maxMs`.
 */
export function backoffMs(retry: number, b: Backoff, retryAfterMs?: number, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) return Math.min(Math.max(retryAfterMs, 0), b.maxMs);
  const base = Math.min(b.maxMs, b.firstMs * 2 ** Math.max(0, retry - 1));
  return Math.round(Math.min(b.maxMs, base * (1 + (b.jitter ?? 0) * random())));
}
