/**
 * Checks JSON bodies against the Matrix specification's own OpenAPI / JSON
 * Schema files, copied unchanged into test/fixtures/matrix-spec/ (see the
 * README there). Nothing here reads outside the repository.
 *
 * - checkCsRequest / checkCsResponse: Client-Server API (what the AS sends to
 *   the homeserver, and what the fake homeserver answers).
 * - checkAsRequest / checkAsResponse: Application Service API (what the HS
 *   sends to the AS, and what the AS answers).
 * - checkRegistration: the AS registration file.
 * - checkEvent / checkEventContent: room events (by event type).
 * - checkSchemaFile: any schema file of the fixtures (e.g. the m.relates_to definition).
 *
 * Every check returns a list of human-readable error strings; empty means
 * valid. The request/response checks throw when no operation of the spec
 * matches the method and path, so a test notices a call to an endpoint the
 * spec does not have.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

/** Root of the copied spec files (contains `data/`). */
export const SPEC_ROOT = fileURLToPath(new URL('../fixtures/matrix-spec/', import.meta.url));

/** Virtual base URI under which every spec file is registered with ajv. */
const BASE_URI = 'https://spec.matrix.invalid/';

type Json = unknown;
type JsonObject = Record<string, unknown>;

export type SpecApi = 'cs' | 'as';

interface Route {
  api: SpecApi;
  file: string; // URI of the OpenAPI document
  basePath: string; // e.g. /_matrix/client/v3
  template: string; // path key as written in the document (may have a trailing space)
  segments: Array<{ literal: string } | { param: string }>;
  literalCount: number;
  pathItemPointer: string;
}

export interface MatchedOperation {
  api: SpecApi;
  method: string;
  /** The document's path template, trimmed, with the base path, e.g. `/_matrix/client/v3/rooms/{roomId}/join`. */
  template: string;
  operationId: string | undefined;
  /** Decoded path parameters. */
  params: Record<string, string>;
}

interface Operation {
  route: Route;
  method: string;
  pointer: string; // JSON pointer of the operation object in route.file
  node: JsonObject;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapePointerToken(token: string): string {
  return encodeURIComponent(token.replace(/~/g, '~0').replace(/\//g, '~1'));
}

function pointerOf(...tokens: string[]): string {
  return tokens.map((t) => '/' + escapePointerToken(t)).join('');
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------- formats

// Grammar from https://spec.matrix.org/latest/appendices/ ; lenient where the
// spec allows historical forms.
const SERVER_NAME = String.raw`(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?`;
const FORMATS: Record<string, RegExp> = {
  'mx-user-id': new RegExp(String.raw`^@[\x21-\x39\x3B-\x7E]+:${SERVER_NAME}$`),
  // Room IDs carry a server name before room version 12, none from v12 on.
  'mx-room-id': /^![\x21-\x7E]+$/,
  'mx-room-alias': new RegExp(String.raw`^#[^:\s]*:${SERVER_NAME}$`),
  'mx-event-id': /^\$[\x21-\x7E]+$/,
  'mx-server-name': new RegExp(`^${SERVER_NAME}$`),
  'mx-mxc-uri': new RegExp(String.raw`^mxc://${SERVER_NAME}/[A-Za-z0-9_-]+$`),
  'mx-unpadded-base64': /^[A-Za-z0-9+/]*$/,
  'mx-urlsafe-unpadded-base64': /^[A-Za-z0-9_-]*$/,
  uri: /^[A-Za-z][A-Za-z0-9+.-]*:\S*$/,
  email: /^[^\s@]+@[^\s@]+$/,
};

// ---------------------------------------------------------------- loading

interface SpecState {
  ajv: Ajv2020;
  docs: Map<string, JsonObject>; // uri -> parsed document
  routes: Route[];
  validators: Map<string, ValidateFunction>;
}

let state: SpecState | undefined;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p));
    else if (/\.(ya?ml|json)$/.test(entry.name)) out.push(p);
  }
  return out;
}

