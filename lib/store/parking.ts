/**
 * Parked rooms: a room whose network delivery fails transiently keeps its events here, in order,
 * until a drainer delivers them; what cannot be delivered becomes a dead letter.
 *
 *   PARK#<roomId> / HEAD             the room's queue: count, backoff, drain lease, first failure
 *   PARK#<roomId> / EV#<order>       one parked event; <order> sorts as the homeserver sent them
 *   PARKED        / <roomId>         the registry the scheduled drainer lists
 *   DEAD          / <roomId>#<eventId>  a dead letter, kept 14 days, for an operator to redrive
 */
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RoomId } from '../matrix/ids.js';
import { expiresIn, isConditionFailed, untilAllProcessed } from './client.js';
import type { Table } from './client.js';
import type { DeadLetter, ParkedEvent, ParkedRoom } from './port.js';

export const DEAD_LETTER_TTL_S = 14 * 24 * 3600;

const pk = (roomId: RoomId) => `PARK#${roomId}`;
const HEAD = 'HEAD';
const EV = 'EV#';
const REGISTRY = 'PARKED';
const DEAD = 'DEAD';

const toRoom = (item: Record<string, unknown>): ParkedRoom => ({
  roomId: item.roomId as RoomId,
  count: Number(item.count ?? 0),
  attempts: Number(item.attempts ?? 0),
  firstFailureAt: Number(item.firstFailureAt ?? 0),
  lastFailureAt: Number(item.lastFailureAt ?? 0),
  nextAttemptAt: Number(item.nextAttemptAt ?? 0),
  lastError: typeof item.lastError === 'string' ? item.lastError : undefined,
  leaseUntil: Number(item.leaseUntil ?? 0),
});

/** Which of these rooms are parked: one consistent batch read, since a room parked a moment ago by another copy must be seen. */
export async function getParkedRooms(t: Table, roomIds: RoomId[]): Promise<Map<RoomId, number>> {
  const parked = new Map<RoomId, number>();
  const unique = [...new Set(roomIds)];
  for (let i = 0; i < unique.length; i += 100) {
    await untilAllProcessed(
      unique.slice(i, i + 100).map((roomId) => ({ pk: pk(roomId), sk: HEAD })),
      async (keys) => {
        const out = await t.doc.send(
          new BatchGetCommand({ RequestItems: { [t.tableName]: { Keys: keys, ConsistentRead: true, ProjectionExpression: 'roomId, nextAttemptAt' } } }),
        );
        for (const item of out.Responses?.[t.tableName] ?? []) parked.set(item.roomId as RoomId, Number(item.nextAttemptAt ?? 0));
        return (out.UnprocessedKeys?.[t.tableName]?.Keys ?? []) as typeof keys;
      },
    );
  }
  return parked;
}

export async function getParkedRoom(t: Table, roomId: RoomId): Promise<ParkedRoom | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: { pk: pk(roomId), sk: HEAD }, ConsistentRead: true }));
  return out.Item ? toRoom(out.Item) : undefined;
}

/**
 * Parks events of one room, in order. Each event's item is written only if absent, so a retried
 * transaction parks nothing twice; the room's count grows by what was new. `error` says why the
 * room parked (when this park started it), and the registry lets the drainer find the room.
 */
