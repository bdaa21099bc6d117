/** Telling DynamoDB's passing trouble from our bugs (see StoreUnavailableError in port.ts). */

const RETRY_LATER_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
]);
const NO_CONNECTION = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * DynamoDB throttled us, failed on its side or could not be reached, and the SDK's own retries
 * did not get through: the request may succeed later (answer 503), it is no bug of ours.
 * Only errors that went through the SDK (they carry `$metadata`) qualify.
 */
export function isStoreUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const err = e as Error & { $metadata?: { httpStatusCode?: number }; code?: unknown };
  if (!err.$metadata) return false;
  return (
    RETRY_LATER_ERRORS.has(err.name) ||
    (err.$metadata.httpStatusCode ?? 0) >= 500 ||
    (typeof err.code === 'string' && NO_CONNECTION.has(err.code))
  );
}
