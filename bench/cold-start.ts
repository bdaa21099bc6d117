/**
 * 1. Cold start. Our functions are measured as deployed: `osls package` (what `npm run package`
 * makes, in a service folder of its own so that it never touches the project's .serverless:
 * test/support/artifact.ts), each zip unzipped, and each function's bundle is the .mjs in it. A
 * minimal AS written with each peer is bundled with the same esbuild options (read from
 * serverless.yml). Then each bundle is imported in a fresh Node 22 process (Lambda's nodejs22.x),
 * again and again, interleaved with a bare `node -e 0`; the figure is the median import run less
 * the median bare run, printed as "bare node + X ms" beside each bundle's size.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import type { BuildOptions } from 'esbuild';
import { parse } from 'yaml';
import { LAMBDA_NODE_FLAGS, makeRuntime, node22, packageService, scratch } from '../test/support/artifact.js';
import { BENCH_DIR, ROOT_DIR, median, now } from './lib.js';
import type { PeerKind } from './lib.js';

export interface Bundle {
  /** e.g. 'user-query' (the handler's file), or a peer kind */
  name: string;
  kind: 'ours' | PeerKind;
  /** ours: the function in serverless.yml, e.g. 'userQuery' */
  fn?: string;
  file: string;
  bytes: number;
  /** the folder the process runs in: ours, the unzipped task root */
  cwd?: string;
}

export interface ColdStartResult {
  esbuild: Record<string, unknown>;
  runs: number;
  node: string;
  /** Median of `node -e 0`, ms. */
  bareMs: number;
  bundles: Array<Bundle & { medianMs: number; importMs: number; samplesMs: number[] }>;
  /** push bundled with the SDK's defaults (bundleReference), same run. */
  reference?: { bytes: number; importMs: number };
}

const OUT = join(BENCH_DIR, '.build');

/** serverless-esbuild's own options, which it takes out before it hands the rest to esbuild. */
const PLUGIN_ONLY = new Set([
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
]);

/** The esbuild options serverless.yml gives serverless-esbuild, as esbuild's own BuildOptions (what the plugin passes on). */
export function serverlessEsbuildOptions(): { options: BuildOptions; raw: Record<string, unknown>; handlers: Record<string, string> } {
  const sls = parse(readFileSync(join(ROOT_DIR, 'serverless.yml'), 'utf8')) as {
    custom?: { esbuild?: Record<string, any> };
    functions?: Record<string, { handler?: string }>;
  };
  const e = sls.custom?.esbuild ?? {};
  const passed = Object.fromEntries(Object.entries(e).filter(([k]) => !PLUGIN_ONLY.has(k))) as BuildOptions;
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '*') : []);
  const options: BuildOptions = {
    ...passed,
    // serverless.yml's `exclude` list stays external (`@aws-sdk/client-ssm`, which the Lambda
    // runtime provides; it is imported lazily, so the bundle loads without it).
    external: [...strings(e.external), ...strings(e.exclude)],
    outExtension: { '.js': e.outputFileExtension ?? '.mjs' },
    // Relative paths (the alias) are the service folder's, as for serverless-esbuild.
    absWorkingDir: ROOT_DIR,
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

async function bundlePeer(peer: PeerKind, options: BuildOptions): Promise<Bundle> {
  const outdir = join(OUT, 'peers');
  const banner = { js: `${options.banner?.js ?? ''} ${PEER_BANNER}`.trim() };
  await build({ ...options, banner, entryPoints: { [peer]: join(BENCH_DIR, 'peers', peer === 'bridge' ? 'bridge-as.mjs' : 'botsdk-as.mjs') }, outdir });
  const file = join(outdir, `${peer}${options.outExtension?.['.js'] ?? '.js'}`);
  return { name: peer, kind: peer, file, bytes: statSync(file).size };
}

/**
 * Our functions as packaged: `osls package` into `dir`, each zip unzipped into a task root. Beside
 * them a `node_modules` holding what the Lambda runtime provides (the SDK v3), found by the
 * ordinary lookup from the task roots, as Lambda's own loader finds /var/runtime/node_modules:
 * none of today's bundles needs it to load (the SSM client is imported lazily), but one that did
 * would be timed with it, not fail.
 */
async function packagedBundles(dir: string): Promise<Bundle[]> {
  const packaged = await packageService(join(dir, 'build'), { stage: 'bench' });
  const runtime = makeRuntime(join(dir, 'runtime'));
  symlinkSync(runtime.nodeModules, join(dir, 'build', 'node_modules'), 'dir');
  return Object.values(packaged.functions).map((f) => ({
    name: basename(f.bundle, '.mjs'),
    kind: 'ours' as const,
    fn: f.name,
    file: f.bundle,
    bytes: f.bytes,
    cwd: f.taskRoot,
  }));
}

export async function buildBundles(peers: PeerKind[], dir: string): Promise<{ bundles: Bundle[]; raw: Record<string, unknown> }> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const { options, raw } = serverlessEsbuildOptions();
  const bundles = await packagedBundles(dir);
  for (const p of peers) bundles.push(await bundlePeer(p, options));
  return { bundles, raw };
}

