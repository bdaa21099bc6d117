/**
 * A record that doubles as the lock of what it names being made: the alias record (one room per
 * alias) and a direct chat's pair record (one room per pair). `creating` under an owner until
 * `lockUntil`, the holder's own deadline, so a copy that dies blocks it for one request at most;
 * then `ready`, written only by the lock's holder.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { deleteWhile, isConditionFailed } from './client.js';
import type { Table } from './client.js';

type Key = { pk: string; sk: string };

/** Takes the lock when there is no record, or a lock whose holder ran out of time. */
export async function takeCreationLock(t: Table, key: Key, owner: string, lockMs: number): Promise<boolean> {
  const now = Date.now();
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...key, state: 'creating', owner, lockUntil: now + lockMs },
        ConditionExpression: 'attribute_not_exists(pk) OR (#s = :creating AND lockUntil < :now)',
        ExpressionAttributeNames: { '#s': 'state' },
        ExpressionAttributeValues: { ':creating': 'creating', ':now': now },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}

/** The record, ready, with `attributes`; false when our lock was taken over meanwhile. */
export async function markReadyUnderLock(t: Table, key: Key, owner: string, attributes: Record<string, unknown>): Promise<boolean> {
  try {
    await t.doc.send(
      new PutCommand({
        TableName: t.tableName,
        Item: { ...key, state: 'ready', ...attributes },
        ConditionExpression: '#o = :owner',
        ExpressionAttributeNames: { '#o': 'owner' },
        ExpressionAttributeValues: { ':owner': owner },
      }),
    );
    return true;
  } catch (e) {
    if (isConditionFailed(e)) return false;
    throw e;
  }
}

/** Frees the lock after a failure, so that the next request can try again at once. */
export const releaseCreationLock = (t: Table, key: Key, owner: string) =>
  deleteWhile(t, key, '#o = :owner AND #s = :creating', { '#o': 'owner', '#s': 'state' }, { ':owner': owner, ':creating': 'creating' });
