/**
 * What the `*.synapse.ts` scenarios share: the lab's scripts, `npm start` as a child process
 * (its own process group, its output kept), plain HTTP calls, and a clean-up that stops Synapse
 * and `npm start` whichever way a run ends. One scenario file runs per process (run.ts), so the
 * state here is the process's: importing this module registers the clean-up.
 */
import { after } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import { freePort } from '../../lib/local/ports.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const LAB = process.env.HS_LAB?.trim() ?? '';
/** The lab's Synapse (its start.sh honours HS_PORT too). */
export const HS = `http://127.0.0.1:${process.env.HS_PORT?.trim() || '8008'}`;
export const SERVER = 'localhost';
export const AS_READY_MS = 120_000;
export const LAB_SCRIPT_MS = 180_000;
/** How long we keep looking for something to happen; never asserted as a speed. */
export const LOOK_MS = 15_000;

export const DIR = mkdtempSync(join(tmpdir(), 'mal-synapse-'));
export const REGISTRATION_FILE = join(DIR, 'registration.yaml');

export interface Registration {
  id: string;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
}

/** This process's `npm start` and Synapse. */
export const run: {
  as?: ChildProcess;
  asUrl?: string;
  asOut: string;
  synapseStarted: boolean;
} = { asOut: '', synapseStarted: false };

// ---------------------------------------------------------------- helpers

// The AS's and the OpenID listener's ports: below the ephemeral range, as npm start's own (lib/local/ports.ts).
export { freePort };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one of the lab's scripts; its output goes to stderr (TAP stays on stdout), a failure throws. */
export function lab(script: string, ...args: string[]): Promise<string> {
  if (script === 'start.sh') run.synapseStarted = true;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(LAB, script), ...args], {
      cwd: DIR,
      env: { ...process.env, HS_LAB: LAB },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), LAB_SCRIPT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      for (const line of out.split('\n')) if (line.trim()) process.stderr.write(`[${script}] ${line}\n`);
      if (code === 0) resolve(out);
      else reject(new Error(`$HS_LAB/${script} ${args.join(' ')} failed (${signal ?? `exit code ${code}`}):\n${out}`));
    });
  });
}

/** Synapse's own log (the lab's data/homeserver.log), wiped by reset.sh. */
export const synapseLog = () => {
  const file = join(LAB, 'data', 'homeserver.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
};

/** The last lines the AS printed, for failure messages. */
export const asTail = (n = 40) => `--- last lines of npm start:\n${run.asOut.split('\n').slice(-n).join('\n')}`;

/** The AS's JSON log lines (serverless-offline passes the handlers' stdout through), from `since` (an offset in run.asOut) on. */
export function asLogLines(since = 0): Record<string, any>[] {
  const lines: Record<string, any>[] = [];
  for (const line of run.asOut.slice(since).split('\n')) {
    const at = line.indexOf('{');
    if (at < 0) continue;
    try {
      const j = JSON.parse(line.slice(at));
      if (j && typeof j === 'object') lines.push(j);
    } catch {
      // not a JSON line (serverless-offline's own chatter)
    }
  }
  return lines;
}

export interface Answer {
  status: number;
  body: any;
  /** The raw bytes of the answer. */
  bytes: Buffer;
  headers: Headers;
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: string | object | Buffer; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const raw = opts.body;
  const isBytes = Buffer.isBuffer(raw);
  const body = raw === undefined ? undefined : isBytes ? raw : typeof raw === 'string' ? raw : JSON.stringify(raw);
  let res: Response;
  try {
    res = await fetch(base + path, {
      method,
      body: body as BodyInit | undefined,
      headers: {
        ...(body === undefined || isBytes ? {} : { 'content-type': 'application/json' }),
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...opts.headers,
      },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (e) {
    // undici's "fetch failed" alone says nothing: name the request and the cause (ECONNRESET, …).
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${method} ${base}${path}: ${(e as Error).message}${cause ? ` (${[cause.code, cause.message].filter(Boolean).join(': ')})` : ''}`, { cause: e });
  }
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body: json, bytes, headers: res.headers };
}

/** The Client-Server API of the lab's Synapse. */
export const cs = (method: string, path: string, opts: { token?: string; body?: object | Buffer; headers?: Record<string, string> } = {}) => call(HS, method, path, opts);

/** Polls `probe` until it returns something, for at most LOOK_MS; then fails with `what`. */
export async function eventually<T>(what: () => string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const until = Date.now() + LOOK_MS;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() >= until) assert.fail(what());
    await sleep(300);
  }
}

// ---------------------------------------------------------------- start and stop

/** `npm start` (lib/local/start.ts) on a free port, with its own data folder and `env` on top. */
export async function startAs(env: Record<string, string>): Promise<void> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/local/start.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      REGISTRATION_FILE,
      // Its own data folder: never the developer's npm start state, fresh each run.
      DATA_DIR: join(dirname(REGISTRATION_FILE), 'data'),
      HOMESERVER_URL: HS,
      HOMESERVER_NAME: SERVER,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: stopping it takes serverless-offline and DynamoDB Local along.
    detached: true,
  });
  run.as = child;
  child.stdout!.on('data', (b: Buffer) => (run.asOut += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (run.asOut += b.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start not ready after ${AS_READY_MS / 1000} s\n${asTail()}`)), AS_READY_MS);
    const check = () => {
      if (/is ready on/.test(run.asOut)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${signal ?? code}) before it was ready\n${asTail(200)}`));
    });
  });
  run.asUrl = `http://127.0.0.1:${port}`;
}

/** Members of a process group that still run (zombies waiting to be reaped do not count). */
const liveInGroup = (pgid: number) =>
  spawnSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, g, stat]) => Number(g) === pgid && stat !== undefined && !stat.startsWith('Z'))
    .map((f) => `${f[0]} ${f.slice(3).join(' ')}`);

