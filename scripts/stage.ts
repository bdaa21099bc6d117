/**
 * A deployed stage, as `osls` sees it: its stack outputs (`osls info --verbose`) and its functions
 * run once (`osls invoke`). The scripts that work on a deployed stage (registration, ping) go
 * through here, so AWS credentials and region come from the environment the way `osls` takes them,
 * and nothing of a stage is written down twice.
 */
import { spawnSync } from 'node:child_process';

/** `osls`, from node_modules/.bin under `npm run` (a test puts a recorded one first on PATH). */
function osls(args: string[]): string {
  const res = spawnSync('osls', args, { encoding: 'utf8', env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' }, maxBuffer: 16 * 1024 * 1024 });
  if (res.error) throw new StageError(`could not run osls: ${res.error.message}`);
  if (res.status !== 0) throw new StageError(`osls ${args.join(' ')} failed (exit ${res.status}):\n${(res.stderr || res.stdout).trim().slice(-2000)}`);
  return res.stdout;
}

export class StageError extends Error {}

const ANSI = /\u001b\[[0-9;]*m/g;

export interface StageInfo {
  stage: string;
  region?: string;
  /** The stack's outputs: HttpApiUrl (the AS's URL), DeliveryQueueUrl, ... */
  outputs: Record<string, string>;
}

/** Reads `osls info --verbose` output: `key: value` lines, and the indented items of the "Stack Outputs:" section. */
export function parseInfo(text: string): Omit<StageInfo, 'stage'> & { stage?: string } {
  const lines = text.replace(ANSI, '').split(/\r?\n/);
  const top: Record<string, string> = {};
  const outputs: Record<string, string> = {};
  let section = '';
  for (const line of lines) {
    const item = /^\s+([A-Za-z0-9]+):\s+(\S.*)$/.exec(line);
    if (item && section === 'Stack Outputs') {
      outputs[item[1]!] = item[2]!.trim();
      continue;
    }
    const head = /^([A-Za-z][A-Za-z ]*):\s*(.*)$/.exec(line);
    if (head) {
      section = head[1]!;
      if (head[2]) top[head[1]!] = head[2].trim();
    }
  }
  return { stage: top.stage, region: top.region, outputs };
}

const regionArgs = () => (process.env.AWS_REGION ? ['--region', process.env.AWS_REGION] : []);

export function stageInfo(stage: string): StageInfo {
  const info = parseInfo(osls(['info', '--verbose', '--stage', stage, ...regionArgs()]));
  if (!Object.keys(info.outputs).length) throw new StageError(`osls info shows no stack outputs for stage '${stage}': is it deployed (npx osls deploy --stage ${stage})?`);
  return { ...info, stage };
}

/** Runs a deployed function once and returns what it returned (osls prints it as JSON). */
export function invokeFunction(stage: string, fn: string): unknown {
  const out = osls(['invoke', '--function', fn, '--stage', stage, ...regionArgs()]).replace(ANSI, '').trim();
  try {
    return JSON.parse(out);
  } catch {
    throw new StageError(`osls invoke ${fn} printed something that is not JSON:\n${out.slice(0, 2000)}`);
  }
}
