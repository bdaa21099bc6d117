/**
 * Where `npm start` keeps its state between runs, and what keeps two runs off the same state.
 *
 * DATA_DIR (default `.local/` in the project, git-ignored) holds DynamoDB Local's database in
 * `dynamodb/` (one SQLite file, `-sharedDb`) and, while an `npm start` runs, its lock file
 * `npm-start.lock`. DynamoDB Local does not guard its file: two of them on one folder both start,
 * then fail writes at random with SQLITE_BUSY ("database is locked", answered as a 500
 * InternalFailure). So the lock is taken before anything starts, refused with a clear message
 * while its holder runs, and taken over when its holder is gone (killed, or the machine restarted).
 *
 * `npm start -- --fresh` and `npm run reset` wipe `dynamodb/` (under the lock, so never from under
 * a running one). The registration file is not touched: the homeserver holds its tokens.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The default DATA_DIR: `.local/` in the project (git-ignored). */
export const DEFAULT_DATA_DIR = join(ROOT, '.local');
export const LOCK_FILE = 'npm-start.lock';
/** A lock file younger than this that cannot be read is being written by a run that is starting. */
const UNREADABLE_GRACE_MS = 10_000;

type Env = Record<string, string | undefined>;

/** DATA_DIR, absolute (a relative one is taken from the current directory). */
export function dataDirFrom(env: Env): string {
  return resolve(env.DATA_DIR?.trim() || DEFAULT_DATA_DIR);
}

/** DynamoDB Local's folder (`-dbPath`) in a data folder. */
export const dynamoDirOf = (dataDir: string) => join(dataDir, 'dynamodb');
/** Messages on the local delivery queues when npm start last stopped cleanly (lib/local/queue.ts). */
export const queueFileOf = (dataDir: string) => join(dataDir, 'sqs-messages.jsonl');

/** A path as a user reads it: relative to the current directory when it is below it. */
export function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

export class DataDirBusyError extends Error {
  override name = 'DataDirBusyError';
}

interface Holder {
  pid: number;
  /** What holds it: `npm start` or `npm run reset`. */
  what?: string;
  since?: string;
  /** The DynamoDB Local (java) it started, which keeps the database open. */
  dynamodbPid?: number;
}

/**
 * Whether `pid` runs and is what `marker` says (a word of its command line). `ps` (Linux, macOS)
 * tells a reused pid from the process that wrote it, and a zombie from a live one; without `ps`,
 * a pid that exists counts.
 */
function runs(pid: number, marker: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const ps = spawnSync('ps', ['-o', 'stat=,args=', '-p', String(pid)], { encoding: 'utf8' });
  if (ps.error) return true;
  const line = ps.stdout.trim();
  return line !== '' && !line.startsWith('Z') && line.includes(marker);
}

function readHolder(file: string): Holder | 'unreadable' | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const h = JSON.parse(text) as Holder;
    return Number.isInteger(h?.pid) ? h : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

export interface DataLock {
  file: string;
  /** Said when the lock was taken over from a run that did not stop cleanly; else undefined. */
  tookOver?: string;
  /** Records the DynamoDB Local process, so a run that finds it orphaned says so rather than share its file. */
  noteDynamo(pid: number | undefined): void;
  /** Removes the lock file if it is still ours. Safe to call more than once, and from an `exit` handler. */
  release(): void;
}

/**
 * Takes DATA_DIR for this process, or throws DataDirBusyError saying who has it and what to do.
 * The lock file is created exclusively (O_EXCL), so of two runs starting together one gets it.
 */
