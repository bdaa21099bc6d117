/**
 * `npm run registration`: prints the registration YAML of a deployed AS to stdout, for the
 * homeserver's app_service_config_files.
 *
 *   npm run --silent registration -- --stage prod > registration.yaml
 *
 * The stage's settings come from its stack (`osls info --verbose`, AWS credentials and region
 * from the environment): the API's URL (HttpApiUrl) and the registration settings it was deployed
 * with (HomeserverName, AppserviceId, SenderLocalpart, UserPrefix, AliasPrefix, Protocol outputs). Any of
 * AS_URL, HOMESERVER_NAME, AS_ID, SENDER_LOCALPART, USER_PREFIX, ALIAS_PREFIX, PROTOCOL in the environment
 * wins; with AS_URL and HOMESERVER_NAME both given, osls is not asked at all. AS_TOKEN / HS_TOKEN
 * are used when given (the ones already in SSM); otherwise new ones are made, and the commands
 * that store them in SSM go to stderr.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../lib/config.js';
import { newToken, registrationYaml } from '../lib/appservice/registration.js';
import { SERVICE } from '../lib/defaults.js';
import { StageError, stageInfo } from './stage.js';

/** Stack output → the setting it gives (serverless.yml Outputs). */
const FROM_STACK: Record<string, string> = {
  AS_URL: 'HttpApiUrl',
  HOMESERVER_NAME: 'HomeserverName',
  AS_ID: 'AppserviceId',
  SENDER_LOCALPART: 'SenderLocalpart',
  USER_PREFIX: 'UserPrefix',
  ALIAS_PREFIX: 'AliasPrefix',
  PROTOCOL: 'Protocol',
};

function main(): void {
  const { values } = parseArgs({ options: { stage: { type: 'string', default: process.env.STAGE ?? 'dev' } } });
  const stage = values.stage ?? 'dev';
  const set = (k: string) => process.env[k]?.trim() || undefined;
  const env: Record<string, string | undefined> = { ...process.env };
  if (!set('AS_URL') || !set('HOMESERVER_NAME')) {
    const { outputs } = stageInfo(stage);
    for (const [setting, output] of Object.entries(FROM_STACK)) env[setting] = set(setting) ?? outputs[output];
    if (!env.AS_URL) throw new StageError(`the stack of stage '${stage}' has no HttpApiUrl output; give AS_URL (the API's URL)`);
  }
  // The same checks and defaults as the functions apply; the values only the functions need are stand-ins.
  const pickEnv = ['AS_URL', 'HOMESERVER_NAME', 'AS_ID', 'SENDER_LOCALPART', 'USER_PREFIX', 'ALIAS_PREFIX', 'PROTOCOL'];
  const cfg = parseConfig({
    HOMESERVER_URL: 'http://unused.invalid',
    TABLE_NAME: 'unused',
    QUEUE_URL: 'http://unused.invalid',
    DEAD_LETTER_QUEUE_URL: 'http://unused.invalid',
    AS_TOKEN: 'unused',
    HS_TOKEN: 'unused',
    ...Object.fromEntries(pickEnv.map((k) => [k, env[k]])),
  });

  const given = { asToken: env.AS_TOKEN?.trim(), hsToken: env.HS_TOKEN?.trim() };
  const asToken = given.asToken || newToken();
  const hsToken = given.hsToken || newToken();
  process.stdout.write(registrationYaml({ ...cfg, asUrl: cfg.asUrl ?? '', asToken, hsToken, protocol: cfg.thirdParty.protocol }));

  const fresh = [...(given.asToken ? [] : [['as_token', asToken]]), ...(given.hsToken ? [] : [['hs_token', hsToken]])];
  if (fresh.length) {
    const region = env.AWS_REGION ? ` --region ${env.AWS_REGION}` : '';
    console.error(`# New tokens. Store them where the '${stage}' stage reads them (SecureString), then deploy:`);
    for (const [name, value] of fresh) {
      console.error(`aws ssm put-parameter${region} --type SecureString --overwrite --name /${SERVICE}/${stage}/${name} --value '${value}'`);
    }
  }
}

try {
  main();
} catch (e) {
  if (!(e instanceof ConfigError || e instanceof StageError)) throw e;
  console.error(e.message);
  process.exit(2);
}