function timeNode(node: string, args: string[], cwd?: string): number {
  const t = now();
  const r = spawnSync(node, [...LAMBDA_NODE_FLAGS, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  const ms = now() - t;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(0, 2000)}`);
  return ms;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/**
 * A reference in the same run: the push function bundled with serverless.yml's options less what
 * issue 22 added (each package's ES module build first, the aliases that leave out the default
 * credential chain, the Node HTTP handler and event streams), i.e. the same code as the SDK ships
 * it by default. Its import beside ours is the ratio that holds whatever the machine's speed.
 */
async function bundleReference(): Promise<Bundle> {
  const { options, handlers } = serverlessEsbuildOptions();
  const { mainFields: _mainFields, alias: _alias, ...before } = options;
  const outdir = join(OUT, 'reference');
  await build({ ...before, entryPoints: { 'push-sdk-defaults': handlers.push! }, outdir });
  const file = join(outdir, `push-sdk-defaults${options.outExtension?.['.js'] ?? '.js'}`);
  return { name: 'push, SDK defaults', kind: 'ours', file, bytes: statSync(file).size };
}

export async function coldStart(peers: PeerKind[], runs: number, log: (s: string) => void): Promise<ColdStartResult> {
  const node = node22();
  const version = spawnSync(node, ['-v'], { encoding: 'utf8' }).stdout.trim();
  const work = scratch('bench-cold-start-');
  try {
    log('  packaging (osls package) ...');
    const { bundles, raw } = await buildBundles(peers, work.dir);
    const reference = await bundleReference();
    log(`  ${bundles.filter((b) => b.kind === 'ours').length} packaged bundles, ${peers.length} peer bundles into bench/.build/; timing on Node ${version}`);
    // Each bundle is the process's main module: importing it is all the process does.
    // Check once that each one loads and lets the process end on its own.
    for (const b of bundles) timeNode(node, [b.file], b.cwd);
    const bare: number[] = [];
    const samples = new Map<string, number[]>(bundles.map((b) => [b.file, []]));
    const referenceSamples: number[] = [];
    // Round-robin so a noisy moment spreads over every subject rather than hitting one.
    for (let i = 0; i < runs; i++) {
      bare.push(timeNode(node, ['-e', '0']));
      for (const b of bundles) samples.get(b.file)?.push(timeNode(node, [b.file], b.cwd));
      referenceSamples.push(timeNode(node, [reference.file]));
    }
    const bareMs = median(bare);
    const result: ColdStartResult = {
      esbuild: raw,
      runs,
      node: version,
      bareMs,
      bundles: bundles.map((b) => {
        const s = samples.get(b.file) ?? [];
        const m = median(s);
        const file = b.kind === 'ours' ? `${b.fn}.zip:${b.file.slice((b.cwd ?? '').length + 1)}` : b.file.slice(ROOT_DIR.length);
        return { ...b, file, cwd: undefined, medianMs: m, importMs: m - bareMs, samplesMs: s.map((x) => Number(x.toFixed(2))) };
      }),
    };
    log(`  bare node (node -e 0): ${bareMs.toFixed(1)} ms, median of ${runs}`);
    const width = Math.max(...result.bundles.map((b) => b.file.length));
    for (const b of result.bundles) {
      log(`  ${b.file.padEnd(width)}  ${kb(b.bytes).padStart(9)}  import: bare node + ${b.importMs.toFixed(1)} ms`);
    }
    const referenceMs = median(referenceSamples) - bareMs;
    const push = result.bundles.find((b) => b.fn === 'push');
    result.reference = { bytes: reference.bytes, importMs: referenceMs };
    log(
      `  reference, push bundled with the SDK's defaults (CommonJS builds, default credential chain, Node HTTP handler): ${kb(reference.bytes)}, import: bare node + ${referenceMs.toFixed(1)} ms` +
        (push ? `; push as packaged takes ${((push.importMs / referenceMs) * 100).toFixed(0)} % of that` : ''),
    );
    return result;
  } finally {
    work.remove();
  }
}
