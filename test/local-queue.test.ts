/**
 * The local SQS server npm start and the tests run (lib/local/queue.ts) keeps SQS FIFO's
 * deduplication as SQS does: a repeated MessageDeduplicationId within 5 minutes is answered with
 * the first message's ids and not queued, across the whole queue (its DeduplicationScope is
 * `queue`), and the answer's MD5OfMessageBody is that of the body sent now, which the SDK checks.
 * (The fuzz test found the front answering the first body's MD5, which the SDK refused.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalQueues } from '../lib/local/queue.js';

const q = await startLocalQueues({ stage: `lq${process.pid}` });
after(() => q.stop());

test('a repeated deduplication id is answered with the first message\'s id, in any group, whatever its body, and queued once', async () => {
  const first = await q.client.send(new SendMessageCommand({ QueueUrl: q.queueUrl, MessageBody: 'first', MessageGroupId: 'room-a', MessageDeduplicationId: '$event1' }));
  // The SDK throws if the MD5 it gets is not the MD5 of what it sent: these calls succeeding is the check.
  const again = await q.client.send(new SendMessageCommand({ QueueUrl: q.queueUrl, MessageBody: 'a different body', MessageGroupId: 'room-b', MessageDeduplicationId: '$event1' }));
  assert.equal(again.MessageId, first.MessageId);
  const batch = await q.client.send(
    new SendMessageBatchCommand({
      QueueUrl: q.queueUrl,
      Entries: [
        { Id: 'x', MessageBody: 'yet another body', MessageGroupId: 'room-a', MessageDeduplicationId: '$event1' },
        { Id: 'y', MessageBody: 'second', MessageGroupId: 'room-a', MessageDeduplicationId: '$event2' },
      ],
    }),
  );
  assert.deepEqual(batch.Failed ?? [], []);
  assert.equal(batch.Successful?.find((s) => s.Id === 'x')?.MessageId, first.MessageId);

  const got = await q.client.send(new ReceiveMessageCommand({ QueueUrl: q.queueUrl, MaxNumberOfMessages: 10 }));
  assert.deepEqual(
    (got.Messages ?? []).map((m) => m.Body),
    ['first', 'second'],
  );
});
