/**
 * Runs `npm start`'s script (DynamoDB Local + serverless-offline on serverless.yml) for an
 * end-to-end test, and stops it the way a user does (Ctrl-C), checking nothing is left behind.
 *
 * Each run keeps its data (DATA_DIR) in a folder of its own, removed after the test file, unless
 * the test gives one (to restart on the same data): never the developer's `.local/`.
 */
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCK_FILE } from '../../lib/local/data.js';
import { freePort } from '../../lib/local/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Running {
  child: ChildProcess;
  url: string;
  dynamoPort: string;
  /** Its DATA_DIR. */
  dataDir: string;
  output: () => string;
}

const running = new Set<ChildProcess>();
const dataDirs: string[] = [];
after(() => {
  // The script runs in a process group of its own: a test that failed half-way takes
  // serverless-offline and DynamoDB Local down with it, rather than orphan them.
  for (const c of running) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      c.kill('SIGKILL');
    }
  }
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

/** The line that says where DynamoDB Local runs (and where it keeps its data). */
export const DYNAMO_LINE = /^ *DynamoDB Local\b.*: http:\/\/127\.0\.0\.1:(\d+)$/m;

/**
 * Runs `npm start`'s script (with `args`, e.g. `--fresh`) and resolves once it prints that it is
 * ready. Without DATA_DIR in `env`, in a new temporary folder.
 */
export async function start(homeserverUrl: string, env: Record<string, string>, args: string[] = []): Promise<Running> {
  const port = await freePort();
  if (!env.DATA_DIR) {
    const dir = mkdtempSync(join(tmpdir(), 'mal-data-'));
    dataDirs.push(dir);
    env = { ...env, DATA_DIR: dir };
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/local/start.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOMESERVER_URL: homeserverUrl, HOMESERVER_NAME: 'localhost', NETWORK: 'open', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise<void>((resolve, reject) => {
    // Only ends a start that hangs: three test files at a time on a loaded 2-core machine can
    // take npm start (a JVM, esbuild, serverless-offline) well over a minute.
    const timer = setTimeout(() => reject(new Error(`not ready after 150 s:\n${out}`)), 150_000);
    const check = () => {
      if (/is ready on/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}) before ready:\n${out}`));
    });
  });
  const dynamoPort = out.match(DYNAMO_LINE)?.[1];
  assert.ok(dynamoPort, `it says where DynamoDB Local runs:\n${out}`);
  return { child, url: `http://127.0.0.1:${port}`, dynamoPort, dataDir: env.DATA_DIR!, output: () => out };
}

/** Running, not merely a zombie waiting to be reaped (tsx's esbuild helper can linger as one). */
const alive = (pid: number) => {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat !== '' && !stat.startsWith('Z');
};

/** Ctrl-C: the script must exit 0 and take serverless-offline and its DynamoDB Local with it. */
export async function stopAndCheck(run: Running): Promise<void> {
  const pid = run.child.pid!;
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map((p) => ({ pid: Number(p), args: spawnSync('ps', ['-o', 'args=', '-p', p], { encoding: 'utf8' }).stdout.trim() }));
  const ps = children.map((c) => `${c.pid} ${c.args}`).join('\n');
  const offline = children.find((c) => c.args.includes('serverless.js offline start'));
  const java = children.find((c) => c.args.includes('DynamoDBLocal'));
  assert.ok(offline && java, `serverless-offline and DynamoDB Local run under it:\n${ps}`);

  const exited = new Promise<number | null>((r) => run.child.once('exit', (code) => r(code)));
  run.child.kill('SIGINT');
  assert.equal(await exited, 0, run.output());
  for (const c of [offline, java]) assert.ok(!alive(c.pid), `still running after npm start stopped: ${c.pid} ${c.args}`);
  // `npm test` runs a DynamoDB Local of its own: look only for the one on this run's port.
  const left = spawnSync('pgrep', ['-f', `DynamoDBLocal.*-port ${run.dynamoPort}`], { encoding: 'utf8' });
  assert.equal(left.stdout.trim(), '', 'no DynamoDB Local java process of it remains');
  assert.ok(!existsSync(join(run.dataDir, LOCK_FILE)), `its lock on ${run.dataDir} is released`);
}


/**
 * Waits (bounded) until `probe` holds: npm start delivers from its queue in the background, so
 * what a push queued reaches the network a moment after the push's 200. Not a speed assertion:
 * the bound only ends a test that would otherwise hang.
 */
export async function eventually(what: string, probe: () => boolean, lookMs = 20_000): Promise<void> {
  const until = Date.now() + lookMs;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`still not so after ${lookMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
