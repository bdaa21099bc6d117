/**
 * `npm start`'s front door: the server on the public PORT / LISTEN_HOST, in front of serverless-offline.
 *
 * Why it exists. serverless-offline serves the routes with hapi, and hapi answers some requests
 * itself, in its own words (`{"statusCode":400,"error":"Bad Request","message":"…"}`), before any
 * function runs: a path that is not validly percent-encoded (`%ZZ`, `%C0%AF`; hapi decodes route
 * parameters itself and gives up), a Cookie or Content-Type header it cannot parse, a body over
 * its 10 MB limit, a request target that is not a path (`OPTIONS *`). Every error the AS sends must
 * be a Matrix error, and the deployed functions, which get such a request as it is, answer it as
 * one (pathId: `400 M_INVALID_PARAM`).
 *
 * Why a front server rather than a hapi extension: serverless-offline keeps its hapi server in a
 * private field (`#server`) and offers no hook to register an `onRequest` / `onPreResponse`
 * extension from outside, short of patching node_modules or monkey-patching hapi inside the osls
 * process. So it is wrapped instead, and it stays what serves every route: this server forwards
 * each request as it came (method, raw target, headers, body streamed) to serverless-offline on a
 * loopback port and streams its answer back.
 *
 * What it does itself, and only then:
 * - serverless-offline answers with one of hapi's own 4xx errors, so no function ran: the request
 *   (whose body was kept, up to the Lambda payload limit, for this) is handed to the function API
 *   Gateway would route it to, through serverless-offline's own Lambda invoke API, with the event
 *   API Gateway would build (rawPath as sent). The answer is then the function's own, as deployed:
 *   e.g. 401 without hs_token, else 400 M_INVALID_PARAM for a bad escape in an ID path, and
 *   404/405 M_UNRECOGNIZED on an unknown path; nothing here has to know those rules.
 * - a request whose body is binary by its content-type (not text/*, JSON or XML: say, an image
 *   for POST /network/media) goes to its function the same way, never through hapi:
 *   serverless-offline decodes every body as UTF-8 but application/octet-stream and
 *   multipart/form-data, so bytes that are not UTF-8 would reach the function as U+FFFD (and a
 *   signature over them would never match). API Gateway hands such a body over base64-encoded
 *   (isBase64Encoded), and so does the event built here. Binary answers (isBase64Encoded, the
 *   media links') come back from either way as the exact bytes.
 * - any other error body that is not Matrix JSON (serverless-offline's 502 for a crashed
 *   handler, a hapi 5xx) becomes a Matrix error with the same status;
 * - a body over hapi's limit, a request Node cannot parse as HTTP (unknown method, oversized
 *   headers) or refuses (HTTP/1.1 without Host), and CONNECT never reach a function in a usable
 *   form: answered here, as Matrix errors.
 * Answers that are Matrix errors already pass through untouched, whatever their status.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, STATUS_CODES, createServer, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parse } from 'yaml';
import { MAX_BODY_BYTES } from '../appservice/http.js';
import { unrecognized } from '../appservice/routes.js';
import { ErrCode, MatrixError, tooLarge, unavailable } from '../matrix/errors.js';

/** serverless-offline's payload limit on its routes (hapi `maxBytes`, API Gateway's own limit). */
const OFFLINE_MAX_BYTES = 10 * 1024 * 1024;
/** Error bodies longer than this are not ours (a Matrix error is a few hundred bytes). */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const INVOKE_TIMEOUT_MS = 60_000;

/** One serverless.yml `httpApi` event: `METHOD /path` (method `ANY` for `*`), or the `$default` route (path null). */
export interface Route {
  method: string;
  path: string | null;
  routeKey: string;
  functionName: string;
}

interface FunctionDef {
  name?: unknown;
  events?: Array<{ httpApi?: unknown }>;
}

