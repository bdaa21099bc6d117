/**
 * The dedup record of a pushed transaction (`TXN#<txnId>`/`TXN`), which doubles as its
 * progress cursor (`nextEvent`, the index of the next event to deliver) and carries a digest of
 * its events. A genuine retry carries the same events, so "events before `cursor` are done" is
 * all a retry needs: two writes per transaction (claim and finish), however many events it holds.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { expiresIn, isConditionFailed } from './client.js';
import type { Table } from './client.js';
import type { FailedEvent, TransactionClaim, TransactionProgress, TransactionRecord } from './port.js';

/** Kept for the HS's retries and for inspection of failed events; then DynamoDB's TTL removes it. */
export const TXN_TTL_S = 7 * 24 * 3600;

const key = (txnId: string) => ({ pk: `TXN#${txnId}`, sk: 'TXN' });

/**
 * Takes the transaction unless it is done or another live copy holds its lease. The record
 * carries a digest of the transaction's events: a homeserver that restarted (Synapse on SQLite
 * counts from 1 again) or lost its database reuses ids for new events, while a genuine retry
 * always carries the same events. A record with another digest is an old transaction under a
 * reused id: it is replaced, and the new one starts at its first event. The happy path stays
 * one write; only a reuse costs a second.
 */
export async function claimTransaction(t: Table, txnId: string, digest: string, owner: string, leaseUntil: number): Promise<TransactionClaim> {
  const now = Date.now();
  const values = { ':running': 'running', ':owner': owner, ':lease': leaseUntil, ':exp': expiresIn(TXN_TTL_S), ':digest': digest, ':zero': 0, ':now': now };
  let old: TransactionRecord | undefined;
  try {
    const out = await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: key(txnId),
        UpdateExpression:
          'SET #s = :running, #o = :owner, leaseUntil = :lease, expiresAt = :exp, digest = :digest, nextEvent = if_not_exists(nextEvent, :zero), claimedAt = if_not_exists(claimedAt, :now)',
        ConditionExpression: 'attribute_not_exists(pk) OR (digest = :digest AND #s <> :done AND leaseUntil < :now)',
        ExpressionAttributeNames: { '#s': 'state', '#o': 'owner' },
        ExpressionAttributeValues: { ...values, ':done': 'done' },
        ReturnValues: 'ALL_NEW',
        // Saves a read when the claim fails: the item tells us why.
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return { kind: 'claimed', cursor: Number(out.Attributes?.nextEvent ?? 0), reused: false, claimedAt: Number(out.Attributes?.claimedAt ?? now) };
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    old = recordOf(e) ?? (await getTransaction(t, txnId));
  }
  if (!old || old.digest === digest) return old?.state === 'done' ? { kind: 'done' } : { kind: 'busy', leaseUntil: old?.leaseUntil ?? 0 };
  try {
    await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: key(txnId),
        UpdateExpression:
          'SET #s = :running, #o = :owner, leaseUntil = :lease, expiresAt = :exp, digest = :digest, nextEvent = :zero, failed = :none, claimedAt = :now',
        // Only one copy replaces the old record; the others then see our digest and wait for us.
        ConditionExpression: 'attribute_not_exists(digest) OR digest <> :digest',
        ExpressionAttributeNames: { '#s': 'state', '#o': 'owner' },
        ExpressionAttributeValues: { ...values, ':none': [] },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return { kind: 'claimed', cursor: 0, reused: true, claimedAt: now };
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    const now = recordOf(e);
    return now?.state === 'done' ? { kind: 'done' } : { kind: 'busy', leaseUntil: now?.leaseUntil ?? 0 };
  }
}

const recordOf = (e: unknown): TransactionRecord | undefined => {
  const raw = (e as { Item?: Parameters<typeof unmarshall>[0] }).Item;
  return raw ? toRecord(unmarshall(raw)) : undefined;
};

const toRecord = (item: Record<string, unknown>): TransactionRecord => ({
  state: item.state === 'done' || item.state === 'retry' ? item.state : 'running',
  leaseUntil: Number(item.leaseUntil ?? 0),
  cursor: Number(item.nextEvent ?? 0),
  failed: Array.isArray(item.failed) ? (item.failed as FailedEvent[]) : [],
  digest: typeof item.digest === 'string' ? item.digest : undefined,
});

export async function getTransaction(t: Table, txnId: string): Promise<TransactionRecord | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: key(txnId), ConsistentRead: true }));
  return out.Item ? toRecord(out.Item) : undefined;
}

/**
 * Records progress: `done` marks the transaction finished; otherwise the lease is dropped so
 * the HS's retry can take over at `cursor` at once. Events the network refused for good are
 * kept on the record with the reason.
 */
export async function recordProgress(
  t: Table,
  txnId: string,
  owner: string,
  p: TransactionProgress,
): Promise<boolean> {
  try {
    await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: key(txnId),
        UpdateExpression:
          'SET #s = :state, nextEvent = :cursor, leaseUntil = :zero, failed = list_append(if_not_exists(failed, :empty), :failed) REMOVE #o',
        ConditionExpression: '#o = :owner',
        ExpressionAttributeNames: { '#s': 'state', '#o': 'owner' },
        ExpressionAttributeValues: {
          ':state': p.done ? 'done' : 'retry',
          ':cursor': p.cursor,
          ':zero': 0,
          ':empty': [],
          ':failed': p.failed,
          ':owner': owner,
        },
      }),
    );
    return true;
  } catch (e) {
    // Our lease ran out and another copy owns the record now; it carries on from the cursor it read.
    if (isConditionFailed(e)) return false;
    throw e;
  }
}
