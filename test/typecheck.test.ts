/**
 * The whole tree type-checks (`npm run typecheck`, tsc over tsconfig.json's files: lib, functions,
 * scripts, test, bench/*.ts). Tests run through tsx and functions are bundled by esbuild, and neither
 * checks types: without this, a type error reaches main unnoticed (one did, in a test file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

test('tsc finds no type error', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', '.'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc: ${r.stdout}${r.stderr}`);
});