/** The routes serverless.yml deploys, read from the file itself so there is one list of them. */
export function loadRoutes(serverlessYml: string, stage: string): Route[] {
  const doc = parse(readFileSync(serverlessYml, 'utf8')) as { service: string; functions?: Record<string, FunctionDef> };
  const routes: Route[] = [];
  for (const [key, fn] of Object.entries(doc.functions ?? {})) {
    // serverless-offline's invoke API knows a function by its deployed name.
    const functionName = typeof fn.name === 'string' ? fn.name : `${doc.service}-${stage}-${key}`;
    for (const event of fn.events ?? []) {
      const h = event.httpApi as string | { method?: string; path?: string } | undefined;
      if (h === undefined) continue;
      const [method, path] = typeof h === 'string' ? (h === '*' ? ['*', '*'] : h.split(/\s+/, 2)) : [h.method ?? '*', h.path ?? '*'];
      if (path === '*' || path === undefined) routes.push({ method: 'ANY', path: null, routeKey: '$default', functionName });
      else {
        const m = method === '*' ? 'ANY' : (method ?? 'ANY').toUpperCase();
        routes.push({ method: m, path, routeKey: `${m} ${path}`, functionName });
      }
    }
  }
  return routes;
}

/** A route path as a regex over the raw path: `{name}` is one segment, `{name+}` the rest of the path. */
function routeRegex(path: string): RegExp {
  const source = path
    .split(/(\{[^}]+\})/)
    .map((part) => {
      const v = /^\{([^}+]+)(\+?)\}$/.exec(part);
      if (!v) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return v[2] ? `(?<${v[1]}>.+)` : `(?<${v[1]}>[^/]+)`;
    })
    .join('');
  return new RegExp(`^${source}$`);
}

/** API Gateway's choice: a route of this method before ANY, a fixed path before a variable one, else `$default`. */
export function routeFor(routes: readonly Route[], method: string, rawPath: string): { route: Route; params?: Record<string, string> } | undefined {
  let best: { route: Route; params?: Record<string, string>; rank: number } | undefined;
  for (const route of routes) {
    if (route.path === null || (route.method !== method && route.method !== 'ANY')) continue;
    const m = routeRegex(route.path).exec(rawPath);
    if (!m) continue;
    const rank = (route.method === method ? 0 : 2) + (route.path.includes('{') ? 1 : 0);
    if (!best || rank < best.rank) best = { route, params: m.groups ? { ...m.groups } : undefined, rank };
  }
  if (best) return { route: best.route, params: best.params };
  const fallback = routes.find((r) => r.path === null);
  return fallback && { route: fallback };
}

/** The request target's path and query as sent (absolute-form `http://host/p?q` too; `*` stays `*`). */
export function splitTarget(target: string): { path: string; query: string } {
  const t = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').replace(/#.*$/s, '');
  const q = t.indexOf('?');
  const path = q === -1 ? t : t.slice(0, q);
  return { path: path || '/', query: q === -1 ? '' : t.slice(q + 1) };
}

/** The percent-decoded string, or undefined if it is not validly percent-encoded UTF-8. */
const safeDecode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
};

const CLF_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const clfTime = (d: Date) => {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${CLF_MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
};

/**
 * Whether a body of this content-type is text, which serverless-offline's hapi (decoding it as
 * UTF-8) passes on without loss: text/*, JSON, XML, JavaScript, form data, and no content-type at
 * all (as before). Anything else (image/png, application/octet-stream, …) is binary: base64-encoded
 * in the function's event (isBase64Encoded), exactly the bytes sent, as API Gateway's HTTP API
 * sends a binary body. (The HTTP API is reported to base64-encode form data and bodies without a
 * content-type too; the functions read either form, lib/appservice/http.ts rawBody.)
 */
export function isTextContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (type === '') return true;
  return (
    type.startsWith('text/') ||
    /^application\/(?:json|xml|javascript|x-www-form-urlencoded|[^/]*\+(?:json|xml))$/.test(type)
  );
}