/**
 * Ctrl-C to npm start's process group, as a user would; SIGKILL to the group if it lingers.
 * Synchronous, like all of the clean-up: on Ctrl-C the test runner's own signal handler calls
 * process.exit() right after ours, so nothing asynchronous would get to run.
 */
function stopAs(): void {
  const pid = run.as?.pid;
  if (!pid || !liveInGroup(pid).length) return;
  try {
    process.kill(-pid, 'SIGINT');
  } catch {
    return; // already gone
  }
  const until = Date.now() + 20_000;
  while (liveInGroup(pid).length && Date.now() < until) spawnSync('sleep', ['0.2']);
  const left = liveInGroup(pid);
  if (left.length) {
    // The group still has members, so its id is still ours: nothing else can have been given it.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    process.stderr.write(`npm start did not stop within 20 s of SIGINT; SIGKILL sent to its group:\n${left.join('\n')}\n`);
  }
}

/** Synapse, then npm start, then the temp dir: once, whichever way the run ends. */
let cleanedUp = false;
function cleanup(): void {
  if (cleanedUp) return;
  cleanedUp = true;
  if (run.synapseStarted) {
    // Output captured, not inherited: after Ctrl-C our stdout may be a closed pipe, and a write
    // there would kill the script half-way (SIGPIPE).
    const r = spawnSync('bash', [join(LAB, 'stop.sh')], { env: { ...process.env, HS_LAB: LAB }, encoding: 'utf8', timeout: 60_000 });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    try {
      for (const line of out.split('\n')) if (line.trim()) process.stderr.write(`[stop.sh] ${line}\n`);
      if (r.status !== 0) process.stderr.write(`[stop.sh] failed (${r.signal ?? `exit code ${r.status}`}${r.error ? `: ${r.error.message}` : ''})\n`);
    } catch {
      // nowhere left to say it
    }
  }
  stopAs();
  rmSync(DIR, { recursive: true, force: true });
}

after(cleanup);
// Before the test runner's own handlers, which end the process at once.
process.prependListener('SIGINT', cleanup);
process.prependListener('SIGTERM', cleanup);
process.on('exit', cleanup);

/** A step's precondition: an earlier step left what this one needs. */
export const need = (what: string, ok: unknown) => assert.ok(ok, `needs ${what}`);
export const roomPath = (roomId: string) => `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}`;

/** The network calls the AS (npm start): POST /network/{path}, signed with `sign` (the fake network's secret). */
export function toAs(sign: (raw: string) => string, path: string, body: Record<string, unknown>): Promise<Answer> {
  const raw = JSON.stringify(body);
  return call(run.asUrl!, 'POST', `/network/${path}`, { body: raw, headers: { 'x-signature': sign(raw) } });
}

/** A user (`token`) sends a text message; its event id. */
export async function sayAs(token: string | undefined, roomId: string, body: string): Promise<string> {
  const res = await cs('PUT', `${roomPath(roomId)}/send/m.room.message/${randomBytes(6).toString('hex')}`, { token, body: { msgtype: 'm.text', body } });
  assert.equal(res.status, 200, `send in ${roomId}: ${JSON.stringify(res.body)}`);
  return res.body.event_id;
}

/** The joined members of a room, as a member (`token`) reads them. */
export async function joinedMembersAs(token: string | undefined, roomId: string): Promise<Record<string, { display_name?: string | null }>> {
  const res = await cs('GET', `${roomPath(roomId)}/joined_members`, { token });
  assert.equal(res.status, 200, `joined_members of ${roomId}: ${JSON.stringify(res.body)}`);
  return res.body.joined;
}

/** The room's full current state, as a member (`token`) reads it. */
export async function roomStateAs(token: string | undefined, roomId: string): Promise<Record<string, any>[]> {
  const res = await cs('GET', `${roomPath(roomId)}/state`, { token });
  assert.equal(res.status, 200, `state of ${roomId}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A real PNG (Synapse thumbnails images on upload: it must be able to read them), `w`×`h`, RGB. */
export function png(w: number, h: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, no filter, no interlace
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: w }, () => rgb).flat())]);
  const raw = Buffer.concat(Array.from({ length: h }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The pre-signed link, fetched as the network would: plain HTTP to npm start. */
export const fetchLink = (link: string) => {
  const u = new URL(link);
  return call(u.origin, 'GET', u.pathname + u.search);
};
