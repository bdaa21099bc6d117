/**
 * `npm run package` (osls + serverless-esbuild) works offline and produces the stack DESIGN.md
 * describes: every HS route on the right function, Lambda settings, the table, the delivery queue
 * with its dead-letter queue, event source and alarms, least-privilege IAM per function, and no
 * secret in the template; and what makes it operable: the scheduled ping, the alarms and the
 * dashboard on the metrics of lib/metrics.ts, the API's rate limits and reserved concurrency.
 *
 * Packaging costs seconds, so there are two runs only: the defaults (with a network secret rotation
 * under way) and a variant with every other stage parameter set.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, DELIVERY, queueNamesFor, tableNameFor } from '../lib/defaults.js';
import { METRICS, METRICS_NAMESPACE } from '../lib/metrics.js';
import { BY_EVENT_INDEX } from '../lib/store/messages.js';
import { NETWORK_INBOUND_ROUTES } from './support/network-routes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, '.serverless');
// Set in the packaging environment: if either shows up in the template, a secret leaked.
const SENTINEL_AS = 'sentinel-as-token-must-not-leak';
const SENTINEL_HS = 'sentinel-hs-token-must-not-leak';
const SENTINEL_NETWORK_NEXT = 'sentinel-network-secret-next-must-not-leak';
/** Packaged as an operator deploys during a network secret rotation (README, "Deploy to AWS"). */
const NETWORK_SECRET_NEXT_PARAM = '/matrix-appservice-lambda/dev/network_secret_next';
const SSM_PARAMETERS = ['as_token', 'hs_token', 'hs_token_next', 'network_secret', 'network_secret_next', 'permissions', 'provisioning_secret'];

type Resource = { Type: string; Properties: Record<string, any>; Condition?: string; DependsOn?: string | string[]; [k: string]: unknown };
type Template = { Resources: Record<string, Resource>; Conditions?: Record<string, unknown>; Outputs?: Record<string, any> };
let template: Template = { Resources: {} };
let resources: Record<string, Resource> = {};
let templateText = '';
/** A second package, as deployed with the optional stage parameters: an SNS topic for the alarms and the rest non-default. */
let withParams: Template = { Resources: {} };
const ALARM_TOPIC = 'arn:aws:sns:us-east-1:123456789012:matrix-ops';

