/**
 * `npm run package` (osls + serverless-esbuild) works offline and produces the stack DESIGN.md
 * describes: every HS route on the right function, Lambda settings, the table, the delivery queue
 * with its dead-letter queue, event source and alarms, least-privilege IAM per function, and no
 * secret in the template.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DELIVERY, queueNamesFor } from '../lib/defaults.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, '.serverless');
// Set in the packaging environment: if either shows up in the template, a secret leaked.
const SENTINEL_AS = 'sentinel-as-token-must-not-leak';
const SENTINEL_HS = 'sentinel-hs-token-must-not-leak';
const SENTINEL_NETWORK_NEXT = 'sentinel-network-secret-next-must-not-leak';
/** Packaged as an operator deploys during a network secret rotation (README, "Deploy to AWS"). */
const NETWORK_SECRET_NEXT_PARAM = '/matrix-appservice-lambda/dev/network_secret_next';
const SSM_PARAMETERS = ['as_token', 'hs_token', 'hs_token_next', 'network_secret', 'network_secret_next'];

type Resource = { Type: string; Properties: Record<string, any>; [k: string]: unknown };
type Template = { Resources: Record<string, Resource>; Conditions?: Record<string, unknown>; Outputs?: Record<string, any> };
let template: Template = { Resources: {} };
let resources: Record<string, Resource> = {};
let templateText = '';
/** A second package, as deployed with the optional stage parameters: an SNS topic for the alarms and the rest non-default. */
let withParams: Template = { Resources: {} };
const ALARM_TOPIC = 'arn:aws:sns:us-east-1:123456789012:matrix-ops';
const VARIANT_PARAMS = { alarmTopic: ALARM_TOPIC, oldestMessageAlarmMinutes: '30', deliverBatchSize: '4', deliverMaxConcurrency: '2' };

const FUNCTIONS: Record<string, { file: string; timeout?: number; routes: string[] }> = {
  userQuery: { file: 'user-query', timeout: 25, routes: ['GET /_matrix/app/v1/users/{userId+}', 'GET /users/{userId+}'] },
  roomQuery: { file: 'room-query', timeout: 25, routes: ['GET /_matrix/app/v1/rooms/{roomAlias+}', 'GET /rooms/{roomAlias+}'] },
  push: { file: 'push', timeout: 28, routes: ['PUT /_matrix/app/v1/transactions/{txnId+}', 'PUT /transactions/{txnId+}'] },
  ping: { file: 'ping', routes: ['POST /_matrix/app/v1/ping'] },
  networkInbound: { file: 'network-inbound', timeout: 25, routes: ['POST /network/messages'] },
  unrecognized: { file: 'unrecognized', routes: ['$default'] },
  deliver: { file: 'deliver', timeout: 60, routes: [] },
};

const DYNAMODB_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
];

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const logicalId = (fn: string) => `${fn[0]!.toUpperCase()}${fn.slice(1)}LambdaFunction`;
const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
/** A Resource as text: the string, the Fn::Sub pattern, or the JSON of any other intrinsic. */
const resourceText = (r: any): string => (typeof r === 'string' ? r : typeof r?.['Fn::Sub'] === 'string' ? r['Fn::Sub'] : JSON.stringify(r));

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

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

  test('nothing runs on a schedule: the delivery queue drives the deliver function', () => {
    assert.deepEqual(ofType('AWS::Events::Rule'), []);
    assert.equal(resources.DrainLambdaFunction, undefined);
    const fns = ofType('AWS::Lambda::Function').map(([id]) => id).sort();
    assert.deepEqual(fns, Object.keys(FUNCTIONS).map(logicalId).sort(), 'exactly these functions');
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

  test('alarms: dead letters, and a message waiting too long; to the SNS topic only when one is given', () => {
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

    assert.deepEqual(ofType('AWS::CloudWatch::Alarm').map(([id]) => id).sort(), ['DeadLettersAlarm', 'OldestMessageAlarm']);
    for (const id of ['DeadLettersAlarm', 'OldestMessageAlarm']) {
      // No topic given: no actions at all (an empty ARN would fail the deploy).
      assert.equal(evaluate(template, resources[id]!.Properties.AlarmActions), undefined, `${id} without alarmTopic`);
      assert.equal(evaluate(template, resources[id]!.Properties.OKActions), undefined, `${id} without alarmTopic`);
      assert.deepEqual(evaluate(withParams, withParams.Resources[id]!.Properties.AlarmActions), [ALARM_TOPIC], `${id} with alarmTopic`);
    }
  });

  test('outputs: the queue URLs and the dead-letter queue ARN', () => {
    const outputs = template.Outputs!;
    assert.deepEqual(outputs.DeliveryQueueUrl?.Value, { Ref: 'DeliveryQueue' });
    assert.deepEqual(outputs.DeadLetterQueueUrl?.Value, { Ref: 'DeadLetterQueue' });
    assert.deepEqual(outputs.DeadLetterQueueArn?.Value, { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] });
    assert.deepEqual(outputs.StateTableName?.Value, { Ref: 'StateTable' });
  });

  test('each function: nodejs22.x on arm64, its handler, timeout, and a bundle zip', () => {
    for (const [fn, f] of Object.entries(FUNCTIONS)) {
      const p = resources[logicalId(fn)]?.Properties;
      assert.ok(p, `${fn} exists`);
      assert.equal(p.Runtime, 'nodejs22.x', fn);
      assert.deepEqual(p.Architectures, ['arm64'], fn);
      assert.equal(p.MemorySize, 256, fn);
      assert.equal(p.Handler, `functions/${f.file}.handler`, fn);
      if (f.timeout) assert.equal(p.Timeout, f.timeout, fn);
      const zip = join(OUT, `${fn}.zip`);
      assert.ok(existsSync(zip), `${zip} exists`);
      // File names sit uncompressed in a zip's directory: the ESM bundle is there under the handler's path.
      assert.ok(readFileSync(zip).includes(`functions/${f.file}.mjs`), `${fn}.zip holds functions/${f.file}.mjs`);
      // Everything is bundled: no node_modules in the zip (the SSM client comes from the runtime).
      assert.ok(!readFileSync(zip).includes('node_modules/'), `${fn}.zip carries no node_modules`);
    }
    for (const [, g] of ofType('AWS::Logs::LogGroup')) assert.equal(g.Properties.RetentionInDays, 14);
  });

  test('the table: pk HASH, sk RANGE, on demand, TTL on expiresAt', () => {
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
  });

  test('IAM: no wildcard resource; exactly the DynamoDB calls the code makes, on the table', () => {
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

    for (const fn of Object.keys(FUNCTIONS)) {
      const mine = statementsOf(fn);
      const dynamo = mine.filter((s) => asArray(s.Action).some((a) => a.startsWith('dynamodb:')));
      assert.equal(dynamo.length, 1, fn);
      assert.deepEqual([...asArray(dynamo[0]!.Action)].sort(), [...DYNAMODB_ACTIONS].sort(), fn);
      assert.deepEqual(dynamo[0]!.Resource, [{ 'Fn::GetAtt': ['StateTable', 'Arn'] }], fn);

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
    }
    for (const sentinel of [SENTINEL_AS, SENTINEL_HS, SENTINEL_NETWORK_NEXT]) assert.ok(!templateText.includes(sentinel), 'a secret value is in the template');
  });
});
