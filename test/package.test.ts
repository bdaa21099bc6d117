/**
 * `npm run package` (osls + serverless-esbuild) works offline and produces the stack DESIGN.md
 * describes: every HS route on the right function, Lambda settings, the table, least-privilege
 * IAM, and no secret in the template.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
let resources: Record<string, Resource> = {};
let templateText = '';

const FUNCTIONS: Record<string, { file: string; timeout?: number; routes: string[] }> = {
  userQuery: { file: 'user-query', timeout: 25, routes: ['GET /_matrix/app/v1/users/{userId+}', 'GET /users/{userId+}'] },
  roomQuery: { file: 'room-query', timeout: 25, routes: ['GET /_matrix/app/v1/rooms/{roomAlias+}', 'GET /rooms/{roomAlias+}'] },
  push: { file: 'push', timeout: 28, routes: ['PUT /_matrix/app/v1/transactions/{txnId+}', 'PUT /transactions/{txnId+}'] },
  ping: { file: 'ping', routes: ['POST /_matrix/app/v1/ping'] },
  networkInbound: { file: 'network-inbound', timeout: 25, routes: ['POST /network/messages'] },
  unrecognized: { file: 'unrecognized', routes: ['$default'] },
  drain: { file: 'drain', timeout: 60, routes: [] },
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

function statements(): Array<{ Effect: string; Action: string | string[]; Resource: unknown }> {
  const [, role] = ofType('AWS::IAM::Role')[0] ?? [];
  assert.ok(role, 'an IAM role');
  return role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement);
}

before(
  () => {
    // Remove what could make the packaging depend on this machine's AWS setup.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SLS_TELEMETRY_DISABLED: '1',
      AS_TOKEN: SENTINEL_AS,
      HS_TOKEN: SENTINEL_HS,
      NETWORK_SECRET_NEXT: SENTINEL_NETWORK_NEXT,
    };
    // ... and on what this shell may hold for a rotation: the template must show only what the flags below say.
    for (const k of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'HS_TOKEN_NEXT_PARAM', 'NETWORK_SECRET_NEXT_PARAM']) {
      delete env[k];
    }
    // A network secret rotation under way (--param networkSecretNextParam), no hs_token rotation.
    const args = ['run', '--silent', 'package', '--', '--param', `networkSecretNextParam=${NETWORK_SECRET_NEXT_PARAM}`];
    const r = spawnSync('npm', args, { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `npm run package failed:\n${r.stdout}\n${r.stderr}`);
    templateText = readFileSync(join(OUT, 'cloudformation-template-update-stack.json'), 'utf8');
    resources = JSON.parse(templateText).Resources;
  },
  { timeout: 150_000 },
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

  test('the drainer of parked rooms runs every minute', () => {
    const rules = ofType('AWS::Events::Rule');
    assert.equal(rules.length, 1);
    const [, rule] = rules[0]!;
    assert.equal(rule.Properties.ScheduleExpression, 'rate(1 minute)');
    assert.equal(rule.Properties.Targets[0].Arn['Fn::GetAtt'][0], logicalId('drain'));
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
    const all = statements();
    for (const s of all) {
      for (const r of asArray(s.Resource)) {
        const text = resourceText(r);
        assert.notEqual(text, '*', `statement for ${s.Action} has Resource *`);
        // Only Serverless's own log statements use wildcards, and only inside this service's log groups.
        if (text.includes('*')) assert.match(text, /:log-group:\/aws\/lambda\/matrix-appservice-lambda-dev\*:/, `wildcard in ${text}`);
      }
      for (const a of asArray(s.Action)) assert.ok(!a.includes('*'), `wildcard action ${a}`);
    }
    const dynamo = all.filter((s) => asArray(s.Action).some((a) => a.startsWith('dynamodb:')));
    assert.equal(dynamo.length, 1);
    assert.deepEqual([...asArray(dynamo[0]!.Action)].sort(), [...DYNAMODB_ACTIONS].sort());
    assert.deepEqual(dynamo[0]!.Resource, [{ 'Fn::GetAtt': ['StateTable', 'Arn'] }]);

    const ssm = all.filter((s) => asArray(s.Action).some((a) => a.startsWith('ssm:')));
    assert.equal(ssm.length, 1);
    assert.deepEqual(ssm[0]!.Action, ['ssm:GetParameters']);
    const arns = asArray(ssm[0]!.Resource).map((r: any) => r['Fn::Sub'] as string);
    // The current secrets and, for rotations, the next hs_token and network secret: exactly these.
    assert.deepEqual(
      [...arns].sort(),
      SSM_PARAMETERS.map((name) => `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/matrix-appservice-lambda/dev/${name}`).sort(),
      `may read exactly this stage's parameters: ${arns.join(', ')}`,
    );
    for (const arn of arns) assert.ok(!arn.includes('*'), `explicit parameter ARN: ${arn}`);
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
    }
    for (const sentinel of [SENTINEL_AS, SENTINEL_HS, SENTINEL_NETWORK_NEXT]) assert.ok(!templateText.includes(sentinel), 'a secret value is in the template');
  });
});
