/**
 * What the AS counts, as CloudWatch embedded metrics: a JSON log line in the Embedded Metric
 * Format (what Powertools Metrics writes), which Lambda's log agent turns into metrics an alarm
 * can watch, with no API call and no package. This file is the catalog: the alarms and the
 * dashboard (infra/alarms.yml, infra/dashboard.yml) name these metrics and dimensions, and
 * test/package.test.ts holds them to it.
 *
 * Every metric carries the `Stage` dimension (the STAGE variable serverless.yml sets; `local`
 * under npm start), so two stages in one account never mix. A metric with a second dimension
 * (an outcome, an errcode, a function) is published under both sets, `[Stage]` and
 * `[Stage, <dimension>]`: an alarm on the total needs no metric math over every outcome.
 *
 * Cost: CloudWatch bills a custom metric ($0.30 a month) only for the hours it is published in,
 * so counts that would be zero are left out unless an alarm needs the zero (PingFailed,
 * ServerErrors); an idle stage publishes only what the scheduled ping makes (README: Cost).
 */
import { SERVICE } from './defaults.js';
import { writeLine } from './log.js';

export const METRICS_NAMESPACE = SERVICE;

/** Metric name → its unit and, if any, its second dimension. */
export const METRICS = {
  // Push (the homeserver's transactions)
  /** A transaction handled for the first time (its events planned, queued and recorded). */
  TransactionProcessed: { unit: 'Count' },
  /** A transaction ID seen before with the same content: answered 200 at once (the HS retried). */
  TransactionDuplicate: { unit: 'Count' },
  /** A transaction ID seen before with different content (a reset homeserver reusing IDs). */
  TransactionIdReused: { unit: 'Count' },
  /** Events put on the delivery queue for the network. */
  EventsQueued: { unit: 'Count' },

  // Delivery (the deliver function)
  Delivered: { unit: 'Count' },
  /** Deliveries that failed for now and will be tried again (a 5xx, a timeout). */
  DeliveryRetried: { unit: 'Count' },
  /** Events the network refused for good (a 4xx): dropped, the sender told. */
  DeliveryRefused: { unit: 'Count' },
  /** Events moved to the dead-letter queue after DEAD_LETTER_AFTER_HOURS. */
  DeadLettered: { unit: 'Count' },
  /** From the moment push queued an event to the network's 2xx for it. */
  DeliveryLatency: { unit: 'Milliseconds' },

  // Queries (the homeserver asking about a user or an alias in our namespace)
  UserQuery: { unit: 'Count', dimension: 'Outcome' },
  RoomQuery: { unit: 'Count', dimension: 'Outcome' },

  // The homeserver's answers to our Client-Server calls
  /** A Client-Server call answered with an error, by Matrix errcode (`HTTP_<status>` without one, `UNREACHABLE` with no answer). */
  HomeserverError: { unit: 'Count', dimension: 'Errcode' },

  // The network's messages (POST /network/messages)
  InboundMessage: { unit: 'Count', dimension: 'Outcome' },

  // Every function
  ColdStart: { unit: 'Count', dimension: 'FunctionName' },
  /** HTTP requests answered, and those answered with a 5xx, per function: the 5xx-rate alarms. */
  Requests: { unit: 'Count', dimension: 'FunctionName' },
  ServerErrors: { unit: 'Count', dimension: 'FunctionName' },

  // The scheduled ping (the homeserver calling us back through its ping endpoint)
  /** 0 when the homeserver reached the AS, 1 when not: the ping alarm (missing data breaches). */
  PingFailed: { unit: 'Count' },
  PingRoundTrip: { unit: 'Milliseconds' },

  /** The bridge bot is not in a bridged room (kicked, banned): messages for it wait. */
  BotNotInRoom: { unit: 'Count' },
} as const satisfies Record<string, { unit: 'Count' | 'Milliseconds'; dimension?: string }>;

export type MetricName = keyof typeof METRICS;
type DimensionOf<K extends MetricName> = K extends MetricName ? ((typeof METRICS)[K] extends { dimension: infer D extends string } ? D : never) : never;
/** The second dimensions there are ('Outcome', 'Errcode', 'FunctionName'). */
export type Dimension = DimensionOf<MetricName>;
/** The metrics recorded with dimension `D`. */
type With<D extends Dimension> = { [K in MetricName]: [DimensionOf<K>] extends [never] ? never : DimensionOf<K> extends D ? K : never }[MetricName];
type Plain = { [K in MetricName]: [DimensionOf<K>] extends [never] ? K : never }[MetricName];

const stage = () => process.env.STAGE || 'local';

/** A value, or several at once (EMF takes up to 100 in one line: one per delivered message, say). */
type Value = number | number[];

function emit(given: Partial<Record<MetricName, Value>>, dimension?: { name: string; value: string }): void {
  const values = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined && (!Array.isArray(v) || v.length > 0)));
  const names = Object.keys(values) as MetricName[];
  if (!names.length) return;
  const dimensions = dimension ? [['Stage'], ['Stage', dimension.name]] : [['Stage']];
  writeLine(
    JSON.stringify({
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [{ Namespace: METRICS_NAMESPACE, Dimensions: dimensions, Metrics: names.map((Name) => ({ Name, Unit: METRICS[Name].unit })) }],
      },
      Stage: stage(),
      ...(dimension ? { [dimension.name]: dimension.value } : {}),
      ...values,
    }),
  );
}

/** Records metrics that have only the Stage dimension, several in one line. Zeros are recorded (an alarm sees them); undefined values are not. */
export function recordMetrics(values: Partial<Record<Plain, Value>>): void {
  emit(values);
}

/** Records metrics that have a second dimension, e.g. `recordMetricsBy('Outcome', 'created', { UserQuery: 1 })`. */
export function recordMetricsBy<D extends Dimension>(dimension: D, value: string, values: Partial<Record<With<D>, Value>>): void {
  emit(values, { name: dimension, value });
}

let cold = true;
/** Once per process: the first invocation a function's copy serves is its cold start. */
export function recordColdStart(functionName: string): void {
  if (!cold) return;
  cold = false;
  recordMetricsBy('FunctionName', functionName, { ColdStart: 1 });
}
