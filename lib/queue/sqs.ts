/**
 * The delivery queue on Amazon SQS (FIFO): the only code that knows queue URLs, message group
 * and deduplication ids. Locally it talks to the SQS-compatible server npm start and the tests
 * run (local-aws-sqs), through the same client with an endpoint.
 */
import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { RoomId } from '../matrix/ids.js';
import { awsCredentials } from '../aws-credentials.js';
import { awsRequestHandler } from '../aws-http.js';
import { QueueUnavailableError } from './port.js';
import type { DeadLetter, DeadLetters, DeliveryQueue, Outbox, QueuedEvent, ReceivedEvent } from './port.js';

export interface QueueOptions {
  queueUrl: string;
  deadLetterQueueUrl: string;
  /** An SQS-compatible endpoint (local runs and tests); AWS's own when unset. */
  endpoint?: string;
  client?: SQSClient;
}

/** One client per cold start; against a local endpoint any credentials do, on Lambda the role's from the environment (lib/aws-credentials.ts). */
export function sqsClient(endpoint?: string): SQSClient {
  const local = Boolean(endpoint);
  const credentials = awsCredentials(endpoint);
  return new SQSClient({
    endpoint,
    region: process.env.AWS_REGION ?? (local ? 'us-east-1' : undefined),
    retryMode: 'standard',
    maxAttempts: 4,
    requestHandler: awsRequestHandler(),
    ...(credentials ? { credentials } : {}),
  });
}

/**
 * Group and deduplication ids may hold at most 128 characters of printable ASCII; room and event
 * IDs may be 255. An ID that fits is used as it is (readable in the console), any other as its digest.
 */
const SQS_ID = /^[\x21-\x7e]{1,128}$/;
const digest = (s: string) => createHash('sha256').update(s).digest('base64url');
export const groupIdOf = (roomId: RoomId) => (SQS_ID.test(roomId) ? roomId : `sha256:${digest(roomId)}`);
/** From the event ID alone: a retried push queues the same event once (within SQS's 5-minute window). */
export const deduplicationIdOf = (eventId: string) => (SQS_ID.test(eventId) ? eventId : `sha256:${digest(eventId)}`);

const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
const attributesOf = (e: QueuedEvent, lastError?: string): Record<string, MessageAttributeValue> => ({
  roomId: text(e.roomId),
  eventId: text(e.eventId),
  sender: text(e.sender),
  ...(lastError ? { lastError: text(lastError.slice(0, 1000)) } : {}),
});

/**
 * SQS's limit for one message and for one SendMessageBatch (body and attributes, UTF-8): 256 KiB
 * (AWS now takes up to 1 MiB, local-aws-sqs 256 KiB; the smaller one holds everywhere).
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** What SQS counts of a message: its body, and each attribute's name, type and value. */
const sizeOf = (e: QueuedEvent) =>
  Object.entries(attributesOf(e)).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v.DataType ?? '') + Buffer.byteLength(v.StringValue ?? ''), Buffer.byteLength(e.body));

/** Batches of at most 10 messages and MAX_MESSAGE_BYTES, in order. */
function batchesOf(events: readonly QueuedEvent[]): QueuedEvent[][] {
  const batches: QueuedEvent[][] = [];
  let batch: QueuedEvent[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = sizeOf(e);
    if (batch.length === 10 || (batch.length && bytes + size > MAX_MESSAGE_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(e);
    bytes += size;
  }
  if (batch.length) batches.push(batch);
  return batches;
}

async function guarded<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw e instanceof QueueUnavailableError ? e : new QueueUnavailableError(e);
  }
}