export async function park(t: Table, roomId: RoomId, events: ParkedEvent[], why: { error: string; at: number; retryAt: number }): Promise<number> {
  let added = 0;
  for (const e of events) {
    try {
      await t.doc.send(
        new PutCommand({
          TableName: t.tableName,
          Item: { pk: pk(roomId), sk: `${EV}${e.order}`, event: e.event, order: e.order, parkedAt: why.at },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      added++;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }
  const head = await t.doc.send(
    new UpdateCommand({
      TableName: t.tableName,
      Key: { pk: pk(roomId), sk: HEAD },
      ReturnValues: 'UPDATED_OLD',
      UpdateExpression:
        'SET roomId = :room, firstFailureAt = if_not_exists(firstFailureAt, :at), lastFailureAt = :at, lastError = if_not_exists(lastError, :error), nextAttemptAt = if_not_exists(nextAttemptAt, :retryAt), attempts = if_not_exists(attempts, :zero) ADD #c :added',
      ExpressionAttributeNames: { '#c': 'count' },
      ExpressionAttributeValues: { ':room': roomId, ':at': why.at, ':error': why.error.slice(0, 500), ':retryAt': why.retryAt, ':zero': 0, ':added': added },
    }),
  );
  // The registry entry is written when the room parks, not again for every event it parks.
  if (!head.Attributes?.roomId) await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { pk: REGISTRY, sk: roomId, roomId } }));
  return added;
}

/** The rooms with parked events, for the drainer. */
export async function listParkedRooms(t: Table): Promise<ParkedRoom[]> {
  const ids: RoomId[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await t.doc.send(
      new QueryCommand({ TableName: t.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': REGISTRY }, ExclusiveStartKey: start }),
    );
    for (const i of page.Items ?? []) ids.push(i.roomId as RoomId);
    start = page.LastEvaluatedKey;
  } while (start);
  const rooms = await Promise.all(ids.map((id) => getParkedRoom(t, id)));
  return rooms.filter((r): r is ParkedRoom => r !== undefined);
}

/**
 * One drainer per room: the lease is taken only when the room is due (by the bridge's clock,
 * `dueAt`) and nobody holds it (leases are wall-clock time).
 */
export async function leaseParkedRoom(t: Table, roomId: RoomId, owner: string, leaseUntil: number, dueAt: number): Promise<ParkedRoom | undefined> {
  const now = Date.now();
  try {
    const out = await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: { pk: pk(roomId), sk: HEAD },
        UpdateExpression: 'SET leaseOwner = :owner, leaseUntil = :until',
        ConditionExpression: 'attribute_exists(pk) AND nextAttemptAt <= :due AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)',
        ExpressionAttributeValues: { ':owner': owner, ':until': leaseUntil, ':now': now, ':due': dueAt },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return out.Attributes ? toRoom(out.Attributes) : undefined;
  } catch (e) {
    if (isConditionFailed(e)) return undefined;
    throw e;
  }
}

/** The oldest parked events of a room, in order. */
export async function listParkedEvents(t: Table, roomId: RoomId, limit: number): Promise<ParkedEvent[]> {
  const out = await t.doc.send(
    new QueryCommand({
      TableName: t.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ev)',
      ExpressionAttributeValues: { ':pk': pk(roomId), ':ev': EV },
      ConsistentRead: true,
      Limit: limit,
    }),
  );
  return (out.Items ?? []).map((i) => ({ order: String(i.order), event: i.event as ParkedEvent['event'], parkedAt: Number(i.parkedAt ?? 0) }));
}

/** An event left the queue (delivered, or made a dead letter). */
export async function unpark(t: Table, roomId: RoomId, order: string): Promise<void> {
  const gone = await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: { pk: pk(roomId), sk: `${EV}${order}` }, ReturnValues: 'ALL_OLD' }));
  // Counted down only for an item that was there: the count stays the queue's length.
  if (!gone.Attributes) return;
  await t.doc.send(
    new UpdateCommand({
      TableName: t.tableName,
      Key: { pk: pk(roomId), sk: HEAD },
      UpdateExpression: 'ADD #c :minus',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeNames: { '#c': 'count' },
      ExpressionAttributeValues: { ':minus': -1 },
    }),
  ).catch((e) => {
    if (!isConditionFailed(e)) throw e;
  });
}

