/**
 * What the Lambda bundles have in place of `@smithy/node-http-handler` (the esbuild alias in
 * serverless.yml): the SDK clients' runtime configuration imports it for its default request
 * handler, and importing it loads node:https, node:tls, node:net and node:http at cold start. The
 * clients here are always given lib/aws-http.ts's fetch handler, which `NodeHttpHandler.create`
 * hands back as it is; anything that would build a Node handler fails loudly instead.
 */
import type { HttpHandler } from '@smithy/core/protocols';

export { streamCollector } from '@smithy/core/serde';

export const DEFAULT_REQUEST_TIMEOUT = 0;

const leftOut = (what: string) =>
  new Error(`${what}: @smithy/node-http-handler is left out of this bundle (serverless.yml, esbuild alias); give the client lib/aws-http.ts's requestHandler`);

const isHandler = (h: unknown): h is HttpHandler<any> => typeof (h as { handle?: unknown } | undefined)?.handle === 'function';

export class NodeHttpHandler {
  static create(handler?: unknown): HttpHandler<any> {
    if (isHandler(handler)) return handler;
    throw leftOut('NodeHttpHandler');
  }
  constructor() {
    throw leftOut('NodeHttpHandler');
  }
}

export class NodeHttp2Handler {
  static create(handler?: unknown): HttpHandler<any> {
    if (isHandler(handler)) return handler;
    throw leftOut('NodeHttp2Handler');
  }
  constructor() {
    throw leftOut('NodeHttp2Handler');
  }
}
