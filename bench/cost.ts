/**
 * 4. Cost on paper: the AWS bill per million bridged events, from the push benchmark's measured
 * handler time, DynamoDB request units and SQS requests per transaction, and the deliver function's
 * measured invocations, handler time and SQS requests per event, at list prices (below); beside the
 * figure recorded before delivery moved to the queue (bench/before.ts). Also per million user and
 * alias queries, from the query benchmark. Ours only: the peers are long-running servers, billed per
 * hour whatever the traffic, so there is no like-for-like.
 *
 * The message mapping (issue 23: one `NETMSG#` item per bridged message and reaction, copied by the
 * keys-only `byEvent` index, kept MESSAGE_MAPPING_DAYS): its writes are in the deliver function's
 * (and network-inbound's) measured request units, table and index alike; its storage is priced
 * here from the sizes of the items the code wrote, as a monthly cost for a steady rate of events;
 * the reads of references (a Query of the index, a consistent GetItem) from bench/rich.ts.
 */
import { MESSAGES } from '../lib/defaults.js';
import { BEFORE } from './before.js';
import type { E2eSummary } from './e2e.js';
import type { DeliverStats, DynamoPerEvent, MappingSizes, PushResult } from './push.js';
import type { QueryResult } from './query.js';
import type { InboundResult, ReferenceResult } from './rich.js';

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
    /** Standard table class, after the first 25 GB a month (free tier, left out as the rest of it). */
    storagePerGbMonth: 0.25,
    /** Continuous backups (point-in-time recovery, on for the table: infra/table.yml), on the table's size without its global secondary indexes. */
    pitrPerGbMonth: 0.2,
    source: 'aws.amazon.com/dynamodb/pricing/on-demand/, us-east-1: write and read request units, data storage (Standard), continuous backups (PITR)',
    rules:
      'a write of an item up to 1 KB = 1 WRU (also when its condition fails), and 1 WRU more for each global secondary index that holds the item (on-demand bills an index\'s write as a table write); transactional writes 2 WRU per item; a read up to 4 KB = 1 RRU strongly consistent, 0.5 eventually consistent (BatchGetItem and GetItem by default, a Query of an index always); storage per item: its attribute names and values plus 100 B, in the table and again in each index that holds it (the index: the table\'s key, its own key and projected attributes, plus 100 B); TTL deletes are free',
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
  /** What the writes are, for the line's basis. */
  writesBasis?: string;
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
  if (o.wru !== undefined) lines.push({ item: 'DynamoDB writes', usd: (n * o.wru * PRICES.dynamodb.perMillionWru) / 1e6, basis: `${round2(o.wru)} WRU per invocation × $${PRICES.dynamodb.perMillionWru}/M WRU${o.writesBasis ?? ''}` });
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
  const dyn = d.dynamo;
  return estimate(`deliver, ${round2(d.eventsPerInvocation)} events/invocation`, 1e6 / d.eventsPerInvocation, {
    meanMs: d.invocationMs.mean,
    // The no-op network answers at once; on the happy path the function makes no SQS call of its
    // own. Its DynamoDB calls (the message mapping) are a wait, kept as measured.
    waits: dyn.msPerEvent > 0 ? [{ label: 'DynamoDB', ms: perInvocation(dyn.msPerEvent) }] : [],
    wru: perInvocation(dyn.wruPerEvent),
    writesBasis: mappingWritesBasis(dyn, d.eventsPerInvocation),
    ...(dyn.rruPerEvent > 0 ? { rru: perInvocation(dyn.rruPerEvent) } : {}),
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
  /** The message mapping's storage: USD a month for a steady million events a month. */
  storage: StorageCost;
  /** USD per million events, push + deliver + the mapping's storage (a steady million events a month). */
  total: number;
  /** Of the total, the message mapping: its writes (table + index) and its storage. */
  mapping: { writesUsd: number; storageUsd: number; total: number };
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
    if (!push || !deliver || !r.deliver) continue;
    const storage = mappingStorage(1e6, r.deliver.dynamo.mapping);
    const writesUsd = (1e6 * r.deliver.dynamo.mapping.writesPerEvent * mappingWruPerItem(r.deliver.dynamo) * PRICES.dynamodb.perMillionWru) / 1e6;
    out.push({
      size,
      workload: `${size} event${size === 1 ? '' : 's'}/transaction, per million events`,
      push,
      deliver,
      storage,
      total: push.total + deliver.total + storage.total,
      mapping: { writesUsd, storageUsd: storage.total, total: writesUsd + storage.total },
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

// ------------------------------------------------------------------ the message mapping (issue 23)

/** Days in an average month (365.25 / 12): a mapping kept 30 days is there 30/30.44 of a month. */
export const DAYS_PER_MONTH = 365.25 / 12;

export interface StorageCost {
  /** Mapping items in the table at any moment, for the given events a month. */
  itemsKept: number;
  /** Mean storage sizes of one item, bytes: in the table, and its copy in the byEvent index. */
  tableBytes: number;
  indexBytes: number;
  days: number;
  lines: CostLine[];
  /** USD a month. */
  total: number;
}

/**
 * What the message mapping costs to keep, a month, for `perMonth` events a month at a steady rate:
 * each writes `writesPerEvent` items, each kept `days` (MESSAGE_MAPPING_DAYS), so the table holds
 * perMonth × writesPerEvent × days / 30.44 of them at any moment, each `tableBytes` in the table and
 * `indexBytes` in the index; storage is billed on both, point-in-time recovery on the table's part.
 * TTL deletes an expired item for free, typically within a few days of its expiry (not counted).
 */
export function mappingStorage(perMonth: number, m: MappingSizes, days: number = MESSAGES.MAPPING_DAYS): StorageCost {
  if (!(m.writesPerEvent > 0)) return { itemsKept: 0, tableBytes: NaN, indexBytes: NaN, days, lines: [], total: 0 };
  const items = (perMonth * m.writesPerEvent * days) / DAYS_PER_MONTH;
  const tableGb = (items * m.tableBytes) / 1024 ** 3;
  const indexGb = (items * m.indexBytes) / 1024 ** 3;
  const p = PRICES.dynamodb;
  const kept = `${fmtN(items)} items kept (${days} days of ${fmtN(perMonth)} events a month × ${round2(m.writesPerEvent)} per event)`;
  const lines: CostLine[] = [
    {
      item: 'DynamoDB storage (mapping)',
      usd: (tableGb + indexGb) * p.storagePerGbMonth,
      basis: `${kept} × (${Math.round(m.tableBytes)} B in the table + ${Math.round(m.indexBytes)} B in byEvent) × $${p.storagePerGbMonth}/GB-month`,
    },
    { item: 'DynamoDB PITR (mapping)', usd: tableGb * p.pitrPerGbMonth, basis: `the table's ${Math.round(m.tableBytes)} B of each × $${p.pitrPerGbMonth}/GB-month (continuous backups; the index is not backed up)` },
  ];
  return { itemsKept: items, tableBytes: m.tableBytes, indexBytes: m.indexBytes, days, lines, total: lines.reduce((a, l) => a + l.usd, 0) };
}

/** WRU per mapping item written: the table's and the index's (1 + 1 for items under 1 KB). */
const mappingWruPerItem = (d: DynamoPerEvent) => (d.mapping.writesPerEvent > 0 ? d.wruPerEvent / d.mapping.writesPerEvent : 0);

function mappingWritesBasis(d: DynamoPerEvent, eventsPerInvocation: number): string {
  if (!(d.mapping.writesPerEvent > 0)) return '';
  const items = d.mapping.writesPerEvent * eventsPerInvocation;
  return ` (the message mapping: ${round2(items)} PutItem, ${round2((d.wruPerEvent - d.indexWruPerEvent) * eventsPerInvocation)} WRU in the table + ${round2(d.indexWruPerEvent * eventsPerInvocation)} in the byEvent index)`;
}

/**
 * Network → Matrix, per million messages: the network-inbound function (API Gateway, Lambda,
 * DynamoDB: the resend check, the room, the mapping's write), from bench/rich.ts; and the
 * mapping's storage for a steady million messages a month. The "CPU" part contains the fake HS,
 * in the same process (over-estimated, as for the queries).
 */
export function inboundCost(r: InboundResult): { message: CostEstimate; storage: StorageCost; total: number } | undefined {
  const m = r.parts.find((p) => p.kind === 'message');
  if (!m) return undefined;
  const message = estimate('network → Matrix: network-inbound, per million messages', 1e6, {
    meanMs: m.latency.mean,
    waits: [{ label: 'DynamoDB', ms: m.dynamo.msPerEvent }],
    rru: m.dynamo.rruPerEvent,
    wru: m.dynamo.wruPerEvent,
    writesBasis: mappingWritesBasis(m.dynamo, 1),
    bodyBytes: m.bodyBytes,
    logBytes: m.logBytes,
    readsBasis: ` (consistent GetItem ×${round2(m.dynamo.calls.GetItem ?? 0)}: the mapping, for a resend, and the room's record)`,
  });
  const storage = mappingStorage(1e6, m.dynamo.mapping);
  return { message, storage, total: message.total + storage.total };
}

export interface ReferenceCost {
  direction: 'Matrix → network' | 'network → Matrix';
  kind: string;
  /** DynamoDB calls per reference of the path that resolves it (deliver, or network-inbound). */
  calls: Record<string, number>;
  rru: number;
  wru: number;
  /** USD per million references: the reads of the target, and the writes (a reply's or a reaction's own mapping; none for an edit or a deletion). */
  readsUsd: number;
  writesUsd: number;
}

/** DynamoDB per million references, both ways: the look-up of the target, and any mapping written. */
export function referenceCost(refs: ReferenceResult[], inbound: InboundResult | undefined): ReferenceCost[] {
  const p = PRICES.dynamodb;
  const of = (direction: ReferenceCost['direction'], kind: string, d: DynamoPerEvent): ReferenceCost => ({
    direction,
    kind,
    calls: d.calls,
    rru: d.rruPerEvent,
    wru: d.wruPerEvent,
    readsUsd: d.rruPerEvent * p.perMillionRru,
    writesUsd: d.wruPerEvent * p.perMillionWru,
  });
  return [
    ...refs.map((r) => of('Matrix → network', r.kind, r.deliver)),
    ...(inbound?.parts ?? []).filter((x) => x.kind !== 'message').map((x) => of('network → Matrix', x.kind, x.dynamo)),
  ];
}
