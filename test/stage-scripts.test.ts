/**
 * The scripts that work on a deployed stage read it through `osls` (scripts/stage.ts): here a
 * stand-in `osls` first on PATH prints what the real one prints for a deployed stack
 * (test/fixtures/osls), and fails as it does without one, so the scripts run for real, end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseInfo } from '../scripts/stage.js';
import { checkRegistration } from './support/spec.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/osls');

/** A stand-in osls: logs its arguments, prints the fixture named for its first argument, or fails as osls does for a stack that does not exist. */
function fakeOsls(answers: { info?: string; invoke?: string }): { bin: string; argsLog: string } {
  const bin = mkdtempSync(join(tmpdir(), 'fake-osls-'));
  const argsLog = join(bin, 'args.log');
  const print = (file: string | undefined) => (file ? `cat '${join(FIXTURES, file)}'` : `echo 'Error: Stack with id matrix-appservice-lambda-prod does not exist' >&2; exit 1`);
  writeFileSync(
    join(bin, 'osls'),
    `#!/bin/sh\necho "$@" >> '${argsLog}'\ncase "$1" in\n  info) ${print(answers.info)} ;;\n  invoke) ${print(answers.invoke)} ;;\n  *) exit 1 ;;\nesac\n`,
  );
  chmodSync(join(bin, 'osls'), 0o755);
  return { bin, argsLog };
}

const run = (script: string, args: string[], bin: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env.PATH}`, REGISTRATION_FILE: '/nonexistent/registration.yaml', ...env },
  });

test('osls info --verbose is read: the stage, its region and every stack output', () => {
  const info = parseInfo(`\u001b[90mservice:\u001b[39m x\n` + readFileSync(join(FIXTURES, 'info-prod.txt'), 'utf8'));
  assert.equal(info.stage, 'prod');
  assert.equal(info.region, 'eu-west-1');
  assert.equal(info.outputs.HttpApiUrl, 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com');
  assert.equal(info.outputs.AppserviceId, 'irc-bridge');
  assert.equal(Object.keys(info.outputs).length, 12);
  // The endpoints and functions sections are not outputs.
  assert.ok(!('userQuery' in info.outputs) && !('GET' in info.outputs));
});

test('npm run registration -- --stage prod takes the URL and the settings from the stack', () => {
  const osls = fakeOsls({ info: 'info-prod.txt' });
  const out = run('scripts/registration.ts', ['--stage', 'prod'], osls.bin, { AS_TOKEN: 'as-token-of-prod-0123456789', HS_TOKEN: 'hs-token-of-prod-0123456789' });
  assert.equal(out.status, 0, out.stderr);
  const reg = parse(out.stdout);
  assert.deepEqual(checkRegistration(reg), []);
  assert.equal(reg.url, 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com');
  assert.equal(reg.id, 'irc-bridge');
  assert.equal(reg.sender_localpart, 'ircbot');
  assert.deepEqual(reg.namespaces.users, [{ exclusive: true, regex: '@irc_.*:example\\.org' }]);
  assert.deepEqual(reg.namespaces.aliases, [{ exclusive: true, regex: '#irc_.*:example\\.org' }]);
  assert.equal(readFileSync(osls.argsLog, 'utf8').trim(), 'info --verbose --stage prod');

  // The environment wins over the stack, setting by setting.
  const over = run('scripts/registration.ts', ['--stage', 'prod'], osls.bin, { SENDER_LOCALPART: 'bridgebot', AS_TOKEN: 'a'.repeat(40), HS_TOKEN: 'b'.repeat(40) });
  assert.equal(parse(over.stdout).sender_localpart, 'bridgebot');

  // A stage that is not deployed: osls's own error, and no registration.
  const none = run('scripts/registration.ts', ['--stage', 'prod'], fakeOsls({}).bin);
  assert.equal(none.status, 2);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /osls info --verbose --stage prod failed.*\n.*does not exist/);
});

test('npm run ping -- --stage prod runs the deployed ping once and prints its answer', () => {
  const osls = fakeOsls({ invoke: 'invoke-ping-failed.json' });
  const out = run('scripts/ping.ts', ['--stage', 'prod'], osls.bin, { AWS_REGION: 'eu-west-1' });
  assert.equal(out.status, 1);
  assert.match(out.stderr, /HTTP 502 M_CONNECTION_FAILED/);
  assert.match(out.stderr, /what to check: the homeserver could not connect to the registration's url/);
  assert.equal(readFileSync(osls.argsLog, 'utf8').trim(), 'invoke --function pingHomeserver --stage prod --region eu-west-1');
});
