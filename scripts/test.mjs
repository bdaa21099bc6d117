#!/usr/bin/env node
// `npm test`: checks Java, starts one DynamoDB Local for the whole run (each test file makes
// its own table in it), runs every test/**/*.test.ts with node's test runner, stops DynamoDB Local.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { startDynamoLocal, JavaMissingError } = await import('../lib/local/dynamodb.ts');

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * The longest files start first (each runs a minute or more: npm start's JVM and serverless-offline,
 * the soak's 2,000 transactions, packaging), so that they run beside the short ones instead of
 * after them: the same work, about a minute less wall time on two cores.
 */
const SLOW_FIRST = ['e2e/restart', 'soak', 'e2e/start', 'e2e/walkthrough', 'e2e/messages-and-conversations', 'artifact', 'fuzz'].map((f) => `test/${f}.test.ts`);
const rank = (f) => {
  const i = SLOW_FIRST.indexOf(f.split('\\').join('/'));
  return i === -1 ? SLOW_FIRST.length : i;
};

const args = process.argv.slice(2);
const files = args.length ? args : testFiles('test').sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
let dynamo;
try {
  dynamo = await startDynamoLocal();
} catch (e) {
  if (e instanceof JavaMissingError) {
    console.error(e.message);
    process.exit(2);
  }
  throw e;
}
// Test files run four at a time (TEST_CONCURRENCY overrides): most of a file's time is spent waiting
// on DynamoDB Local, the queue, serverless-offline or a child process, and Node's default on two
// cores is one at a time. On 2 idle cores: 5m11s three at a time, 4m43s four at a time.
const concurrency = process.env.TEST_CONCURRENCY ?? '4';
const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files], {
  stdio: 'inherit',
  env: { ...process.env, TEST_DYNAMODB_ENDPOINT: dynamo.endpoint },
});
const stop = () => child.kill('SIGTERM');
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const code = await new Promise((r) => child.on('exit', (c, sig) => r(c ?? (sig ? 1 : 0))));
await dynamo.stop();
process.exit(code);