function uriOf(relPath: string): string {
  return new URL(relPath, BASE_URI).href;
}

function load(): SpecState {
  if (state) return state;
  const ajv = new Ajv2020({
    strict: false,
    allErrors: true,
    validateSchema: false,
    logger: false,
  });
  for (const [name, re] of Object.entries(FORMATS)) ajv.addFormat(name, re);
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('float', { type: 'number', validate: () => true });

  const docs = new Map<string, JsonObject>();
  const routes: Route[] = [];
  const dataDir = join(SPEC_ROOT, 'data');
  for (const file of listFiles(dataDir)) {
    const rel = relative(SPEC_ROOT, file).split(sep).join('/');
    if (rel.includes('/examples/')) continue; // example payloads, not schemas
    const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
    if (!isObject(doc)) continue;
    const uri = uriOf(rel);
    docs.set(uri, doc);
    // The files have no $id; give each its (virtual) location so ajv resolves
    // relative $refs against the file they are written in, at any depth.
    // (Only the in-memory copy; the fixture files stay unchanged.)
    doc.$id = uri;
    ajv.addSchema(doc);
    if (typeof doc.openapi === 'string' && isObject(doc.paths)) {
      const api: SpecApi | undefined = rel.startsWith('data/api/client-server/')
        ? 'cs'
        : rel.startsWith('data/api/application-service/')
          ? 'as'
          : undefined;
      if (!api) continue;
      const basePath = serverBasePath(doc);
      for (const template of Object.keys(doc.paths)) {
        const segments = template
          .trim()
          .split('/')
          .slice(1)
          .map((s) => {
            const m = /^\{([^}]+)\}$/.exec(s);
            return m && m[1] !== undefined ? { param: m[1] } : { literal: s };
          });
        routes.push({
          api,
          file: uri,
          basePath,
          template,
          segments,
          literalCount: segments.filter((s) => 'literal' in s).length,
          pathItemPointer: pointerOf('paths', template),
        });
      }
    }
  }
  state = { ajv, docs, routes, validators: new Map() };
  return state;
}

function serverBasePath(doc: JsonObject): string {
  const servers = doc.servers;
  const first = Array.isArray(servers) ? servers[0] : undefined;
  if (!isObject(first) || typeof first.url !== 'string') return '';
  const vars = isObject(first.variables) ? first.variables : {};
  const url = first.url.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const v = vars[name];
    return isObject(v) && typeof v.default === 'string' ? v.default : '';
  });
  // url is now e.g. https://localhost:8008/_matrix/client/v3
  const m = /^[a-z]+:\/\/[^/]*(\/.*)?$/i.exec(url);
  return (m?.[1] ?? url).replace(/\/$/, '');
}

/** Resolve a JSON pointer inside a loaded document. */
function atPointer(uri: string, pointer: string): unknown {
  const doc = load().docs.get(uri);
  if (doc === undefined) throw new Error(`spec file not loaded: ${uri}`);
  let node: unknown = doc;
  if (pointer === '') return node;
  for (const raw of pointer.slice(1).split('/')) {
    const token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isObject(node)) node = node[token];
    else return undefined;
  }
  return node;
}

interface Located {
  uri: string;
  pointer: string;
  node: unknown;
}

/** Follow OpenAPI-level `$ref`s (parameters, request bodies, responses). */
function deref(loc: Located): Located {
  let cur = loc;
  for (let i = 0; i < 20; i++) {
    const n = cur.node;
    if (!isObject(n) || typeof n.$ref !== 'string') return cur;
    const target = new URL(n.$ref, cur.uri);
    const pointer = target.hash ? target.hash.slice(1) : '';
    target.hash = '';
    const uri = target.href;
    cur = { uri, pointer, node: atPointer(uri, pointer) };
  }
  throw new Error(`$ref loop at ${loc.uri}#${loc.pointer}`);
}

