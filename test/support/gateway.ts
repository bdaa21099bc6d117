/**
 * A stand-in for API Gateway over a real socket, for tests where someone else (the fake
 * homeserver's ping) calls the AS by URL: each request becomes a payload 2.0 event for the
 * function `route` names, invoked as Lambda does.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import { invoke } from './lambda.js';

type Handler = Parameters<typeof invoke>[0];

export interface Gateway {
  url: string;
  /** Every request, in arrival order, with what the function answered. */
  requests: Array<{ method: string; path: string; headers: Record<string, string | string[] | undefined>; body: string; status: number; answer: unknown }>;
  close(): Promise<void>;
}

export async function startGateway(route: (method: string, path: string) => Handler | undefined): Promise<Gateway> {
  const requests: Gateway['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const method = req.method ?? 'GET';
      const url = new URL(req.url ?? '/', 'http://gateway');
      const body = Buffer.concat(chunks).toString('utf8');
      const handler = route(method, url.pathname);
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
      const reply = handler
        ? await invoke(handler, { method, path: url.pathname, rawQuery: url.search.slice(1), headers, rawBody: body })
        : { status: 404, body: { errcode: 'M_UNRECOGNIZED', error: 'no route in the test gateway' }, headers: {} };
      requests.push({ method, path: url.pathname, headers: req.headers, body, status: reply.status, answer: reply.body });
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  after(close);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close };
}