/** Each function: its handler's file, timeout, memory (256 MB unless given), routes, and reserved concurrency by default (serverless.yml, infra/limits.yml). */
const FUNCTIONS: Record<string, { file: string; timeout?: number; memory?: number; routes: string[]; reserved: number }> = {
  userQuery: { file: 'user-query', timeout: 25, routes: ['GET /_matrix/app/v1/users/{userId+}', 'GET /users/{userId+}'], reserved: 10 },
  roomQuery: { file: 'room-query', timeout: 25, routes: ['GET /_matrix/app/v1/rooms/{roomAlias+}', 'GET /rooms/{roomAlias+}'], reserved: 10 },
  push: { file: 'push', timeout: 28, routes: ['PUT /_matrix/app/v1/transactions/{txnId+}', 'PUT /transactions/{txnId+}'], reserved: 20 },
  ping: { file: 'ping', routes: ['POST /_matrix/app/v1/ping'], reserved: 2 },
  // The third-party lookups, and the legacy prefix Synapse called them under before 1.81.
  thirdParty: {
    file: 'thirdparty',
    timeout: 25,
    routes: ['v1', 'unstable'].flatMap((v) => [
      `GET /_matrix/app/${v}/thirdparty/protocol/{protocol+}`,
      `GET /_matrix/app/${v}/thirdparty/location/{protocol+}`,
      `GET /_matrix/app/${v}/thirdparty/user/{protocol+}`,
      `GET /_matrix/app/${v}/thirdparty/location`,
      `GET /_matrix/app/${v}/thirdparty/user`,
    ]),
    reserved: 2,
  },
  networkInbound: {
    file: 'network-inbound',
    timeout: 25,
    routes: NETWORK_INBOUND_ROUTES,
    reserved: 10,
  },
  networkMediaUpload: { file: 'network-media-upload', timeout: 25, routes: ['POST /network/media'], reserved: 5 },
  // The provisioning API: integration managers and admin tools link and unlink rooms.
  provision: {
    file: 'provision',
    timeout: 25,
    routes: [
      'GET /_matrix/provision/v1/links',
      'GET /_matrix/provision/v1/rooms/{roomId}',
      'GET /_matrix/provision/v1/rooms/{roomId}/links',
      'POST /_matrix/provision/v1/rooms/{roomId}/links',
      'DELETE /_matrix/provision/v1/rooms/{roomId}/links',
    ],
    reserved: 2,
  },
  // The media links: up to 4 MiB through memory, base64-encoded.
  networkMediaDownload: { file: 'network-media-download', timeout: 28, memory: 512, routes: ['GET /network/media/{server}/{mediaId}'], reserved: 5 },
  unrecognized: { file: 'unrecognized', routes: ['$default'], reserved: 2 },
  // As many as its event source may run at once.
  deliver: { file: 'deliver', timeout: 60, routes: [], reserved: DELIVERY.MAX_CONCURRENCY },
  pingHomeserver: { file: 'ping-homeserver', timeout: 30, routes: [], reserved: 1 },
};
/** The functions that answer HTTP: each has a 5xx alarm. */
const HTTP_FUNCTIONS = Object.keys(FUNCTIONS).filter((fn) => FUNCTIONS[fn]!.routes.length);
/** Each function but pingHomeserver (the ping alarm covers it) has an errors and a throttles alarm. */
const LAMBDA_ALARMED = Object.keys(FUNCTIONS).filter((fn) => fn !== 'pingHomeserver');
/** The network's routes (everything under /network/): each throttled at networkRateLimit, not the stage default. */
const NETWORK_ROUTES = Object.values(FUNCTIONS).flatMap((f) => f.routes.filter((r) => /^[A-Z]+ \/network\//.test(r)));
/** The functions without the state table: they read their configuration and call the homeserver (media) or the network (lookups) only. */
const TABLELESS = ['networkMediaDownload', 'thirdParty'];
const deployedName = (fn: string) => `matrix-appservice-lambda-dev-${fn}`;

/**
 * The variant's parameters: every optional one set, to other values than the defaults. Reserved
 * concurrency is switched off (`none`) and yet each function's own parameter set: the template then
 * holds each value in a Fn::If whose condition is false, so both show in one package.
 */
const VARIANT_PARAMS = {
  alarmTopic: ALARM_TOPIC,
  oldestMessageAlarmMinutes: '30',
  deliverBatchSize: '4',
  deliverMaxConcurrency: '2',
  pingSchedule: 'false',
  serverErrorAlarmPercent: '2',
  serverErrorAlarmMinRequests: '50',
  apiRateLimit: '25',
  apiBurstLimit: '40',
  networkRateLimit: '3',
  networkBurstLimit: '6',
  reservedConcurrency: 'none',
  // deliver's is left out: it follows deliverMaxConcurrency.
  ...Object.fromEntries(
    Object.entries(FUNCTIONS)
      .filter(([fn]) => fn !== 'deliver')
      .map(([fn, f]) => [`${fn}ReservedConcurrency`, String(f.reserved + 3)]),
  ),
};

const DYNAMODB_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:Scan',
];

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const logicalId = (fn: string) => `${fn[0]!.toUpperCase()}${fn.slice(1)}LambdaFunction`;
const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
/** A Resource as text: the string, the Fn::Sub pattern, or the JSON of any other intrinsic. */
const resourceText = (r: any): string => (typeof r === 'string' ? r : typeof r?.['Fn::Sub'] === 'string' ? r['Fn::Sub'] : JSON.stringify(r));

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

const pascal = (fn: string) => `${fn[0]!.toUpperCase()}${fn.slice(1)}`;

type AlarmMetric = { Namespace: string; MetricName: string; Dimensions?: Array<{ Name: string; Value: unknown }> };
/** The metrics an alarm reads: its one metric, or those of its metric math. */
function alarmMetrics(p: Record<string, any>): AlarmMetric[] {
  if (p.MetricName) return [{ Namespace: p.Namespace, MetricName: p.MetricName, Dimensions: p.Dimensions }];
  return (p.Metrics as any[]).filter((m) => m.MetricStat).map((m) => m.MetricStat.Metric);
}

/** An alarm's metric is one of lib/metrics.ts, of this stage and with its dimensions, or an AWS one. */
function checkMetric(m: AlarmMetric, where: string): void {
  if (m.Namespace !== METRICS_NAMESPACE) {
    assert.match(m.Namespace, /^AWS\//, `${where}: ${m.Namespace}`);
    return;
  }
  assert.ok(m.MetricName in METRICS, `${where}: ${m.MetricName} is in lib/metrics.ts`);
  const second = (METRICS as Record<string, { dimension?: string }>)[m.MetricName]!.dimension;
  const names = (m.Dimensions ?? []).map((d) => d.Name);
  assert.deepEqual(names, second && names.length > 1 ? ['Stage', second] : ['Stage'], `${where}: ${m.MetricName}'s dimensions`);
  assert.equal(m.Dimensions![0]!.Value, 'dev', `${where}: this stage's`);
}

/** Every IAM statement in the template: the roles' inline policies and the managed policies. */
function allStatements(): Statement[] {
  return [
    ...ofType('AWS::IAM::Role').flatMap(([, r]) => (r.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement)),
    ...ofType('AWS::IAM::ManagedPolicy').flatMap(([, p]) => p.Properties.PolicyDocument.Statement),
  ];
}

/** The role a function runs under: its logical ID in this template. */
function roleOf(fn: string): string {
  const role = resources[logicalId(fn)]!.Properties.Role;
  const id = role?.['Fn::GetAtt']?.[0];
  assert.ok(typeof id === 'string' && resources[id]?.Type === 'AWS::IAM::Role', `${fn} runs under a role of this stack: ${JSON.stringify(role)}`);
  return id;
}

/** What a function may do: its role's inline policies and the managed policies of this stack it has. */
function statementsOf(fn: string): Statement[] {
  const role = resources[roleOf(fn)]!;
  const managed = (role.Properties.ManagedPolicyArns ?? []).map((arn: any) => {
    const id = arn?.Ref;
    assert.ok(typeof id === 'string' && resources[id]?.Type === 'AWS::IAM::ManagedPolicy', `${fn}: only this stack's managed policies, not ${JSON.stringify(arn)}`);
    return resources[id]!.Properties.PolicyDocument.Statement as Statement[];
  });
  return [...(role.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement), ...managed.flat()];
}

/** A function's SQS permissions as sorted `action on <logical ID>` lines. */
function sqsGrants(fn: string): string[] {
  return statementsOf(fn)
    .flatMap((s) => {
      const actions = asArray(s.Action).filter((a) => a.startsWith('sqs:'));
      if (!actions.length) return [];
      assert.equal(s.Effect, 'Allow');
      return actions.flatMap((a) =>
        asArray(s.Resource).map((r: any) => {
          assert.equal(r?.['Fn::GetAtt']?.[1], 'Arn', `${fn}: ${a} on a queue of this stack, not ${JSON.stringify(r)}`);
          return `${a} on ${r['Fn::GetAtt'][0]}`;
        }),
      );
    })
    .sort();
}

/** Fn::If / Fn::Not / Fn::Equals on literal values, as CloudFormation evaluates them; undefined for AWS::NoValue. */
function evaluate(t: Template, v: any): any {
  if (Array.isArray(v)) return v.map((x) => evaluate(t, x));
  if (v && typeof v === 'object') {
    if (v.Ref === 'AWS::NoValue') return undefined;
    if ('Fn::If' in v) {
      const [condition, yes, no] = v['Fn::If'];
      return evaluate(t, condition in (t.Conditions ?? {}) && evaluate(t, t.Conditions![condition]) ? yes : no);
    }
    if ('Fn::Not' in v) return !evaluate(t, v['Fn::Not'][0]);
    if ('Fn::Equals' in v) {
      const [a, b] = evaluate(t, v['Fn::Equals']);
      assert.ok(typeof a === 'string' && typeof b === 'string', `a condition on literal values: ${JSON.stringify(v)}`);
      return a === b;
    }
  }
  return v;
}

/** `npm run package` with extra arguments, in an environment that depends on nothing of this machine's AWS or npm start setup. */
function packageStack(extra: string[]): void {
  // Remove what could make the packaging depend on this machine's AWS setup.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SLS_TELEMETRY_DISABLED: '1',
    AS_TOKEN: SENTINEL_AS,
    HS_TOKEN: SENTINEL_HS,
    NETWORK_SECRET_NEXT: SENTINEL_NETWORK_NEXT,
  };
  // ... and on what this shell may hold for a rotation or a local run: the template must show only what the flags say.
  for (const k of [
    'AWS_PROFILE',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'HS_TOKEN_NEXT_PARAM',
    'NETWORK_SECRET_NEXT_PARAM',
    'QUEUE_URL',
    'DEAD_LETTER_QUEUE_URL',
    'SQS_ENDPOINT',
  ]) {
    delete env[k];
  }
  const r = spawnSync('npm', ['run', '--silent', 'package', '--', ...extra], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `npm run package ${extra.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

before(
  () => {
    // First the variant, into a folder of its own: a package run empties .serverless, which the tests below read.
    const dir = mkdtempSync(join(tmpdir(), 'package-test-'));
    try {
      packageStack(['--package', join(dir, 'out'), ...Object.entries(VARIANT_PARAMS).flatMap(([k, v]) => ['--param', `${k}=${v}`])]);
      withParams = JSON.parse(readFileSync(join(dir, 'out', 'cloudformation-template-update-stack.json'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // A network secret rotation under way (--param networkSecretNextParam), no hs_token rotation.
    packageStack(['--param', `networkSecretNextParam=${NETWORK_SECRET_NEXT_PARAM}`]);
    templateText = readFileSync(join(OUT, 'cloudformation-template-update-stack.json'), 'utf8');
    template = JSON.parse(templateText);
    resources = template.Resources;
  },
  { timeout: 250_000 },
);

describe('npm run package', () => {
  test('every route exists and reaches its function', () => {
    const integrationTarget = new Map(
      ofType('AWS::ApiGatewayV2::Integration').map(([id, r]) => [id, r.Properties.IntegrationUri?.['Fn::GetAtt']?.[0]]),
    );
    const routes = new Map(
      ofType('AWS::ApiGatewayV2::Route').map(([, r]) => {
        const integration = r.Properties.Target['Fn::Join'][1][1].Ref as string;
        return [r.Properties.RouteKey as string, integrationTarget.get(integration)];
      }),
    );
    const expected = Object.entries(FUNCTIONS).flatMap(([fn, f]) => f.routes.map((key) => [key, logicalId(fn)] as const));
    for (const [key, fn] of expected) assert.equal(routes.get(key), fn, `route ${key}`);
    assert.equal(routes.size, expected.length, `no other routes: ${[...routes.keys()].join(', ')}`);
    const [, api] = ofType('AWS::ApiGatewayV2::Api')[0] ?? [];
    assert.equal(api?.Properties.ProtocolType, 'HTTP');
  });

  test('only the ping runs on a schedule, every 5 minutes; pingSchedule=false turns it off, and the ping alarm with it', () => {
    // The delivery queue drives the deliver function: no drain on a schedule.
    assert.equal(resources.DrainLambdaFunction, undefined);
    const fns = ofType('AWS::Lambda::Function').map(([id]) => id).sort();
    assert.deepEqual(fns, Object.keys(FUNCTIONS).map(logicalId).sort(), 'exactly these functions');

    const rules = ofType('AWS::Events::Rule');
    assert.equal(rules.length, 1, 'one schedule');
    const [ruleId, rule] = rules[0]!;
    assert.equal(rule.Properties.ScheduleExpression, 'rate(5 minutes)');
    assert.equal(rule.Properties.State, 'ENABLED');
    assert.deepEqual(
      rule.Properties.Targets.map((t: any) => t.Arn),
      [{ 'Fn::GetAtt': [logicalId('pingHomeserver'), 'Arn'] }],
    );
    // EventBridge may invoke it, from that rule only.
    const permission = ofType('AWS::Lambda::Permission').find(([, p]) => p.Properties.Principal === 'events.amazonaws.com');
    assert.deepEqual(permission?.[1].Properties.SourceArn, { 'Fn::GetAtt': [ruleId, 'Arn'] });
    assert.deepEqual(permission?.[1].Properties.FunctionName, { 'Fn::GetAtt': [logicalId('pingHomeserver'), 'Arn'] });

    const ping = resources.PingAlarm!;
    assert.ok(ping.Condition, 'the ping alarm has a condition');
    assert.equal(evaluate(template, { 'Fn::If': [ping.Condition, true, false] }), true, 'the ping alarm exists by default');
    const [, off] = Object.entries(withParams.Resources).find(([, r]) => r.Type === 'AWS::Events::Rule')!;
    assert.equal(off.Properties.State, 'DISABLED', 'pingSchedule=false');
    assert.equal(withParams.Resources.PingAlarm!.Condition, ping.Condition);
    assert.equal(evaluate(withParams, { 'Fn::If': [ping.Condition, true, false] }), false, 'no ping alarm without the schedule');
  });

  test('the delivery queue: FIFO, SSE-SQS, 14 days, visibility 6x the deliver timeout, the dead-letter queue as backstop', () => {
    const q = resources.DeliveryQueue;
    assert.equal(q?.Type, 'AWS::SQS::Queue');
    const p = q.Properties;
    assert.equal(p.QueueName, queueNamesFor('dev').queue);
    assert.equal(p.FifoQueue, true);
    assert.equal(p.SqsManagedSseEnabled, true);
    assert.equal(p.MessageRetentionPeriod, 14 * 24 * 3600);
    assert.equal(p.VisibilityTimeout, 6 * resources[logicalId('deliver')]!.Properties.Timeout);
    assert.equal(p.VisibilityTimeout, 360);
    // We send an explicit MessageDeduplicationId.
    assert.equal(p.ContentBasedDeduplication, undefined);
    assert.deepEqual(p.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] }, maxReceiveCount: 500 });
    assert.equal(ofType('AWS::SQS::Queue').length, 2, 'the two queues only');
  });

  test('the dead-letter queue: FIFO, SSE-SQS, 14 days, and only the delivery queue may use it', () => {
    const q = resources.DeadLetterQueue;
    assert.equal(q?.Type, 'AWS::SQS::Queue');
    const p = q.Properties;
    assert.equal(p.QueueName, queueNamesFor('dev').deadLetters);
    assert.equal(p.FifoQueue, true);
    assert.equal(p.SqsManagedSseEnabled, true);
    assert.equal(p.MessageRetentionPeriod, 14 * 24 * 3600);
    assert.equal(p.ContentBasedDeduplication, undefined);
    assert.equal(p.RedrivePolicy, undefined);
    assert.equal(p.RedriveAllowPolicy.redrivePermission, 'byQueue');
    // The delivery queue's ARN spelled out from its name (a GetAtt would be a circular dependency).
    assert.deepEqual(p.RedriveAllowPolicy.sourceQueueArns, [
      { 'Fn::Sub': `arn:\${AWS::Partition}:sqs:\${AWS::Region}:\${AWS::AccountId}:${queueNamesFor('dev').queue}` },
    ]);
    assert.ok(!JSON.stringify(p).includes('DeliveryQueue'), 'no reference to DeliveryQueue: no cycle');
  });

  test('the deliver function: SQS event source on the delivery queue, partial batch responses, bounded concurrency', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    assert.equal(mappings.length, 1);
    const [, m] = mappings[0]!;
    assert.deepEqual(m.Properties.EventSourceArn, { 'Fn::GetAtt': ['DeliveryQueue', 'Arn'] });
    assert.deepEqual(m.Properties.FunctionName, { 'Fn::GetAtt': [logicalId('deliver'), 'Arn'] });
    assert.equal(m.Properties.BatchSize, DELIVERY.BATCH_SIZE);
    assert.deepEqual(m.Properties.ScalingConfig, { MaximumConcurrency: DELIVERY.MAX_CONCURRENCY });
    assert.deepEqual(m.Properties.FunctionResponseTypes, ['ReportBatchItemFailures']);
    assert.notEqual(m.Properties.Enabled, false);
    // Created once the role that lets Lambda poll the queue exists.
    assert.ok(asArray(m.DependsOn as string | string[]).includes(roleOf('deliver')), `DependsOn ${JSON.stringify(m.DependsOn)}`);
    // Stage parameters override both.
    const [, v] = Object.entries(withParams.Resources).find(([, r]) => r.Type === 'AWS::Lambda::EventSourceMapping')!;
    assert.equal(v.Properties.BatchSize, Number(VARIANT_PARAMS.deliverBatchSize));
    assert.deepEqual(v.Properties.ScalingConfig, { MaximumConcurrency: Number(VARIANT_PARAMS.deliverMaxConcurrency) });
  });

  test('the queue alarms: dead letters, and a message waiting too long', () => {
    const dead = resources.DeadLettersAlarm;
    assert.equal(dead?.Type, 'AWS::CloudWatch::Alarm');
    assert.equal(dead.Properties.Namespace, 'AWS/SQS');
    assert.equal(dead.Properties.MetricName, 'ApproximateNumberOfMessagesVisible');
    assert.deepEqual(dead.Properties.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['DeadLetterQueue', 'QueueName'] } }]);
    assert.equal(dead.Properties.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(Number(dead.Properties.Threshold), 0);
    assert.equal(dead.Properties.Period, 300);
    assert.equal(dead.Properties.EvaluationPeriods, 1);
    assert.equal(dead.Properties.TreatMissingData, 'notBreaching');
    assert.match(dead.Properties.AlarmDescription, /npm run dead-letters -- list --stage dev/);

    const old = resources.OldestMessageAlarm;
    assert.equal(old?.Type, 'AWS::CloudWatch::Alarm');
    // The age in minutes (metric math: CloudFormation cannot multiply the parameter by 60), against the parameter.
    const metrics = old.Properties.Metrics as any[];
    const age = metrics.find((m) => m.MetricStat);
    assert.equal(age.MetricStat.Metric.Namespace, 'AWS/SQS');
    assert.equal(age.MetricStat.Metric.MetricName, 'ApproximateAgeOfOldestMessage');
    assert.deepEqual(age.MetricStat.Metric.Dimensions, [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['DeliveryQueue', 'QueueName'] } }]);
    assert.equal(age.MetricStat.Period, 300);
    assert.equal(age.ReturnData, false);
    const returned = metrics.filter((m) => m.ReturnData !== false);
    assert.equal(returned.length, 1);
    assert.equal(returned[0].Expression.replace(/\s/g, ''), `${age.Id}/60`);
    assert.equal(Number(old.Properties.Threshold), 15, '15 minutes, i.e. 900 s of age');
    assert.equal(old.Properties.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(old.Properties.EvaluationPeriods, 1);
    assert.match(old.Properties.AlarmDescription, /15 minutes/);
    assert.equal(Number(withParams.Resources.OldestMessageAlarm!.Properties.Threshold), Number(VARIANT_PARAMS.oldestMessageAlarmMinutes));
    assert.match(withParams.Resources.OldestMessageAlarm!.Properties.AlarmDescription, /30 minutes/);
  });

  test('every alarm: named for the stage, described, on metrics of lib/metrics.ts or AWS, to the SNS topic only when one is given', () => {
    const expected = [
      'DeadLettersAlarm',
      'OldestMessageAlarm',
      'PingAlarm',
      'TableThrottlesAlarm',
      ...HTTP_FUNCTIONS.map((fn) => `${pascal(fn)}ServerErrorsAlarm`),
      ...LAMBDA_ALARMED.flatMap((fn) => [`${pascal(fn)}ErrorsAlarm`, `${pascal(fn)}ThrottlesAlarm`]),
    ];
    const alarms = ofType('AWS::CloudWatch::Alarm');
    assert.deepEqual(alarms.map(([id]) => id).sort(), [...expected].sort());
    // 4 of the stack, a 5xx one for each of the 9 HTTP functions, errors and throttles for 10 functions.
    assert.equal(alarms.length, 36);
    const names = alarms.map(([, a]) => a.Properties.AlarmName as string);
    assert.equal(new Set(names).size, names.length, `alarm names are unique: ${names.join(', ')}`);
    for (const [id, a] of alarms) {
      const p = a.Properties;
      assert.match(p.AlarmName, /^matrix-appservice-lambda-dev-[\w-]+$/, id);
      // What it means and what to do: a few sentences, every variable filled in.
      assert.ok(typeof p.AlarmDescription === 'string' && p.AlarmDescription.length > 200 && p.AlarmDescription.length <= 1024, `${id}: ${p.AlarmDescription}`);
      assert.ok(!p.AlarmDescription.includes('${'), `${id}: ${p.AlarmDescription}`);
      for (const m of alarmMetrics(p)) checkMetric(m, id);
      // No topic given: no actions at all (an empty ARN would fail the deploy).
      assert.equal(evaluate(template, p.AlarmActions), undefined, `${id} without alarmTopic`);
      assert.equal(evaluate(template, p.OKActions), undefined, `${id} without alarmTopic`);
      const v = withParams.Resources[id]!.Properties;
      assert.deepEqual(evaluate(withParams, v.AlarmActions), [ALARM_TOPIC], `${id} with alarmTopic`);
      assert.deepEqual(evaluate(withParams, v.OKActions), [ALARM_TOPIC], `${id} with alarmTopic`);
    }
    // The condition comes from infra/queue.yml alone (osls merges the resource files' conditions: a second definition would silently win).
    const infra = join(ROOT, 'infra');
    const defining = readdirSync(infra).filter((f) => /^\s+HasAlarmTopic:/m.test(readFileSync(join(infra, f), 'utf8')));
    assert.deepEqual(defining, ['queue.yml']);
  });

  test('the ping alarm: PingFailed of this stage in 2 of 2 periods of 5 minutes, and a ping that did not run counts as failed', () => {
    const p = resources.PingAlarm!.Properties;
    assert.equal(p.Namespace, METRICS_NAMESPACE);
    assert.equal(p.MetricName, 'PingFailed');
    assert.deepEqual(p.Dimensions, [{ Name: 'Stage', Value: 'dev' }]);
    assert.equal(p.Statistic, 'Maximum');
    assert.equal(p.Period, 300);
    assert.equal(p.EvaluationPeriods, 2);
    assert.equal(p.DatapointsToAlarm, 2);
    assert.equal(p.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(Number(p.Threshold), 1);
    assert.equal(p.TreatMissingData, 'breaching');
    assert.match(p.AlarmDescription, /matrix-appservice-lambda-dev-pingHomeserver/);
  });

  test('the 5xx alarms: ServerErrors / Requests of each HTTP function, above a share, given enough requests', () => {
    for (const [t, percent, minRequests] of [
      [template, 5, 10],
      [withParams, Number(VARIANT_PARAMS.serverErrorAlarmPercent), Number(VARIANT_PARAMS.serverErrorAlarmMinRequests)],
    ] as const) {
      for (const fn of HTTP_FUNCTIONS) {
        const id = `${pascal(fn)}ServerErrorsAlarm`;
        const p = t.Resources[id]!.Properties;
        assert.equal(p.AlarmName, `${deployedName(fn)}-5xx`);
        const metrics = p.Metrics as any[];
        const byId = Object.fromEntries(metrics.map((m) => [m.Id, m]));
        // Both of this stage and this function: FunctionName is the deployed name, as http.ts records it (context.functionName).
        for (const [mid, name] of [['errors', 'ServerErrors'], ['requests', 'Requests']]) {
          const stat = byId[mid!]?.MetricStat;
          assert.equal(stat?.Metric.Namespace, METRICS_NAMESPACE, `${id} ${mid}`);
          assert.equal(stat.Metric.MetricName, name, `${id} ${mid}`);
          assert.deepEqual(stat.Metric.Dimensions, [
            { Name: 'Stage', Value: 'dev' },
            { Name: 'FunctionName', Value: { Ref: logicalId(fn) } },
          ]);
          assert.equal(stat.Stat, 'Sum');
          assert.equal(stat.Period, 300);
          assert.equal(byId[mid!].ReturnData, false);
        }
        assert.equal(t.Resources[logicalId(fn)]!.Properties.FunctionName, deployedName(fn));
        const returned = metrics.filter((m) => m.ReturnData !== false);
        assert.equal(returned.length, 1, id);
        assert.equal(returned[0].Expression, `IF(requests >= ${minRequests}, 100 * FILL(errors, 0) / requests, 0)`, id);
        assert.equal(Number(p.Threshold), percent, id);
        assert.equal(p.ComparisonOperator, 'GreaterThanThreshold', id);
        assert.equal(p.EvaluationPeriods, 2, id);
        assert.equal(p.DatapointsToAlarm, 2, id);
        assert.equal(p.TreatMissingData, 'notBreaching', id);
        assert.ok(p.AlarmDescription.includes(`More than ${percent} %`), `${id}: ${p.AlarmDescription}`);
        assert.ok(p.AlarmDescription.includes(`/aws/lambda/${deployedName(fn)}`), `${id} names its log group`);
      }
    }
  });

  test("Lambda's errors and throttles alarms, per function; DynamoDB throttles on the state table", () => {
    for (const fn of LAMBDA_ALARMED) {
      for (const [kind, metric] of [['Errors', 'errors'], ['Throttles', 'throttles']] as const) {
        const p = resources[`${pascal(fn)}${kind}Alarm`]!.Properties;
        assert.equal(p.AlarmName, `${deployedName(fn)}-${metric}`);
        assert.equal(p.Namespace, 'AWS/Lambda');
        assert.equal(p.MetricName, kind);
        assert.deepEqual(p.Dimensions, [{ Name: 'FunctionName', Value: { Ref: logicalId(fn) } }]);
        assert.equal(p.Statistic, 'Sum');
        assert.equal(p.Period, 300);
        assert.equal(p.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
        assert.equal(Number(p.Threshold), 1);
        assert.equal(p.TreatMissingData, 'notBreaching');
      }
    }
    const p = resources.TableThrottlesAlarm!.Properties;
    const stats = (p.Metrics as any[]).filter((m) => m.MetricStat).map((m) => m.MetricStat);
    assert.deepEqual(stats.map((s) => `${s.Metric.Namespace} ${s.Metric.MetricName}`).sort(), ['AWS/DynamoDB ReadThrottleEvents', 'AWS/DynamoDB WriteThrottleEvents']);
    for (const s of stats) assert.deepEqual(s.Metric.Dimensions, [{ Name: 'TableName', Value: { Ref: 'StateTable' } }]);
    const returned = (p.Metrics as any[]).filter((m) => m.ReturnData !== false);
    assert.equal(returned.length, 1);
    assert.equal(returned[0].Expression, 'FILL(reads, 0) + FILL(writes, 0)');
    assert.equal(p.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(Number(p.Threshold), 1);
  });

  test('the dashboard: one, its body JSON, every metric in the catalog (with its dimensions) or an AWS one of this stack, the whole catalog shown', () => {
    const dashboards = ofType('AWS::CloudWatch::Dashboard');
    assert.equal(dashboards.length, 1);
    const [, d] = dashboards[0]!;
    assert.equal(d.Properties.DashboardName, 'matrix-appservice-lambda-dev');
    const sub = d.Properties.DashboardBody['Fn::Sub'];
    assert.equal(typeof sub, 'string', 'a Fn::Sub of a string');
    // osls has filled in its own variables; what is left is CloudFormation's: the region and this stack's resources.
    for (const [, ref] of sub.matchAll(/\$\{([^}]*)\}/g)) {
      assert.ok(ref === 'AWS::Region' || ref in resources, `\${${ref}} is a pseudo parameter or a resource of the stack`);
    }
    const body = JSON.parse(sub.replace(/\$\{[^}]*\}/g, 'x'));
    const functionNames = new Set(Object.keys(FUNCTIONS).map(deployedName));
    const queueNames = new Set(Object.values(queueNamesFor('dev')));
    const shown = new Set<string>();
    const checkDimension = (where: string, name: string, value: string) => {
      if (name === 'FunctionName') assert.ok(functionNames.has(value), `${where}: ${value} is a function of this stage`);
      if (name === 'QueueName') assert.ok(queueNames.has(value), `${where}: ${value} is a queue of this stage`);
      if (name === 'TableName') assert.equal(value, tableNameFor('dev'), where);
      if (name === 'Stage') assert.equal(value, 'dev', where);
    };
    assert.ok(body.widgets.length >= 10, 'widgets');
    for (const w of body.widgets) {
      const where = w.properties?.title;
      assert.equal(w.type, 'metric', where);
      for (const k of ['x', 'y', 'width', 'height']) assert.equal(typeof w[k], 'number', `${where}: ${k}`);
      assert.ok(w.x + w.width <= 24, `${where} fits the 24 columns`);
      assert.equal(w.properties.region, 'x', `${where}: the stack's region`);
      assert.ok(w.properties.metrics.length, where);
      for (const row of w.properties.metrics as unknown[][]) {
        if (typeof row[0] === 'object') {
          // A SEARCH over one metric's values of a second dimension, this stage's.
          const expression = (row[0] as { expression: string }).expression;
          const m = /^SEARCH\('\{"?([^",]+)"?,([^}]+)\} (.*)', '(\w+)', 300\)$/.exec(expression);
          assert.ok(m, `${where}: ${expression}`);
          const [, namespace, schema, terms] = m;
          const filters = Object.fromEntries([...terms!.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v])) as Record<string, string>;
          const name = filters.MetricName!;
          if (namespace === METRICS_NAMESPACE) {
            assert.ok(name in METRICS, `${where}: ${name} is in lib/metrics.ts`);
            assert.deepEqual(schema!.split(','), ['Stage', (METRICS as Record<string, { dimension?: string }>)[name]!.dimension], `${where}: ${name}'s dimensions`);
            assert.equal(filters.Stage, 'dev', `${where}: this stage's only`);
            shown.add(name);
          } else assert.match(namespace!, /^AWS\//, where);
          for (const [k, v] of Object.entries(filters)) checkDimension(where, k, v);
        } else {
          const [namespace, name, ...rest] = row as [string, string, ...unknown[]];
          if (rest.length % 2) assert.equal(typeof rest.pop(), 'object', `${where}: options last`);
          assert.ok(namespace !== '.' && name !== '.', `${where}: no shorthand`);
          const dims = Object.fromEntries(Array.from({ length: rest.length / 2 }, (_, i) => [rest[2 * i], rest[2 * i + 1]])) as Record<string, string>;
          if (namespace === METRICS_NAMESPACE) {
            assert.ok(name in METRICS, `${where}: ${name} is in lib/metrics.ts`);
            const second = (METRICS as Record<string, { dimension?: string }>)[name]!.dimension;
            assert.deepEqual(Object.keys(dims), second && Object.keys(dims).length > 1 ? ['Stage', second] : ['Stage'], `${where}: ${name}'s dimensions`);
            shown.add(name);
          } else {
            assert.match(namespace, /^AWS\//, where);
            shown.add(`${namespace} ${name}`);
          }
          for (const [k, v] of Object.entries(dims)) checkDimension(where, k, v);
        }
      }
    }
    for (const name of Object.keys(METRICS)) assert.ok(shown.has(name), `the dashboard shows ${name}`);
    // A widget of Lambda's per-function metrics has a line for every function.
    for (const w of body.widgets) {
      const rows = (w.properties.metrics as unknown[][]).filter((r) => r[0] === 'AWS/Lambda' && r[2] === 'FunctionName');
      if (rows.length) assert.deepEqual(rows.map((r) => r[3]).sort(), [...functionNames].sort(), `${w.properties.title}: a line per function`);
    }
    for (const aws of [
      'AWS/SQS ApproximateNumberOfMessagesVisible',
      'AWS/SQS ApproximateAgeOfOldestMessage',
      'AWS/DynamoDB ConsumedReadCapacityUnits',
      'AWS/DynamoDB ConsumedWriteCapacityUnits',
      'AWS/DynamoDB ReadThrottleEvents',
      'AWS/DynamoDB WriteThrottleEvents',
      'AWS/Lambda ConcurrentExecutions',
      'AWS/Lambda Throttles',
    ]) {
      assert.ok(shown.has(aws), `the dashboard shows ${aws}`);
    }
  });

  test("the API's rate limits: every route, and stricter on each of the network's; stage parameters", () => {
    const stages = ofType('AWS::ApiGatewayV2::Stage');
    assert.equal(stages.length, 1);
    const [stageId, stage] = stages[0]!;
    // infra/limits.yml merged into osls's own stage, which keeps what osls set.
    assert.deepEqual(stage.Properties.ApiId, { Ref: 'HttpApi' });
    assert.equal(stage.Properties.StageName, '$default');
    assert.equal(stage.Properties.AutoDeploy, true);
    // Every POST /network/* route, and the media links' GET.
    assert.deepEqual(
      [...NETWORK_ROUTES].sort(),
      [
        'GET /network/media/{server}/{mediaId}',
        'POST /network/deletions',
        'POST /network/edits',
        'POST /network/media',
        'POST /network/members',
        'POST /network/messages',
        'POST /network/profile',
        'POST /network/reactions',
        'POST /network/rooms/{remoteRoomId+}',
      ],
    );
    for (const key of NETWORK_ROUTES) {
      const routeId = ofType('AWS::ApiGatewayV2::Route').find(([, r]) => r.Properties.RouteKey === key)?.[0];
      assert.ok(routeId, `the network route ${key}`);
      // Created after the routes it names (CloudFormation cannot find them otherwise).
      assert.ok(asArray(stage.DependsOn ?? []).includes(routeId), `${stageId} DependsOn ${routeId}: ${JSON.stringify(stage.DependsOn)}`);
    }
    for (const [t, expected] of [
      [template, { api: [50, 100], network: [10, 20] }],
      [withParams, { api: [VARIANT_PARAMS.apiRateLimit, VARIANT_PARAMS.apiBurstLimit].map(Number), network: [VARIANT_PARAMS.networkRateLimit, VARIANT_PARAMS.networkBurstLimit].map(Number) }],
    ] as const) {
      const p = t.Resources[stageId]!.Properties;
      const limits = (s: any) => [Number(s?.ThrottlingRateLimit), Number(s?.ThrottlingBurstLimit)];
      assert.equal(p.DefaultRouteSettings.DetailedMetricsEnabled, false);
      assert.deepEqual(limits(p.DefaultRouteSettings), expected.api);
      assert.deepEqual(Object.keys(p.RouteSettings).sort(), [...NETWORK_ROUTES].sort());
      for (const key of NETWORK_ROUTES) assert.deepEqual(limits(p.RouteSettings[key]), expected.network, key);
    }
    const { DefaultRouteSettings: api, RouteSettings: routes } = stage.Properties;
    for (const key of NETWORK_ROUTES) {
      assert.ok(
        routes[key].ThrottlingRateLimit < api.ThrottlingRateLimit && routes[key].ThrottlingBurstLimit < api.ThrottlingBurstLimit,
        `by default the network's route ${key} is the stricter`,
      );
    }
  });

  test('reserved concurrency: each function its own, a stage parameter each, deliver as many as its event source runs, none with reservedConcurrency=none', () => {
    const reserved = (t: Template, fn: string) => t.Resources[logicalId(fn)]!.Properties.ReservedConcurrentExecutions;
    for (const [fn, f] of Object.entries(FUNCTIONS)) {
      assert.equal(Number(evaluate(template, reserved(template, fn))), f.reserved, fn);
      // reservedConcurrency=none: CloudFormation leaves the property out, whatever the function's own parameter.
      assert.equal(evaluate(withParams, reserved(withParams, fn)), undefined, `${fn} with reservedConcurrency=none`);
      const given = reserved(withParams, fn)['Fn::If'][1];
      const param = (VARIANT_PARAMS as Record<string, string>)[`${fn}ReservedConcurrency`];
      assert.equal(Number(given), Number(param ?? VARIANT_PARAMS.deliverMaxConcurrency), `${fn}ReservedConcurrency`);
    }
    // AWS refuses a deploy that leaves the account under 100 unreserved: infra/limits.yml and the README say the defaults need 174.
    const total = Object.values(FUNCTIONS).reduce((sum, f) => sum + f.reserved, 0);
    assert.equal(total, 74);
    // Every place that states the total says this one (a line break may fall anywhere: \s+, and a comment's #).
    const states = (text: string) =>
      new RegExp(`\\b${total} in all\\b`).test(text) && new RegExp(`concurrency[\\s#]+limit[\\s#]+must[\\s#]+be[\\s#]+${total + 100}[\\s#]+or more`).test(text);
    assert.ok(states(readFileSync(join(ROOT, 'infra', 'limits.yml'), 'utf8')), `infra/limits.yml states ${total} in all, ${total + 100} needed`);
    assert.ok(states(readFileSync(join(ROOT, 'README.md'), 'utf8')), `the README states ${total} in all, ${total + 100} needed`);
    // deliver's follows its event source's maximum concurrency (less would throttle the queue's poller).
    const mapping = (t: Template) => Object.values(t.Resources).find((r) => r.Type === 'AWS::Lambda::EventSourceMapping')!.Properties;
    assert.equal(Number(evaluate(template, reserved(template, 'deliver'))), mapping(template).ScalingConfig.MaximumConcurrency);
    assert.equal(Number(reserved(withParams, 'deliver')['Fn::If'][1]), mapping(withParams).ScalingConfig.MaximumConcurrency);
  });

  test('outputs: the queue URLs and the dead-letter queue ARN', () => {
    const outputs = template.Outputs!;
    assert.deepEqual(outputs.DeliveryQueueUrl?.Value, { Ref: 'DeliveryQueue' });
    assert.deepEqual(outputs.DeadLetterQueueUrl?.Value, { Ref: 'DeadLetterQueue' });
    assert.deepEqual(outputs.DeadLetterQueueArn?.Value, { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] });
    assert.deepEqual(outputs.StateTableName?.Value, { Ref: 'StateTable' });
    // npm run registration reads the protocol the stage was deployed with (the registration's `protocols`).
    assert.equal(outputs.Protocol?.Value, DEFAULTS.PROTOCOL);
  });

  test('each function: nodejs22.x on arm64, its handler, timeout, its stage for the metrics, and a bundle zip', () => {
    for (const [fn, f] of Object.entries(FUNCTIONS)) {
      const p = resources[logicalId(fn)]?.Properties;
      assert.ok(p, `${fn} exists`);
      assert.equal(p.Runtime, 'nodejs22.x', fn);
      assert.deepEqual(p.Architectures, ['arm64'], fn);
      assert.equal(p.MemorySize, f.memory ?? 256, fn);
      assert.equal(p.Handler, `functions/${f.file}.handler`, fn);
      if (f.timeout) assert.equal(p.Timeout, f.timeout, fn);
      // The Stage dimension of its metrics (lib/metrics.ts).
      assert.equal(p.Environment.Variables.STAGE, 'dev', fn);
      const zip = join(OUT, `${fn}.zip`);
      assert.ok(existsSync(zip), `${zip} exists`);
      // File names sit uncompressed in a zip's directory: the ESM bundle is there under the handler's path.
      assert.ok(readFileSync(zip).includes(`functions/${f.file}.mjs`), `${fn}.zip holds functions/${f.file}.mjs`);
      // Everything is bundled: no node_modules in the zip (the SSM client comes from the runtime).
      assert.ok(!readFileSync(zip).includes('node_modules/'), `${fn}.zip carries no node_modules`);
    }
    for (const [, g] of ofType('AWS::Logs::LogGroup')) assert.equal(g.Properties.RetentionInDays, 14);
  });

  test('the table: pk HASH, sk RANGE, on demand, TTL on expiresAt, the byEvent index', () => {
    const [, table] = ofType('AWS::DynamoDB::Table')[0] ?? [];
    assert.ok(table, 'a table');
    const p = table.Properties;
    assert.equal(p.TableName, 'matrix-appservice-lambda-dev');
    assert.deepEqual(p.KeySchema, [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(p.TimeToLiveSpecification, { AttributeName: 'expiresAt', Enabled: true });
    // Matrix event → message mapping (lib/store/messages.ts queries it by this name).
    const index = (p.GlobalSecondaryIndexes as any[] | undefined)?.find((i) => i.IndexName === BY_EVENT_INDEX);
    assert.ok(index, `the ${BY_EVENT_INDEX} index`);
    assert.deepEqual(index.KeySchema, [{ AttributeName: 'eventId', KeyType: 'HASH' }]);
    assert.ok((p.AttributeDefinitions as any[]).some((a) => a.AttributeName === 'eventId' && a.AttributeType === 'S'), 'eventId is a string');
  });

  test('IAM: no wildcard resource; exactly the DynamoDB calls the code makes, on the table and its byEvent index; none for networkMediaDownload', () => {
    const all = allStatements();
    assert.ok(all.length, 'IAM statements');
    for (const s of all) {
      assert.equal(s.Effect, 'Allow');
      for (const r of asArray(s.Resource)) {
        const text = resourceText(r);
        assert.notEqual(text, '*', `statement for ${s.Action} has Resource *`);
        // Only the log statement uses a wildcard, and only inside this stage's function log groups.
        if (text.includes('*')) assert.match(text, /:log-group:\/aws\/lambda\/matrix-appservice-lambda-dev-\*:\*$/, `wildcard in ${text}`);
      }
      for (const a of asArray(s.Action)) assert.ok(!a.includes('*'), `wildcard action ${a}`);
    }
    // osls's default role is not there to pick up the event source's SQS permissions.
    assert.equal(resources.IamRoleLambdaExecution, undefined);
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      assert.deepEqual(
        role.Properties.AssumeRolePolicyDocument.Statement,
        [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        `${id}: for Lambda only`,
      );
    }

    const tableArn = { 'Fn::GetAtt': ['StateTable', 'Arn'] };
    const indexArn = { 'Fn::Sub': `\${StateTable.Arn}/index/${BY_EVENT_INDEX}` };
    for (const fn of Object.keys(FUNCTIONS)) {
      const mine = statementsOf(fn);
      const dynamo = mine.filter((s) => asArray(s.Action).some((a) => a.startsWith('dynamodb:')));
      if (TABLELESS.includes(fn)) {
        assert.deepEqual(dynamo, [], `${fn} has no DynamoDB action`);
      } else {
        // The table's calls on the table; on the index, a Query only (the only call an index takes that the code makes).
        assert.equal(dynamo.length, 2, fn);
        const onTable = dynamo.find((s) => JSON.stringify(s.Resource) === JSON.stringify([tableArn]));
        assert.ok(onTable, `${fn}: a statement on the table: ${JSON.stringify(dynamo)}`);
        assert.deepEqual([...asArray(onTable.Action)].sort(), [...DYNAMODB_ACTIONS].sort(), fn);
        const onIndex = dynamo.find((s) => s !== onTable);
        assert.deepEqual(onIndex!.Resource, [indexArn], `${fn}: may Query the ${BY_EVENT_INDEX} index`);
        assert.deepEqual(onIndex!.Action, ['dynamodb:Query'], fn);
      }

      const ssm = mine.filter((s) => asArray(s.Action).some((a) => a.startsWith('ssm:')));
      assert.equal(ssm.length, 1, fn);
      assert.deepEqual(ssm[0]!.Action, ['ssm:GetParameters'], fn);
      const arns = asArray(ssm[0]!.Resource).map((r: any) => r['Fn::Sub'] as string);
      // The current secrets and, for rotations, the next hs_token and network secret: exactly these.
      assert.deepEqual(
        [...arns].sort(),
        SSM_PARAMETERS.map((name) => `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/matrix-appservice-lambda/dev/${name}`).sort(),
        `${fn} may read exactly this stage's parameters: ${arns.join(', ')}`,
      );
      for (const arn of arns) assert.ok(!arn.includes('*'), `explicit parameter ARN: ${arn}`);

      // A role of our own must let the function write its logs.
      const logs = mine.filter((s) => asArray(s.Action).some((a) => a.startsWith('logs:')));
      assert.deepEqual(logs.flatMap((s) => asArray(s.Action)).sort(), ['logs:CreateLogStream', 'logs:PutLogEvents'], fn);
      assert.deepEqual(
        logs.flatMap((s) => asArray(s.Resource)),
        [{ 'Fn::Sub': 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/matrix-appservice-lambda-dev-*:*' }],
        fn,
      );
      assert.deepEqual(
        mine.flatMap((s) => asArray(s.Action)).filter((a) => !/^(dynamodb|ssm|logs|sqs):/.test(a)),
        [],
        `${fn}: nothing beyond DynamoDB, SSM, logs and SQS`,
      );
    }
  });

  test('IAM: only push may send to the delivery queue, only deliver consume it and send to the dead-letter queue', () => {
    assert.deepEqual(sqsGrants('push'), ['sqs:SendMessage on DeliveryQueue']);
    assert.deepEqual(sqsGrants('deliver'), [
      'sqs:ChangeMessageVisibility on DeliveryQueue',
      'sqs:DeleteMessage on DeliveryQueue',
      'sqs:GetQueueAttributes on DeliveryQueue',
      'sqs:ReceiveMessage on DeliveryQueue',
      'sqs:SendMessage on DeadLetterQueue',
    ]);
    for (const fn of Object.keys(FUNCTIONS).filter((f) => f !== 'push' && f !== 'deliver')) {
      assert.deepEqual(sqsGrants(fn), [], `${fn} has no SQS action`);
    }
    // Each SQS grant sits in the role of its function alone (no other function shares those roles).
    assert.notEqual(roleOf('push'), roleOf('deliver'));
    for (const fn of Object.keys(FUNCTIONS).filter((f) => f !== 'push')) assert.notEqual(roleOf(fn), roleOf('push'), fn);
    for (const fn of Object.keys(FUNCTIONS).filter((f) => f !== 'deliver')) assert.notEqual(roleOf(fn), roleOf('deliver'), fn);
    // No SQS in any managed policy (shared), nor anywhere else than in those two roles.
    for (const [id, p] of ofType('AWS::IAM::ManagedPolicy')) {
      assert.ok(!JSON.stringify(p.Properties.PolicyDocument).includes('sqs:'), `${id} has no SQS action`);
    }
    for (const [id] of ofType('AWS::IAM::Role').filter(([id]) => id !== roleOf('push') && id !== roleOf('deliver'))) {
      assert.ok(!JSON.stringify(resources[id]).includes('sqs:'), `${id} has no SQS action`);
    }
    for (const [id] of ofType('AWS::IAM::Policy')) assert.fail(`a stand-alone policy ${id}`);
  });

  test('IAM: networkMediaDownload and thirdParty run under roles of their own, without the table; the table roles are the others', () => {
    assert.equal(new Set(TABLELESS.map(roleOf)).size, TABLELESS.length, 'a role each');
    for (const tableless of TABLELESS) {
      const role = roleOf(tableless);
      for (const fn of Object.keys(FUNCTIONS).filter((f) => !TABLELESS.includes(f))) assert.notEqual(roleOf(fn), role, fn);
      // Nothing in its role names the table or a queue: secrets and logs only.
      const text = JSON.stringify(statementsOf(tableless));
      for (const what of ['dynamodb:', 'StateTable', 'sqs:', 'Queue']) assert.ok(!text.includes(what), `${tableless}'s role: ${what}`);
      assert.deepEqual(
        [...new Set(statementsOf(tableless).flatMap((s) => asArray(s.Action)))].sort(),
        ['logs:CreateLogStream', 'logs:PutLogEvents', 'ssm:GetParameters'],
        tableless,
      );
    }
  });

  test('secrets: SSM parameter names in the environment, never token values', () => {
    for (const fn of Object.keys(FUNCTIONS)) {
      const vars = resources[logicalId(fn)]!.Properties.Environment.Variables as Record<string, string>;
      assert.equal(vars.AS_TOKEN, undefined, fn);
      assert.equal(vars.HS_TOKEN, undefined, fn);
      assert.equal(vars.NETWORK_SECRET, undefined, fn);
      assert.equal(vars.NETWORK_SECRET_NEXT, undefined, fn);
      assert.equal(vars.AS_TOKEN_PARAM, '/matrix-appservice-lambda/dev/as_token');
      assert.equal(vars.HS_TOKEN_PARAM, '/matrix-appservice-lambda/dev/hs_token');
      assert.equal(vars.NETWORK_SECRET_PARAM, '/matrix-appservice-lambda/dev/network_secret');
      // Rotations: the parameter given at deploy time; none given is an empty value (none).
      assert.equal(vars.NETWORK_SECRET_NEXT_PARAM, NETWORK_SECRET_NEXT_PARAM, fn);
      assert.equal(vars.HS_TOKEN_NEXT_PARAM ?? '', '', fn);
      assert.equal(vars.TABLE_NAME, 'matrix-appservice-lambda-dev');
      assert.equal(vars.DYNAMODB_ENDPOINT, undefined, 'no local endpoint in the cloud');
      // The queues' URLs from CloudFormation; no local SQS server.
      assert.deepEqual(vars.QUEUE_URL, { Ref: 'DeliveryQueue' }, fn);
      assert.deepEqual(vars.DEAD_LETTER_QUEUE_URL, { Ref: 'DeadLetterQueue' }, fn);
      assert.equal(vars.SQS_ENDPOINT, undefined, 'no local SQS endpoint in the cloud');
      assert.equal(vars.MAX_PARKED_EVENTS_PER_ROOM, undefined, 'no parked rooms any more');
      assert.equal(vars.DEAD_LETTER_AFTER_HOURS, String(DELIVERY.DEAD_LETTER_AFTER_HOURS), fn);
      assert.equal(vars.DEAD_LETTER_NOTICES, String(DELIVERY.DEAD_LETTER_NOTICES), fn);
      // The media links' base: the API's own URL unless --param asUrl gives another.
      assert.deepEqual(vars.AS_URL, { 'Fn::GetAtt': ['HttpApi', 'ApiEndpoint'] }, fn);
      // The third-party protocol: lib/defaults.ts's, the network named after AS_ID, no icon.
      assert.deepEqual(
        [vars.PROTOCOL, vars.PROTOCOL_USER_FIELD, vars.PROTOCOL_LOCATION_FIELD, vars.PROTOCOL_ICON ?? '', vars.PROTOCOL_NETWORK_NAME],
        [DEFAULTS.PROTOCOL, DEFAULTS.PROTOCOL_USER_FIELD, DEFAULTS.PROTOCOL_LOCATION_FIELD, '', DEFAULTS.AS_ID],
        fn,
      );
    }
    for (const sentinel of [SENTINEL_AS, SENTINEL_HS, SENTINEL_NETWORK_NEXT]) assert.ok(!templateText.includes(sentinel), 'a secret value is in the template');
  });
});
