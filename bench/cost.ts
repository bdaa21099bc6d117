/**
 * 4. Cost on paper: the AWS bill per million bridged events, from the push benchmark's measured
 * handler time, DynamoDB request units and SQS requests per transaction, and the deliver function's
 * measured invocations, handler time and SQS requests per event, at list prices (below); beside the
 * figure recorded before delivery moved to the queue (bench/before.ts). Also per million user and
 * alias queries, from the query benchmark. Ours only: the peers are long-running servers, billed per
 * hour whatever the traffic, so there is no like-for-like.
 */
import { BEFORE } from './before.js';
import type { E2eSummary } from './e2e.js';
import type { DeliverStats, PushResult } from './push.js';
import type { QueryResult } from './query.js';

/** us-east-1 list prices, without free tier, tiers beyond the first, or Savings Plans. */
export const PRICES = {
  region: 'us-east-1',
  assumedOn: '2026-11-25',
  note: 'AWS public list prices for us-east-1 (DynamoDB on-demand after the 2024-11-01 price cut); first pricing tier, no free tier, no Savings Plans',
  lambda: {
    architecture: 'arm64',
    memoryMb: 256,
    perGbSecond: 0.0000133334,
    perMillionRequests: 0.2,
    /** Memory at which a function gets one full vCPU; below it, CPU is a proportional share. */
    fullVcpuMb: 1769,
  },
  httpApi: { perMillionRequests: 1.0, meteredInBytes: 512 * 1024 },
  dynamodb: {
    mode: 'on-demand',
    perMillionWru: 0.625,
    perMillionRru: 0.125,
    rules:
      'a write of an item up to 1 KB = 1 WRU (also when its condition fails); transactional writes 2 WRU per item; a read up to 4 KB = 1 RRU strongly consistent, 0.5 eventually consistent (BatchGetItem and GetItem by default)',
  },
  cloudwatchLogs: { perGbIngested: 0.5, lambdaPlatformBytesPerInvocation: 300 },
  sqs: {
    queue: 'FIFO',
    perMillionRequests: 0.5,
    chunkBytes: 64 * 1024,
    rules:
      'every API call is a request, and each started 64 KiB of its payload one more (a batch of 10 small messages is 1 request); the Lambda event source mapping\'s ReceiveMessage and DeleteMessageBatch calls are billed too; an idle poller\'s empty receives are a cost per hour, not per event (left out)',
  },
} as const;

export interface CostLine {
  item: string;
  /** USD per million bridged events (or per million queries). */
  usd: number;
  basis: string;
}

export interface CostEstimate {
  workload: string;
  /** Invocations per million events (or queries). */
  invocations: number;
  handlerMs: number;
  /** Handler time with its CPU part stretched to a 256 MB share of a vCPU (the billed-duration model). */
  billedMs: number;
  lines: CostLine[];
  total: number;
}

const cpuStretch = PRICES.lambda.fullVcpuMb / PRICES.lambda.memoryMb;
const gb = PRICES.lambda.memoryMb / 1024;

interface EstimateInput {
  /** Mean handler time per invocation, ms. */
  meanMs: number;
  /** The parts of it spent waiting (DynamoDB, SQS, the network), each kept as measured; the rest is CPU. */
  waits: Array<{ label: string; ms: number }>;
  /** Request units per invocation; undefined: the function makes no DynamoDB call (no line). */
  rru?: number;
  wru?: number;
  /** Request body of the HTTP API call; undefined: not behind the HTTP API (an SQS event source). */
  bodyBytes?: number;
  /** SQS requests (as billed) per invocation, and what they are. */
  sqs?: { requests: number; basis: string };
  logBytes: number;
  readsBasis: string;
}