/** A delivery attempt failed again: back off, and give the lease up so the next drainer may go at `retryAt`. */
export async function deferParkedRoom(t: Table, roomId: RoomId, owner: string, failure: { error: string; at: number; retryAt: number }): Promise<void> {
  await t.doc.send(
    new UpdateCommand({
      TableName: t.tableName,
      Key: { pk: pk(roomId), sk: HEAD },
      UpdateExpression: 'SET lastFailureAt = :at, lastError = :error, nextAttemptAt = :retryAt, leaseUntil = :zero ADD attempts :one',
      ConditionExpression: 'leaseOwner = :owner',
      ExpressionAttributeValues: { ':at': failure.at, ':error': failure.error.slice(0, 500), ':retryAt': failure.retryAt, ':zero': 0, ':one': 1, ':owner': owner },
    }),
  ).catch((e) => {
    if (!isConditionFailed(e)) throw e;
  });
}

/**
 * The queue is empty: the room is no longer parked. Only when no event was parked meanwhile
 * (count 0), so a park racing with the end of a drain is never stranded.
 */
export async function releaseParkedRoom(t: Table, roomId: RoomId, owner: string): Promise<boolean> {
  try {
    await t.doc.send(
      new DeleteCommand({
        TableName: t.tableName,
        Key: { pk: pk(roomId), sk: HEAD },
        ConditionExpression: 'leaseOwner = :owner AND #c <= :zero',
        ExpressionAttributeNames: { '#c': 'count' },
        ExpressionAttributeValues: { ':owner': owner, ':zero': 0 },
      }),
    );
  } catch (e) {
    if (isConditionFailed(e)) {
      // Events were parked meanwhile: keep the room, due at once, for the next drain.
      await t.doc.send(
        new UpdateCommand({
          TableName: t.tableName,
          Key: { pk: pk(roomId), sk: HEAD },
          UpdateExpression: 'SET leaseUntil = :zero, nextAttemptAt = :due',
          ExpressionAttributeValues: { ':zero': 0, ':due': 0 },
        }),
      );
      return false;
    }
    throw e;
  }
  await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: { pk: REGISTRY, sk: roomId } }));
  return true;
}

export async function putDeadLetter(t: Table, d: DeadLetter): Promise<void> {
  await t.doc.send(
    new PutCommand({ TableName: t.tableName, Item: { pk: DEAD, sk: `${d.roomId}#${d.eventId}`, ...d, expiresAt: expiresIn(DEAD_LETTER_TTL_S) } }),
  );
}

export async function listDeadLetters(t: Table, roomId?: RoomId): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await t.doc.send(
      new QueryCommand({
        TableName: t.tableName,
        KeyConditionExpression: roomId ? 'pk = :pk AND begins_with(sk, :room)' : 'pk = :pk',
        ExpressionAttributeValues: roomId ? { ':pk': DEAD, ':room': `${roomId}#` } : { ':pk': DEAD },
        ExclusiveStartKey: start,
      }),
    );
    const now = Date.now() / 1000;
    for (const i of page.Items ?? []) {
      if (Number(i.expiresAt) <= now) continue;
      const { pk: _pk, sk: _sk, expiresAt: _e, ...letter } = i;
      out.push(letter as DeadLetter);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}

/**
 * Marks a dead letter as being redriven at `order` (once: a second redrive of the same letter
 * finds the order it was given and uses it again, so the event is parked once).
 */
export async function markRedrive(t: Table, roomId: RoomId, eventId: string, order: string): Promise<string | undefined> {
  try {
    const out = await t.doc.send(
      new UpdateCommand({
        TableName: t.tableName,
        Key: { pk: DEAD, sk: `${roomId}#${eventId}` },
        UpdateExpression: 'SET redriveOrder = if_not_exists(redriveOrder, :order)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':order': order },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return String(out.Attributes?.redriveOrder);
  } catch (e) {
    if (isConditionFailed(e)) return undefined;
    throw e;
  }
}

export async function deleteDeadLetter(t: Table, roomId: RoomId, eventId: string): Promise<void> {
  await t.doc.send(new DeleteCommand({ TableName: t.tableName, Key: { pk: DEAD, sk: `${roomId}#${eventId}` } }));
}
