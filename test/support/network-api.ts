/**
 * Checks traffic against docs/network-api.yaml, the third-party network contract as an OpenAPI
 * 3.1 document holding both directions:
 *
 * - checkNetworkRequest / checkNetworkAnswer: what the AS sends to the network (operations tagged
 *   `network`, paths under NETWORK_URL such as `/messages`, `/users/Bob`) and what the network
 *   (the fake) answers;
 * - checkAsRequest / checkAsAnswer: what the network sends to the AS (operations tagged `as`,
 *   paths such as `/network/messages`) and what the AS answers.
 *
 * Every check returns a list of human-readable problems; empty means valid. Each throws when no
 * operation of the document matches the method and path, so a call to an undocumented endpoint
 * is noticed. A status the operation does not document (exactly, as a `2XX`-style range, or
 * `default`) is a problem. Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), checked with
 * ajv's Ajv2020; nothing is read outside the repository.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

/** The document's path on disk. */
export const NETWORK_API_FILE = fileURLToPath(new URL('../../docs/network-api.yaml', import.meta.url));

/** Virtual URI the document is registered under with ajv, so its local `$ref`s resolve. */
const DOC_URI = 'https://network-api.invalid/network-api.yaml';

export type NetworkApiSide = 'as' | 'network';

type JsonObject = Record<string, unknown>;

export interface NetworkApiOperation {
  /** Who serves it: `as` (under AS_URL) or `network` (under NETWORK_URL). */
  side: NetworkApiSide;
  method: string;
  /** The path template as the document writes it, e.g. `/users/{remoteUserId}`. */
  template: string;
  operationId: string | undefined;
  /** JSON pointer of the operation object in the document. */
  pointer: string;
}

interface Route extends NetworkApiOperation {
  segments: Array<{ literal: string } | { param: string }>;
  node: JsonObject;
  pathItem: JsonObject;
  pathItemPointer: string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

const pointerOf = (...tokens: string[]) => tokens.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
/** A JSON pointer as a URI fragment (characters such as `{`, `*` percent-encoded). */
const fragmentOf = (pointer: string) => pointer.split('/').map(encodeURIComponent).join('/');

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------- loading

interface State {
  doc: JsonObject;
  ajv: Ajv2020;
  routes: Route[];
  validators: Map<string, ValidateFunction>;
}

let state: State | undefined;

function load(): State {
  if (state) return state;
  const doc = parseYaml(readFileSync(NETWORK_API_FILE, 'utf8')) as unknown;
  if (!isObject(doc) || !isObject(doc.paths)) throw new Error(`${NETWORK_API_FILE} is not an OpenAPI document`);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false, logger: false });
  // OpenAPI's own formats, for binary bodies (never validated as JSON here).
  ajv.addFormat('binary', true);
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  // ajv gets its own copy, with an $id, so the document itself stays as written.
  ajv.addSchema({ ...structuredClone(doc), $id: DOC_URI });

  const routes: Route[] = [];
  for (const [template, rawItem] of Object.entries(doc.paths)) {
    const pathItemPointer = pointerOf('paths', template);
    const pathItem = resolveIn(doc, rawItem);
    if (!isObject(pathItem)) continue;
    const segments = template
      .split('/')
      .slice(1)
      .map((s) => {
        const m = /^\{([^}]+)\}$/.exec(s);
        return m?.[1] !== undefined ? { param: m[1] } : { literal: s };
      });
    for (const method of METHODS) {
      const node = pathItem[method];
      if (!isObject(node)) continue;
      routes.push({
        side: sideOf(node, pathItem, doc),
        method: method.toUpperCase(),
        template,
        operationId: typeof node.operationId === 'string' ? node.operationId : undefined,
        pointer: pathItemPointer + pointerOf(method),
        segments,
        node,
        pathItem,
        pathItemPointer,
      });
    }
  }
  state = { doc, ajv, routes, validators: new Map() };
  return state;
}