export function lockDataDir(dataDir: string, what: string): DataLock {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, LOCK_FILE);
  const mine: Holder = { pid: process.pid, what, since: new Date().toISOString() };
  let tookOver: string | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      try {
        writeSync(fd, `${JSON.stringify(mine)}\n`);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const held = readHolder(file);
      if (held === undefined) continue; // just released: try again
      if (held === 'unreadable') {
        let age = Infinity;
        try {
          age = Date.now() - statSync(file).mtimeMs;
        } catch {
          continue;
        }
        if (age < UNREADABLE_GRACE_MS) throw new DataDirBusyError(`another npm start is starting on ${shown(dataDir)} (${shown(file)} is being written); wait for it or stop it`);
        tookOver = `removed the unreadable lock file ${shown(file)}`;
      } else {
        if (runs(held.pid, 'lib/local/')) {
          throw new DataDirBusyError(
            `${held.what ?? 'npm start'} (pid ${held.pid}${held.since ? `, since ${held.since}` : ''}) is already using ${shown(dataDir)}: ` +
              'DynamoDB Local keeps one database file there and two of them at once make each other fail. ' +
              'Stop that one first (Ctrl-C), or give this one another folder (DATA_DIR=…) and another PORT.',
          );
        }
        if (held.dynamodbPid !== undefined && runs(held.dynamodbPid, 'DynamoDBLocal')) {
          throw new DataDirBusyError(
            `a DynamoDB Local (pid ${held.dynamodbPid}) left running by an npm start that did not stop cleanly (pid ${held.pid}) still uses ${shown(dynamoDirOf(dataDir))}. ` +
              `Stop it (kill ${held.dynamodbPid}) and start again.`,
          );
        }
        tookOver = `${held.what ?? 'npm start'} pid ${held.pid} did not stop cleanly; its lock is taken over`;
      }
      try {
        unlinkSync(file);
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code !== 'ENOENT') throw e2;
      }
      continue;
    }
    let released = false;
    return {
      file,
      tookOver,
      noteDynamo(pid) {
        if (released || pid === undefined) return;
        mine.dynamodbPid = pid;
        writeFileSync(file, `${JSON.stringify(mine)}\n`);
      },
      release() {
        if (released) return;
        released = true;
        const held = readHolder(file);
        if (held !== undefined && held !== 'unreadable' && held.pid === process.pid) rmSync(file, { force: true });
      },
    };
  }
  throw new DataDirBusyError(`could not take ${shown(file)}: other runs keep taking it; stop them and try again`);
}

/** What a wipe removed. */
export interface Wiped {
  dir: string;
  files: number;
  bytes: number;
}

function sizeOf(path: string): { files: number; bytes: number } {
  const st = statSync(path);
  if (!st.isDirectory()) return { files: 1, bytes: st.size };
  let files = 0;
  let bytes = 0;
  for (const name of readdirSync(path)) {
    const s = sizeOf(join(path, name));
    files += s.files;
    bytes += s.bytes;
  }
  return { files, bytes };
}

/** Empties DynamoDB Local's folder of `dataDir` (call it holding the lock). */
export function wipeDynamoData(dataDir: string): Wiped {
  const dir = dynamoDirOf(dataDir);
  // The queued messages go too: they belong to the rooms being forgotten.
  const queued = queueFileOf(dataDir);
  const q = existsSync(queued) ? { files: 1, bytes: statSync(queued).size } : { files: 0, bytes: 0 };
  rmSync(queued, { force: true });
  if (!existsSync(dir)) return { dir, files: q.files, bytes: q.bytes };
  const { files, bytes } = sizeOf(dir);
  rmSync(dir, { recursive: true, force: true });
  return { dir, files: files + q.files, bytes: bytes + q.bytes };
}

/** One line saying what a wipe removed. */
export function describeWipe(w: Wiped): string {
  if (w.files === 0) return `nothing to wipe: ${shown(w.dir)} holds no data yet`;
  const size = w.bytes < 1024 ? `${w.bytes} bytes` : w.bytes < 1024 * 1024 ? `${(w.bytes / 1024).toFixed(0)} KB` : `${(w.bytes / 1024 / 1024).toFixed(1)} MB`;
  return (
    `wiped ${shown(w.dir)} (DynamoDB Local's data, ${w.files} file${w.files === 1 ? '' : 's'}, ${size}): ` +
    'every room mapping, user, kept scrollback and transaction record, and any undelivered message, is gone'
  );
}
