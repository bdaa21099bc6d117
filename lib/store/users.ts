/** Virtual users we have registered on the HS (`USER#<userId>`/`PROFILE`). */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { UserId } from '../matrix/ids.js';
import type { Table } from './client.js';
import type { VirtualUser } from './port.js';

const key = (userId: UserId) => ({ pk: `USER#${userId}`, sk: 'PROFILE' });

export async function getUser(t: Table, userId: UserId): Promise<VirtualUser | undefined> {
  const out = await t.doc.send(new GetCommand({ TableName: t.tableName, Key: key(userId) }));
  if (!out.Item) return undefined;
  return { userId, displayName: out.Item.displayName, avatarUrl: out.Item.avatarUrl, registeredAt: out.Item.registeredAt };
}

/** Written only after the HS has the user, so a record always means "registered". */
export async function putUser(t: Table, user: VirtualUser): Promise<void> {
  const { userId, ...rest } = user;
  await t.doc.send(new PutCommand({ TableName: t.tableName, Item: { ...key(userId), ...rest } }));
}
