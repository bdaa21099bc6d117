/**
 * `npm start`'s data folder (lib/local/data.ts) without starting anything: the lock that keeps a
 * second run off DynamoDB Local's file (two DynamoDB Locals on one SQLite file fail each other's
 * writes with "database is locked"), taken over when its holder is gone, and the wipe behind
 * `--fresh` and `npm run reset`. restart.test.ts runs the same through `npm start` itself.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_DATA_DIR, DataDirBusyError, LOCK_FILE, dataDirFrom, describeWipe, dynamoDirOf,
  queueFileOf, lockDataDir, wipeDynamoData } from '../../lib/local/data.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'mal-datadir-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(DIR, { recursive: true, force: true });
});

let n = 0;
const freshDir = () => join(DIR, `d${++n}`);
const lockFile = (dir: string) => join(dir, LOCK_FILE);
const holder = (dir: string) => JSON.parse(readFileSync(lockFile(dir), 'utf8'));
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

/** A process that runs until killed, with `marker` in its command line (as ps shows it). */
async function sleeper(marker: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', `/* ${marker} */ setInterval(() => {}, 1000)`], { stdio: 'ignore' });
  children.push(child);
  await new Promise((r) => child.once('spawn', r));
  return child;
}

const exited = (c: ChildProcess) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r)));

test('DATA_DIR: .local/ in the project unless set; a relative one is taken from the current directory', () => {
  assert.equal(DEFAULT_DATA_DIR, join(ROOT, '.local'));
  assert.equal(dataDirFrom({}), DEFAULT_DATA_DIR);
  assert.equal(dataDirFrom({ DATA_DIR: '  ' }), DEFAULT_DATA_DIR);
  assert.equal(dataDirFrom({ DATA_DIR: '/srv/x' }), '/srv/x');
  assert.equal(dataDirFrom({ DATA_DIR: 'rel/x' }), join(process.cwd(), 'rel/x'));
  assert.equal(dynamoDirOf('/srv/x'), '/srv/x/dynamodb');
  // .local/ is git-ignored, so the data never ends up in a commit.
  assert.equal(spawnSync('git', ['check-ignore', '-q', '.local/dynamodb/shared-local-instance.db'], { cwd: ROOT }).status, 0);
});

test('the lock: taken with our pid, released on release(), then free again', () => {
  const dir = freshDir();
  const lock = lockDataDir(dir, 'npm start');
  assert.equal(lock.tookOver, undefined);
  assert.equal(holder(dir).pid, process.pid);
  assert.equal(holder(dir).what, 'npm start');
  lock.noteDynamo(12345);
  assert.equal(holder(dir).dynamodbPid, 12345);
  lock.release();
  lock.release();
  assert.ok(!existsSync(lockFile(dir)));
  lockDataDir(dir, 'npm start').release();
});

test('a live npm start holds it: refused, saying who and what to do; once it is gone, taken over', async () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  const other = await sleeper('node --import tsx lib/local/start.ts');
  writeFileSync(lockFile(dir), JSON.stringify({ pid: other.pid, what: 'npm start', since: '2026-01-01T00:00:00.000Z' }));
  assert.throws(
    () => lockDataDir(dir, 'npm start'),
    (e: Error) =>
      e instanceof DataDirBusyError &&
      e.message.includes(`npm start (pid ${other.pid}, since 2026-01-01T00:00:00.000Z) is already using ${dir}`) &&
      /Stop that one first \(Ctrl-C\), or give this one another folder \(DATA_DIR=…\)/.test(e.message),
  );
  assert.equal(holder(dir).pid, other.pid, 'its lock is left alone');
  other.kill('SIGKILL');
  await exited(other);
  const lock = lockDataDir(dir, 'npm start');
  assert.match(lock.tookOver ?? '', new RegExp(`npm start pid ${other.pid} did not stop cleanly; its lock is taken over`));
  assert.equal(holder(dir).pid, process.pid);
  lock.release();
});

test("a dead holder's pid, or one now used by an unrelated process, is stale: taken over", async () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  const dead = deadPid();
  writeFileSync(lockFile(dir), JSON.stringify({ pid: dead }));
  let lock = lockDataDir(dir, 'npm start');
  assert.match(lock.tookOver ?? '', new RegExp(`pid ${dead} did not stop cleanly`));
  lock.release();

  const unrelated = await sleeper('something else');
  writeFileSync(lockFile(dir), JSON.stringify({ pid: unrelated.pid }));
  lock = lockDataDir(dir, 'npm start');
  assert.ok(lock.tookOver);
  lock.release();
  // A lock with our own pid (a container whose runs all get the same pid) is an old one too.
  writeFileSync(lockFile(dir), JSON.stringify({ pid: process.pid }));
  lock = lockDataDir(dir, 'npm start');
  assert.ok(lock.tookOver);
  lock.release();
});

test('the DynamoDB Local of a run that was killed still has the file open: refused, naming it', async () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  const java = await sleeper('java -jar DynamoDBLocal.jar -dbPath x');
  writeFileSync(lockFile(dir), JSON.stringify({ pid: deadPid(), dynamodbPid: java.pid }));
  assert.throws(
    () => lockDataDir(dir, 'npm start'),
    (e: Error) => e instanceof DataDirBusyError && e.message.includes(`a DynamoDB Local (pid ${java.pid}) left running`) && e.message.includes(`kill ${java.pid}`),
  );
  java.kill('SIGKILL');
  await exited(java);
  const lock = lockDataDir(dir, 'npm start');
  assert.ok(lock.tookOver);
  lock.release();
});

test('a lock file being written (unreadable, new) means a run is starting; an old unreadable one is stale', () => {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(lockFile(dir), '{"pi');
  assert.throws(() => lockDataDir(dir, 'npm start'), (e: Error) => e instanceof DataDirBusyError && /is starting/.test(e.message));
  const old = new Date(Date.now() - 60_000);
  utimesSync(lockFile(dir), old, old);
  const lock = lockDataDir(dir, 'npm start');
  assert.match(lock.tookOver ?? '', /unreadable lock file/);
  lock.release();
});

test('the wipe: says what it removed, keeps the folder and the lock; nothing to wipe the second time', () => {
  const dir = freshDir();
  const lock = lockDataDir(dir, 'npm run reset');
  mkdirSync(join(dynamoDirOf(dir), 'sub'), { recursive: true });
  writeFileSync(join(dynamoDirOf(dir), 'shared-local-instance.db'), Buffer.alloc(3000));
  writeFileSync(join(dynamoDirOf(dir), 'sub', 'x'), 'abc');
  // Messages a clean stop saved from the local queues go with the table.
  writeFileSync(queueFileOf(dir), 'x'.repeat(97));
  const wiped = wipeDynamoData(dir);
  assert.deepEqual(wiped, { dir: dynamoDirOf(dir), files: 3, bytes: 3100 });
  assert.equal(
    describeWipe(wiped),
    `wiped ${dynamoDirOf(dir)} (DynamoDB Local's data, 3 files, 3 KB): every room mapping, user, kept scrollback and transaction record, and any undelivered message, is gone`,
  );
  assert.ok(!existsSync(dynamoDirOf(dir)));
  assert.ok(!existsSync(queueFileOf(dir)));
  assert.ok(existsSync(lockFile(dir)));
  assert.equal(describeWipe(wipeDynamoData(dir)), `nothing to wipe: ${dynamoDirOf(dir)} holds no data yet`);
  lock.release();
});
