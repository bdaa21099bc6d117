/**
 * `npm start`: the application service on this machine, with no AWS account.
 *
 * DynamoDB Local stands in for DynamoDB, keeping its data in DATA_DIR (data.ts; `.local/` by
 * default) so a restart remembers every room and user; an SQS-compatible server in this process
 * holds the delivery queue (queue.ts; what is undelivered at a clean stop is saved in DATA_DIR and
 * queued again at the next start), and the deliver function is run on it as Lambda's event source
 * would (sqs-event-source.ts); `registration.yaml` is written for the
 * homeserver; serverless-offline serves the functions on the very routes serverless.yml deploys,
 * so what runs here is what runs in Lambda. `npm start -- --fresh` wipes the kept data first.
 * serverless-offline listens on loopback ports of its own; the public PORT is a thin front server
 * (front.ts) that passes every request on to it and makes sure what hapi would answer in its own
 * words comes back as a Matrix error.
 *
 * Settings (environment): HOMESERVER_URL (http://127.0.0.1:8008), HOMESERVER_NAME (localhost),
 * NETWORK (open), PORT (9000), AS_URL (http://127.0.0.1:$PORT), REGISTRATION_FILE
 * (./registration.yaml), DATA_DIR (./.local), and AS_ID / SENDER_LOCALPART / USER_PREFIX /
 * ALIAS_PREFIX / PROTOCOL as in config.ts.
 * It listens on 127.0.0.1 only (LISTEN_HOST); for a homeserver in a container set
 * LISTEN_HOST=0.0.0.0 and AS_URL to an address the container can reach (e.g.
 * http://host.docker.internal:9000). serverless-offline's own ports stay on 127.0.0.1 whatever it is.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, parseConfig } from '../config.js';
import { newToken, registrationYaml } from '../appservice/registration.js';
import { dataDirFrom, describeWipe, dynamoDirOf, lockDataDir, queueFileOf, shown, wipeDynamoData } from './data.js';
import type { DataLock } from './data.js';
import { checkJava, startDynamoLocal } from './dynamodb.js';
import type { LocalDynamo } from './dynamodb.js';
import { loadRoutes, startFront } from './front.js';
import type { Front } from './front.js';
import { freePorts, onFreePorts, saysPortTaken } from './ports.js';
import { createLocalTable } from './table.js';
import { DEFAULTS, DELIVERY, SERVICE, tableNameFor } from '../defaults.js';
import { startLocalQueues } from './queue.js';
import type { LocalQueues } from './queue.js';
import { sqsEventSource } from './sqs-event-source.js';
import type { SqsEventSource } from './sqs-event-source.js';
import { pingWhenHomeserverAnswers } from './ping.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STAGE = 'local';
/** serverless.yml names the table `${service}-${stage}`; the functions get that name as TABLE_NAME. */
const TABLE_NAME = tableNameFor(STAGE);
const READY_TIMEOUT_MS = 90_000;

type Env = Record<string, string | undefined>;

export interface LocalSettings {
  port: number;
  /** Where the front server listens (PORT on it); serverless-offline itself stays on 127.0.0.1. */
  listenHost: string;
  homeserverUrl: string;
  serverName: string;
  network: string;
  asUrl: string;
  registrationFile: string;
  /** DATA_DIR: what is kept between runs (DynamoDB Local's data); absolute. */
  dataDir: string;
  asId: string;
  senderLocalpart: string;
  userPrefix: string;
  aliasPrefix: string;
  /** PROTOCOL: the registration's `protocols`, the third-party lookups' protocol. */
  protocol: string;
}

const pick = (env: Env, name: string, fallback: string) => env[name]?.trim() || fallback;

/** The embedded defaults, overridable from the environment. */
export function localSettings(env: Env): LocalSettings {
  const port = Number(pick(env, 'PORT', DEFAULTS.PORT));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('PORT', 'must be a TCP port number');
  const userPrefix = pick(env, 'USER_PREFIX', DEFAULTS.USER_PREFIX);
  return {
    port,
    listenHost: pick(env, 'LISTEN_HOST', '127.0.0.1'),
    homeserverUrl: pick(env, 'HOMESERVER_URL', DEFAULTS.HOMESERVER_URL),
    serverName: pick(env, 'HOMESERVER_NAME', DEFAULTS.HOMESERVER_NAME),
    network: pick(env, 'NETWORK', DEFAULTS.NETWORK),
    asUrl: pick(env, 'AS_URL', `http://127.0.0.1:${port}`),
    registrationFile: resolve(pick(env, 'REGISTRATION_FILE', join(ROOT, 'registration.yaml'))),
    dataDir: dataDirFrom(env),
    asId: pick(env, 'AS_ID', DEFAULTS.AS_ID),
    senderLocalpart: pick(env, 'SENDER_LOCALPART', DEFAULTS.SENDER_LOCALPART),
    userPrefix,
    aliasPrefix: pick(env, 'ALIAS_PREFIX', userPrefix),
    protocol: pick(env, 'PROTOCOL', DEFAULTS.PROTOCOL),
  };
}

