/**
 * The middy stack every function shares. Each middleware does one thing:
 * log the request, load the bridge (cold start), check the caller, parse the JSON body,
 * turn any error into a Matrix error response. Handlers return `{status, body}`.
 */
import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { ConfigError, getConfig } from '../config.js';
import type { Config } from '../config.js';
import { MatrixError } from '../matrix/errors.js';
import { logger } from '../log.js';
import { isStoreUnavailable } from '../store/errors.js';
import type { Logger } from '../log.js';
import type { Bridge } from '../bridge/runtime.js';
import { checkHsToken } from './auth.js';
import { verify } from '../bridge/signature.js';

export interface Reply {
  status: number;
  body: unknown;
}

export interface AsContext extends Context {
  config: Config;
  /** Set for endpoints given a `bridge` loader; ping and the 404s do without (and without DynamoDB in their bundle). */
  bridge: Bridge;
  log: Logger;
  /** Epoch ms by which the answer must be on its way: the Lambda's time, less a margin. */
  deadline: number;
  /** Epoch ms at which Lambda kills this invocation: nothing of ours runs after it. */
  hardStop: number;
}

export type AsEvent = APIGatewayProxyEventV2 & { json?: unknown };
type Internal = { started?: number };
type Mw = MiddlewareObj<AsEvent, APIGatewayProxyStructuredResultV2, Error, AsContext, Internal>;

/** Lambda's own synchronous payload limit; the HS retries a 413 forever, so we stay at the platform's. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

export const ok = (body: unknown = {}, status = 200): Reply => ({ status, body });

export interface EndpointOptions {
  /** Who may call: the homeserver (hs_token), the 3P network (X-Signature over the raw body), or anyone (404s). */
  auth: 'hs' | 'network' | 'none';
  /** Parse the body as a JSON object. */
  json?: boolean;
  /** Upper bound for the work, below the Lambda's timeout (the HS is waiting on queries). */
  maxMs?: number;
  /** The use cases' dependencies (usually `getBridge`), for endpoints that need them. */
  bridge?: () => Promise<Bridge>;
}

const json = (status: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode: status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export function errorReply(e: unknown, log: Logger): Reply {
  if (e instanceof MatrixError) {
    if (e.status >= 500) log.warn('request failed', { status: e.status, errcode: e.errcode, error: e.message });
    return { status: e.status, body: e.body };
  }
  if (e instanceof ConfigError) {
    log.error('configuration error', { error: e.message });
    return { status: 500, body: { errcode: 'M_UNKNOWN', error: 'the application service is misconfigured; see its logs' } };
  }
  if (isStoreUnavailable(e)) {
    // Throttling or an outage of DynamoDB: the HS retries a 5xx, and by then it may be back.
    log.warn('state store unavailable', { err: e });
    return { status: 503, body: { errcode: 'M_UNKNOWN', error: 'the application service cannot reach its state store (DynamoDB) just now; try again' } };
  }
  log.error('unexpected error', { err: e });
  return { status: 500, body: { errcode: 'M_UNKNOWN', error: 'internal error in the application service; see its logs' } };
}

const requestLog = (): Mw => ({
  before: (req) => {
    const http = req.event.requestContext?.http;
    req.context.log = logger({ requestId: req.context.awsRequestId, method: http?.method, path: req.event.rawPath });
    req.internal.started = Date.now();
  },
  after: (req) => {
    req.context.log.info('answered', { status: req.response?.statusCode, ms: Date.now() - (req.internal.started ?? Date.now()) });
  },
});

const matrixErrors = (): Mw => ({
  onError: (req) => {
    const log = req.context.log ?? logger({ requestId: req.context.awsRequestId });
    const reply = errorReply(req.error, log);
    req.response = json(reply.status, reply.body);
    log.info('answered', { status: reply.status, errcode: (reply.body as { errcode?: string }).errcode });
  },
});

const coldStart = (load: EndpointOptions['bridge'], maxMs: number): Mw => ({
  before: async (req) => {
    req.context.config = await getConfig();
    if (load) req.context.bridge = await load();
    const remaining = typeof req.context.getRemainingTimeInMillis === 'function' ? req.context.getRemainingTimeInMillis() : maxMs;
    req.context.deadline = Date.now() + Math.max(0, Math.min(maxMs, remaining - 1500));
    req.context.hardStop = Date.now() + remaining;
  },
});

const hsAuth = (): Mw => ({
  before: (req) => checkHsToken(req.event, req.context.config.hsTokens),
});

const networkSignature = (): Mw => ({
  before: (req) => {
    const secret = req.context.config.network.secret;
    if (!secret) throw new MatrixError(403, 'M_FORBIDDEN', 'inbound messages are disabled: NETWORK_SECRET is not configured');
    // The signature covers the exact bytes sent, so it is checked before anything parses them.
    const check = verify(req.event.headers?.['x-signature'], rawBody(req.event).toString('utf8'), secret);
    if (!check.ok) throw new MatrixError(check.status, check.status === 401 ? 'M_UNAUTHORIZED' : 'M_FORBIDDEN', check.reason);
  },
});

export function rawBody(event: APIGatewayProxyEventV2): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

const jsonBody = (): Mw => ({
  before: (req) => {
    const bytes = rawBody(req.event);
    if (bytes.length > MAX_BODY_BYTES) throw new MatrixError(413, 'M_TOO_LARGE', `body is over ${MAX_BODY_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new MatrixError(400, 'M_NOT_JSON', 'body is not valid UTF-8 JSON');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new MatrixError(400, 'M_BAD_JSON', 'body must be a JSON object');
    }
    req.event.json = parsed;
  },
});

/** Wraps a handler in the shared stack. */
export function endpoint(
  fn: (event: AsEvent, ctx: AsContext) => Promise<Reply>,
  opts: EndpointOptions,
) {
  const stack = middy<AsEvent, APIGatewayProxyStructuredResultV2, Error, AsContext, Internal>(async (event: AsEvent, ctx: AsContext) => {
    const reply = await fn(event, ctx);
    return json(reply.status, reply.body);
  })
    .use(requestLog())
    .use(matrixErrors())
    .use(coldStart(opts.bridge, opts.maxMs ?? 25_000));
  if (opts.auth === 'hs') stack.use(hsAuth());
  if (opts.auth === 'network') stack.use(networkSignature());
  if (opts.json) stack.use(jsonBody());
  return stack;
}

/**
 * The ID a route carries at the end of its path (`/_matrix/app/v1/users/{userId+}`), from the raw
 * path, percent-decoded exactly once. The ID may hold `/`: Synapse leaves it unencoded (its issue
 * #14511), and API Gateway decodes `%2F` before matching, so routes take the rest of the path
 * greedily; and it may hold `%` (legal in aliases), so API Gateway's own path parameters, decoded
 * a second time, would be wrong.
 */
export function pathId(rawPath: string, collection: 'users' | 'rooms' | 'transactions'): string {
  const m = new RegExp(`^(?:/_matrix/app/v1)?/${collection}/(.+)$`).exec(rawPath);
  if (!m) throw new MatrixError(400, 'M_INVALID_PARAM', `the path does not end in a ${collection} ID`);
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    throw new MatrixError(400, 'M_INVALID_PARAM', 'the path is not validly percent-encoded');
  }
}
