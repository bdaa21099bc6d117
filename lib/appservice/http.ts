/**
 * The middy stack every function shares. Each middleware does one thing:
 * log the request, load the configuration and the handler's dependencies (cold start), check
 * the caller, parse the JSON body,
 * turn any error into a Matrix error response. Handlers return `{status, body}`.
 */
import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { ConfigError, getConfig } from '../config.js';
import type { Config } from '../config.js';
import { ErrCode, HomeserverError, MatrixError, badJson, forbidden, internalError, invalidParam, notJson, tooLarge, unauthorized } from '../matrix/errors.js';
import { logger } from '../log.js';
import type { Logger } from '../log.js';
import { recordColdStart, recordMetricsBy } from '../metrics.js';
import { verify } from '../signature.js';
import { checkHsToken } from './auth.js';

export interface Reply {
  status: number;
  body: unknown;
}

/** A reply of bytes (a medium), with its own headers; API Gateway gets it base64-encoded. */
export interface BytesReply {
  status: number;
  bytes: Buffer;
  headers: Record<string, string>;
}

/** What every handler is handed besides the event. */
export interface AsContext extends Context {
  config: Config;
  log: Logger;
  /** Epoch ms by which the answer must be on its way: the Lambda's time, less a margin. */
  deadline: number;
  /** Epoch ms at which Lambda kills this invocation: nothing of ours runs after it. */
  hardStop: number;
}

/** The context of a handler given dependencies `D` (the use cases' runtime, say), loaded once per cold start. */
export type AsContextWith<D> = AsContext & { deps: D };

export type AsEvent = APIGatewayProxyEventV2 & { json?: unknown };
type Internal = { started?: number };
type Mw<C extends AsContext = AsContext> = MiddlewareObj<AsEvent, APIGatewayProxyStructuredResultV2, Error, C, Internal>;

/** Lambda's own synchronous payload limit; the HS retries a 413 forever, so we stay at the platform's. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

export const ok = (body: unknown = {}, status = 200): Reply => ({ status, body });

export const bytesReply = (bytes: Buffer, headers: Record<string, string>, status = 200): BytesReply => ({ status, bytes, headers });

export interface EndpointOptions {
  /** Who may call: the homeserver (hs_token), the 3P network (X-Signature over the raw body), or anyone (404s). */
  auth: 'hs' | 'network' | 'none';
  /** Parse the body as a JSON object. */
  json?: boolean;
  /** Upper bound for the work, below the Lambda's timeout (the HS is waiting on queries). */
  maxMs?: number;
}