/** A request that carries a body (or may: chunked). */
const hasBody = (req: IncomingMessage) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/** The payload 2.0 event API Gateway's HTTP API hands a function for this request, rawPath as sent. */
export function apiGatewayEvent(req: IncomingMessage, route: Route, params: Record<string, string> | undefined, body: Buffer): APIGatewayProxyEventV2 {
  const { path: rawPath, query: rawQueryString } = splitTarget(req.url ?? '/');
  // Header names lower case, repeats joined with commas; cookies go to their own field.
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] as string).toLowerCase();
    const value = req.rawHeaders[i + 1] as string;
    headers[name] = name in headers ? `${headers[name]}${name === 'cookie' ? '; ' : ','}${value}` : value;
  }
  const cookies = headers.cookie?.split(/;\s*/).filter(Boolean);
  delete headers.cookie;
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(rawQueryString)) query[k] = k in query ? `${query[k]},${v}` : v;
  // Text as a string; a binary content-type, or a body that is not UTF-8, base64-encoded.
  let bodyText: string | undefined;
  let isBase64Encoded = false;
  if (body.length) {
    try {
      if (!isTextContentType(headers['content-type'])) throw new Error('binary');
      bodyText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
    } catch {
      bodyText = body.toString('base64');
      isBase64Encoded = true;
    }
  }
  const now = new Date();
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(params ? { pathParameters: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, safeDecode(v) ?? v])) } : {}),
    requestContext: {
      accountId: 'offlineContext_accountId',
      apiId: 'offlineContext_apiId',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] as string,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: route.routeKey,
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
    ...(bodyText !== undefined ? { body: bodyText } : {}),
    isBase64Encoded,
  };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and `expect` (this server already answered 100-continue). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer', 'expect', 'http2-settings'];

/** rawHeaders without the hop-by-hop ones (and those `Connection` names); `dropAlso` for responses. */
function endToEnd(raw: string[], dropAlso: string[] = []): string[] {
  const drop = new Set([...HOP_BY_HOP, ...dropAlso]);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'connection') for (const t of (raw[i + 1] as string).split(',')) drop.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (!drop.has((raw[i] as string).toLowerCase())) out.push(raw[i] as string, raw[i + 1] as string);
  return out;
}

/**
 * An HTTP/1.0 request may come without Host; what goes on to hapi is HTTP/1.1, which must carry
 * one (Node's server would refuse it with an empty 400): the address the client called.
 */
function withHost(headers: string[], req: IncomingMessage): string[] {
  for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() === 'host') return headers;
  const addr = req.socket.localAddress ?? '127.0.0.1';
  return [...headers, 'Host', `${addr.includes(':') ? `[${addr}]` : addr}:${req.socket.localPort}`];
}

/** A Matrix error (a MatrixError, or a Reply of lib/appservice) as an HTTP response of this server. */
function send(res: ServerResponse, e: { status: number; body: unknown }): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(e.body);
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The same, written straight to a socket Node's HTTP parser gave up on (or a CONNECT tunnel). */
function sendRaw(socket: Duplex, e: { status: number; body: unknown }): void {
  const body = JSON.stringify(e.body);
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  // A client that never closes its end must not keep the socket (and a stopping server) alive.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** What an error body is: a Matrix error (ours, pass it on), hapi's own (no function ran), or something else. */
function classify(text: string): 'matrix' | 'hapi' | 'other' {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'other';
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'other';
  const o = v as Record<string, unknown>;
  if (typeof o.errcode === 'string' && typeof o.error === 'string') return 'matrix';
  // @hapi/boom's payload: {statusCode, error: the reason phrase, message}
  if (typeof o.statusCode === 'number' && typeof o.error === 'string' && !('errcode' in o)) return 'hapi';
  return 'other';
}

/** Not a Matrix error: the same status, in Matrix form, saying what serverless-offline said. */
function asMatrix(status: number, text: string): MatrixError {
  let said = '';
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    said = String(o.message ?? o.errorMessage ?? o.error ?? '');
  } catch {
    said = text.slice(0, 200);
  }
  const errcode = status === 413 ? ErrCode.TooLarge : status === 404 || status === 405 ? ErrCode.Unrecognized : ErrCode.Unknown;
  return new MatrixError(status, errcode, `the local server (serverless-offline) could not serve the request${said ? `: ${said}` : ''}; see npm start's output`);
}