export interface Tokens {
  asToken: string;
  hsToken: string;
}

/**
 * Tokens the homeserver already knows must survive a restart, so they come from the existing
 * registration file when there is one; AS_TOKEN / HS_TOKEN override; otherwise new ones.
 * The file is rewritten every time so URL and namespaces follow the current settings.
 */
export function writeRegistration(s: LocalSettings, env: Env): Tokens {
  let old: Partial<Record<'as_token' | 'hs_token', unknown>> = {};
  if (existsSync(s.registrationFile)) {
    try {
      old = parse(readFileSync(s.registrationFile, 'utf8')) ?? {};
    } catch (e) {
      // Overwriting it would silently cut off a homeserver that uses its tokens.
      throw new Error(`${s.registrationFile} is not valid YAML (${(e as Error).message}); fix or delete it`);
    }
  }
  const keep = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const tokens = {
    asToken: env.AS_TOKEN?.trim() || keep(old.as_token) || newToken(),
    hsToken: env.HS_TOKEN?.trim() || keep(old.hs_token) || newToken(),
  };
  writeFileSync(s.registrationFile, registrationYaml({ ...s, ...tokens }), { mode: 0o600 });
  return tokens;
}

/** Where the functions find the local delivery queues. */
type QueueEnv = Pick<LocalQueues, 'endpoint' | 'queueUrl' | 'deadLetterQueueUrl'>;

/** The loopback ports serverless-offline listens on, behind the front server: its routes and its Lambda invoke API. */
interface OfflinePorts {
  http: number;
  lambda: number;
}

/** What the functions see: serverless.yml reads the settings, the rest passes through (localEnvironment). */
function childEnv(s: LocalSettings, t: Tokens, dynamoEndpoint: string, queues: QueueEnv, ports: OfflinePorts, workFolder: string): Env {
  return {
    ...process.env,
    SLS_TELEMETRY_DISABLED: '1',
    // serverless.yml's httpPort / host / lambdaPort: the internal ports, never reachable from outside.
    PORT: String(ports.http),
    LISTEN_HOST: '127.0.0.1',
    OFFLINE_LAMBDA_PORT: String(ports.lambda),
    ESBUILD_WORK_FOLDER: workFolder,
    HOMESERVER_URL: s.homeserverUrl,
    HOMESERVER_NAME: s.serverName,
    NETWORK: s.network,
    AS_URL: s.asUrl,
    AS_ID: s.asId,
    SENDER_LOCALPART: s.senderLocalpart,
    USER_PREFIX: s.userPrefix,
    ALIAS_PREFIX: s.aliasPrefix,
    PROTOCOL: s.protocol,
    // Plain values win over the *_PARAM names serverless.yml also sets (config.ts), so no SSM.
    AS_TOKEN: t.asToken,
    HS_TOKEN: t.hsToken,
    DYNAMODB_ENDPOINT: dynamoEndpoint,
    TABLE_NAME,
    QUEUE_URL: queues.queueUrl,
    DEAD_LETTER_QUEUE_URL: queues.deadLetterQueueUrl,
    SQS_ENDPOINT: queues.endpoint,
    // No SSM here: the network secret is NETWORK_SECRET from the environment, or none (inbound off).
    NETWORK_SECRET_PARAM: '',
  };
}

