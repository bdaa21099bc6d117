/**
 * The credentials of the AWS SDK clients this code makes (DynamoDB in lib/store, SQS in
 * lib/queue), chosen explicitly rather than by the SDK's default chain:
 *
 * - against a local endpoint (DynamoDB Local, the local SQS server: npm start, the tests, the
 *   bench): static credentials, the environment's if it has some, else any (local servers do
 *   not check them);
 * - on Lambda: the execution role's credentials, which Lambda puts in the environment
 *   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN): `fromEnv`, the first link of
 *   the default chain and the one that answers there;
 * - anywhere else (the operator's CLI scripts against AWS, unbundled): the SDK's default chain
 *   (profiles, SSO, ...), as before.
 *
 * The clients import the default chain (`@aws-sdk/credential-provider-node`, with the SSO and
 * STS clients it loads) whatever credentials they are given, so a bundle would carry ~100 KB it
 * never runs (aws/aws-sdk-js-v3#5516). serverless.yml's esbuild `alias` therefore puts this
 * module in that package's place in the Lambda bundles: its `defaultProvider` is the environment
 * link alone. Unbundled code (tsx: tests, scripts) still gets the real chain.
 */
import { fromEnv } from '@aws-sdk/credential-provider-env';

type Env = Record<string, string | undefined>;
type EnvProvider = ReturnType<typeof fromEnv>;
export type StaticCredentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** The `credentials` to give an SDK client (see above); undefined leaves the SDK's default chain. */
export function awsCredentials(endpoint: string | undefined, env: Env = process.env): StaticCredentials | EnvProvider | undefined {
  if (endpoint) {
    return {
      accessKeyId: env.AWS_ACCESS_KEY_ID || 'local',
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY || 'local',
      ...(env.AWS_ACCESS_KEY_ID && env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  if (env.AWS_LAMBDA_FUNCTION_NAME) return fromEnv();
  return undefined;
}

/**
 * What the Lambda bundles have in place of `@aws-sdk/credential-provider-node`'s default chain
 * (the esbuild alias in serverless.yml): the environment's credentials, and a message that says
 * so when there are none.
 */
export const defaultProvider =
  (init: Parameters<typeof fromEnv>[0] = {}): EnvProvider =>
  async () => {
    try {
      return await fromEnv(init)();
    } catch (e) {
      throw Object.assign(
        new Error(
          'no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): this bundle carries only the environment link of the SDK\'s default credential chain (serverless.yml, esbuild alias), which is what Lambda provides',
          { cause: e },
        ),
        { name: 'CredentialsProviderError', tryNextLink: false },
      );
    }
  };