function child(loc: Located, ...tokens: string[]): Located {
  let cur = loc;
  for (const t of tokens) {
    cur = deref(cur);
    const n = cur.node;
    const next = isObject(n) ? n[t] : Array.isArray(n) ? n[Number(t)] : undefined;
    cur = { uri: cur.uri, pointer: cur.pointer + pointerOf(t), node: next };
  }
  return cur;
}

function validatorFor(uri: string, pointer: string): ValidateFunction {
  const s = load();
  const key = `${uri}#${pointer}`;
  let v = s.validators.get(key);
  if (!v) {
    v = s.ajv.compile({ $ref: key });
    s.validators.set(key, v);
  }
  return v;
}

function formatErrors(where: string, errors: ErrorObject[] | null | undefined): string[] {
  if (!errors) return [];
  return errors.map((e) => {
    let extra = '';
    const p = e.params as Record<string, unknown>;
    if (e.keyword === 'additionalProperties') extra = ` (${String(p.additionalProperty)})`;
    else if (e.keyword === 'enum') extra = ` (${JSON.stringify(p.allowedValues)})`;
    else if (e.keyword === 'const') extra = ` (${JSON.stringify(p.allowedValue)})`;
    return `${where}${e.instancePath} ${e.message ?? e.keyword}${extra}`;
  });
}

function validateAt(where: string, loc: Located, value: Json): string[] {
  const v = validatorFor(loc.uri, loc.pointer);
  return v(value) ? [] : formatErrors(where, v.errors);
}

// ---------------------------------------------------------------- routing

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

/** The path parameters of `rest` under `route`, or undefined; `elided`: a final parameter left out (see below). */
function matchSegments(route: Route, rest: string): (Record<string, string> & { [ELIDED]?: true }) | undefined {
  const parts = rest.split('/').slice(1);
  let segs = route.segments;
  // "When an empty string, the trailing slash on this endpoint is optional"
  // (state keys): a final parameter may be left out entirely. A template that
  // matches the path as it is wins over one that needs this (`/thirdparty/user`
  // is not `/thirdparty/user/{protocol}` with an empty protocol).
  const last = segs[segs.length - 1];
  let elided = false;
  if (parts.length === segs.length - 1 && last && 'param' in last) {
    parts.push('');
    elided = true;
  }
  if (parts.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const part = parts[i]!;
    if ('literal' in seg) {
      if (decodeSegment(part) !== seg.literal) return undefined;
    } else {
      params[seg.param] = decodeSegment(part);
    }
  }
  if (elided) Object.defineProperty(params, ELIDED, { value: true });
  return params;
}

const ELIDED = Symbol('a final parameter left out');

function findOperation(
  api: SpecApi,
  method: string,
  path: string,
  opts: { legacy?: boolean } = {},
): { op: Operation; params: Record<string, string> } {
  const s = load();
  const p = stripQuery(path);
  const m = method.toLowerCase();
  let best: { route: Route; params: Record<string, string> }[] = [];
  for (const route of s.routes) {
    if (route.api !== api) continue;
    const bases = opts.legacy ? [route.basePath, ''] : [route.basePath];
    for (const base of bases) {
      if (!p.startsWith(base + '/')) continue;
      const params = matchSegments(route, p.slice(base.length));
      if (params) best.push({ route, params });
    }
  }
  if (best.length === 0) {
    throw new Error(`no operation in the ${api === 'cs' ? 'Client-Server' : 'Application Service'} API spec matches ${method} ${path}`);
  }
  // Most literal segments first: /profile/{userId}/displayname-like templates
  // win over wider ones; then the templates that needed no final parameter left out.
  best = best.sort((a, b) => b.route.literalCount - a.route.literalCount || Number(ELIDED in a.params) - Number(ELIDED in b.params));
  for (const { route, params } of best) {
    const pathItem = deref({ uri: route.file, pointer: route.pathItemPointer, node: atPointer(route.file, route.pathItemPointer) });
    if (!isObject(pathItem.node)) continue;
    const opNode = pathItem.node[m];
    if (METHODS.includes(m) && isObject(opNode)) {
      return {
        op: { route, method: m, pointer: pathItem.pointer + pointerOf(m), node: opNode },
        params,
      };
    }
  }
  const templates = [...new Set(best.map((b) => b.route.basePath + b.route.template.trim()))].join(', ');
  throw new Error(`the ${api === 'cs' ? 'Client-Server' : 'Application Service'} API spec has no ${method.toUpperCase()} on ${templates} (for ${path})`);
}

