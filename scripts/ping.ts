/**
 * `npm run ping`: does the homeserver reach the AS? Asks the homeserver to ping the AS the spec's
 * way (v1.7: `POST /_matrix/client/v1/appservice/{id}/ping`, then the homeserver calls our
 * `POST /_matrix/app/v1/ping`) and prints the round trip, or the homeserver's error with what to check.
 *
 *   npm run ping                       npm start's AS: the homeserver at HOMESERVER_URL (default
 *                                      http://127.0.0.1:8008), the tokens and id from ./registration.yaml
 *   npm run ping -- --url https://matrix.example.org
 *                                      that homeserver; AS_TOKEN and AS_ID from the environment, or
 *                                      from the registration file (REGISTRATION_FILE, ./registration.yaml)
 *   npm run ping -- --stage prod       runs the deployed stage's pingHomeserver function once
 *                                      (osls invoke; AWS credentials and region from the environment):
 *                                      the ping from where the AS runs, with its own settings and secrets
 *
 * Exit code 0 when the homeserver reached the AS, 1 when not, 2 for a usage or setting error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { DEFAULTS } from '../lib/defaults.js';
import { createCsClient } from '../lib/matrix/client.js';
import { explainPing, pingAppservice } from '../lib/matrix/ping.js';
import type { PingResult } from '../lib/matrix/ping.js';
import { StageError, invokeFunction } from './stage.js';

const USAGE = 'usage: npm run ping -- [--url <homeserver URL> | --stage <stage>]';
/** The homeserver's own wait for our answer is its business; ours for the whole exchange is this. */
const TIMEOUT_MS = 30_000;

class UsageError extends Error {}

interface Registration {
  id?: string;
  url?: string;
  as_token?: string;
}

function registrationFile(): Registration | undefined {
  const file = resolve(process.env.REGISTRATION_FILE ?? 'registration.yaml');
  if (!existsSync(file)) return undefined;
  try {
    return (parse(readFileSync(file, 'utf8')) as Registration) ?? {};
  } catch (e) {
    throw new UsageError(`${file} is not valid YAML (${(e as Error).message})`);
  }
}

async function direct(homeserverUrl: string): Promise<number> {
  const reg = registrationFile();
  const asToken = process.env.AS_TOKEN?.trim() || reg?.as_token;
  if (!asToken) throw new UsageError('no as_token: set AS_TOKEN, or run where registration.yaml is (REGISTRATION_FILE names another)');
  const appserviceId = process.env.AS_ID?.trim() || reg?.id || DEFAULTS.AS_ID;
  const cs = createCsClient({ homeserverUrl, asToken });
  const result = await pingAppservice(cs, appserviceId, { deadline: Date.now() + TIMEOUT_MS, now: Date.now });
  return report(result, explainPing(result, { homeserverUrl, appserviceId, asUrl: process.env.AS_URL?.trim() || reg?.url }));
}

function deployed(stage: string): number {
  const answer = invokeFunction(stage, 'pingHomeserver') as (PingResult & { explanation?: string }) | null;
  if (!answer || typeof answer.ok !== 'boolean') throw new StageError(`the pingHomeserver function of stage '${stage}' answered ${JSON.stringify(answer)}`);
  return report(answer, answer.explanation ?? (answer.ok ? 'the homeserver reached the AS' : `${answer.errcode}: ${answer.error}`));
}

function report(result: PingResult, explanation: string): number {
  (result.ok ? console.log : console.error)(explanation);
  return result.ok ? 0 : 1;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { url: { type: 'string' }, stage: { type: 'string' } } });
  if (values.url && values.stage) throw new UsageError(`--url or --stage, not both\n${USAGE}`);
  if (values.stage) return deployed(values.stage);
  const url = values.url ?? process.env.HOMESERVER_URL?.trim() ?? DEFAULTS.HOMESERVER_URL;
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must be the homeserver's http(s) URL, got ${JSON.stringify(url)}\n${USAGE}`);
  return direct(url);
}

try {
  process.exitCode = await main();
} catch (e) {
  if (!(e instanceof UsageError || e instanceof StageError)) throw e;
  console.error(e.message);
  process.exitCode = 2;
}