/** `as` or `network`: by the operation's tag, else by the server it is served under. */
function sideOf(op: JsonObject, pathItem: JsonObject, doc: JsonObject): NetworkApiSide {
  const tags = Array.isArray(op.tags) ? op.tags : [];
  if (tags.includes('as')) return 'as';
  if (tags.includes('network')) return 'network';
  const servers = [pathItem.servers, op.servers, doc.servers].find(Array.isArray) as unknown[] | undefined;
  const url = isObject(servers?.[0]) ? String(servers[0].url) : '';
  return url.includes('{networkUrl}') ? 'network' : 'as';
}

/** Follows local `$ref`s (`#/components/...`) until a node that is not a reference. */
function resolveIn(doc: JsonObject, node: unknown): unknown {
  let cur = node;
  for (let i = 0; i < 20; i++) {
    if (!isObject(cur) || typeof cur.$ref !== 'string') return cur;
    cur = atPointer(doc, refPointer(cur.$ref));
  }
  throw new Error(`$ref loop at ${JSON.stringify(node)}`);
}

function refPointer(ref: string): string {
  if (!ref.startsWith('#')) throw new Error(`only local $refs are supported here: ${ref}`);
  return decodeURIComponent(ref.slice(1));
}

/** The node at a JSON pointer (unescaped, e.g. `/components/schemas/X`), or undefined. */
function atPointer(doc: unknown, pointer: string): unknown {
  if (pointer === '') return doc;
  let node = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isObject(node)) node = node[token];
    else return undefined;
  }
  return node;
}

interface Located {
  pointer: string;
  node: unknown;
}

/** A child of a node, through any `$ref` on the way (the pointer follows the reference). */
function child(loc: Located, ...tokens: string[]): Located {
  let cur = loc;
  for (const t of tokens) {
    cur = deref(cur);
    const n = cur.node;
    const next = isObject(n) ? n[t] : Array.isArray(n) ? n[Number(t)] : undefined;
    cur = { pointer: cur.pointer + pointerOf(t), node: next };
  }
  return cur;
}

function deref(loc: Located): Located {
  const { doc } = load();
  let cur = loc;
  for (let i = 0; i < 20; i++) {
    if (!isObject(cur.node) || typeof cur.node.$ref !== 'string') return cur;
    const pointer = refPointer(cur.node.$ref);
    cur = { pointer, node: atPointer(doc, pointer) };
  }
  throw new Error(`$ref loop at ${loc.pointer}`);
}

function validatorAt(pointer: string): ValidateFunction {
  const s = load();
  let v = s.validators.get(pointer);
  if (!v) {
    v = s.ajv.compile({ $ref: `${DOC_URI}#${fragmentOf(pointer)}` });
    s.validators.set(pointer, v);
  }
  return v;
}

function formatErrors(where: string, errors: ErrorObject[] | null | undefined): string[] {
  if (!errors) return [];
  // "must match \"then\" schema" only repeats the error that made it fail.
  const out = errors.filter((e) => e.keyword !== 'if').map((e) => {
    const p = e.params as Record<string, unknown>;
    let extra = '';
    if (e.keyword === 'enum') extra = ` (${JSON.stringify(p.allowedValues)})`;
    else if (e.keyword === 'const') extra = ` (${JSON.stringify(p.allowedValue)})`;
    return `${where}${e.instancePath} ${e.message ?? e.keyword}${extra}`;
  });
  return [...new Set(out)];
}

function validateAt(where: string, pointer: string, value: unknown): string[] {
  const v = validatorAt(pointer);
  return v(value) ? [] : formatErrors(where, v.errors);
}

// ---------------------------------------------------------------- routing

function splitPath(path: string): { pathname: string; query: URLSearchParams } {
  const q = path.indexOf('?');
  return q === -1 ? { pathname: path, query: new URLSearchParams() } : { pathname: path.slice(0, q), query: new URLSearchParams(path.slice(q + 1)) };
}

