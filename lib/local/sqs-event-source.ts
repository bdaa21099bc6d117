/**
 * What Lambda's SQS event source mapping does on a FIFO queue, for `npm start` and the tests:
 * receive from the delivery queue, hand each message group's messages to the deliver function in
 * order (an SQS event per batch, up to `concurrency` groups at once), delete what it delivered,
 * and leave what it reports failed (partial batch response) hidden on the queue, holding its
 * group back until it comes again.
 *
 * SQS FIFO itself hands out nothing of a group while one of its messages is in flight; the local
 * SQS server (local-aws-sqs) does not hold groups back, and it counts a visibility change as a
 * receive (and its sequence numbers do not sort). So this event source keeps the order itself: it
 * receives messages hidden for a long while, keeps each group's in the order they came, runs one
 * batch of a group at a time, and a group whose messages failed waits until all of them are handed
 * out again, and puts them first. The receive count the
 * function sees leaves out the visibility changes (one per failure the function reported).
 *
 * Not serverless-offline-sqs: it deletes every message of a batch whatever the function answers
 * (it ignores ReportBatchItemFailures, which order within a room depends on), runs one batch at a
 * time per function, and brings the AWS SDK v2 (end of support, ~100 MB).
 */
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export interface EventSourceOptions {
  client: SQSClient;
  queueUrl: string;
  queueArn: string;
  region?: string;
  /** Messages per invocation (the mapping's batch size). */
  batchSize: number;
  /** Groups delivered at once (the mapping's maximum concurrency). */
  concurrency: number;
  /** Runs the function on one event: its partial batch response, or a throw (every message stays). */
  invoke: (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;
  /** After a throw, the batch comes back after this long, as after the queue's visibility timeout. */
  crashRetrySeconds?: number;
  onError?: (e: unknown) => void;
}

export interface SqsEventSource {
  /** One receive, and the deliveries it makes possible, to the end: how many messages it received. */
  pollOnce(): Promise<number>;
  /** Polls until a receive comes back empty and every delivery is over. */
  pollUntilEmpty(): Promise<number>;
  /** Receipts of messages the function reported failed, hidden on the queue until their retry. */
  hiddenReceipts(): string[];
  /** Those, and the messages received and waiting here behind their group: what a clean stop must bring back. */
  heldReceipts(): string[];
  /** Starts receiving until stop(). */
  start(): void;
  /** Stops receiving and waits for the deliveries under way. */
  stop(): Promise<void>;
}

/** Received messages stay hidden this long: until delivered, reported failed, or brought back at a stop. */
const HOLD_SECONDS = 12 * 3600;

interface Group {
  /** Received, not yet handed to the function, in order. */
  waiting: Message[];
  running: boolean;
  /** Messages of this group hidden for a retry, in their order: nothing of the group goes before all are back. */
  retrying?: { order: string[]; back: Map<string, Message> };
}

export function sqsEventSource(opts: EventSourceOptions): SqsEventSource {
  const groups = new Map<string, Group>();
  const hidden = new Map<string, string>();
  /** Visibility changes local-aws-sqs counted as receives, per message. */
  const uncounted = new Map<string, number>();
  const work = new Set<Promise<void>>();
  let active = 0;
  let running = false;
  let loop: Promise<void> | undefined;

  const recordOf = (m: Message): SQSRecord => ({
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: String(Math.max(Number(m.Attributes?.ApproximateReceiveCount ?? 1) - (uncounted.get(m.MessageId ?? '') ?? 0), 1)),
      SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
      SenderId: m.Attributes?.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(m.Attributes?.MessageGroupId ? { MessageGroupId: m.Attributes.MessageGroupId } : {}),
      ...(m.Attributes?.MessageDeduplicationId ? { MessageDeduplicationId: m.Attributes.MessageDeduplicationId } : {}),
      ...(m.Attributes?.SequenceNumber ? { SequenceNumber: m.Attributes.SequenceNumber } : {}),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, { stringValue: v.StringValue, stringListValues: [], binaryListValues: [], dataType: v.DataType ?? 'String' }]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: opts.queueArn,
    awsRegion: opts.region ?? 'us-east-1',
  });

  const hide = async (messages: Message[], seconds: number) => {
    for (let i = 0; i < messages.length; i += 10) {
      await opts.client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: opts.queueUrl,
          Entries: messages.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: seconds })),
        }),
      );
    }
  };

  async function runGroup(id: string, group: Group): Promise<void> {
    try {
      while (group.waiting.length && !group.retrying) {
        const batch = group.waiting.splice(0, Math.min(opts.batchSize, 10));
        let answer: SQSBatchResponse | undefined;
        try {
          answer = await opts.invoke({ Records: batch.map(recordOf) });
        } catch (e) {
          // As the event source: the whole batch comes back after the visibility timeout.
          opts.onError?.(e);
          await hide(batch, opts.crashRetrySeconds ?? 30).catch(opts.onError);
          for (const m of batch) {
            hidden.set(m.MessageId ?? '', m.ReceiptHandle ?? '');
            uncounted.set(m.MessageId ?? '', (uncounted.get(m.MessageId ?? '') ?? 0) + 1);
          }
          group.retrying = { order: batch.map((m) => m.MessageId ?? ''), back: new Map() };
          break;
        }
        const failed = new Set((answer?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        const done = batch.filter((m) => !failed.has(m.MessageId ?? ''));
        if (done.length) {
          await opts.client.send(new DeleteMessageBatchCommand({ QueueUrl: opts.queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
          for (const m of done) uncounted.delete(m.MessageId ?? '');
        }
        const retry = batch.filter((m) => failed.has(m.MessageId ?? ''));
        if (retry.length) {
          // The function hid them for their retry (one visibility change each, which local-aws-sqs counts).
          for (const m of retry) {
            hidden.set(m.MessageId ?? '', m.ReceiptHandle ?? '');
            uncounted.set(m.MessageId ?? '', (uncounted.get(m.MessageId ?? '') ?? 0) + 1);
          }
          group.retrying = { order: retry.map((m) => m.MessageId ?? ''), back: new Map() };
        }
      }
    } finally {
      group.running = false;
      active--;
      if (!group.waiting.length && !group.retrying) groups.delete(id);
      kick();
    }
  }

  /** Starts the groups that may go, up to `concurrency` at once. */
  function kick(): void {
    for (const [id, group] of groups) {
      if (active >= opts.concurrency) return;
      if (group.running || group.retrying || !group.waiting.length) continue;
      group.running = true;
      active++;
      const p = runGroup(id, group);
      work.add(p);
      void p.finally(() => work.delete(p));
    }
  }

  async function idle(): Promise<void> {
    while (work.size) await Promise.all([...work]);
  }

  async function receive(waitSeconds: number): Promise<number> {
    // local-aws-sqs holds a receive until it has as many messages as asked for, or 40 ms have
    // passed: asking for what is there (at most 10) answers at once.
    // A message just sent counts as "delayed" in local-aws-sqs until a zero-delay timer of its
    // server fires; a busy server answers this first: those are about to be there too.
    const counts = (
      await opts.client.send(new GetQueueAttributesCommand({ QueueUrl: opts.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'] }))
    ).Attributes;
    const visible = Number(counts?.ApproximateNumberOfMessages ?? 10) + Number(counts?.ApproximateNumberOfMessagesDelayed ?? 0);
    if (visible === 0 && waitSeconds === 0) return 0;
    const out = await opts.client.send(
      new ReceiveMessageCommand({
        QueueUrl: opts.queueUrl,
        MaxNumberOfMessages: Math.min(Math.max(visible, 1), 10),
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: HOLD_SECONDS,
        // AttributeNames: the form local-aws-sqs understands (AWS takes both).
        AttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    for (const m of messages) {
      const id = m.MessageId ?? '';
      const groupId = m.Attributes?.MessageGroupId ?? '';
      hidden.delete(id);
      const group = groups.get(groupId) ?? { waiting: [], running: false };
      groups.set(groupId, group);
      const retrying = group.retrying;
      if (retrying?.order.includes(id)) {
        retrying.back.set(id, m);
        if (retrying.back.size === retrying.order.length) {
          group.waiting = [...retrying.order.map((r) => retrying.back.get(r)!), ...group.waiting];
          group.retrying = undefined;
        }
        continue;
      }
      const at = group.waiting.findIndex((w) => w.MessageId === id);
      // Received again (its hold brought back at a stop, say): the newest receipt is the one that counts.
      if (at >= 0) group.waiting[at] = m;
      else group.waiting.push(m);
    }
    kick();
    return messages.length;
  }

  return {
    async pollOnce() {
      const n = await receive(0);
      await idle();
      return n;
    },
    async pollUntilEmpty() {
      let total = 0;
      for (let n = await receive(0); n > 0 || work.size; n = await receive(0)) {
        total += n;
        await idle();
      }
      return total;
    },
    hiddenReceipts: () => [...hidden.values()],
    heldReceipts: () => [...hidden.values(), ...[...groups.values()].flatMap((g) => g.waiting.map((m) => m.ReceiptHandle ?? ''))],
    start() {
      if (running) return;
      running = true;
      loop = (async () => {
        while (running) {
          try {
            // Enough waiting in memory: let the deliveries catch up first.
            const waiting = [...groups.values()].reduce((n, g) => n + g.waiting.length, 0);
            if (waiting >= 100) await new Promise((r) => setTimeout(r, 50));
            // No long polling: local-aws-sqs holds a long poll until it has 10 messages or the time is up,
            // which would delay a lone message by the whole wait. A short receive waits ~40 ms by itself.
            else if ((await receive(0)) === 0) await new Promise((r) => setTimeout(r, 20));
          } catch (e) {
            opts.onError?.(e);
            if (running) await new Promise((r) => setTimeout(r, 1000));
          }
        }
      })();
    },
    async stop() {
      running = false;
      await loop;
      await idle();
    },
  };
}