function opLocation(op: Operation): Located {
  return { uri: op.route.file, pointer: op.pointer, node: op.node };
}

function checkPathParams(op: Operation, params: Record<string, string>): string[] {
  const errors: string[] = [];
  const lists: Located[] = [
    child({ uri: op.route.file, pointer: op.route.pathItemPointer, node: atPointer(op.route.file, op.route.pathItemPointer) }, 'parameters'),
    child(opLocation(op), 'parameters'),
  ];
  for (const list of lists) {
    if (!Array.isArray(list.node)) continue;
    for (let i = 0; i < list.node.length; i++) {
      const param = deref(child(list, String(i)));
      if (!isObject(param.node) || param.node.in !== 'path' || typeof param.node.name !== 'string') continue;
      const value = params[param.node.name];
      if (value === undefined) continue;
      const schema = child(param, 'schema');
      if (schema.node === undefined) continue;
      errors.push(...validateAt(`path parameter ${param.node.name}`, schema, value));
    }
  }
  return errors;
}

function jsonSchemaOf(content: Located): Located | undefined {
  const c = deref(content);
  if (!isObject(c.node)) return undefined;
  const key = Object.keys(c.node).find((k) => k === 'application/json') ?? Object.keys(c.node).find((k) => k.includes('json'));
  if (key === undefined) return undefined;
  const schema = child(c, key, 'schema');
  return schema.node === undefined ? undefined : schema;
}

function checkRequest(api: SpecApi, method: string, path: string, body: unknown, legacy: boolean): string[] {
  const { op, params } = findOperation(api, method, path, { legacy });
  const errors = checkPathParams(op, params);
  const rb = deref(child(opLocation(op), 'requestBody'));
  if (!isObject(rb.node)) return errors;
  if (body === undefined) {
    if (rb.node.required === true) errors.push('body is required');
    return errors;
  }
  const schema = jsonSchemaOf(child(rb, 'content'));
  if (schema) errors.push(...validateAt('body', schema, body));
  return errors;
}

function checkResponse(api: SpecApi, method: string, path: string, status: number, body: unknown, legacy: boolean): string[] {
  const { op } = findOperation(api, method, path, { legacy });
  const responses = deref(child(opLocation(op), 'responses'));
  if (!isObject(responses.node)) return [];
  const keys = [String(status), `${String(status).charAt(0)}XX`, 'default'];
  const key = keys.find((k) => isObject((responses.node as JsonObject)[k]));
  if (key === undefined) return [];
  const schema = jsonSchemaOf(child(deref(child(responses, key)), 'content'));
  if (!schema) return [];
  return validateAt(`${status} body`, schema, body);
}

// ---------------------------------------------------------------- public API

/**
 * Validate a Client-Server API request body, e.g.
 * `checkCsRequest('POST', '/_matrix/client/v3/register', {...})`. `path` is the
 * pathname (percent-encoded or already decoded; a query string is ignored).
 * Path parameters are checked against their schemas too (e.g. a room alias
 * where the spec wants a room ID). Throws if the spec has no such operation.
 */
export function checkCsRequest(method: string, path: string, body: unknown): string[] {
  return checkRequest('cs', method, path, body, false);
}

/** Validate a Client-Server API response body; [] when the spec gives no schema for that status. */
export function checkCsResponse(method: string, path: string, status: number, body: unknown): string[] {
  return checkResponse('cs', method, path, status, body, false);
}

