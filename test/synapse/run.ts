/**
 * `npm run test:synapse`: the optional check against a real Synapse 1.94 (a "synapse-lab").
 *
 * Without a lab (HS_LAB unset, or no `$HS_LAB/start.sh`) it says so in one line and exits 0, so
 * it never stands in the way on a machine without one; `npm test` never runs it (the scenario
 * files are `*.synapse.ts`, not `*.test.ts`). With a lab it runs every `test/synapse/*.synapse.ts`
 * with node's test runner (TAP) and exits with its code.
 *
 *   HS_LAB=/tmp/synapse-lab npm run test:synapse
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const lab = process.env.HS_LAB?.trim();
if (!lab || !existsSync(join(lab, 'start.sh'))) {
  const why = lab ? `HS_LAB=${lab} has no start.sh; ` : '';
  console.log(`test:synapse: skipped — ${why}set HS_LAB to a synapse-lab (see ../shared/synapse-lab/README.md)`);
  process.exit(0);
}

const files = readdirSync(HERE)
  .filter((f) => f.endsWith('.synapse.ts'))
  .sort()
  .map((f) => join('test', 'synapse', f));
if (files.length === 0) {
  console.error('test:synapse: no test/synapse/*.synapse.ts files');
  process.exit(1);
}

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, HS_LAB: lab },
});
// Ctrl-C reaches the whole foreground group anyway; a plain `kill` of this script is passed on, so
// the scenario's own handler can stop Synapse and `npm start` before it exits.
const pass = (sig: NodeJS.Signals) => process.on(sig, () => child.kill(sig));
pass('SIGINT');
pass('SIGTERM');
const code = await new Promise<number>((r) => child.on('exit', (c, sig) => r(c ?? (sig ? 1 : 0))));
process.exit(code);