function estimate(workload: string, perMillion: number, o: EstimateInput): CostEstimate {
  // The time outside the waits is this process's CPU (the fake HS and the no-op network answer at
  // once); at 256 MB Lambda gives a 256/1769 share of a vCPU, so it stretches by that much. The
  // waits (DynamoDB Local, the local SQS server, the network) stay as measured.
  const waitMs = o.waits.reduce((a, w) => a + w.ms, 0);
  const cpuMs = Math.max(0, o.meanMs - waitMs);
  const billedMs = Math.ceil(cpuMs * cpuStretch + waitMs);
  const n = perMillion;
  const waits = o.waits.map((w) => ` + ${w.ms.toFixed(1)} ms ${w.label}`).join('');
  const lines: CostLine[] = [
    { item: 'Lambda requests', usd: (n * PRICES.lambda.perMillionRequests) / 1e6, basis: `${fmtN(n)} invocations × $${PRICES.lambda.perMillionRequests}/M` },
    {
      item: 'Lambda duration (arm64, 256 MB)',
      usd: n * (billedMs / 1000) * gb * PRICES.lambda.perGbSecond,
      basis: `${billedMs} ms billed (${o.meanMs.toFixed(1)} ms measured: ${cpuMs.toFixed(1)} ms CPU ×${cpuStretch.toFixed(1)}${waits}) × 0.25 GB × $${PRICES.lambda.perGbSecond}/GB-s`,
    },
  ];
  if (o.bodyBytes !== undefined) {
    lines.push({
      item: 'API Gateway HTTP API',
      usd: (n * Math.max(1, Math.ceil(o.bodyBytes / PRICES.httpApi.meteredInBytes)) * PRICES.httpApi.perMillionRequests) / 1e6,
      basis: `${fmtN(n)} requests × $${PRICES.httpApi.perMillionRequests}/M (bodies of ${fmtN(Math.round(o.bodyBytes))} B, metered per 512 KB)`,
    });
  }
  if (o.wru !== undefined) lines.push({ item: 'DynamoDB writes', usd: (n * o.wru * PRICES.dynamodb.perMillionWru) / 1e6, basis: `${round2(o.wru)} WRU per invocation × $${PRICES.dynamodb.perMillionWru}/M WRU` });
  if (o.rru !== undefined) lines.push({ item: 'DynamoDB reads', usd: (n * o.rru * PRICES.dynamodb.perMillionRru) / 1e6, basis: `${round2(o.rru)} RRU per invocation × $${PRICES.dynamodb.perMillionRru}/M RRU${o.readsBasis}` });
  if (o.sqs) {
    lines.push({
      item: `SQS ${PRICES.sqs.queue} requests`,
      usd: (n * o.sqs.requests * PRICES.sqs.perMillionRequests) / 1e6,
      basis: `${round2(o.sqs.requests)} per invocation (${o.sqs.basis}) × $${PRICES.sqs.perMillionRequests}/M`,
    });
  }
  lines.push({
    item: 'CloudWatch Logs ingestion',
    usd: (n * (o.logBytes + PRICES.cloudwatchLogs.lambdaPlatformBytesPerInvocation) * PRICES.cloudwatchLogs.perGbIngested) / 1024 ** 3,
    basis: `${Math.round(o.logBytes)} B of our log lines + ~${PRICES.cloudwatchLogs.lambdaPlatformBytesPerInvocation} B of Lambda START/END/REPORT per invocation × $${PRICES.cloudwatchLogs.perGbIngested}/GB`,
  });
  return { workload, invocations: n, handlerMs: o.meanMs, billedMs, lines, total: lines.reduce((a, l) => a + l.usd, 0) };
}

const round2 = (v: number) => Number(v.toFixed(2));
const fmtN = (v: number) => v.toLocaleString('en-US', { maximumFractionDigits: 0 });