function matchRoute(route: Route, pathname: string): Record<string, string> | undefined {
  const parts = pathname.split('/').slice(1);
  if (parts.length !== route.segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const seg = route.segments[i]!;
    const part = decodeSegment(parts[i]!);
    if ('literal' in seg) {
      if (part !== seg.literal) return undefined;
    } else {
      if (parts[i] === '') return undefined;
      params[seg.param] = part;
    }
  }
  return params;
}

function findRoute(side: NetworkApiSide, method: string, path: string): { route: Route; params: Record<string, string>; query: URLSearchParams } {
  const { pathname, query } = splitPath(path);
  const m = method.toUpperCase();
  const matches = load()
    .routes.filter((r) => r.side === side)
    .map((route) => ({ route, params: matchRoute(route, pathname) }))
    .filter((x): x is { route: Route; params: Record<string, string> } => x.params !== undefined)
    // Most literal segments first.
    .sort((a, b) => literals(b.route) - literals(a.route));
  const hit = matches.find((x) => x.route.method === m);
  if (hit) return { ...hit, query };
  const who = side === 'as' ? 'the AS (tag as)' : 'the network (tag network)';
  if (matches.length === 0) throw new Error(`docs/network-api.yaml: no operation of ${who} matches ${m} ${path}`);
  const templates = [...new Set(matches.map((x) => x.route.template))].join(', ');
  throw new Error(`docs/network-api.yaml: ${who} has no ${m} on ${templates} (for ${path})`);
}

const literals = (r: Route) => r.segments.filter((s) => 'literal' in s).length;

/** The operation of the document a request goes to (throws when none). */
export function matchNetworkApiOperation(side: NetworkApiSide, method: string, path: string): NetworkApiOperation & { params: Record<string, string> } {
  const { route, params } = findRoute(side, method, path);
  return { side: route.side, method: route.method, template: route.template, operationId: route.operationId, pointer: route.pointer, params };
}

/** Every operation of the document. */
export function networkApiOperations(): NetworkApiOperation[] {
  return load().routes.map(({ side, method, template, operationId, pointer }) => ({ side, method, template, operationId, pointer }));
}

/** The parsed document (shared: do not modify). */
export function networkApiDocument(): JsonObject {
  return load().doc;
}

/**
 * Validates a value against a schema of the document, named by a local reference or a JSON
 * pointer (`#/components/schemas/InboundMessage`, `/paths/~1messages/post/.../schema`).
 */
export function checkNetworkApiValue(ref: string, value: unknown, where = 'value'): string[] {
  const pointer = ref.startsWith('#') ? refPointer(ref) : ref;
  if (atPointer(load().doc, pointer) === undefined) throw new Error(`docs/network-api.yaml has nothing at ${ref}`);
  return validateAt(where, pointer, value);
}

// ---------------------------------------------------------------- requests

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : headers[key];
  return Array.isArray(v) ? v[0] : v;
}

/** The parameters of an operation, its path item's first and then its own (the operation's win). */
function parametersOf(route: Route): Array<{ param: JsonObject; pointer: string }> {
  const byKey = new Map<string, { param: JsonObject; pointer: string }>();
  const lists = [child({ pointer: route.pathItemPointer, node: route.pathItem }, 'parameters'), child({ pointer: route.pointer, node: route.node }, 'parameters')];
  for (const list of lists) {
    if (!Array.isArray(list.node)) continue;
    for (let i = 0; i < list.node.length; i++) {
      const p = deref(child(list, String(i)));
      if (isObject(p.node) && typeof p.node.name === 'string' && typeof p.node.in === 'string') {
        byKey.set(`${p.node.in}:${p.node.name.toLowerCase()}`, { param: p.node, pointer: p.pointer });
      }
    }
  }
  return [...byKey.values()];
}

/** A query or path value (always a string on the wire) as its schema's type wants it. */
function coerce(value: string, schemaPointer: string): unknown {
  const schema = deref({ pointer: schemaPointer, node: atPointer(load().doc, schemaPointer) }).node;
  const type = isObject(schema) ? schema.type : undefined;
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(value)) return Number(value);
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

