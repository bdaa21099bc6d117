/**
 * An HTTP pass-through that counts what goes through it, for "this request made no call to X":
 * put it between the AS and DynamoDB Local, the local queue or a fake AWS endpoint, and read
 * `requests` (each with the AWS operation it named, from X-Amz-Target or the Action field).
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

export interface CountingProxy {
  url: string;
  /** Where requests go; may be set after the proxy starts (a server the AS starts itself). */
  target: string;
  requests: Array<{ method: string; path: string; operation: string }>;
}

export async function startCountingProxy(target = ''): Promise<CountingProxy> {
  const proxy: CountingProxy = { url: '', target, requests: [] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      const action = /(?:^|&)Action=([^&]+)/.exec(body.toString('utf8'))?.[1];
      proxy.requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', operation: amzTarget.split('.').pop() || action || '?' });
      const to = new URL(req.url ?? '/', proxy.target);
      const up = request(to, { method: req.method, headers: { ...req.headers, host: to.host } }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return proxy;
}