export function sqsQueue(opts: QueueOptions): { outbox: Outbox; delivery: DeliveryQueue; deadLetters: DeadLetters; client: SQSClient } {
  const client = opts.client ?? sqsClient(opts.endpoint);

  const outbox: Outbox = {
    async enqueue(events) {
      const tooLarge = events.filter((e) => sizeOf(e) > MAX_MESSAGE_BYTES);
      const fitting = events.filter((e) => sizeOf(e) <= MAX_MESSAGE_BYTES);
      // SendMessageBatch takes 10 messages of 256 KiB in all at a time; in order, so a room's
      // events keep theirs.
      for (const batch of batchesOf(fitting)) {
        const out = await guarded(() =>
          client.send(
            new SendMessageBatchCommand({
              QueueUrl: opts.queueUrl,
              Entries: batch.map((e, j) => ({
                Id: String(j),
                MessageBody: e.body,
                MessageGroupId: groupIdOf(e.roomId),
                MessageDeduplicationId: deduplicationIdOf(e.eventId),
                MessageAttributes: attributesOf(e),
              })),
            }),
          ),
        );
        // An entry refused on its own: the rest of the room must not overtake it, so the whole push fails and is retried.
        if (out.Failed?.length) throw new QueueUnavailableError(new Error(`SQS refused ${out.Failed.length} of ${batch.length}: ${out.Failed.map((f) => `${f.Code} ${f.Message ?? ''}`).join('; ')}`));
      }
      return { tooLarge };
    },
  };

  const delivery: DeliveryQueue = {
    async retryLater(receipts, delayMs) {
      // SQS hides a message for at most 12 hours.
      const seconds = Math.min(Math.max(Math.ceil(delayMs / 1000), 0), 12 * 3600);
      for (let i = 0; i < receipts.length; i += 10) {
        await guarded(() =>
          client.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: opts.queueUrl,
              Entries: receipts.slice(i, i + 10).map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle, VisibilityTimeout: seconds })),
            }),
          ),
        );
      }
    },
    async deadLetter(e, reason) {
      await guarded(() =>
        client.send(
          new SendMessageCommand({
            QueueUrl: opts.deadLetterQueueUrl,
            MessageBody: e.body,
            MessageGroupId: groupIdOf(e.roomId),
            MessageDeduplicationId: deduplicationIdOf(e.eventId),
            MessageAttributes: attributesOf(e, reason),
          }),
        ),
      );
    },
  };

  const arnOf = async (url: string) =>
    (await guarded(() => client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))).Attributes?.QueueArn ?? '';

  const deadLetters: DeadLetters = {
    async list() {
      const total = Number(
        (await guarded(() => client.send(new GetQueueAttributesCommand({ QueueUrl: opts.deadLetterQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))))
          .Attributes?.ApproximateNumberOfMessages ?? 0,
      );
      const letters: DeadLetter[] = [];
      const receipts: string[] = [];
      try {
        // Each receive hands out the head of rooms not handed out yet; a short hold, given back below.
        for (let round = 0; round < 100; round++) {
          const out = await guarded(() =>
            client.send(
              new ReceiveMessageCommand({
                QueueUrl: opts.deadLetterQueueUrl,
                MaxNumberOfMessages: 10,
                VisibilityTimeout: 30,
                WaitTimeSeconds: 0,
                MessageAttributeNames: ['All'],
                // AttributeNames: the form local-aws-sqs understands (AWS takes both).
                AttributeNames: ['All'],
                MessageSystemAttributeNames: ['SentTimestamp'],
              }),
            ),
          );
          if (!out.Messages?.length) break;
          for (const m of out.Messages) {
            if (m.ReceiptHandle) receipts.push(m.ReceiptHandle);
            const a = m.MessageAttributes ?? {};
            letters.push({
              roomId: (a.roomId?.StringValue ?? '') as RoomId,
              eventId: a.eventId?.StringValue ?? '',
              sender: a.sender?.StringValue ?? '',
              deadLetteredAt: Number(m.Attributes?.SentTimestamp ?? 0),
              lastError: a.lastError?.StringValue,
            });
          }
        }
      } finally {
        // Listing loses nothing: every message read is visible again at once.
        for (let i = 0; i < receipts.length; i += 10) {
          await guarded(() =>
            client.send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: opts.deadLetterQueueUrl,
                Entries: receipts.slice(i, i + 10).map((ReceiptHandle, j) => ({ Id: String(j), ReceiptHandle, VisibilityTimeout: 0 })),
              }),
            ),
          );
        }
      }
      return { letters, total: Math.max(total, letters.length) };
    },
    async redrive() {
      // The destination is named: letters the deliver function put there itself (not SQS's redrive
      // policy) have no source SQS could find on its own.
      const [SourceArn, DestinationArn] = await Promise.all([arnOf(opts.deadLetterQueueUrl), arnOf(opts.queueUrl)]);
      const out = await guarded(() => client.send(new StartMessageMoveTaskCommand({ SourceArn, DestinationArn })));
      return { taskHandle: out.TaskHandle ?? '' };
    },
    async purge() {
      await guarded(() => client.send(new PurgeQueueCommand({ QueueUrl: opts.deadLetterQueueUrl })));
    },
  };

  return { outbox, delivery, deadLetters, client };
}

/** An SQS event source's record, as Lambda hands it over (the fields we read; aws-lambda's SQSRecord fits). */
export interface SqsRecord {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: { ApproximateReceiveCount?: string; SentTimestamp?: string };
  messageAttributes: Record<string, { stringValue?: string } | undefined>;
}

/** The events of an SQS event, in the order the event source gave them (each group's in its own order). */
export function receivedEvents(records: readonly SqsRecord[]): ReceivedEvent[] {
  return records.map((r) => ({
    messageId: r.messageId,
    receipt: r.receiptHandle,
    body: r.body,
    roomId: (r.messageAttributes.roomId?.stringValue ?? '') as RoomId,
    eventId: r.messageAttributes.eventId?.stringValue ?? '',
    sender: r.messageAttributes.sender?.stringValue ?? '',
    receiveCount: Number(r.attributes.ApproximateReceiveCount ?? 1),
    queuedAt: Number(r.attributes.SentTimestamp ?? 0),
    lastError: r.messageAttributes.lastError?.stringValue,
  }));
}