const json = (status: number, body: unknown): APIGatewayProxyStructuredResultV2 => ({
  statusCode: status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/**
 * An error raised below the shell that carries its own HTTP status, as middy's
 * http-error-handler expects (`statusCode`, and `expose` when its message may be shown):
 * a state store outage is a 503 where it arises, and the shell need not know what a store is.
 */
interface HttpStatusError extends Error {
  statusCode: number;
  expose?: boolean;
}

const isHttpStatusError = (e: unknown): e is HttpStatusError =>
  e instanceof Error && typeof (e as Partial<HttpStatusError>).statusCode === 'number' && (e as HttpStatusError).statusCode >= 400 && (e as HttpStatusError).statusCode < 600;

export function errorReply(e: unknown, log: Logger): Reply {
  if (e instanceof HomeserverError && e.misconfigured) {
    // Every request fails the same way until an operator fixes the setting: an error, naming it.
    log.error('configuration error', { setting: e.misconfigured, error: e.message });
    return { status: e.status, body: e.body };
  }
  if (e instanceof MatrixError) {
    if (e.status >= 500) log.warn('request failed', { status: e.status, errcode: e.errcode, error: e.message });
    return { status: e.status, body: e.body };
  }
  if (e instanceof ConfigError) {
    log.error('configuration error', { error: e.message });
    return { status: 500, body: internalError('the application service is misconfigured; see its logs').body };
  }
  if (isHttpStatusError(e)) {
    // Throttling or an outage of a service below us: the HS retries a 5xx, and by then it may be back.
    log.warn(e.message, { status: e.statusCode, err: e.cause ?? e });
    const message = e.expose ? e.message : 'the application service could not answer just now; try again';
    return { status: e.statusCode, body: { errcode: ErrCode.Unknown, error: message } };
  }
  log.error('unexpected error', { err: e });
  return { status: 500, body: internalError('internal error in the application service; see its logs').body };
}

/** Every answer counts toward its function's 5xx rate (the alarms in infra/alarms.yml). */
function answered(context: Context, status: number | undefined): void {
  recordMetricsBy('FunctionName', context.functionName, { Requests: 1, ServerErrors: (status ?? 500) >= 500 ? 1 : 0 });
}

const requestLog = (): Mw => ({
  before: (req) => {
    recordColdStart(req.context.functionName);
    const http = req.event.requestContext?.http;
    req.context.log = logger({ requestId: req.context.awsRequestId, method: http?.method, path: req.event.rawPath });
    req.internal.started = Date.now();
  },
  after: (req) => {
    req.context.log.info('answered', { status: req.response?.statusCode, ms: Date.now() - (req.internal.started ?? Date.now()) });
    answered(req.context, req.response?.statusCode);
  },
});

const matrixErrors = (): Mw => ({
  onError: (req) => {
    const log = req.context.log ?? logger({ requestId: req.context.awsRequestId });
    const reply = errorReply(req.error, log);
    req.response = json(reply.status, reply.body);
    log.info('answered', { status: reply.status, errcode: (reply.body as { errcode?: string }).errcode });
    answered(req.context, reply.status);
  },
});

const coldStart = (maxMs: number): Mw => ({
  before: async (req) => {
    req.context.config = await getConfig();
    const remaining = typeof req.context.getRemainingTimeInMillis === 'function' ? req.context.getRemainingTimeInMillis() : maxMs;
    req.context.deadline = Date.now() + Math.max(0, Math.min(maxMs, remaining - 1500));
    req.context.hardStop = Date.now() + remaining;
  },
});

const loadDeps = <D>(load: () => Promise<D>): Mw<AsContextWith<D>> => ({
  before: async (req) => {
    req.context.deps = await load();
  },
});

const hsAuth = (): Mw => ({
  before: (req) => checkHsToken(req.event, req.context.config.hsTokens),
});

const networkSignature = (): Mw => ({
  before: (req) => {
    // NETWORK_SECRET, and NETWORK_SECRET_NEXT while it is rotated: a signature under either will do.
    const secrets = req.context.config.network.acceptedSecrets;
    if (secrets.length === 0) throw forbidden('inbound messages are disabled: NETWORK_SECRET is not configured');
    // The signature covers the exact bytes sent, so it is checked before anything parses them.
    const check = verify(req.event.headers?.['x-signature'], rawBody(req.event), secrets);
    if (!check.ok) recordMetricsBy('Outcome', 'unauthorized', { InboundMessage: 1 });
    if (!check.ok) throw check.status === 401 ? unauthorized(check.reason) : forbidden(check.reason);
  },
});

export function rawBody(event: APIGatewayProxyEventV2): Buffer {
  if (event.body === undefined || event.body === null) return Buffer.alloc(0);
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
}

/** The body as a JSON object, or the Matrix error that says what is wrong with it. */
export function jsonObjectOf(event: APIGatewayProxyEventV2): Record<string, unknown> {
  const bytes = rawBody(event);
  if (bytes.length > MAX_BODY_BYTES) throw tooLarge(`body is over ${MAX_BODY_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw notJson('body is not valid UTF-8 JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badJson('body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

const jsonBody = (): Mw => ({
  before: (req) => {
    req.event.json = jsonObjectOf(req.event);
  },
});

type Handler<C> = (event: AsEvent, ctx: C) => Promise<Reply | BytesReply>;

/**
 * Wraps a handler in the shared stack. Given `deps` (a loader, run once per cold start by its
 * own cache), the handler gets them as `ctx.deps`; without, it has none, and its bundle carries
 * none of their code (ping and the 404s need neither DynamoDB nor the bridge).
 */
export function endpoint<D>(
  fn: Handler<AsContextWith<D>>,
  opts: EndpointOptions & { deps: () => Promise<D> },
): middy.MiddyfiedHandler<AsEvent, APIGatewayProxyStructuredResultV2, Error, AsContextWith<D>>;
export function endpoint(fn: Handler<AsContext>, opts: EndpointOptions): middy.MiddyfiedHandler<AsEvent, APIGatewayProxyStructuredResultV2, Error, AsContext>;
// The implementation is hidden behind the two signatures above, which are what callers see.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function endpoint(fn: Handler<any>, opts: EndpointOptions & { deps?: () => Promise<unknown> }): middy.MiddyfiedHandler<AsEvent, APIGatewayProxyStructuredResultV2, Error, any> {
  const stack = middy<AsEvent, APIGatewayProxyStructuredResultV2, Error, AsContextWith<unknown>, Internal>(async (event: AsEvent, ctx: AsContextWith<unknown>) => {
    const reply = await fn(event, ctx);
    if ('bytes' in reply) return { statusCode: reply.status, headers: reply.headers, body: reply.bytes.toString('base64'), isBase64Encoded: true };
    return json(reply.status, reply.body);
  })
    .use(requestLog())
    .use(matrixErrors())
    .use(coldStart(opts.maxMs ?? 25_000));
  if (opts.deps) stack.use(loadDeps(opts.deps));
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
export function pathId(rawPath: string, collection: 'users' | 'rooms' | 'transactions' | 'network'): string {
  const m = new RegExp(`^(?:/_matrix/app/v1)?/${collection}/(.+)$`).exec(rawPath);
  if (!m) throw invalidParam(`the path does not end in a ${collection} ID`);
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    throw invalidParam('the path is not validly percent-encoded');
  }
}

/** `/network/media/{server}/{mediaId}`, each part percent-decoded once. */
export function mediaPath(rawPath: string): { server: string; mediaId: string } {
  const m = /^\/network\/media\/([^/]+)\/([^/]+)$/.exec(rawPath);
  if (!m) throw invalidParam('the path is not /network/media/{server}/{mediaId}');
  try {
    return { server: decodeURIComponent(m[1]!), mediaId: decodeURIComponent(m[2]!) };
  } catch {
    throw invalidParam('the path is not validly percent-encoded');
  }
}

/**
 * The third-party lookup a path asks for: `/_matrix/app/v1/thirdparty/protocol/{protocol}`,
 * `…/location/{protocol}`, `…/user/{protocol}`, `…/location`, `…/user`, and the same under
 * `/_matrix/app/unstable/` (what Synapse called before 1.81). The protocol is read from the raw
 * path, percent-decoded once, as pathId reads IDs.
 */
export function thirdPartyPath(rawPath: string): { kind: 'protocol' | 'location' | 'user'; protocol?: string } {
  const m = /^\/_matrix\/app\/(?:v1|unstable)\/thirdparty\/(protocol|location|user)(?:\/(.*))?$/.exec(rawPath);
  if (!m || (m[1] === 'protocol' && m[2] === undefined)) throw invalidParam('the path is not a third-party lookup');
  const kind = m[1] as 'protocol' | 'location' | 'user';
  if (m[2] === undefined) return { kind };
  try {
    return { kind, protocol: decodeURIComponent(m[2]) };
  } catch {
    throw invalidParam('the path is not validly percent-encoded');
  }
}

/**
 * The query string's values by name, each as often as it was given, from the raw query string:
 * API Gateway's queryStringParameters join repeated names with commas, which a value may hold.
 * `access_token` (the homeserver's legacy authentication, checked by the hs_token middleware) is
 * left out: it is not part of any lookup.
 */
export function queryValues(event: Pick<APIGatewayProxyEventV2, 'rawQueryString'>): Record<string, string[]> {
  // No prototype: a parameter named __proto__ or constructor is just a name.
  const out: Record<string, string[]> = Object.create(null);
  for (const [name, value] of new URLSearchParams(event.rawQueryString ?? '')) {
    if (name === 'access_token') continue;
    (out[name] ??= []).push(value);
  }
  return out;
}
