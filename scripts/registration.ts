/**
 * `npm run registration`: prints the registration YAML of a deployed AS to stdout, for the
 * homeserver's app_service_config_files.
 *
 *   AS_URL=https://abc123.execute-api.eu-west-1.amazonaws.com HOMESERVER_NAME=example.org \
 *     npm run --silent registration -- --stage prod > registration.yaml
 *
 * AS_URL (the HTTP API's URL, `npx osls info --stage <stage>` shows it) and HOMESERVER_NAME are
 * required; AS_ID, SENDER_LOCALPART, USER_PREFIX, ALIAS_PREFIX default as in lib/config.ts and must
 * match what the stage was deployed with. AS_TOKEN / HS_TOKEN are used when given (the ones already
 * in SSM); otherwise new ones are made, and the commands that store them in SSM go to stderr.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig } from '../lib/config.js';
import { newToken, registrationYaml } from '../lib/appservice/registration.js';
import { SERVICE } from '../lib/defaults.js';

function main(): void {
  const { values } = parseArgs({ options: { stage: { type: 'string', default: process.env.STAGE ?? 'dev' } } });
  const stage = values.stage ?? 'dev';
  const env = process.env;
  if (!env.AS_URL?.trim()) {
    throw new ConfigError('AS_URL', 'is not set: give the deployed API URL, e.g. https://abc123.execute-api.us-east-1.amazonaws.com (`npx osls info` shows it)');
  }

  // The same checks and defaults as the functions apply; the values only the functions need are stand-ins.
  const pickEnv = ['AS_URL', 'HOMESERVER_NAME', 'AS_ID', 'SENDER_LOCALPART', 'USER_PREFIX', 'ALIAS_PREFIX'];
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
  process.stdout.write(registrationYaml({ ...cfg, asUrl: cfg.asUrl ?? '', asToken, hsToken }));

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
  if (!(e instanceof ConfigError)) throw e;
  console.error(e.message);
  process.exit(2);
}
