/** The routes we serve (IDs may hold `/`, so they take the rest of the path, as serverless.yml's greedy variables do), for telling "wrong method" (405) from "no such endpoint" (404). */
import { unrecognized as unrecognizedError } from '../matrix/errors.js';
import type { Reply } from './http.js';

const KNOWN: Array<[RegExp, string]> = [
  [/^\/_matrix\/app\/v1\/users\/.+$/, 'GET'],
  [/^\/_matrix\/app\/v1\/rooms\/.+$/, 'GET'],
  [/^\/_matrix\/app\/v1\/transactions\/.+$/, 'PUT'],
  [/^\/_matrix\/app\/v1\/ping$/, 'POST'],
  // The third-party lookups, and their legacy prefix (Synapse before 1.81).
  [/^\/_matrix\/app\/(v1|unstable)\/thirdparty\/(protocol|location|user)\/.+$/, 'GET'],
  [/^\/_matrix\/app\/(v1|unstable)\/thirdparty\/(location|user)$/, 'GET'],
  [/^\/users\/.+$/, 'GET'],
  [/^\/rooms\/.+$/, 'GET'],
  [/^\/transactions\/.+$/, 'PUT'],
  [/^\/network\/(messages|edits|deletions|reactions|members|profile|media)$/, 'POST'],
  [/^\/network\/rooms\/.+$/, 'POST'],
  [/^\/network\/media\/[^/]+\/[^/]+$/, 'GET'],
  [/^\/_matrix\/provision\/v1\/links$/, 'GET'],
  [/^\/_matrix\/provision\/v1\/rooms\/[^/]+$/, 'GET'],
  [/^\/_matrix\/provision\/v1\/rooms\/[^/]+\/links$/, 'GET, POST, DELETE'],
];

export function unrecognized(method: string, path: string): Reply {
  const known = KNOWN.find(([re]) => re.test(path));
  if (known && !known[1].split(', ').includes(method)) {
    return { status: 405, body: unrecognizedError(`${method} is not allowed on ${path}; use ${known[1]}`, 405).body };
  }
  return { status: 404, body: unrecognizedError('unrecognized request').body };
}
