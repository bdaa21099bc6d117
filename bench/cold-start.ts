/**
 * 1. Cold start. Each of our functions is bundled with esbuild the way serverless.yml tells
 * serverless-esbuild to (the options are read from serverless.yml itself), and so is a minimal AS
 * written with each peer. Then each bundle is imported in a fresh `node` process, again and again,
 * interleaved with a bare `node -e 0`; the figure is the median import run less the median bare run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import type { BuildOptions } from 'esbuild';
import { parse } from 'yaml';
import { BENCH_DIR, ROOT_DIR, median, now } from './lib.js';
import type { PeerKind } from './lib.js';

export interface Bundle {
  /** e.g. 'user-query', or a peer kind */
  name: string;
  kind: 'ours' | PeerKind;
  file: string;
  bytes: number;
}

export interface ColdStartResult {
  esbuild: Record<string, unknown>;
  runs: number;
  node: string;
  /** Median of `node -e 0`, ms. */
  bareMs: number;
  bundles: Array<Bundle & { medianMs: number; importMs: number; samplesMs: number[] }>;
}

const OUT = join(BENCH_DIR, '.build');

/** The esbuild options serverless.yml gives serverless-esbuild, as esbuild's own BuildOptions. */
export function serverlessEsbuildOptions(): { options: BuildOptions; raw: Record<string, unknown>; handlers: Record<string, string> } {
  const sls = parse(readFileSync(join(ROOT_DIR, 'serverless.yml'), 'utf8')) as {
    custom?: { esbuild?: Record<string, any> };
    functions?: Record<string, { handler?: string }>;
  };
  const e = sls.custom?.esbuild ?? {};
  const options: BuildOptions = {
    bundle: e.bundle ?? true,
    minify: e.minify ?? false,
    format: e.format ?? 'esm',
    platform: e.platform ?? 'node',
    target: e.target ?? 'node22',
    sourcemap: e.sourcemap === 'external' ? 'external' : Boolean(e.sourcemap),
    banner: e.banner,
    // serverless.yml's `exclude` list stays external (`@aws-sdk/client-ssm`, which the Lambda
    // runtime provides; it is imported lazily, so the bundle loads without it); the rest of the
    // AWS SDK is bundled.
    external: Array.isArray(e.exclude) ? e.exclude.filter((x: unknown) => typeof x === 'string' && x !== '*') : [],
    outExtension: { '.js': e.outputFileExtension ?? '.mjs' },
    logLevel: 'error',
  };
  const handlers: Record<string, string> = {};
  for (const fn of Object.values(sls.functions ?? {})) {
    const h = fn.handler ?? '';
    const file = h.slice(0, h.lastIndexOf('.'));
    if (file) handlers[basename(file)] = join(ROOT_DIR, `${file}.ts`);
  }
  return { options, raw: e, handlers };
}

/**
 * The peers' CommonJS code reads `__dirname`, which an ESM bundle lacks (ours never does), so their
 * bundles get it defined beside serverless.yml's `require`; without it they do not load at all.
 */
const PEER_BANNER = "import { fileURLToPath as __fileURLToPath } from 'node:url'; import { dirname as __pathDirname } from 'node:path'; const __filename = __fileURLToPath(import.meta.url); const __dirname = __pathDirname(__filename);";

async function bundle(entry: string, name: string, kind: Bundle['kind'], options: BuildOptions): Promise<Bundle> {
  const outdir = join(OUT, kind === 'ours' ? 'ours' : 'peers');
  const banner = kind === 'ours' ? options.banner : { js: `${options.banner?.js ?? ''} ${PEER_BANNER}`.trim() };
  await build({ ...options, banner, entryPoints: { [name]: entry }, outdir });
  const file = join(outdir, `${name}${options.outExtension?.['.js'] ?? '.js'}`);
  return { name, kind, file, bytes: statSync(file).size };
}

export async function buildBundles(peers: PeerKind[]): Promise<{ bundles: Bundle[]; raw: Record<string, unknown> }> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const { options, raw, handlers } = serverlessEsbuildOptions();
  const bundles: Bundle[] = [];
  for (const [name, entry] of Object.entries(handlers)) bundles.push(await bundle(entry, name, 'ours', options));
  for (const p of peers) bundles.push(await bundle(join(BENCH_DIR, 'peers', p === 'bridge' ? 'bridge-as.mjs' : 'botsdk-as.mjs'), p, p, options));
  return { bundles, raw };
}

function timeNode(args: string[]): number {
  const t = now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  const ms = now() - t;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(0, 2000)}`);
  return ms;
}

export async function coldStart(peers: PeerKind[], runs: number, log: (s: string) => void): Promise<ColdStartResult> {
  const { bundles, raw } = await buildBundles(peers);
  log(`  built ${bundles.length} bundles into bench/.build/`);
  // Each bundle is the process's main module: importing it is all the process does.
  // Check once that each one loads and lets the process end on its own.
  for (const b of bundles) timeNode([b.file]);
  const bare: number[] = [];
  const samples = new Map<string, number[]>(bundles.map((b) => [b.file, []]));
  // Round-robin so a noisy moment spreads over every subject rather than hitting one.
  for (let i = 0; i < runs; i++) {
    bare.push(timeNode(['-e', '0']));
    for (const b of bundles) samples.get(b.file)?.push(timeNode([b.file]));
  }
  const bareMs = median(bare);
  return {
    esbuild: raw,
    runs,
    node: process.version,
    bareMs,
    bundles: bundles.map((b) => {
      const s = samples.get(b.file) ?? [];
      const m = median(s);
      return { ...b, file: b.file.slice(ROOT_DIR.length), medianMs: m, importMs: m - bareMs, samplesMs: s.map((x) => Number(x.toFixed(2))) };
    }),
  };
}
