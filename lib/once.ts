/**
 * A value made once per cold start (configuration, clients) and shared by every request the warm
 * Lambda serves. A failure is not kept, so the next request tries again.
 */
export function perColdStart<T>(make: () => Promise<T>): () => Promise<T> {
  let cold: Promise<T> | undefined;
  return () => {
    if (!cold) {
      cold = make();
      cold.catch(() => (cold = undefined));
    }
    return cold;
  };
}
