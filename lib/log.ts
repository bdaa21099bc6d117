/**
 * Structured JSON-lines logging. Secrets registered at cold start are masked in every line,
 * and fields that carry credentials by name are dropped, so a token never reaches CloudWatch
 * even when an error message happens to quote one.
 */
type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /token|authorization|secret|password|signature/i;

const secrets = new Set<string>();
let sink: (line: string) => void = (line) => process.stdout.write(line + '\n');
let threshold: Level = (process.env.LOG_LEVEL as Level) in ORDER ? (process.env.LOG_LEVEL as Level) : 'info';

export function registerSecrets(...values: string[]): void {
  for (const v of values) if (v && v.length >= 4) secrets.add(v);
}

/** Tests capture lines here to check what would be logged. */
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

export function setLogLevel(level: Level): void {
  threshold = level;
}

function clean(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...(depth < 2 && value.cause ? { cause: clean(value.cause, depth + 1) } : {}) };
  if (value && typeof value === 'object' && depth < 4) {
    if (Array.isArray(value)) return value.slice(0, 20).map((v) => clean(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : clean(v, depth + 1);
    return out;
  }
  // Deeper than that is someone's input, not our context: never let it break the log line.
  if (value && typeof value === 'object') return '[nested]';
  return value;
}

export function mask(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  // Legacy HS calls carry the token in the query string.
  return out.replace(/(access_token=)[^&"\s]+/g, '$1[redacted]');
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (ORDER[level] < ORDER[threshold]) return;
  const line = JSON.stringify({ level, time: new Date().toISOString(), msg, ...(clean(fields ?? {}) as object) });
  sink(mask(line));
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function logger(base: Record<string, unknown> = {}): Logger {
  const at = (level: Level) => (msg: string, fields?: Record<string, unknown>) => write(level, msg, { ...base, ...fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => logger({ ...base, ...f }) };
}

export const log = logger();

/** A line that is not a log record (lib/metrics.ts's embedded metrics), through the same sink. */
export function writeLine(line: string): void {
  sink(line);
}
