/**
 * A TCP pass-through in front of a local server that a test can cut: while cut, connections are
 * refused (ECONNREFUSED, as for a service that is down) and open ones are dropped; mend() brings
 * it back on the same port. For "the queue is down" without losing what the server holds.
 */
import { after } from 'node:test';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

export interface CutProxy {
  url: string;
  cut(): Promise<void>;
  mend(): Promise<void>;
}

export async function startCutProxy(target: string): Promise<CutProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(Number(targetPort), hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      server = undefined;
    });
  await listen();
  after(close);
  return { url: `http://127.0.0.1:${port}`, cut: close, mend: listen };
}
