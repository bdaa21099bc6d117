/**
 * The transaction ledger (as mautrix-go's txnid.go): a pushed transaction is claimed before any
 * effect, its progress recorded, and it is marked done. The HS retries a txnId until it gets 200
 * and Lambda runs copies side by side, so the claim is a lease: one copy at a time works on a
 * transaction, and a retry resumes at the cursor the last attempt recorded.
 */
import { createHash, randomUUID } from 'node:crypto';
import { unavailable } from '../matrix/errors.js';
import type { Logger } from '../log.js';
import type { Store, TransactionProgress } from '../store/index.js';
import { sleep } from '../time.js';
import { recordMetrics } from '../metrics.js';

export interface TransactionBudget {
  /** Stop starting new work after this (epoch ms). */
  deadline: number;
  /** When the Lambda is killed at the latest; our claim on the txn lasts until then. */
  hardStop: number;
}

/**
 * Which events a transaction holds: a genuine retry carries the same ones, a reused id (a
 * homeserver that restarted or was reset) others. Malformed events count by position.
 */
export function eventsDigest(events: readonly unknown[]): string {
  const hash = createHash('sha256');
  events.forEach((e, i) => {
    const id = (e as { event_id?: unknown } | null)?.event_id;
    hash.update(typeof id === 'string' ? id : `#${i}`).update('\n');
  });
  return hash.digest('base64url').slice(0, 22);
}

/** Our hold on a transaction: resume at `cursor`, and record progress as `owner`. */
export interface TransactionLease {
  txnId: string;
  owner: string;
  cursor: number;
  /** When it was first claimed; with an event's index, the order of the events it parks. */
  claimedAt: number;
}

const WAIT_FOR_TWIN_MS = 2000;
const POLL_MS = 200;
/** Our lease outlives the Lambda's own end by this much, for clock differences between copies. */
const LEASE_MARGIN_MS = 2000;

/**
 * Claims `txnId`: a lease, or undefined when the transaction is already done. A twin copy
 * working on it is given a moment to finish (rather than send the HS into back-off); if it
 * still holds it then, the answer is 503 so the HS retries.
 */
export async function claim(
  store: Store,
  txnId: string,
  events: readonly unknown[],
  budget: TransactionBudget,
  log: Logger,
): Promise<TransactionLease | undefined> {
  const owner = randomUUID();
  const digest = eventsDigest(events);
  const leaseUntil = budget.hardStop + LEASE_MARGIN_MS;
  let claimed = await store.claimTransaction(txnId, digest, owner, leaseUntil);
  const waitUntil = Math.min(Date.now() + WAIT_FOR_TWIN_MS, budget.deadline);
  while (claimed.kind === 'busy' && Date.now() + POLL_MS < waitUntil) {
    await sleep(POLL_MS);
    const record = await store.getTransaction(txnId);
    if (record?.digest === digest && record.state === 'done') claimed = { kind: 'done' };
    else if (!record || record.digest !== digest || record.leaseUntil < Date.now()) claimed = await store.claimTransaction(txnId, digest, owner, leaseUntil);
  }
  if (claimed.kind === 'done') return undefined;
  if (claimed.kind === 'busy') throw unavailable(`transaction ${txnId} is being processed by another request; retry`);
  if (claimed.reused) {
    // Not a duplicate: Synapse on SQLite counts transaction ids from 1 again after a restart.
    log.warn('transaction id reused with other events (the homeserver restarted or was reset): processing it as a new transaction', { txnId });
    recordMetrics({ TransactionIdReused: 1 });
  }
  return { txnId, owner, cursor: claimed.cursor, claimedAt: claimed.claimedAt };
}

/**
 * Records where the transaction stands: `done`, or stopped at `cursor` (the lease is dropped so
 * the HS's retry can take over there at once). False when our lease was taken over meanwhile.
 */
export const recordProgress = (store: Store, lease: TransactionLease, progress: TransactionProgress) =>
  store.recordProgress(lease.txnId, lease.owner, progress);