function checkParameters(route: Route, params: Record<string, string>, query: URLSearchParams, headers: Headers | undefined): string[] {
  const errors: string[] = [];
  for (const { param, pointer } of parametersOf(route)) {
    const name = param.name as string;
    let raw: string | undefined;
    if (param.in === 'path') raw = params[name];
    else if (param.in === 'query') raw = query.get(name) ?? undefined;
    else if (param.in === 'header') {
      // Headers are only checked when the caller hands them over.
      if (!headers) continue;
      raw = header(headers, name);
    } else continue;
    if (raw === undefined) {
      if (param.required === true) errors.push(`${param.in} parameter ${name} is required`);
      continue;
    }
    if (param.schema === undefined) continue;
    const schemaPointer = pointer + pointerOf('schema');
    errors.push(...validateAt(`${param.in} parameter ${name}`, schemaPointer, coerce(raw, schemaPointer)));
  }
  return errors;
}

/** At least one of the operation's security requirements is met (header schemes only when headers are given). */
function checkSecurity(route: Route, query: URLSearchParams, headers: Headers | undefined): string[] {
  const { doc } = load();
  const requirements = (Array.isArray(route.node.security) ? route.node.security : Array.isArray(doc.security) ? doc.security : []) as unknown[];
  if (requirements.length === 0) return [];
  const schemes = isObject(doc.components) && isObject(doc.components.securitySchemes) ? doc.components.securitySchemes : {};
  const missing: string[] = [];
  for (const req of requirements) {
    if (!isObject(req)) continue;
    const lacking = Object.keys(req).filter((name) => {
      const scheme = resolveIn(doc, schemes[name]);
      if (!isObject(scheme) || scheme.type !== 'apiKey' || typeof scheme.name !== 'string') return false;
      if (scheme.in === 'query') return !query.has(scheme.name);
      if (scheme.in === 'header') return headers !== undefined && header(headers, scheme.name) === undefined;
      return false;
    });
    if (lacking.length === 0) return [];
    missing.push(
      lacking
        .map((name) => {
          const s = resolveIn(doc, schemes[name]) as JsonObject;
          return `${String(s.in)} ${String(s.name)} (${name})`;
        })
        .join(' and '),
    );
  }
  return [`not authenticated: needs ${missing.join(', or ')}`];
}

const isBinary = (body: unknown): body is Uint8Array => body instanceof Uint8Array;
const isJsonType = (mediaType: string) => mediaType === 'application/json' || /^application\/[^;]*\+json$/.test(mediaType) || mediaType.endsWith('/json');
const baseType = (contentType: string) => contentType.split(';')[0]!.trim().toLowerCase();

/** The media type key of a content map serving `type` (exact, `type/*`, `*\/*`), or undefined. */
function mediaKeyFor(content: JsonObject, type: string): string | undefined {
  const keys = Object.keys(content);
  const lower = (k: string) => k.toLowerCase();
  return (
    keys.find((k) => lower(k) === type) ??
    (isJsonType(type) ? keys.find((k) => isJsonType(lower(k))) : undefined) ??
    keys.find((k) => lower(k) === `${type.split('/')[0]}/*`) ??
    keys.find((k) => k === '*/*')
  );
}

/**
 * A body against a content map: JSON values against the JSON media type's schema, binary ones
 * only against there being a non-JSON media type. `contentType` names the body's type if known.
 */
function checkContent(where: string, content: Located, body: unknown, contentType: string | undefined): string[] {
  const c = deref(content);
  if (!isObject(c.node)) return [`${where}: the document describes no body here`];
  const keys = Object.keys(c.node);
  const type = contentType !== undefined ? baseType(contentType) : isBinary(body) ? undefined : 'application/json';
  if (type === undefined) {
    // Binary, type unknown: any non-JSON media type will do.
    return keys.some((k) => !isJsonType(k.toLowerCase())) ? [] : [`${where}: binary, but the document wants ${keys.join(', ')}`];
  }
  const key = mediaKeyFor(c.node, type);
  if (key === undefined) return [`${where}: ${type} is not among the documented media types (${keys.join(', ')})`];
  if (!isJsonType(type) || isBinary(body)) return [];
  const schema = child(c, key, 'schema');
  if (schema.node === undefined) return [];
  return validateAt(where, schema.pointer, body);
}