const callNames = (c: Record<string, number>) =>
  Object.entries(c)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ×${round2(v)}`)
    .join(', ');

/** The push function per million events at one transaction size: claim + enqueue + done. */
function pushPart(r: PushResult, bodyBytes: number): CostEstimate | undefined {
  if (!r.dynamo || !r.sqs) return undefined;
  return estimate(`push, ${r.size} event${r.size === 1 ? '' : 's'}/transaction`, 1e6 / r.size, {
    meanMs: r.txnMs.mean,
    waits: [
      { label: 'DynamoDB', ms: r.dynamo.msPerTxn },
      { label: 'SQS', ms: r.sqs.msPerTxn },
    ],
    // Reads: the cold-cache figure (a fresh copy reads the room mapping; a warm one reads nothing).
    rru: r.dynamo.coldCache.rru,
    wru: r.dynamo.wruPerTxn,
    bodyBytes,
    sqs: { requests: r.sqs.billedPerTxn, basis: callNames(r.sqs.calls) },
    logBytes: r.logBytesPerTxn ?? 0,
    readsBasis: ` (a fresh copy: the room mapping; a warm one ${round2(r.dynamo.rruPerTxn)} RRU)`,
  });
}

/** The deliver function per million events, as measured after the push benchmark's transactions (no-op network). */
function deliverPart(r: PushResult): CostEstimate | undefined {
  const d = r.deliver;
  if (!d || !d.invocations) return undefined;
  const perInvocation = (x: number) => x * d.eventsPerInvocation;
  return estimate(`deliver, ${round2(d.eventsPerInvocation)} events/invocation`, 1e6 / d.eventsPerInvocation, {
    meanMs: d.invocationMs.mean,
    // The no-op network answers at once; on the happy path the function makes no SQS call of its own.
    waits: [],
    sqs: {
      requests: perInvocation(d.eventSource.billedPerEvent + d.bridge.billedPerEvent),
      basis: `event source: ${callNames(Object.fromEntries(Object.entries(d.eventSource.callsPerEvent).map(([k, v]) => [k, perInvocation(v)])))}`,
    },
    logBytes: d.logBytesPerInvocation,
    readsBasis: '',
  });
}

export interface EventCost {
  size: number;
  workload: string;
  push: CostEstimate;
  deliver: CostEstimate;
  /** USD per million events, push + deliver. */
  total: number;
  /** The recorded figure of the parking design (push with inline delivery), USD per million events. */
  before?: number;
}

/** Per million events at the given transaction sizes (those the push benchmark measured): push + deliver, beside before. */
export function eventCost(results: PushResult[], bodyBytes: Map<number, number>, sizes: number[]): EventCost[] {
  const out: EventCost[] = [];
  for (const size of sizes) {
    const r = results.find((x) => x.subject === 'ours' && x.size === size);
    if (!r) continue;
    const push = pushPart(r, bodyBytes.get(size) ?? 0);
    const deliver = deliverPart(r);
    if (!push || !deliver) continue;
    out.push({
      size,
      workload: `${size} event${size === 1 ? '' : 's'}/transaction, per million events`,
      push,
      deliver,
      total: push.total + deliver.total,
      before: BEFORE.costPerMillionEvents[size],
    });
  }
  return out;
}

/**
 * The deliver function per million events with a slow network, from the end-to-end runs (6.):
 * its handler time is then mostly waiting for the network, which Lambda bills all the same. The
 * CPU part is taken as the no-op deliver's handler time per record (from 3., 1 event/transaction)
 * times the records per invocation; the rest of the measured time is the wait. Log bytes as there.
 */
export function slowNetworkDeliverCost(s: E2eSummary, networkMs: number, noOp: DeliverStats): CostEstimate {
  const cpu = (noOp.invocationMs.mean / noOp.eventsPerInvocation) * s.recordsPerInvocation;
  const eventsPerInvocation = s.recordsPerInvocation;
  return estimate(`deliver with a ${networkMs} ms network (6., ${s.mode}: ${round2(eventsPerInvocation)} events/invocation)`, 1e6 / eventsPerInvocation, {
    meanMs: s.invocationMs.mean,
    waits: [{ label: `waiting for the network (${networkMs} ms a message) and its HTTP`, ms: Math.max(0, s.invocationMs.mean - cpu) }],
    sqs: { requests: s.sqsPerEvent.eventSource * eventsPerInvocation, basis: 'event source: ReceiveMessage, DeleteMessageBatch' },
    logBytes: noOp.logBytesPerInvocation,
    readsBasis: '',
  });
}

/** Lambda duration per million events for each ms a function waits per event (256 MB): what a slow network adds, now in deliver, before in push. */
export const usdPerMillionEventsPerWaitMs = (PRICES.lambda.perGbSecond * gb * 1e6) / 1000;

export function queryCost(results: QueryResult[]): CostEstimate[] {
  return results
    .filter((r) => r.subject === 'ours' && r.dynamo)
    .map((r) =>
      estimate(`${r.kind} query, per million queries`, 1e6, {
        meanMs: r.latency.mean,
        waits: [{ label: 'DynamoDB', ms: r.dynamo?.msPerQuery ?? 0 }],
        rru: r.dynamo?.rruPerQuery ?? 0,
        wru: r.dynamo?.wruPerQuery ?? 0,
        bodyBytes: 0,
        logBytes: r.logBytesPerQuery ?? 0,
        readsBasis: '',
      }),
    );
}
