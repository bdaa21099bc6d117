/**
 * The HTTP handler of the AWS SDK clients this code makes (DynamoDB in lib/store, SQS in
 * lib/queue): the SDK's fetch handler on Node's global fetch (undici), rather than its default,
 * `@smithy/node-http-handler` on node:http/https/http2.
 *
 * Why: cold start. The default handler's module imports node:https (with node:tls, node:net,
 * node:http) when the bundle is imported, whether or not a request is ever made; the Client-Server
 * calls (lib/matrix/client.ts) use global fetch already, so with this handler every outgoing
 * request of a function goes through the one HTTP stack Node loads on the first request.
 * serverless.yml's esbuild `alias` therefore puts lib/aws-node-http-handler.ts in that package's
 * place in the Lambda bundles.
 *
 * What stays the same: the SDK's retries (standard mode, maxAttempts) sit above the handler and
 * retry what it throws (network errors, see asNodeNetworkError; timeouts) as before; an
 * `abortSignal` ends the request; connections are kept alive and reused by undici's global pool
 * (its default: idle sockets closed after 4 s, or sooner if the server says so).
 * What differs: no socket-level timeouts of the SDK's (the Node handler has none set here
 * either, beyond a 300 s socket idle timeout; undici's own are 10 s to connect and 300 s for
 * headers and body).
 */
import { FetchHttpHandler } from '@smithy/fetch-http-handler';
import type { HttpHandlerOptions } from '@smithy/types';

type Request = Parameters<FetchHttpHandler['handle']>[0];

/** undici's codes for what node:http reports with a system error code. */
const UNDICI_CODES: Record<string, string> = {
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_HEADERS_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_BODY_TIMEOUT: 'ETIMEDOUT',
};

/**
 * Node's fetch fails every network error as `TypeError: fetch failed`, the reason in `cause`; the
 * Node handler's errors carry the system error code themselves (`code: 'ECONNREFUSED'`). The
 * SDK's retry strategy looks for that code (on the error or, for some, its cause), and so does
 * lib/store/errors.ts when it tells an unreachable DynamoDB (503) from a bug. So the error gets
 * its cause's code, undici's own mapped to the system code node:http would have given (a
 * connection the server dropped before answering, UND_ERR_SOCKET "other side closed", is
 * ECONNRESET there, and retried), and its cause's message.
 */
export function asNodeNetworkError(e: unknown): unknown {
  if (!(e instanceof TypeError) || e.message !== 'fetch failed') return e;
  const cause = e.cause as { code?: unknown; message?: unknown } | undefined;
  const code = typeof cause?.code === 'string' ? (UNDICI_CODES[cause.code] ?? cause.code) : undefined;
  return Object.assign(e, {
    ...(code ? { code } : {}),
    message: typeof cause?.message === 'string' ? `fetch failed: ${cause.message}` : e.message,
  });
}

/**
 * The request without its `content-length`, which fetch sets itself from the body (a browser
 * drops it too: it is a forbidden header there). Given explicitly, Node's fetch passes it on to
 * whatever dispatcher is global, and a newer undici installed as a global dispatcher (osls does,
 * in npm start's serverless-offline process) refuses the form it arrives in ("invalid
 * content-length header"). The value fetch sends is the same number, so the signature holds.
 */
function withoutContentLength(request: Request): Request {
  const headers = Object.fromEntries(Object.entries(request.headers).filter(([k]) => k.toLowerCase() !== 'content-length'));
  return { ...request, headers } as Request;
}

class AwsFetchHandler extends FetchHttpHandler {
  override async handle(request: Request, options?: HttpHandlerOptions) {
    try {
      return await super.handle(withoutContentLength(request), options);
    } catch (e) {
      throw asNodeNetworkError(e);
    }
  }
}

export function awsRequestHandler(): FetchHttpHandler {
  return new AwsFetchHandler();
}