/** The request body, kept while it streams on (references only, no copy) in case it must be replayed. */
class BodyCopy {
  private chunks: Buffer[] = [];
  size = 0;
  over = false;
  constructor(private readonly limit: number) {}
  readonly add = (b: Buffer) => {
    this.size += b.length;
    if (this.over) return;
    if (this.size > this.limit) {
      this.over = true;
      this.chunks = [];
    } else this.chunks.push(b);
  };
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface FrontOptions extends OfflinePorts {
  /** Where the homeserver calls: PORT and LISTEN_HOST. */
  host: string;
  port: number;
  routes: readonly Route[];
}

/** Where serverless-offline listens on 127.0.0.1: its HTTP routes and its Lambda invoke API. */
export interface OfflinePorts {
  offlinePort: number;
  lambdaPort: number;
}

export interface Front {
  server: Server;
  /** serverless-offline came up on other ports (the first ones were taken meanwhile): send there from now on. */
  pointAt(ports: OfflinePorts): void;
  close(): Promise<void>;
}

export async function startFront(opts: FrontOptions): Promise<Front> {
  // A new loopback connection per request (a fraction of a millisecond): a kept-alive one that
  // hapi closes as idle just as a request goes out would fail that request with ECONNRESET.
  const agent = new Agent({ keepAlive: false });
  let offline: OfflinePorts = { offlinePort: opts.offlinePort, lambdaPort: opts.lambdaPort };

  /** Hands the request to its function through serverless-offline's Lambda invoke API, as API Gateway would. */
  async function viaFunction(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const { path } = splitTarget(req.url ?? '/');
    const hit = routeFor(opts.routes, req.method ?? 'GET', path);
    if (!hit) return send(res, unrecognized(req.method ?? 'GET', path));
    const event = apiGatewayEvent(req, hit.route, hit.params, body);
    const url = `http://127.0.0.1:${offline.lambdaPort}/2015-03-31/functions/${encodeURIComponent(hit.route.functionName)}/invocations`;
    const out = await fetch(url, { method: 'POST', body: JSON.stringify(event), signal: AbortSignal.timeout(INVOKE_TIMEOUT_MS) });
    const text = await out.text();
    // The invoke API's limit is Lambda's, on the whole event: a binary body goes base64-encoded (4/3 of it).
    if (out.status === 413) return send(res, tooLarge(`the request is over Lambda's ${MAX_BODY_BYTES}-byte payload limit (its event, a binary body base64-encoded)`));
    const result = (() => {
      try {
        return JSON.parse(text) as APIGatewayProxyStructuredResultV2;
      } catch {
        return undefined;
      }
    })();
    if (!out.ok || out.headers.has('x-amz-function-error') || typeof result?.statusCode !== 'number') {
      return send(res, new MatrixError(502, ErrCode.Unknown, `the ${hit.route.functionName} function failed; see npm start's output`));
    }
    const payload = result.body === undefined ? Buffer.alloc(0) : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
    if (result.cookies?.length) headers['set-cookie'] = result.cookies;
    headers['content-length'] = String(payload.length);
    res.writeHead(result.statusCode, headers);
    res.end(req.method === 'HEAD' ? undefined : payload);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const fail = (e: unknown) => {
      process.stderr.write(`npm start's front server: ${req.method} ${req.url}: ${(e as Error).message}\n`);
      send(res, new MatrixError(502, ErrCode.Unknown, 'the local server failed to pass the request on; see npm start\'s output'));
    };
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      return send(res, new MatrixError(400, ErrCode.Unrecognized, 'an HTTP/1.1 request must carry a Host header'));
    }
    // hapi would refuse it unread (413 in its own words); so does Lambda, over 6 MB. Node reads and
    // drops the rest of the body after the answer, so the client is not cut off mid-write.
    if (Number(req.headers['content-length']) > OFFLINE_MAX_BYTES) return send(res, tooLarge(`body is over ${MAX_BODY_BYTES} bytes`));

    const copy = new BodyCopy(MAX_BODY_BYTES);
    const bodyComplete = new Promise<boolean>((resolve) => {
      req.once('end', () => resolve(true));
      req.once('close', () => resolve(req.complete));
    });
    /** serverless-offline refused it before any function ran: the function answers instead, once the body is in. */
    const replay = async () => {
      req.resume(); // keep reading the body into the copy, whatever became of the upstream request
      if (!(await bodyComplete)) return res.destroy(); // the client went away
      if (copy.over) return send(res, tooLarge(`body is over ${MAX_BODY_BYTES} bytes`));
      await viaFunction(req, res, copy.bytes);
    };

    // hapi's errors to a HEAD have no body to tell them by; the one it always gives, to a path it
    // cannot decode, is known beforehand. A binary body would reach the function mangled through
    // serverless-offline (it decodes the body as UTF-8): it goes to the function directly.
    if ((req.method === 'HEAD' && safeDecode(splitTarget(req.url ?? '/').path) === undefined) || (hasBody(req) && !isTextContentType(req.headers['content-type']))) {
      req.on('data', copy.add);
      return void replay().catch(fail);
    }

    let up: ClientRequest;
    try {
      up = httpRequest({
        host: '127.0.0.1',
        port: offline.offlinePort,
        method: req.method,
        path: req.url,
        headers: withHost(endToEnd(req.rawHeaders), req),
        agent,
      });
    } catch {
      // A target Node will not send on (it checks for characters a path cannot hold): straight to the function.
      req.on('data', copy.add);
      replay().catch(fail);
      return;
    }
    /** Set once what serverless-offline does no longer matters: it answered, failed, or was dropped. */
    let answered = false;
    let bodySent = false;
    up.on('finish', () => (bodySent = true));
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    const drop = () => {
      answered = true;
      req.unpipe(up);
      up.destroy();
      void replay().catch(fail);
    };
    up.on('error', (e: NodeJS.ErrnoException) => {
      if (answered) return; // e.g. dropped, or hapi answered and hung up on the rest of the body
      answered = true;
      if (e.code === 'ECONNREFUSED') return send(res, unavailable('the application service is not running yet, or no longer; try again'));
      // Hung up on while the body was still on its way: hapi reads the whole body before any
      // handler, so no function ran.
      if (!bodySent) {
        req.unpipe(up);
        return void replay().catch(fail);
      }
      fail(e);
    });
    up.on('response', (ures) => {
      if (answered) return void ures.resume();
      answered = true;
      const status = ures.statusCode ?? 502;
      const headers = endToEnd(ures.rawHeaders, ['transfer-encoding']);
      // Success bodies, and anything to a HEAD, stream straight through.
      if (status < 400 || req.method === 'HEAD') {
        res.writeHead(status, ures.statusMessage, headers);
        ures.on('error', () => res.destroy()); // serverless-offline went away mid-answer
        ures.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      ures.on('data', (b: Buffer) => {
        size += b.length;
        if (size <= MAX_ERROR_BODY_BYTES) chunks.push(b);
      });
      ures.on('error', (e) => fail(e));
      ures.on('end', () => {
        const body = Buffer.concat(chunks);
        const kind = size > MAX_ERROR_BODY_BYTES ? 'other' : classify(body.toString('utf8'));
        if (kind === 'matrix') {
          res.writeHead(status, ures.statusMessage, headers);
          res.end(body);
        } else if (kind === 'hapi' && status < 500) {
          // hapi's 4xx come from its request lifecycle (URL, cookies, payload), before the handler.
          drop();
        } else {
          send(res, asMatrix(status, body.toString('utf8')));
        }
      });
    });
    req.on('data', (b: Buffer) => {
      copy.add(b);
      // A body streamed (chunked) past hapi's limit: hapi would answer 413 in its own words and
      // hang up, maybe before its answer can be read. It gets no more of it; the answer is ours.
      if (copy.size > OFFLINE_MAX_BYTES && !answered) drop();
    });
    req.pipe(up);
  }

  // Node itself would answer an HTTP/1.1 request without Host with an empty 400 (and so would
  // hapi's server behind): onRequest says so as a Matrix error instead.
  const server = createServer({ requireHostHeader: false }, onRequest);
  // Node's HTTP parser refused the request (unknown method, malformed or oversized headers):
  // its own answer would be an empty 400 / 431.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    if (err.code === 'HPE_HEADER_OVERFLOW') return sendRaw(socket, new MatrixError(431, ErrCode.TooLarge, 'the request headers are too large'));
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return sendRaw(socket, new MatrixError(408, ErrCode.Unknown, 'the request did not arrive in time'));
    sendRaw(socket, new MatrixError(400, ErrCode.Unrecognized, `the request is not HTTP this server understands (${err.code ?? err.message})`));
  });
  // No tunnels here: CONNECT is an unrecognized request like any other method we do not serve.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    sendRaw(socket, unrecognized(req.method ?? 'CONNECT', req.url ?? ''));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    pointAt: (ports) => void (offline = { ...ports }),
    // In-flight requests are cut off, as Ctrl-C would cut off serverless-offline itself.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
        setTimeout(resolve, 1000).unref();
      }),
  };
}
