/**
 * 4. Cost on paper: the AWS bill per million bridged events, from the push benchmark's measured
 * handler time and DynamoDB request units per transaction, at list prices (below). Also per
 * million user and alias queries, from the query benchmark. Ours only: the peers are
 * long-running servers, billed per hour whatever the traffic, so there is no like-for-like.
 */
import type { PushResult } from './push.js';
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

function estimate(workload: string, perMillion: number, o: { meanMs: number; dynamoMs: number; rru: number; wru: number; bodyBytes: number; logBytes: number; readsBasis: string }): CostEstimate {
  // The time outside DynamoDB calls is this process's CPU (the fake HS and the network answer at
  // once); at 256 MB Lambda gives a 256/1769 share of a vCPU, so it stretches by that much. The
  // DynamoDB time (DynamoDB Local, here) is waiting, and stays as measured.
  const cpuMs = Math.max(0, o.meanMs - o.dynamoMs);
  const billedMs = Math.ceil(cpuMs * cpuStretch + o.dynamoMs);
  const n = perMillion;
  const lines: CostLine[] = [
    { item: 'Lambda requests', usd: (n * PRICES.lambda.perMillionRequests) / 1e6, basis: `${fmtN(n)} invocations × $${PRICES.lambda.perMillionRequests}/M` },
    {
      item: 'Lambda duration (arm64, 256 MB)',
      usd: n * (billedMs / 1000) * gb * PRICES.lambda.perGbSecond,
      basis: `${billedMs} ms billed (${o.meanMs.toFixed(1)} ms measured: ${cpuMs.toFixed(1)} ms CPU ×${cpuStretch.toFixed(1)} + ${o.dynamoMs.toFixed(1)} ms DynamoDB) × 0.25 GB × $${PRICES.lambda.perGbSecond}/GB-s`,
    },
    {
      item: 'API Gateway HTTP API',
      usd: (n * Math.max(1, Math.ceil(o.bodyBytes / PRICES.httpApi.meteredInBytes)) * PRICES.httpApi.perMillionRequests) / 1e6,
      basis: `${fmtN(n)} requests × $${PRICES.httpApi.perMillionRequests}/M (bodies of ${fmtN(Math.round(o.bodyBytes))} B, metered per 512 KB)`,
    },
    { item: 'DynamoDB writes', usd: (n * o.wru * PRICES.dynamodb.perMillionWru) / 1e6, basis: `${o.wru} WRU per invocation × $${PRICES.dynamodb.perMillionWru}/M WRU` },
    { item: 'DynamoDB reads', usd: (n * o.rru * PRICES.dynamodb.perMillionRru) / 1e6, basis: `${o.rru} RRU per invocation × $${PRICES.dynamodb.perMillionRru}/M RRU${o.readsBasis}` },
    {
      item: 'CloudWatch Logs ingestion',
      usd: (n * (o.logBytes + PRICES.cloudwatchLogs.lambdaPlatformBytesPerInvocation) * PRICES.cloudwatchLogs.perGbIngested) / 1024 ** 3,
      basis: `${Math.round(o.logBytes)} B of our log lines + ~${PRICES.cloudwatchLogs.lambdaPlatformBytesPerInvocation} B of Lambda START/END/REPORT per invocation × $${PRICES.cloudwatchLogs.perGbIngested}/GB`,
    },
  ];
  return { workload, invocations: n, handlerMs: o.meanMs, billedMs, lines, total: lines.reduce((a, l) => a + l.usd, 0) };
}

const fmtN = (v: number) => v.toLocaleString('en-US', { maximumFractionDigits: 0 });

/** Per million events at the given transaction sizes (those the push benchmark measured). */
export function pushCost(results: PushResult[], bodyBytes: Map<number, number>, sizes: number[]): CostEstimate[] {
  const out: CostEstimate[] = [];
  for (const size of sizes) {
    const r = results.find((x) => x.subject === 'ours' && x.size === size);
    if (!r?.dynamo) continue;
    out.push(
      estimate(`push, ${size} event${size === 1 ? '' : 's'}/transaction, per million events`, 1e6 / size, {
        meanMs: r.txnMs.mean,
        dynamoMs: r.dynamo.msPerTxn,
        // Reads: the cold-cache figure (a fresh copy reads the room mapping and checks for parked
        // rooms; a warm one only checks for parked rooms).
        rru: r.dynamo.coldCache.rru,
        wru: r.dynamo.wruPerTxn,
        bodyBytes: bodyBytes.get(size) ?? 0,
        logBytes: r.logBytesPerTxn ?? 0,
        readsBasis: ` (a fresh copy: room mapping + parked-room check; a warm one ${Number(r.dynamo.rruPerTxn.toFixed(2))} RRU, the check only)`,
      }),
    );
  }
  return out;
}

export function queryCost(results: QueryResult[]): CostEstimate[] {
  return results
    .filter((r) => r.subject === 'ours' && r.dynamo)
    .map((r) =>
      estimate(`${r.kind} query, per million queries`, 1e6, {
        meanMs: r.latency.mean,
        dynamoMs: r.dynamo?.msPerQuery ?? 0,
        rru: r.dynamo?.rruPerQuery ?? 0,
        wru: r.dynamo?.wruPerQuery ?? 0,
        bodyBytes: 0,
        logBytes: r.logBytesPerQuery ?? 0,
        readsBasis: '',
      }),
    );
}