function checkRequest(side: NetworkApiSide, method: string, path: string, body: unknown, headers?: Headers): string[] {
  const { route, params, query } = findRoute(side, method, path);
  const errors = [...checkParameters(route, params, query, headers), ...checkSecurity(route, query, headers)];
  const rb = deref(child({ pointer: route.pointer, node: route.node }, 'requestBody'));
  const empty = body === undefined || (isBinary(body) && body.length === 0 && method.toUpperCase() === 'GET');
  if (!isObject(rb.node)) {
    if (!empty) errors.push(`body: ${method.toUpperCase()} ${route.template} takes no body`);
    return errors;
  }
  if (body === undefined) {
    if (rb.node.required === true) errors.push('body is required');
    return errors;
  }
  // A JSON value is checked as JSON whatever its header says; a binary body as binary.
  errors.push(...checkContent('body', child(rb, 'content'), body, undefined));
  return errors;
}

function checkAnswer(side: NetworkApiSide, method: string, path: string, status: number, body: unknown, contentType?: string): string[] {
  const { route } = findRoute(side, method, path);
  const responses = deref(child({ pointer: route.pointer, node: route.node }, 'responses'));
  if (!isObject(responses.node)) return [`${status}: ${method.toUpperCase()} ${route.template} documents no responses`];
  const keys = [String(status), `${String(status).charAt(0)}XX`, `${String(status).charAt(0)}xx`, 'default'];
  const key = keys.find((k) => isObject((responses.node as JsonObject)[k]));
  if (key === undefined) {
    return [`${status} is not a documented answer of ${method.toUpperCase()} ${route.template} (${Object.keys(responses.node).join(', ')})`];
  }
  const response = deref(child(responses, key));
  const noBody = body === undefined || body === '' || (isBinary(body) && body.length === 0);
  if (noBody) return [];
  const content = child(response, 'content');
  if (content.node === undefined) return [`${status} body: ${method.toUpperCase()} ${route.template} documents no body for ${key}`];
  return checkContent(`${status} body`, content, body, contentType);
}

// ---------------------------------------------------------------- public API

/**
 * A request the AS sends to the network: `path` without NETWORK_URL (e.g. `/messages`,
 * `/users/Bob`, percent-encoded or not; a query string is read). With `headers`, required header
 * parameters (`Idempotency-Key`) and the `X-Signature` scheme are checked too.
 */
export function checkNetworkRequest(method: string, path: string, body: unknown, headers?: Headers): string[] {
  return checkRequest('network', method, path, body, headers);
}

/** The network's answer to such a request; an undocumented status is a problem. */
export function checkNetworkAnswer(method: string, path: string, status: number, body: unknown, contentType?: string): string[] {
  return checkAnswer('network', method, path, status, body, contentType);
}

/**
 * A request the network sends to the AS (`/network/messages`, `/network/media?sender=Bob`, …).
 * A `Buffer`/`Uint8Array` body is binary (e.g. POST /network/media). With `headers`, header
 * parameters and `X-Signature` are checked too; the media link's `sig` is always checked.
 */
export function checkAsRequest(method: string, path: string, body: unknown, headers?: Headers): string[] {
  return checkRequest('as', method, path, body, headers);
}

/**
 * The AS's answer. JSON bodies are validated against the documented schema; a binary body (a
 * `Buffer`, or a non-JSON `contentType`) is only checked to be documented for that status.
 */
export function checkAsAnswer(method: string, path: string, status: number, body: unknown, contentType?: string): string[] {
  return checkAnswer('as', method, path, status, body, contentType);
}