/**
 * Validate an Application Service API request body (what the HS sends to the
 * AS), e.g. a transaction. Accepts `/_matrix/app/v1/...` and the legacy
 * unprefixed paths (`/transactions/{txnId}`).
 */
export function checkAsRequest(method: string, path: string, body: unknown): string[] {
  return checkRequest('as', method, path, body, true);
}

/** Validate the AS's answer, e.g. `checkAsResponse('GET', '/_matrix/app/v1/users/@a:hs', 200, {})`. Legacy paths accepted. */
export function checkAsResponse(method: string, path: string, status: number, body: unknown): string[] {
  return checkResponse('as', method, path, status, body, true);
}

/** The matched spec operation for a CS or AS path (throws when none). */
export function matchOperation(api: SpecApi, method: string, path: string): MatchedOperation {
  const { op, params } = findOperation(api, method, path, { legacy: api === 'as' });
  return {
    api,
    method: op.method.toUpperCase(),
    template: op.route.basePath + op.route.template.trim(),
    operationId: typeof op.node.operationId === 'string' ? op.node.operationId : undefined,
    params,
  };
}

/** Validate an AS registration object (the parsed registration YAML). */
export function checkRegistration(obj: unknown): string[] {
  const uri = uriOf('data/api/application-service/definitions/registration.yaml');
  return validateAt('registration', { uri, pointer: '', node: atPointer(uri, '') }, obj);
}

function eventSchemaUris(type: string, msgtype: unknown): string[] {
  const s = load();
  const out: string[] = [];
  const base = uriOf(`data/event-schemas/schema/${type}.yaml`);
  if (s.docs.has(base)) out.push(base);
  if (typeof msgtype === 'string') {
    const variant = uriOf(`data/event-schemas/schema/${type}$${msgtype}.yaml`);
    if (s.docs.has(variant)) out.push(variant);
  }
  return out;
}

/** Whether the copied fixtures hold a schema for this event type. */
export function hasEventSchema(type: string): boolean {
  return eventSchemaUris(type, undefined).length > 0;
}

/**
 * Validate a whole (client-format) event of the given type, and for
 * `m.room.message` also against its msgtype's schema. [] for event types
 * without a schema in the fixtures (see hasEventSchema).
 */
export function checkEvent(type: string, event: unknown): string[] {
  const content = isObject(event) && isObject(event.content) ? event.content : undefined;
  const errors = eventSchemaUris(type, content?.msgtype).flatMap((uri) =>
    validateAt(`event ${type}`, { uri, pointer: '', node: atPointer(uri, '') }, event),
  );
  return [...new Set(errors)];
}

/**
 * Validate just the `content` of an event of the given type (what goes in the
 * body of PUT .../send/{type}/{txnId} or .../state/{type}/{key}). [] for
 * event types without a schema in the fixtures.
 */
export function checkEventContent(type: string, content: unknown): string[] {
  const msgtype = isObject(content) ? content.msgtype : undefined;
  const errors = eventSchemaUris(type, msgtype).flatMap((uri) => {
    const loc = child({ uri, pointer: '', node: atPointer(uri, '') }, 'properties', 'content');
    return loc.node === undefined ? [] : validateAt(`${type} content`, loc, content);
  });
  return [...new Set(errors)];
}

/**
 * Validate a value against a whole schema file of the fixtures, named by its path under
 * test/fixtures/matrix-spec/: for the shared definitions no endpoint or event schema refers
 * to, e.g. `data/api/client-server/definitions/m.relates_to.yaml` or `.../m.mentions.yaml`.
 * Throws when the fixtures lack the file.
 */
export function checkSchemaFile(relPath: string, value: unknown, where: string = relPath.replace(/^.*\//, '').replace(/\.ya?ml$/, '')): string[] {
  const uri = uriOf(relPath);
  if (!load().docs.has(uri)) throw new Error(`no spec fixture ${relPath}`);
  return validateAt(where, { uri, pointer: '', node: atPointer(uri, '') }, value);
}