/** serverless-offline, run by the osls CLI from node_modules so no global install is needed. */
function startOffline(env: Env): { child: ChildProcess; output: () => string; peek: () => string } {
  const cli = createRequire(import.meta.url).resolve('osls/bin/serverless.js');
  const child = spawn(process.execPath, [cli, 'offline', 'start', '--stage', STAGE], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Kept until ready, to show if it fails; afterwards its lines (the handlers' logs) pass through.
  const chunks: string[] = [];
  let ready = false;
  const onData = (to: NodeJS.WriteStream) => (b: Buffer) => (ready ? to.write(b) : chunks.push(b.toString()));
  child.stdout?.on('data', onData(process.stdout));
  child.stderr?.on('data', onData(process.stderr));
  return {
    child,
    output: () => {
      ready = true;
      return chunks.splice(0).join('');
    },
    peek: () => chunks.join(''),
  };
}

/** Ready means a real request made it through the front server, API Gateway emulation, the ping function and the token check. */
async function waitForPing(url: string, hsToken: string, child: ChildProcess): Promise<void> {
  const until = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('serverless-offline exited during start');
    try {
      const res = await fetch(`${url}/_matrix/app/v1/ping`, {
        method: 'POST',
        headers: { authorization: `Bearer ${hsToken}`, 'content-type': 'application/json' },
        body: '{}',
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`serverless-offline did not answer the ping on ${url} within ${READY_TIMEOUT_MS / 1000} s`);
}

function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGINT'); // serverless-offline shuts its servers down on SIGINT
    setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
  });
}

/** Another server on PORT would answer our readiness ping (or steal the homeserver's calls): refuse early. */
function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', () => reject(new ConfigError('PORT', `${port} is in use; stop what listens there or set PORT`)));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

const USAGE = 'usage: npm start [-- --fresh]  (--fresh: wipe the data kept from earlier runs first)';

/** The command line: `--fresh` or nothing. */
export function parseArgs(args: readonly string[]): { fresh: boolean } {
  let fresh = false;
  for (const a of args) {
    if (a === '--fresh') fresh = true;
    else throw new Error(`unknown argument ${JSON.stringify(a)}; ${USAGE}`);
  }
  return { fresh };
}

/**
 * Checks all that can be checked before anything starts, takes DATA_DIR (a second run on it is
 * refused here) and, with --fresh, wipes it; a problem ends it here with one line, exit code 2.
 * The lock goes into `held` as soon as it is taken, so the exit handler releases it whatever happens next.
 */
async function prepare(held: { lock?: DataLock }): Promise<{ settings: LocalSettings; tokens: Tokens }> {
  try {
    const { fresh } = parseArgs(process.argv.slice(2));
    checkJava();
    const settings = localSettings(process.env);
    await assertPortFree(settings.port);
    // The functions would refuse a bad setting at their first request; say so now instead.
    const nowhere = 'http://127.0.0.1:1';
    parseConfig(childEnv(settings, { asToken: 'unused', hsToken: 'unused' }, nowhere, { endpoint: nowhere, queueUrl: nowhere, deadLetterQueueUrl: nowhere }, { http: 0, lambda: 0 }, ''));
    held.lock = lockDataDir(settings.dataDir, 'npm start');
    if (held.lock.tookOver) console.log(held.lock.tookOver);
    if (fresh) console.log(`npm start --fresh: ${describeWipe(wipeDynamoData(settings.dataDir))}; ${shown(settings.registrationFile)} kept (the homeserver has its tokens)`);
    return { settings, tokens: writeRegistration(settings, process.env) };
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(2);
  }
}

async function main(): Promise<void> {
  // Node 20 here, nodejs22.x in Lambda: the SDK's "upgrade Node" notice is noise for a local run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Everything started from here on (after prepare) is stopped by `shutdown`, whatever the way out.
  let dynamoStarting: Promise<LocalDynamo> | undefined;
  let dynamo: LocalDynamo | undefined;
  let offline: ChildProcess | undefined;
  let front: Front | undefined;
  let offlineOutput = () => '';
  const workFolder = `.esbuild/offline-${process.pid}`;
  // Released by the exit handler below, the last thing this process does.
  const held: { lock?: DataLock } = {};
  // Last resort if we die some other way: no java left behind holding a port or the data.
  process.on('exit', () => {
    offline?.kill('SIGKILL');
    dynamo?.process.kill('SIGKILL');
    rmSync(join(ROOT, workFolder), { recursive: true, force: true });
    held.lock?.release();
  });
  const { settings, tokens } = await prepare(held);

  let stopping = false;
  const pinging = new AbortController();
  let queues: LocalQueues | undefined;
  let delivering: SqsEventSource | undefined;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    pinging.abort();
    // Deliveries under way finish first; then what is left on the queues is saved for the next start.
    await delivering?.stop();
    await front?.close();
    if (offline) await stopChild(offline);
    if (queues) {
      const { saved } = await queues.stop(delivering?.heldReceipts()).catch((e: Error) => {
        console.error(`could not save the undelivered messages: ${e.message}`);
        return { saved: 0 };
      });
      if (saved) console.log(`${saved} undelivered message(s) saved in ${shown(queueFileOf(settings.dataDir))}; the next npm start delivers them`);
    }
    // Ctrl-C while DynamoDB Local is still starting: wait for it, so its java can be stopped too.
    await (dynamo ?? (await dynamoStarting?.catch(() => undefined)))?.stop();
    rmSync(join(ROOT, workFolder), { recursive: true, force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    const [dynamoPort, offlinePort, lambdaPort] = (await freePorts(3, [settings.port])) as [number, number, number];
    const endpoint = `http://127.0.0.1:${dynamoPort}`;
    // The front server first (it takes milliseconds): until serverless-offline is up it answers 503 M_UNKNOWN.
    front = await startFront({
      host: settings.listenHost,
      port: settings.port,
      offlinePort,
      lambdaPort,
      routes: loadRoutes(join(ROOT, 'serverless.yml'), STAGE),
    });
    // Both take seconds (a JVM; bundling and a Serverless boot): start them side by side.
    const dynamoDir = dynamoDirOf(settings.dataDir);
    dynamoStarting = startDynamoLocal({ port: dynamoPort, dataDir: dynamoDir });
    const tableReady = dynamoStarting.then(async (d) => {
      dynamo = d;
      held.lock?.noteDynamo(d.process.pid);
      return createLocalTable(d.endpoint, TABLE_NAME);
    });
    queues = await startLocalQueues({ stage: STAGE, saveTo: queueFileOf(settings.dataDir) });
    const queueEnv = queues;
    // Its ports were free when chosen, but it listens only half a minute later: taken by then, it starts again on others.
    const offlineUp = onFreePorts(
      () => freePorts(2, [settings.port, dynamoPort]),
      async ([http, lambda]) => {
        front!.pointAt({ offlinePort: http!, lambdaPort: lambda! });
        const started = startOffline(childEnv(settings, tokens, endpoint, queueEnv, { http: http!, lambda: lambda! }, workFolder));
        offline = started.child;
        offlineOutput = started.output;
        try {
          await waitForPing(`http://127.0.0.1:${settings.port}`, tokens.hsToken, started.child);
        } catch (e) {
          if (!saysPortTaken(started.peek())) throw e;
          await stopChild(started.child);
          throw new Error(`serverless-offline could not listen on 127.0.0.1:${http} or :${lambda}: taken since they were chosen (EADDRINUSE)`);
        }
        return { started, lambdaPort: lambda! };
      },
      { first: [offlinePort, lambdaPort] },
    );
    const [table, { started, lambdaPort: invokePort }] = await Promise.all([tableReady, offlineUp]);
    const stopped = (how: string) => {
      if (stopping) return;
      console.error(`\nserverless-offline stopped (${how}):\n${started.output()}`);
      void shutdown(1);
    };
    // Watched from here on (a failed start was the retry's to handle), including a stop while the table was still being made.
    if (started.child.exitCode !== null || started.child.signalCode !== null) stopped(started.child.signalCode ?? `exit code ${started.child.exitCode}`);
    started.child.once('exit', (code, signal) => stopped(signal ?? `exit code ${code}`));
    started.output(); // from now on its output streams through
    delivering = deliverFromQueue(queues, invokePort);
    delivering.start();
    console.log(
      [
        '',
        `${SERVICE} is ready on http://127.0.0.1:${settings.port}`,
        `  registration file: ${settings.registrationFile}`,
        `  the homeserver should reach the AS at: ${settings.asUrl}  (the file's url)`,
        `  homeserver: ${settings.homeserverUrl} (server name ${settings.serverName}), network: ${settings.network}`,
        `  DynamoDB Local (data kept in ${shown(dynamoDir)}; npm start -- --fresh starts clean): ${endpoint}`,
        `  table ${TABLE_NAME}: ${table === 'created' ? 'new (empty)' : 'kept from an earlier run'}`,
        `  delivery queue (local SQS, ${queues.restored} undelivered message(s) from the last run): ${queues.endpoint}`,
        `  once the homeserver answers, it is asked to ping the AS (npm run ping asks again)`,
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
    void pingWhenHomeserverAnswers({
      homeserverUrl: settings.homeserverUrl,
      asToken: tokens.asToken,
      asId: settings.asId,
      asUrl: settings.asUrl,
      signal: pinging.signal,
      print: (line) => console.log(line),
    }).catch((e: Error) => console.error(`ping: ${e.message}`));
  } catch (e) {
    if (!stopping) {
      console.error(`npm start failed: ${(e as Error).message}\n${offlineOutput()}`);
      await shutdown(1);
    }
  }
}

/**
 * What the SQS event source does for the deployed stage (serverless.yml: the deliver function on
 * the delivery queue): poll the queue and invoke the deliver function with SQS events, through
 * serverless-offline's own Lambda invoke API, so the same function runs; as many at once as the
 * deployed maximum concurrency.
 */
function deliverFromQueue(queues: LocalQueues, lambdaPort: number): SqsEventSource {
  const name = `${SERVICE}-${STAGE}-deliver`;
  return sqsEventSource({
    client: queues.client,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    batchSize: DELIVERY.BATCH_SIZE,
    concurrency: DELIVERY.MAX_CONCURRENCY,
    invoke: async (event) => {
      const res = await fetch(`http://127.0.0.1:${lambdaPort}/2015-03-31/functions/${name}/invocations`, { method: 'POST', body: JSON.stringify(event) });
      const text = await res.text();
      if (!res.ok || res.headers.get('x-amz-function-error')) throw new Error(`the deliver function failed (HTTP ${res.status}): ${text.slice(0, 500)}`);
      return text ? JSON.parse(text) : undefined;
    },
    onError: (e) => console.error(`delivery from the local queue: ${(e as Error).message}`),
  });
}

// Run only as a script; tests import the helpers above.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
