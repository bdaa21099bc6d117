/**
 * Arrows point down: the build fails when a module imports a layer above it (docs/DESIGN.md §4).
 *
 *   functions/ → appservice/ (the HTTP and SQS shells), bridge/ (the use cases)
 *   bridge/    → matrix/, store/, queue/        appservice/ → matrix/
 *   matrix/, store/, queue/ → the shared leaves (config, log, defaults, once, time, signature, backoff)
 *   local/ (npm start) → queue/, appservice/, matrix/
 *
 * Every import counts, `import type` and dynamic `import()` included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

type Layer = 'functions' | 'appservice' | 'bridge' | 'store' | 'queue' | 'matrix' | 'local' | 'leaf';

/** What each layer must never import. */
const FORBIDDEN: Record<Layer, Layer[]> = {
  functions: ['store', 'queue', 'matrix', 'local'],
  appservice: ['functions', 'bridge', 'store', 'queue', 'local'],
  bridge: ['functions', 'appservice', 'local'],
  store: ['functions', 'appservice', 'bridge', 'queue', 'local'],
  queue: ['functions', 'appservice', 'bridge', 'store', 'local'],
  matrix: ['functions', 'appservice', 'bridge', 'store', 'queue', 'local'],
  local: ['functions', 'bridge', 'store'],
  leaf: ['functions', 'appservice', 'bridge', 'store', 'queue', 'matrix', 'local'],
};
/** Packages a layer must not use: the use cases stay free of Lambda and HTTP types. */
const FORBIDDEN_PACKAGES: Partial<Record<Layer, RegExp>> = {
  bridge: /^(aws-lambda|@middy\/)/,
  matrix: /^(aws-lambda|@middy\/|@aws-sdk\/)/,
  store: /^(aws-lambda|@middy\/)/,
  queue: /^(aws-lambda|@middy\/)/,
};

function layerOf(file: string): Layer {
  const rel = relative(ROOT, file).split('/');
  if (rel[0] === 'functions') return 'functions';
  if (rel[0] === 'lib' && rel.length > 2) return rel[1] as Layer;
  return 'leaf';
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2]) as string);
}

test('no module imports a layer above it', () => {
  const problems: string[] = [];
  const files = [...sources(join(ROOT, 'lib')), ...sources(join(ROOT, 'functions'))];
  assert.ok(files.length > 20, 'the scan found the sources');
  for (const file of files) {
    const from = layerOf(file);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) {
        const to = layerOf(resolve(dirname(file), spec));
        if (FORBIDDEN[from].includes(to)) problems.push(`${relative(ROOT, file)} (${from}) imports ${spec} (${to})`);
      } else if (FORBIDDEN_PACKAGES[from]?.test(spec)) {
        problems.push(`${relative(ROOT, file)} (${from}) imports the package ${spec}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the check sees what it must refuse', () => {
  assert.deepEqual(importsOf(fileURLToPath(import.meta.url)).filter((s) => s.startsWith('node:')).length > 0, true);
  assert.equal(layerOf(join(ROOT, 'lib/appservice/http.ts')), 'appservice');
  assert.equal(layerOf(join(ROOT, 'lib/config.ts')), 'leaf');
  assert.ok(FORBIDDEN.appservice.includes(layerOf(join(ROOT, 'lib/bridge/runtime.ts'))));
  assert.ok(FORBIDDEN.store.includes(layerOf(join(ROOT, 'lib/bridge/runtime.ts'))));
  assert.ok(FORBIDDEN.matrix.includes(layerOf(join(ROOT, 'lib/bridge/runtime.ts'))));
  const sample = `import type { Bridge } from '../bridge/runtime.js';\nconst x = await import('../store/index.js');`;
  assert.deepEqual([...sample.matchAll(IMPORT)].map((m) => m[1] ?? m[2]), ['../bridge/runtime.js', '../store/index.js']);
});
